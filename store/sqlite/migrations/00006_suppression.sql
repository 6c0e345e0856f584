-- +goose Up
-- The suppression list (see store/privacy.go): keyed digests (HMAC-SHA-256
-- under the server secret) of identifiers whose events ingestion drops,
-- never the identifiers themselves. It lives with the log, in kith.db,
-- because ingestion checks it; at is unix microseconds (UTC).
CREATE TABLE suppression (
    workspace TEXT    NOT NULL,
    digest    BLOB    NOT NULL,
    reason    TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (workspace, digest)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE suppression;
