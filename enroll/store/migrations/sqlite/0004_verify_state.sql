-- The verify path's state of an MFA device:
--   lockouts     lockouts in a row without an accepted code (each doubles
--                the next lock; at the limit the lock lasts until unlocked);
--   out_of_sync  registered with a late code: the console offers a resync;
--   drift_votes  verifies in a row at one side of the learned drift
--                (positive: later, negative: earlier); the drift moves one
--                step when they reach the threshold;
--   ahead_from, ahead_to  steps used ahead of the server's clock (by a
--                resync or verify of a device whose clock runs fast), kept
--                apart from last_used_step so a resync back to the right
--                clock is possible and those codes stay used (0, 0: none).
ALTER TABLE mfa_devices ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mfa_devices ADD COLUMN out_of_sync INTEGER NOT NULL DEFAULT 0 CHECK (out_of_sync IN (0, 1));
ALTER TABLE mfa_devices ADD COLUMN drift_votes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mfa_devices ADD COLUMN ahead_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mfa_devices ADD COLUMN ahead_to INTEGER NOT NULL DEFAULT 0;
