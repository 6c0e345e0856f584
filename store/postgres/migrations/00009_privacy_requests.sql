-- +goose Up
-- Data-subject requests (see store/request.go). subjects and destinations
-- are JSON arrays; details is a JSON object or NULL. job is the one column
-- that may hold personal data (the identifiers needed to finish the
-- request): it is set to NULL when the request ends, and the table is
-- vacuumed then. seq orders and pages the requests; version is compared by
-- every update.
CREATE TABLE privacy_requests (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text        NOT NULL UNIQUE,
    workspace    text        NOT NULL,
    type         text        NOT NULL,
    regulation   text        NOT NULL,
    law          text        NOT NULL,
    subjects     json        NOT NULL,
    status       text        NOT NULL,
    received_at  timestamptz NOT NULL,
    deadline     timestamptz NOT NULL,
    completed_at timestamptz,
    via          text        NOT NULL,
    actor        text        NOT NULL,
    position     bigint      NOT NULL,
    destinations json        NOT NULL,
    details      json,
    error        text        NOT NULL,
    job          json,
    lease_until  timestamptz,
    version      bigint      NOT NULL
);
CREATE INDEX privacy_requests_workspace ON privacy_requests (workspace, seq);
CREATE INDEX privacy_requests_status ON privacy_requests (status, seq);

-- +goose Down
DROP TABLE privacy_requests;
