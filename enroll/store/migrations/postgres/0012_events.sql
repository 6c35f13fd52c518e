-- Audit export and webhooks.
--
-- audit_events ids are taken under a transaction advisory lock (see
-- sqlStore.Audit), so they commit in id order and a reader following the
-- id cursor never passes a row that commits later.
CREATE INDEX audit_events_action ON audit_events (action, id);

-- webhook_endpoints: where events are delivered. events is the list of
-- event types, comma separated with a comma at each end (",a,b,"), or
-- ",*," for every event. The signing secret is sealed by the master key.
CREATE TABLE webhook_endpoints (
    id        text        NOT NULL PRIMARY KEY,
    url       text        NOT NULL,
    events    text        NOT NULL,
    key_id    text        NOT NULL,
    secret    bytea       NOT NULL,
    disabled  boolean     NOT NULL DEFAULT false,
    created   timestamptz NOT NULL
);

-- webhook_events: the outbox. A row is written in the same transaction as
-- the audit row of the change it tells of; its id is the webhook-id of
-- every delivery of it.
CREATE TABLE webhook_events (
    id        text        NOT NULL PRIMARY KEY,
    type      text        NOT NULL,
    time      timestamptz NOT NULL,
    data      text        NOT NULL
);

-- webhook_deliveries: one per event and endpoint subscribed to it when the
-- event was written. state is pending, delivered or dead; a replica
-- delivering one holds its lease (lease_owner until lease_until).
CREATE TABLE webhook_deliveries (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     text        NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id  text        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state        text        NOT NULL DEFAULT 'pending',
    attempts     integer     NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL,
    lease_owner  text        NOT NULL DEFAULT '',
    lease_until  timestamptz,
    last_error   text        NOT NULL DEFAULT '',
    created      timestamptz NOT NULL,
    done_at      timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt);

-- appliance_alerts: the episodes raised for an appliance (offline,
-- clock_untrusted) and not yet cleared, so each is raised once.
CREATE TABLE appliance_alerts (
    appliance_id text        NOT NULL,
    kind         text        NOT NULL,
    since        timestamptz NOT NULL,
    PRIMARY KEY (appliance_id, kind)
);
