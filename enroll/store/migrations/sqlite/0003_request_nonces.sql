-- Nonces of signed appliance requests, kept until their timestamp window
-- has passed, so a request is accepted once across restarts and replicas.

CREATE TABLE request_nonces (
    key_id  TEXT    NOT NULL,
    nonce   TEXT    NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
) STRICT, WITHOUT ROWID;

CREATE INDEX request_nonces_expires ON request_nonces (expires);
