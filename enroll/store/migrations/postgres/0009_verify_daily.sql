-- Each user's verify activity per UTC day: codes accepted, codes
-- refused as wrong, and MFA devices locked. Servers count in memory and
-- add their counts here now and then (several replicas add up), so a
-- crash loses the counts not yet added: a chart, not an audit. The
-- janitor removes days older than 90 days.

CREATE TABLE verify_daily (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day       timestamptz NOT NULL,
    successes bigint NOT NULL DEFAULT 0,
    failures  bigint NOT NULL DEFAULT 0,
    lockouts  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);

CREATE INDEX verify_daily_day ON verify_daily (day);
