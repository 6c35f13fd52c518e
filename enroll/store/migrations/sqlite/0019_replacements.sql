-- Replacing an appliance by a paired spare: the replacement and, per
-- account the old appliance held, whether the spare has stored it. The
-- old appliance's id is kept without a reference: its record goes when
-- it acknowledges the wipe, the replacement stays as history.
CREATE TABLE replacements (
    id         TEXT    NOT NULL PRIMARY KEY,
    old_id     TEXT    NOT NULL,
    old_name   TEXT    NOT NULL,
    spare_id   TEXT    NOT NULL,
    spare_name TEXT    NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('waiting', 'declined', 'done')),
    not_moved  TEXT    NOT NULL DEFAULT '',
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL
) STRICT;

CREATE INDEX replacements_old ON replacements (old_id, state);
CREATE INDEX replacements_spare ON replacements (spare_id, state);

CREATE TABLE replacement_accounts (
    replacement_id TEXT    NOT NULL REFERENCES replacements (id) ON DELETE CASCADE,
    device_uid     TEXT    NOT NULL,
    rev            INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL CHECK (state IN ('waiting', 'moved')),
    moved          INTEGER,
    PRIMARY KEY (replacement_id, device_uid)
) STRICT;
