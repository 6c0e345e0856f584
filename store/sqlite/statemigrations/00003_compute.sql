-- +goose Up
-- What the compute engine derives (see store/compute.go): the maintained
-- state of computed traits and audience conditions, the values they give,
-- audience memberships and their history, and the outbox. Everything but
-- the outbox is rebuilt by a replay (Reset deletes it); the outbox keeps its
-- entries, and a replay's entries of the same identity are not added again.
-- Times are Unix nanoseconds.
CREATE TABLE state_compute (
    workspace TEXT NOT NULL,
    profile   INTEGER NOT NULL,
    key       TEXT NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (workspace, profile, key)
) WITHOUT ROWID;

CREATE TABLE state_computed_values (
    workspace TEXT NOT NULL,
    profile   INTEGER NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (workspace, profile, name)
) WITHOUT ROWID;

CREATE TABLE state_audience_members (
    workspace TEXT NOT NULL,
    audience  TEXT NOT NULL,
    profile   INTEGER NOT NULL,
    since     INTEGER NOT NULL,
    PRIMARY KEY (workspace, audience, profile)
) WITHOUT ROWID;

-- seq is the rowid: the index on (workspace, audience) lists an audience's
-- changes in seq order, the one with profile a profile's.
CREATE TABLE state_audience_history (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    audience  TEXT NOT NULL,
    profile   INTEGER NOT NULL,
    entered   INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    at        INTEGER NOT NULL,
    position  INTEGER NOT NULL
);
CREATE INDEX state_audience_history_seq ON state_audience_history (workspace, audience);
CREATE INDEX state_audience_history_profile ON state_audience_history (workspace, audience, profile);
-- AudienceSizes sums entries and exits by time from this index alone.
CREATE INDEX state_audience_history_at ON state_audience_history (workspace, audience, at, entered);

-- A rowid table: payloads are events of a few hundred bytes. IDs are never
-- reused (AUTOINCREMENT): destinations page by them.
CREATE TABLE state_outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    kind      TEXT NOT NULL,
    profile   INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    key       TEXT NOT NULL,
    payload   TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX state_outbox_workspace ON state_outbox (workspace, id);
CREATE UNIQUE INDEX state_outbox_identity ON state_outbox (workspace, kind, position, profile, key);

-- Fixed planner statistics for the new tables, as 00002_planner_stats.sql
-- sets them for the others: a workspace holds many rows, a profile or an
-- audience's profile a few. The outbox is shared by many workspaces: with
-- the statistics of one, SQLite read it by id alone, through every other
-- workspace's entries.
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('state_compute', 'state_compute', '5000000 5000000 5 1'),
    ('state_computed_values', 'state_computed_values', '5000000 5000000 5 1'),
    ('state_audience_members', 'state_audience_members', '1000000 1000000 50000 1'),
    ('state_audience_history', 'state_audience_history_seq', '10000000 10000000 500000'),
    ('state_audience_history', 'state_audience_history_profile', '10000000 10000000 500000 3'),
    ('state_audience_history', 'state_audience_history_at', '10000000 10000000 500000 2 1'),
    ('state_outbox', 'state_outbox_workspace', '10000000 100000 1'),
    ('state_outbox', 'state_outbox_identity', '10000000 10000000 5000000 2 1 1');
ANALYZE sqlite_schema;

-- +goose Down
DELETE FROM sqlite_stat1 WHERE tbl IN ('state_compute', 'state_computed_values', 'state_audience_members',
    'state_audience_history', 'state_outbox');
DROP TABLE state_outbox;
DROP TABLE state_audience_history;
DROP TABLE state_audience_members;
DROP TABLE state_computed_values;
DROP TABLE state_compute;
