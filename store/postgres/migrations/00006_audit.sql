-- +goose Up
-- The audit log (see store/audit.go): append-only, next to the registry.
-- details is JSON text (json, not jsonb, so it reads back byte for byte)
-- or NULL. The triggers make the database itself refuse to change or
-- remove an entry, row by row (UPDATE, DELETE) and whole (TRUNCATE);
-- retention of audit entries, when it comes, will be an explicit operation
-- of its own.
CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace TEXT        NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT        NOT NULL,
    action    TEXT        NOT NULL,
    target    TEXT        NOT NULL,
    method    TEXT        NOT NULL,
    path      TEXT        NOT NULL,
    status    INTEGER     NOT NULL,
    details   JSON
);
CREATE INDEX audit_log_page ON audit_log (workspace, id);

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
