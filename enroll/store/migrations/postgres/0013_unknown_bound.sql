-- A clock report's error bound may be unknown: an appliance whose clock
-- never synced has none (it sends the largest int64). The flag keeps it
-- apart from any real bound, which stays in the _ns column; reports kept
-- before this migration with the largest int64 become unknown.
ALTER TABLE appliances ADD COLUMN clock_bound_unknown boolean NOT NULL DEFAULT false;
UPDATE appliances SET clock_bound_unknown = true, clock_bound_ns = 0 WHERE clock_bound_ns = 9223372036854775807;
ALTER TABLE clock_history ADD COLUMN bound_unknown boolean NOT NULL DEFAULT false;
UPDATE clock_history SET bound_unknown = true, bound_ns = 0 WHERE bound_ns = 9223372036854775807;
