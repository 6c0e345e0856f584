-- +goose Up
-- The suppression list (see store/privacy.go): keyed digests (HMAC-SHA-256
-- under the server secret) of identifiers whose events ingestion drops,
-- never the identifiers themselves.
CREATE TABLE suppression (
    workspace text        NOT NULL,
    digest    bytea       NOT NULL,
    reason    text        NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (workspace, digest)
);

-- +goose Down
DROP TABLE suppression;
