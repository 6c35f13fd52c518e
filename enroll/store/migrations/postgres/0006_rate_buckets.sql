-- Token buckets of the rate limits that protect against guessing (verify
-- and sign-in per user, pairing per address), shared by every server
-- replica so the budget does not grow with their number.

CREATE TABLE rate_buckets (
    scope   text             NOT NULL,
    key     text             NOT NULL,
    tokens  double precision NOT NULL,
    updated timestamptz      NOT NULL,
    allowed boolean          NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX rate_buckets_updated ON rate_buckets (updated);
