-- The registration server's first schema. Times are INTEGER microseconds
-- since the Unix epoch (UTC), NULL when unset. *_key columns hold the
-- lower-cased name, so names are unique regardless of case.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL DEFAULT '',
    email         TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL DEFAULT '',
    admin         INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created       INTEGER NOT NULL
) STRICT;

CREATE TABLE mfa_devices (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    uid            TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    name_key       TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('appliance', 'authenticator-app')),
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
    UNIQUE (user_id, name_key)
) STRICT;

CREATE INDEX mfa_devices_pending_expiry ON mfa_devices (expires_at) WHERE status = 'pending';

CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE audit_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL DEFAULT '',
    detail TEXT    NOT NULL DEFAULT '',
    ip     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE api_tokens (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT    NOT NULL,
    hash      BLOB    NOT NULL UNIQUE,
    created   INTEGER NOT NULL,
    last_used INTEGER,
    revoked   INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
) STRICT;

-- A name is taken by one live token at a time; revoked ones free it.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE NOT revoked;

CREATE TABLE sessions (
    hash        BLOB    NOT NULL PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created     INTEGER NOT NULL,
    expires_at  INTEGER,
    csrf        TEXT    NOT NULL DEFAULT '',
    mfa_pending INTEGER NOT NULL DEFAULT 0 CHECK (mfa_pending IN (0, 1))
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
