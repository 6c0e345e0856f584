-- +goose Up
-- The audit log (see store/audit.go): append-only, next to the registry.
-- at is unix microseconds (UTC); details is JSON text or NULL. AUTOINCREMENT
-- so that an id is never handed out twice. The triggers make the database
-- itself refuse to change or remove an entry; retention of audit entries,
-- when it comes, will be an explicit operation of its own.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    method    TEXT    NOT NULL,
    path      TEXT    NOT NULL,
    status    INTEGER NOT NULL,
    details   TEXT
);
CREATE INDEX audit_log_page ON audit_log (workspace, id);

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be updated');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE audit_log;
