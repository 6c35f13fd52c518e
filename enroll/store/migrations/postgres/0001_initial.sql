-- The registration server's first schema. *_key columns hold the
-- lower-cased name, so names are unique regardless of case.

CREATE TABLE users (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text        NOT NULL,
    username_key  text        COLLATE "C" NOT NULL UNIQUE,
    display_name  text        NOT NULL DEFAULT '',
    email         text        NOT NULL DEFAULT '',
    password_hash text        NOT NULL DEFAULT '',
    admin         boolean     NOT NULL DEFAULT false,
    disabled      boolean     NOT NULL DEFAULT false,
    created       timestamptz NOT NULL
);

CREATE TABLE mfa_devices (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    uid            text        NOT NULL UNIQUE,
    name           text        NOT NULL,
    name_key       text        COLLATE "C" NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('appliance', 'authenticator-app')),
    status         text        NOT NULL CHECK (status IN ('pending', 'active')),
    algorithm      text        NOT NULL,
    digits         integer     NOT NULL,
    period_sec     integer     NOT NULL,
    secret_key_id  text        NOT NULL,
    secret         bytea       NOT NULL,
    created        timestamptz NOT NULL,
    registered     timestamptz,
    expires_at     timestamptz,
    last_used_step bigint      NOT NULL DEFAULT 0,
    last_used      timestamptz,
    drift_steps    bigint      NOT NULL DEFAULT 0,
    fail_count     integer     NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    UNIQUE (user_id, name_key)
);

CREATE INDEX mfa_devices_pending_expiry ON mfa_devices (expires_at) WHERE status = 'pending';

CREATE TABLE settings (
    name  text NOT NULL PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE audit_events (
    id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time   timestamptz NOT NULL,
    actor  text        NOT NULL,
    action text        NOT NULL,
    target text        NOT NULL DEFAULT '',
    detail text        NOT NULL DEFAULT '',
    ip     text        NOT NULL DEFAULT ''
);

CREATE TABLE api_tokens (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text        NOT NULL,
    hash      bytea       NOT NULL UNIQUE,
    created   timestamptz NOT NULL,
    last_used timestamptz,
    revoked   boolean     NOT NULL DEFAULT false
);

-- A name is taken by one live token at a time; revoked ones free it.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE NOT revoked;

CREATE TABLE sessions (
    hash        bytea       NOT NULL PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created     timestamptz NOT NULL,
    expires_at  timestamptz,
    csrf        text        NOT NULL DEFAULT '',
    mfa_pending boolean     NOT NULL DEFAULT false
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
