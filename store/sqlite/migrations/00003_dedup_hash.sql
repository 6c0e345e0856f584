-- messageId dedup keyed by a 64-bit hash, in two parts (see dedupIndex in
-- log.go):
--
--   dedup_recent  the messageIds of the latest commits, appended in commit
--                 order (a rowid table: each commit writes its rows on the
--                 last pages, not one random page per event). Every writer
--                 also holds them in memory, where it looks them up.
--   dedup_hash    all older messageIds, keyed by hash. A writer merges its
--                 recent ones into it in hash order, a slice per commit, and
--                 then deletes them from dedup_recent, so each page of this
--                 B-tree is written about once per merge instead of once per
--                 event.
--
-- h is kith_dedup_hash(workspace, message_id) (dedupHash in log.go, a
-- function the store registers with SQLite). Two messageIds may share a
-- hash: each row says which event (position) holds its messageId, and a
-- writer compares that event's message_id before calling a new event a
-- duplicate.

-- +goose Up
CREATE TABLE dedup_hash (
    h           INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (h, position)
) WITHOUT ROWID;

-- AUTOINCREMENT: a seq is never handed out twice, even after the table was
-- emptied, because writers read the rows other writers added by seq.
CREATE TABLE dedup_recent (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    h           INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);

INSERT INTO dedup_hash (h, position, received_at)
    SELECT kith_dedup_hash(workspace, message_id), position, received_at FROM dedup;
DROP TABLE dedup;

-- +goose Down
-- Rows whose events were deleted (retention) cannot be named again and are
-- forgotten.
CREATE TABLE dedup (
    workspace   TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, message_id)
) WITHOUT ROWID;
INSERT OR REPLACE INTO dedup (workspace, message_id, position, received_at)
    SELECT e.workspace, e.message_id, d.position, d.received_at
    FROM events e JOIN dedup_hash d ON d.h = kith_dedup_hash(e.workspace, e.message_id) AND d.position = e.position
    WHERE e.message_id != '';
INSERT OR REPLACE INTO dedup (workspace, message_id, position, received_at)
    SELECT e.workspace, e.message_id, r.position, r.received_at
    FROM dedup_recent r, log_heads l JOIN events e ON e.workspace = l.workspace AND e.position = r.position
    WHERE e.message_id != '' AND kith_dedup_hash(e.workspace, e.message_id) = r.h;
DROP TABLE dedup_recent;
DROP TABLE dedup_hash;
