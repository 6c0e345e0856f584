-- +goose Up
-- Data-subject requests (see store/request.go), next to the registry.
-- Times are unix microseconds (UTC), 0 when unset. subjects and
-- destinations are JSON arrays; details is a JSON object or NULL. job is
-- the one column that may hold personal data (the identifiers needed to
-- finish the request): it is set to NULL when the request ends. seq orders
-- and pages the requests; version is compared by every update.
CREATE TABLE privacy_requests (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    workspace    TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    regulation   TEXT    NOT NULL,
    law          TEXT    NOT NULL,
    subjects     TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    deadline     INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    via          TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    position     INTEGER NOT NULL,
    destinations TEXT    NOT NULL,
    details      TEXT,
    error        TEXT    NOT NULL,
    job          TEXT,
    lease_until  INTEGER NOT NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX privacy_requests_workspace ON privacy_requests (workspace, seq);
CREATE INDEX privacy_requests_status ON privacy_requests (status, seq);

-- +goose Down
DROP TABLE privacy_requests;
