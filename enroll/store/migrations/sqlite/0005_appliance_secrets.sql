-- How each appliance keeps its secrets, as its last sync reported it:
-- 'tpm' (vault key sealed to a TPM), 'software' (key file on the SD card)
-- or '' when it did not say.

ALTER TABLE appliances ADD COLUMN secrets TEXT NOT NULL DEFAULT '' CHECK (secrets IN ('', 'tpm', 'software'));
