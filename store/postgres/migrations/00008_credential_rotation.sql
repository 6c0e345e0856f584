-- +goose Up
-- Rotation of write keys and tokens (tenant.Registry.RotateToken): the
-- hash before the last rotation stays valid until prev_until; config_hash
-- is the hash of the secret the config file declared when it was last
-- applied, so that a restart keeps a rotated secret while the file's value
-- is unchanged.
ALTER TABLE sources ADD COLUMN prev_key_hash bytea, ADD COLUMN prev_until timestamptz, ADD COLUMN config_hash bytea;
ALTER TABLE tokens ADD COLUMN prev_hash bytea, ADD COLUMN prev_until timestamptz, ADD COLUMN config_hash bytea;

-- +goose Down
ALTER TABLE tokens DROP COLUMN config_hash, DROP COLUMN prev_until, DROP COLUMN prev_hash;
ALTER TABLE sources DROP COLUMN config_hash, DROP COLUMN prev_until, DROP COLUMN prev_key_hash;
