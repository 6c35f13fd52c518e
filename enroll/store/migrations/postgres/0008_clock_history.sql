-- Each appliance's clock reports over a rolling window (the janitor
-- removes those older than a week), at most one per minute: At is the
-- report's server time truncated to the minute.

CREATE TABLE clock_history (
    appliance_id text        NOT NULL REFERENCES appliances (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    offset_ns    bigint      NOT NULL,
    bound_ns     bigint      NOT NULL,
    state        text        NOT NULL,
    PRIMARY KEY (appliance_id, at)
);

CREATE INDEX clock_history_at ON clock_history (at);
