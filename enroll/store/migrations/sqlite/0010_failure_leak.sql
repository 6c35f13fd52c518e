-- fail_at: the time from which a device's fail count leaks away (one
-- failure per leak interval, a day by default); NULL while the count is
-- zero. An accepted code no longer clears the count, so the count must
-- fall with time instead. lockouts is now the number of whole lockout
-- thresholds in the count: it falls as the count leaks.
ALTER TABLE mfa_devices ADD COLUMN fail_at INTEGER;
