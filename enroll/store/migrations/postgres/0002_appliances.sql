-- Paired appliances, pairing codes and each appliance's revision log of
-- changes (offers of registrations, cancellations, renames, unpairing).

CREATE TABLE appliances (
    id              text             NOT NULL PRIMARY KEY,
    name            text             NOT NULL,
    name_key        text COLLATE "C" NOT NULL UNIQUE,
    sign_key        bytea            NOT NULL UNIQUE,
    box_key         bytea            NOT NULL,
    paired          timestamptz      NOT NULL,
    last_seen       timestamptz,
    version         text             NOT NULL DEFAULT '',
    accounts        integer          NOT NULL DEFAULT 0,
    clock_time      timestamptz,
    clock_bound_ns  bigint           NOT NULL DEFAULT 0,
    clock_state     text             NOT NULL DEFAULT '',
    clock_ppm       double precision NOT NULL DEFAULT 0,
    clock_offset_ns bigint           NOT NULL DEFAULT 0,
    clock_at        timestamptz,
    rev             bigint           NOT NULL DEFAULT 0,
    unpairing       boolean          NOT NULL DEFAULT false
);

CREATE TABLE pairing_codes (
    code     text        NOT NULL PRIMARY KEY,
    sign_key bytea       NOT NULL,
    box_key  bytea       NOT NULL,
    version  text        NOT NULL DEFAULT '',
    created  timestamptz NOT NULL,
    expires  timestamptz NOT NULL
);

CREATE INDEX pairing_codes_key ON pairing_codes (sign_key, expires);
CREATE INDEX pairing_codes_expires ON pairing_codes (expires);

CREATE TABLE appliance_changes (
    appliance_id text        NOT NULL REFERENCES appliances (id) ON DELETE CASCADE,
    rev          bigint      NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('offer', 'cancel', 'expire', 'delete', 'rename', 'activate', 'unpair')),
    device_uid   text        NOT NULL DEFAULT '',
    payload      bytea,
    state        text        NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected', 'acked', 'cancelled')),
    created      timestamptz NOT NULL,
    expires      timestamptz,
    answered     timestamptz,
    PRIMARY KEY (appliance_id, rev)
);

CREATE INDEX appliance_changes_device ON appliance_changes (device_uid, kind);
CREATE INDEX appliance_changes_open ON appliance_changes (appliance_id, state, kind);
CREATE INDEX appliance_changes_answered ON appliance_changes (answered) WHERE state <> 'pending';
