-- Nonces of signed appliance requests, kept until their timestamp window
-- has passed, so a request is accepted once across restarts and replicas.

CREATE TABLE request_nonces (
    key_id  text        NOT NULL,
    nonce   text        NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (key_id, nonce)
);

CREATE INDEX request_nonces_expires ON request_nonces (expires);
