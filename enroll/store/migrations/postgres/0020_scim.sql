-- SCIM 2.0 provisioning. api_tokens.scope: '' for the admin API (every
-- token made before), 'scim' for a token that reaches only /scim/v2.
-- scim_users keeps what a SCIM client said of a user beyond the users
-- row: the resource id it was given (also the directory_users link's
-- external_id, source 'scim'), the client's externalId, the name parts,
-- whether it set active, and whether it deleted the resource (the user
-- is then disabled and hidden from SCIM, their devices kept).
-- scim_groups and scim_group_members are the groups a client pushes;
-- membership of the groups named in directory.scim grants use or admin.

ALTER TABLE api_tokens ADD COLUMN scope text NOT NULL DEFAULT '';

CREATE TABLE scim_users (
    user_id     bigint  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    scim_id     text    NOT NULL UNIQUE,
    external_id text    NOT NULL DEFAULT '',
    given_name  text    NOT NULL DEFAULT '',
    family_name text    NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    deleted     boolean NOT NULL DEFAULT false,
    created     timestamptz NOT NULL,
    updated     timestamptz NOT NULL
);

CREATE INDEX scim_users_external_id ON scim_users (external_id);

CREATE TABLE scim_groups (
    scim_id      text    PRIMARY KEY,
    display_name text    NOT NULL,
    display_key  text    NOT NULL UNIQUE,
    external_id  text    NOT NULL DEFAULT '',
    created      timestamptz NOT NULL,
    updated      timestamptz NOT NULL
);

CREATE TABLE scim_group_members (
    group_id text    NOT NULL REFERENCES scim_groups (scim_id) ON DELETE CASCADE,
    user_id  bigint  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX scim_group_members_user ON scim_group_members (user_id);
