-- +goose Up
-- The highest position handed out per workspace, so a commit reads its head
-- with one lookup instead of scanning the dedup table (deleted events must
-- not free their positions, so MAX(events.position) alone is not enough).
CREATE TABLE log_heads (
    workspace TEXT PRIMARY KEY,
    position  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO log_heads (workspace, position)
    SELECT workspace, MAX(position) FROM (
        SELECT workspace, position FROM events UNION ALL SELECT workspace, position FROM dedup
    ) GROUP BY workspace;

-- +goose Down
DROP TABLE log_heads;
