-- +goose Up
-- Delivery to destinations (see store/delivery.go): each destination's
-- cursors over the log and the outbox with its lease, dead letters, the
-- delivery ledger and range replays. Unlike the rest of this database these
-- tables are not derived from the log: Reset leaves them alone, so a replay
-- of derived state neither sends everything again nor forgets what was
-- sent. Times are Unix nanoseconds.
CREATE TABLE delivery_cursors (
    workspace   TEXT NOT NULL,
    destination TEXT NOT NULL,
    owner       TEXT NOT NULL,
    epoch       INTEGER NOT NULL, -- 0: never acquired (the cursors are not started)
    log         INTEGER NOT NULL,
    outbox      INTEGER NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    until_ns    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, destination)
) WITHOUT ROWID;

-- A rowid table (payloads are events); IDs are never reused: DeadLetters
-- pages by them. Both indexes end in the rowid, so they list a
-- destination's dead letters, or its flagged ones, by ID.
CREATE TABLE delivery_dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace   TEXT NOT NULL,
    destination TEXT NOT NULL,
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    profile     INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    error       TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    replay      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX delivery_dead_letters_page ON delivery_dead_letters (workspace, destination);
CREATE INDEX delivery_dead_letters_replay ON delivery_dead_letters (workspace, destination) WHERE replay;

-- Keyed by profile first: Ledger(profile) reads one range. kinds is the
-- sorted, comma-separated set of kinds delivered.
CREATE TABLE delivery_ledger (
    workspace   TEXT NOT NULL,
    profile     INTEGER NOT NULL,
    destination TEXT NOT NULL,
    day         INTEGER NOT NULL, -- midnight UTC
    deliveries  INTEGER NOT NULL,
    kinds       TEXT NOT NULL,
    last        INTEGER NOT NULL,
    PRIMARY KEY (workspace, profile, destination, day)
) WITHOUT ROWID;

CREATE TABLE delivery_replays (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace     TEXT NOT NULL,
    destination   TEXT NOT NULL,
    since         INTEGER NOT NULL,
    until_ns      INTEGER NOT NULL,
    cursor        INTEGER NOT NULL,
    outbox_cursor INTEGER NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
CREATE INDEX delivery_replays_pending ON delivery_replays (workspace, destination) WHERE NOT done;

-- Fixed planner statistics, as 00002_planner_stats.sql sets them: a
-- workspace holds a few destinations, a destination many dead letters, a
-- profile a few ledger rows.
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('delivery_cursors', 'delivery_cursors', '1000 10 1'),
    ('delivery_dead_letters', 'delivery_dead_letters_page', '1000000 100000 10000'),
    ('delivery_dead_letters', 'delivery_dead_letters_replay', '10000 1000 100'),
    ('delivery_ledger', 'delivery_ledger', '10000000 10000000 10 2 1'),
    ('delivery_replays', 'delivery_replays_pending', '100 10 2');
ANALYZE sqlite_schema;

-- +goose Down
DELETE FROM sqlite_stat1 WHERE tbl IN ('delivery_cursors', 'delivery_dead_letters', 'delivery_ledger', 'delivery_replays');
DROP TABLE delivery_replays;
DROP TABLE delivery_ledger;
DROP TABLE delivery_dead_letters;
DROP TABLE delivery_cursors;
