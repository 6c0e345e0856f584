-- +goose Up
-- What the compute engine derives (see store/compute.go): the maintained
-- state of computed traits and audience conditions, the values they give,
-- audience memberships and their history, and the outbox. Everything but
-- the outbox is rebuilt by a replay (Reset deletes it); the outbox keeps its
-- entries, and a replay's entries of the same identity are not added again.
-- Times are Unix nanoseconds, as in 00002_state.sql.
CREATE TABLE state_compute (
    workspace TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    key       TEXT NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (workspace, profile, key)
);

CREATE TABLE state_computed_values (
    workspace TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    at        BIGINT NOT NULL,
    position  BIGINT NOT NULL,
    PRIMARY KEY (workspace, profile, name)
);

CREATE TABLE state_audience_members (
    workspace TEXT NOT NULL,
    audience  TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    since     BIGINT NOT NULL,
    PRIMARY KEY (workspace, audience, profile)
);

CREATE TABLE state_audience_history (
    seq       BIGSERIAL PRIMARY KEY,
    workspace TEXT NOT NULL,
    audience  TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    entered   BOOLEAN NOT NULL,
    reason    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    position  BIGINT NOT NULL
);
CREATE INDEX state_audience_history_seq ON state_audience_history (workspace, audience, seq);
CREATE INDEX state_audience_history_profile ON state_audience_history (workspace, audience, profile, seq);
-- AudienceSizes sums entries and exits by time from this index alone.
CREATE INDEX state_audience_history_at ON state_audience_history (workspace, audience, at) INCLUDE (entered);

-- IDs come from one sequence for all workspaces; a workspace's commits are
-- serialized by its lease row, so its IDs grow in commit order.
CREATE TABLE state_outbox (
    id        BIGSERIAL PRIMARY KEY,
    workspace TEXT NOT NULL,
    kind      TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    position  BIGINT NOT NULL,
    key       TEXT NOT NULL,
    payload   TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX state_outbox_workspace ON state_outbox (workspace, id);
CREATE UNIQUE INDEX state_outbox_identity ON state_outbox (workspace, kind, position, profile, key);

-- Definitions of computed traits and audiences: configuration, kept with
-- the registry (bodies are JSON text). A deleted definition stays as a
-- tombstone so that, put again, it goes on from its last version: the
-- compute engine keys its state by name and version, and one version must
-- never name two bodies.
CREATE TABLE definitions (
    workspace  text        NOT NULL,
    kind       text        NOT NULL,
    name       text        NOT NULL,
    body       text        NOT NULL,
    origin     text        NOT NULL,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (workspace, kind, name)
);

-- +goose Down
DROP TABLE definitions;
DROP TABLE state_outbox;
DROP TABLE state_audience_history;
DROP TABLE state_audience_members;
DROP TABLE state_computed_values;
DROP TABLE state_compute;
