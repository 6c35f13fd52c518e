-- Each appliance's clock reports over a rolling window (the janitor
-- removes those older than a week), at most one per minute: At is the
-- report's server time truncated to the minute.

CREATE TABLE clock_history (
    appliance_id TEXT    NOT NULL REFERENCES appliances (id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    offset_ns    INTEGER NOT NULL,
    bound_ns     INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    PRIMARY KEY (appliance_id, at)
) STRICT;

CREATE INDEX clock_history_at ON clock_history (at);
