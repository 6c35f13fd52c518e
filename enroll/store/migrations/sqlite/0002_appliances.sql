-- Paired appliances, pairing codes and each appliance's revision log of
-- changes (offers of registrations, cancellations, renames, unpairing).

CREATE TABLE appliances (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    name_key        TEXT    NOT NULL UNIQUE,
    sign_key        BLOB    NOT NULL UNIQUE,
    box_key         BLOB    NOT NULL,
    paired          INTEGER NOT NULL,
    last_seen       INTEGER,
    version         TEXT    NOT NULL DEFAULT '',
    accounts        INTEGER NOT NULL DEFAULT 0,
    clock_time      INTEGER,
    clock_bound_ns  INTEGER NOT NULL DEFAULT 0,
    clock_state     TEXT    NOT NULL DEFAULT '',
    clock_ppm       REAL    NOT NULL DEFAULT 0,
    clock_offset_ns INTEGER NOT NULL DEFAULT 0,
    clock_at        INTEGER,
    rev             INTEGER NOT NULL DEFAULT 0,
    unpairing       INTEGER NOT NULL DEFAULT 0 CHECK (unpairing IN (0, 1))
) STRICT;

CREATE TABLE pairing_codes (
    code     TEXT    NOT NULL PRIMARY KEY,
    sign_key BLOB    NOT NULL,
    box_key  BLOB    NOT NULL,
    version  TEXT    NOT NULL DEFAULT '',
    created  INTEGER NOT NULL,
    expires  INTEGER NOT NULL
) STRICT;

CREATE INDEX pairing_codes_key ON pairing_codes (sign_key, expires);
CREATE INDEX pairing_codes_expires ON pairing_codes (expires);

CREATE TABLE appliance_changes (
    appliance_id TEXT    NOT NULL REFERENCES appliances (id) ON DELETE CASCADE,
    rev          INTEGER NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('offer', 'cancel', 'expire', 'delete', 'rename', 'activate', 'unpair')),
    device_uid   TEXT    NOT NULL DEFAULT '',
    payload      BLOB,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected', 'acked', 'cancelled')),
    created      INTEGER NOT NULL,
    expires      INTEGER,
    answered     INTEGER,
    PRIMARY KEY (appliance_id, rev)
) STRICT;

CREATE INDEX appliance_changes_device ON appliance_changes (device_uid, kind);
CREATE INDEX appliance_changes_open ON appliance_changes (appliance_id, state, kind);
CREATE INDEX appliance_changes_answered ON appliance_changes (answered) WHERE state <> 'pending';
