-- Registrations that expired unconfirmed, remembered for a week after
-- their removal so that their pages and the API say "expired", not "not
-- found". No secret is kept.

CREATE TABLE expired_registrations (
    device_id  INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX expired_registrations_expires ON expired_registrations (expires_at);
