-- Audit export and webhooks.
--
-- audit_events ids already commit in order on SQLite (one writer at a
-- time), so a reader following the id cursor never passes a row that
-- commits later.
CREATE INDEX audit_events_action ON audit_events (action, id);

-- webhook_endpoints: where events are delivered. events is the list of
-- event types, comma separated with a comma at each end (",a,b,"), or
-- ",*," for every event. The signing secret is sealed by the master key.
CREATE TABLE webhook_endpoints (
    id        TEXT    NOT NULL PRIMARY KEY,
    url       TEXT    NOT NULL,
    events    TEXT    NOT NULL,
    key_id    TEXT    NOT NULL,
    secret    BLOB    NOT NULL,
    disabled  INTEGER NOT NULL DEFAULT 0,
    created   INTEGER NOT NULL
) STRICT;

-- webhook_events: the outbox. A row is written in the same transaction as
-- the audit row of the change it tells of; its id is the webhook-id of
-- every delivery of it.
CREATE TABLE webhook_events (
    id        TEXT    NOT NULL PRIMARY KEY,
    type      TEXT    NOT NULL,
    time      INTEGER NOT NULL,
    data      TEXT    NOT NULL
) STRICT;

-- webhook_deliveries: one per event and endpoint subscribed to it when the
-- event was written. state is pending, delivered or dead; a replica
-- delivering one holds its lease (lease_owner until lease_until).
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id  TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state        TEXT    NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  INTEGER,
    last_error   TEXT    NOT NULL DEFAULT '',
    created      INTEGER NOT NULL,
    done_at      INTEGER
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt);

-- appliance_alerts: the episodes raised for an appliance (offline,
-- clock_untrusted) and not yet cleared, so each is raised once.
CREATE TABLE appliance_alerts (
    appliance_id TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (appliance_id, kind)
) STRICT;
