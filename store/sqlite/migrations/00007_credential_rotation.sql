-- +goose Up
-- Rotation of write keys and tokens (tenant.Registry.RotateToken): the
-- hash before the last rotation stays valid until prev_until (unix
-- microseconds, UTC); config_hash is the hash of the secret the config
-- file declared when it was last applied, so that a restart keeps a
-- rotated secret while the file's value is unchanged.
ALTER TABLE sources ADD COLUMN prev_key_hash BLOB;
ALTER TABLE sources ADD COLUMN prev_until INTEGER;
ALTER TABLE sources ADD COLUMN config_hash BLOB;
ALTER TABLE tokens ADD COLUMN prev_hash BLOB;
ALTER TABLE tokens ADD COLUMN prev_until INTEGER;
ALTER TABLE tokens ADD COLUMN config_hash BLOB;

-- +goose Down
ALTER TABLE tokens DROP COLUMN config_hash;
ALTER TABLE tokens DROP COLUMN prev_until;
ALTER TABLE tokens DROP COLUMN prev_hash;
ALTER TABLE sources DROP COLUMN config_hash;
ALTER TABLE sources DROP COLUMN prev_until;
ALTER TABLE sources DROP COLUMN prev_key_hash;
