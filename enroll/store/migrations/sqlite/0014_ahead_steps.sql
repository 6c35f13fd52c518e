-- The steps an MFA device used ahead of the server's clock, each one
-- apart (issue 22, item 4): ahead_steps lists them as ",s1,s2,...,"
-- ('' when none). The range ahead_from..ahead_to it replaces also
-- refused every step between two codes used ahead, so a phone that ran
-- fast locked its own corrected clock out for as long as it had run
-- ahead. The steps of an old range are kept, every one, so no code used
-- ahead is accepted again.
ALTER TABLE mfa_devices ADD COLUMN ahead_steps TEXT NOT NULL DEFAULT '';
UPDATE mfa_devices SET ahead_steps = (
	WITH RECURSIVE s(n) AS (
		SELECT mfa_devices.ahead_from
		UNION ALL SELECT n + 1 FROM s WHERE n < mfa_devices.ahead_to)
	SELECT ',' || group_concat(n, ',') || ',' FROM s)
WHERE ahead_to <> 0 AND ahead_from <= ahead_to;
ALTER TABLE mfa_devices DROP COLUMN ahead_from;
ALTER TABLE mfa_devices DROP COLUMN ahead_to;
