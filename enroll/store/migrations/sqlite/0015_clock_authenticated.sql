-- Whether the appliance's clock was last set only by NTS-authenticated time
-- servers, as its last sync said. Reports kept before this migration are
-- unauthenticated (appliances did not say).
ALTER TABLE appliances ADD COLUMN clock_authenticated INTEGER NOT NULL DEFAULT 0 CHECK (clock_authenticated IN (0, 1));
