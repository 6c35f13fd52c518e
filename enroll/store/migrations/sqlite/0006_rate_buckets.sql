-- Token buckets of the rate limits shared by server replicas. One server
-- opens a SQLite file, so it keeps its limits in memory; the table keeps
-- the schema version in step with PostgreSQL's.

CREATE TABLE rate_buckets (
    scope   TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    tokens  REAL    NOT NULL,
    updated INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
