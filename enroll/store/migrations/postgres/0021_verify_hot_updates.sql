-- Every verify updates a rate bucket (the shared per-user limit) and an
-- MFA device (the step it used). An UPDATE that changes a column some
-- index holds, or finds no room on the row's page, writes a new entry in
-- every index of the table; otherwise PostgreSQL keeps the new version on
-- the same page and leaves the indexes alone (a HOT update). The index on
-- rate_buckets.updated made every take such an update, for the janitor's
-- DeleteIdleBuckets alone, which now scans the table every pass instead.
-- Free room on each page lets updates stay HOT between vacuums; it applies
-- to pages written from now on.

DROP INDEX IF EXISTS rate_buckets_updated;
ALTER TABLE rate_buckets SET (fillfactor = 70);
ALTER TABLE mfa_devices SET (fillfactor = 80);
