-- directory_users links a user to their entry in an identity source (an
-- LDAP directory, a SCIM client): the source, the entry's stable id there,
-- and whether the source disabled the user (so that it re-enables only
-- those it disabled, never one an admin disabled). Local users have no
-- row. leases let one replica at a time run a periodic job (the directory
-- sync); a lease whose time ran out may be taken by another holder.

CREATE TABLE directory_users (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    source      TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    disabled_by_source INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source, external_id)
) STRICT;

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
