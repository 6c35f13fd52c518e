-- PostgreSQL's 0021 drops an index and leaves room on pages for its
-- updates in place; SQLite has neither the index nor that kind of update.
-- This keeps the schema version in step.

SELECT 1;
