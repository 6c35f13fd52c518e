-- Hardware tokens (issue 27): tokens imported from a seed file (PSKC or
-- OATH CSV) wait in hardware_tokens, their secrets sealed like those of
-- MFA devices (bound to the serial), until one is assigned to a user: it
-- then becomes an MFA device of kind 'hardware' named by its serial, and
-- device_id points at it (NULL again when that device is deleted).
--
-- MFA devices gain HOTP (RFC 4226): hotp marks an event token, whose
-- counter is the next counter value it may show; every accepted code
-- moves it past the code's, in the statement that accepts it.
--
-- SQLite cannot change a CHECK constraint, so mfa_devices is rebuilt with
-- the new kind and columns; no table references it.
CREATE TABLE mfa_devices_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    uid            TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    name_key       TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('appliance', 'authenticator-app', 'hardware')),
    status         TEXT    NOT NULL CHECK (status IN ('pending', 'active')),
    algorithm      TEXT    NOT NULL,
    digits         INTEGER NOT NULL,
    period_sec     INTEGER NOT NULL,
    secret_key_id  TEXT    NOT NULL,
    secret         BLOB    NOT NULL,
    created        INTEGER NOT NULL,
    registered     INTEGER,
    expires_at     INTEGER,
    last_used_step INTEGER NOT NULL DEFAULT 0,
    last_used      INTEGER,
    drift_steps    INTEGER NOT NULL DEFAULT 0,
    fail_count     INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER,
    lockouts       INTEGER NOT NULL DEFAULT 0,
    out_of_sync    INTEGER NOT NULL DEFAULT 0 CHECK (out_of_sync IN (0, 1)),
    drift_votes    INTEGER NOT NULL DEFAULT 0,
    fail_at        INTEGER,
    ahead_steps    TEXT    NOT NULL DEFAULT '',
    hotp           INTEGER NOT NULL DEFAULT 0 CHECK (hotp IN (0, 1)),
    counter        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, name_key)
) STRICT;

INSERT INTO mfa_devices_new (id, user_id, uid, name, name_key, kind, status, algorithm, digits, period_sec,
    secret_key_id, secret, created, registered, expires_at, last_used_step, last_used, drift_steps,
    fail_count, locked_until, lockouts, out_of_sync, drift_votes, fail_at, ahead_steps)
SELECT id, user_id, uid, name, name_key, kind, status, algorithm, digits, period_sec,
    secret_key_id, secret, created, registered, expires_at, last_used_step, last_used, drift_steps,
    fail_count, locked_until, lockouts, out_of_sync, drift_votes, fail_at, ahead_steps
FROM mfa_devices;

DROP TABLE mfa_devices;
ALTER TABLE mfa_devices_new RENAME TO mfa_devices;
CREATE INDEX mfa_devices_pending_expiry ON mfa_devices (expires_at) WHERE status = 'pending';

CREATE TABLE hardware_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    serial        TEXT    NOT NULL UNIQUE,
    hotp          INTEGER NOT NULL CHECK (hotp IN (0, 1)),
    algorithm     TEXT    NOT NULL,
    digits        INTEGER NOT NULL,
    period_sec    INTEGER NOT NULL,
    counter       INTEGER NOT NULL DEFAULT 0,
    manufacturer  TEXT    NOT NULL DEFAULT '',
    model         TEXT    NOT NULL DEFAULT '',
    secret_key_id TEXT    NOT NULL,
    secret        BLOB    NOT NULL,
    username      TEXT    NOT NULL DEFAULT '',
    device_id     INTEGER REFERENCES mfa_devices (id) ON DELETE SET NULL,
    imported      INTEGER NOT NULL,
    assigned      INTEGER
) STRICT;

CREATE INDEX hardware_tokens_device ON hardware_tokens (device_id);
