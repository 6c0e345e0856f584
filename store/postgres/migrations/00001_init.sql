-- The event log, its messageId dedup table, the quarantine and the registry.
-- Text columns hold what the store contract holds as Go strings; raw event
-- bytes and settings are bytea so they round-trip byte for byte (jsonb would
-- reorder keys). Nullable bytea/text[] columns let nil slices round-trip.

-- +goose Up

-- One row per workspace: the last position handed out. Append locks and
-- advances it in its transaction, which serializes appends per workspace so
-- that they commit (and become visible) in position order.
CREATE TABLE log_heads (
    workspace     text PRIMARY KEY,
    last_position bigint NOT NULL
);

CREATE TABLE log_events (
    workspace    text        NOT NULL,
    position     bigint      NOT NULL,
    source       text        NOT NULL,
    message_id   text        NOT NULL,
    type         text        NOT NULL,
    name         text        NOT NULL,
    user_id      text        NOT NULL,
    anonymous_id text        NOT NULL,
    timestamp    timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    flags        integer     NOT NULL,
    format       integer     NOT NULL,
    ip           text        NOT NULL,
    user_agent   text        NOT NULL,
    origin       text        NOT NULL,
    gpc          boolean     NOT NULL,
    raw          bytea,
    PRIMARY KEY (workspace, position)
);
CREATE INDEX log_events_user_id ON log_events (workspace, user_id, position) WHERE user_id <> '';
CREATE INDEX log_events_anonymous_id ON log_events (workspace, anonymous_id, position) WHERE anonymous_id <> '';
-- Retention deletes by received_at, which grows with the table: a BRIN index
-- is tiny and cheap to keep up to date.
CREATE INDEX log_events_received_at ON log_events USING brin (received_at);

CREATE TABLE log_dedup (
    workspace   text        NOT NULL,
    message_id  text        NOT NULL,
    position    bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (workspace, message_id)
);
CREATE INDEX log_dedup_received_at ON log_dedup USING brin (received_at);

CREATE TABLE quarantine (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace   text        NOT NULL,
    source      text        NOT NULL,
    message_id  text        NOT NULL,
    received_at timestamptz NOT NULL,
    code        text        NOT NULL,
    reason      text        NOT NULL,
    ip          text        NOT NULL,
    user_agent  text        NOT NULL,
    origin      text        NOT NULL,
    gpc         boolean     NOT NULL,
    raw         bytea
);
CREATE INDEX quarantine_workspace ON quarantine (workspace, id);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea
);

CREATE TABLE workspaces (
    slug     text PRIMARY KEY,
    settings bytea
);

CREATE TABLE sources (
    workspace text NOT NULL,
    slug      text NOT NULL,
    key_hash  bytea,
    settings  bytea,
    PRIMARY KEY (workspace, slug)
);

CREATE TABLE tokens (
    workspace text NOT NULL,
    name      text NOT NULL,
    hash      bytea,
    scopes    text[],
    PRIMARY KEY (workspace, name)
);

-- +goose Down
DROP TABLE tokens;
DROP TABLE sources;
DROP TABLE workspaces;
DROP TABLE meta;
DROP TABLE quarantine;
DROP TABLE log_dedup;
DROP TABLE log_events;
DROP TABLE log_heads;
