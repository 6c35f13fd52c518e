-- Hardware tokens (issue 27): tokens imported from a seed file (PSKC or
-- OATH CSV) wait in hardware_tokens, their secrets sealed like those of
-- MFA devices (bound to the serial), until one is assigned to a user: it
-- then becomes an MFA device of kind 'hardware' named by its serial, and
-- device_id points at it (NULL again when that device is deleted).
--
-- MFA devices gain HOTP (RFC 4226): hotp marks an event token, whose
-- counter is the next counter value it may show; every accepted code
-- moves it past the code's, in the statement that accepts it.
ALTER TABLE mfa_devices DROP CONSTRAINT mfa_devices_kind_check;
ALTER TABLE mfa_devices ADD CONSTRAINT mfa_devices_kind_check
    CHECK (kind IN ('appliance', 'authenticator-app', 'hardware'));
ALTER TABLE mfa_devices ADD COLUMN hotp boolean NOT NULL DEFAULT false;
ALTER TABLE mfa_devices ADD COLUMN counter bigint NOT NULL DEFAULT 0;

CREATE TABLE hardware_tokens (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    serial        text        COLLATE "C" NOT NULL UNIQUE,
    hotp          boolean     NOT NULL,
    algorithm     text        NOT NULL,
    digits        integer     NOT NULL,
    period_sec    integer     NOT NULL,
    counter       bigint      NOT NULL DEFAULT 0,
    manufacturer  text        NOT NULL DEFAULT '',
    model         text        NOT NULL DEFAULT '',
    secret_key_id text        NOT NULL,
    secret        bytea       NOT NULL,
    username      text        NOT NULL DEFAULT '',
    device_id     bigint      REFERENCES mfa_devices (id) ON DELETE SET NULL,
    imported      timestamptz NOT NULL,
    assigned      timestamptz
);

CREATE INDEX hardware_tokens_device ON hardware_tokens (device_id);
