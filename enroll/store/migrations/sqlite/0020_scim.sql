-- SCIM 2.0 provisioning. api_tokens.scope: '' for the admin API (every
-- token made before), 'scim' for a token that reaches only /scim/v2.
-- scim_users keeps what a SCIM client said of a user beyond the users
-- row: the resource id it was given (also the directory_users link's
-- external_id, source 'scim'), the client's externalId, the name parts,
-- whether it set active, and whether it deleted the resource (the user
-- is then disabled and hidden from SCIM, their devices kept).
-- scim_groups and scim_group_members are the groups a client pushes;
-- membership of the groups named in directory.scim grants use or admin.

ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '';

CREATE TABLE scim_users (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    scim_id     TEXT    NOT NULL UNIQUE,
    external_id TEXT    NOT NULL DEFAULT '',
    given_name  TEXT    NOT NULL DEFAULT '',
    family_name TEXT    NOT NULL DEFAULT '',
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    deleted     INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
) STRICT;

CREATE INDEX scim_users_external_id ON scim_users (external_id);

CREATE TABLE scim_groups (
    scim_id      TEXT    PRIMARY KEY,
    display_name TEXT    NOT NULL,
    display_key  TEXT    NOT NULL UNIQUE,
    external_id  TEXT    NOT NULL DEFAULT '',
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL
) STRICT;

CREATE TABLE scim_group_members (
    group_id TEXT    NOT NULL REFERENCES scim_groups (scim_id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX scim_group_members_user ON scim_group_members (user_id);
