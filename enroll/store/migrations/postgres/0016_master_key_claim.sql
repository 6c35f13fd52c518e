-- The master key a database belongs to: the first server to start on it
-- writes its primary key's id here (one row at most), and a server whose
-- keys do not hold it refuses to start, so two replicas started against
-- an empty database cannot each make a key of their own. A rotation moves
-- it to the new primary key. Databases with sealed secrets already belong
-- to the key that sealed them, checked as before.
CREATE TABLE master_key_claim (
    one    INTEGER PRIMARY KEY CHECK (one = 1),
    key_id TEXT NOT NULL
);
