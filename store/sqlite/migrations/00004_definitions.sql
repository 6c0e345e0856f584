-- +goose Up
-- Definitions of computed traits and audiences (see store/compute.go):
-- configuration, kept with the registry. body is JSON text; updated_at is
-- unix microseconds (UTC). A deleted definition stays as a tombstone
-- (deleted = 1) so that, put again, it goes on from its last version: the
-- compute engine keys its state by name and version, and one version must
-- never name two bodies.
CREATE TABLE definitions (
    workspace  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    origin     TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace, kind, name)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE definitions;
