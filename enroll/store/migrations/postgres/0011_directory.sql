-- directory_users links a user to their entry in an identity source (an
-- LDAP directory, a SCIM client): the source, the entry's stable id there,
-- and whether the source disabled the user (so that it re-enables only
-- those it disabled, never one an admin disabled). Local users have no
-- row. leases let one replica at a time run a periodic job (the directory
-- sync); a lease whose time ran out may be taken by another holder.

CREATE TABLE directory_users (
    user_id     bigint  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    source      text    NOT NULL,
    external_id text    NOT NULL,
    disabled_by_source boolean NOT NULL DEFAULT false,
    UNIQUE (source, external_id)
);

CREATE TABLE leases (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);
