-- Replacing an appliance by a paired spare: the replacement and, per
-- account the old appliance held, whether the spare has stored it. The
-- old appliance's id is kept without a reference: its record goes when
-- it acknowledges the wipe, the replacement stays as history.
CREATE TABLE replacements (
    id         text        NOT NULL PRIMARY KEY,
    old_id     text        NOT NULL,
    old_name   text        NOT NULL,
    spare_id   text        NOT NULL,
    spare_name text        NOT NULL,
    state      text        NOT NULL CHECK (state IN ('waiting', 'declined', 'done')),
    not_moved  text        NOT NULL DEFAULT '',
    created    timestamptz NOT NULL,
    updated    timestamptz NOT NULL
);

CREATE INDEX replacements_old ON replacements (old_id, state);
CREATE INDEX replacements_spare ON replacements (spare_id, state);

CREATE TABLE replacement_accounts (
    replacement_id text        NOT NULL REFERENCES replacements (id) ON DELETE CASCADE,
    device_uid     text        NOT NULL,
    rev            bigint      NOT NULL DEFAULT 0,
    state          text        NOT NULL CHECK (state IN ('waiting', 'moved')),
    moved          timestamptz,
    PRIMARY KEY (replacement_id, device_uid)
);
