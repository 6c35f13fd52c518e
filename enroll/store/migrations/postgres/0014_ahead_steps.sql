-- The steps an MFA device used ahead of the server's clock, each one
-- apart (issue 22, item 4): ahead_steps lists them as ",s1,s2,...,"
-- ('' when none). The range ahead_from..ahead_to it replaces also
-- refused every step between two codes used ahead, so a phone that ran
-- fast locked its own corrected clock out for as long as it had run
-- ahead. The steps of an old range are kept, every one, so no code used
-- ahead is accepted again.
ALTER TABLE mfa_devices ADD COLUMN ahead_steps text NOT NULL DEFAULT '';
UPDATE mfa_devices SET ahead_steps = ',' || (
	SELECT string_agg(n::text, ',' ORDER BY n) FROM generate_series(ahead_from, ahead_to) AS n) || ','
WHERE ahead_to <> 0 AND ahead_from <= ahead_to;
ALTER TABLE mfa_devices DROP COLUMN ahead_from;
ALTER TABLE mfa_devices DROP COLUMN ahead_to;
