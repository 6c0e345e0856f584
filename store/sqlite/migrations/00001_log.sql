-- The event log, its messageId dedup table, the quarantine and the registry.
-- Times are INTEGER unix microseconds (UTC). Raw event bytes are BLOBs so
-- they round-trip byte for byte.

-- +goose Up
-- A rowid table: rows hold ~1 KB of raw JSON, which WITHOUT ROWID tables
-- store poorly (measured: 4.7 KB of disk per event).
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    workspace    TEXT    NOT NULL,
    position     INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    anonymous_id TEXT    NOT NULL,
    timestamp    INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    flags        INTEGER NOT NULL,
    format       INTEGER NOT NULL,
    ip           TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL,
    origin       TEXT    NOT NULL,
    gpc          INTEGER NOT NULL,
    raw          BLOB
);
CREATE UNIQUE INDEX events_position ON events (workspace, position);

CREATE TABLE dedup (
    workspace   TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, message_id)
) WITHOUT ROWID;

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace   TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    code        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    ip          TEXT    NOT NULL,
    user_agent  TEXT    NOT NULL,
    origin      TEXT    NOT NULL,
    gpc         INTEGER NOT NULL,
    raw         BLOB
);
CREATE INDEX quarantine_workspace ON quarantine (workspace, id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB
);

CREATE TABLE workspaces (
    slug     TEXT PRIMARY KEY,
    settings BLOB
);

CREATE TABLE sources (
    workspace TEXT NOT NULL,
    slug      TEXT NOT NULL,
    key_hash  BLOB,
    settings  BLOB,
    PRIMARY KEY (workspace, slug)
);

CREATE TABLE tokens (
    workspace TEXT NOT NULL,
    name      TEXT NOT NULL,
    hash      BLOB,
    scopes    TEXT NOT NULL,
    PRIMARY KEY (workspace, name)
);

-- +goose Down
DROP TABLE tokens;
DROP TABLE sources;
DROP TABLE workspaces;
DROP TABLE meta;
DROP TABLE quarantine;
DROP TABLE dedup;
DROP TABLE events;
