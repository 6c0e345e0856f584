-- +goose Up
-- Delivery to destinations (see store/delivery.go): each destination's
-- cursors over the log and the outbox with its lease, dead letters, the
-- delivery ledger and range replays. Unlike the state_ tables these are not
-- derived from the log: Reset leaves them alone, so a replay of derived
-- state neither sends everything again nor forgets what was sent. Times are
-- Unix nanoseconds, as in 00002_state.sql.
CREATE TABLE delivery_cursors (
    workspace   TEXT NOT NULL,
    destination TEXT NOT NULL,
    owner       TEXT NOT NULL,
    epoch       BIGINT NOT NULL, -- 0: never acquired (the cursors are not started)
    log         BIGINT NOT NULL,
    outbox      BIGINT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    until_ns    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (workspace, destination)
);

CREATE TABLE delivery_dead_letters (
    id          BIGSERIAL PRIMARY KEY,
    workspace   TEXT NOT NULL,
    destination TEXT NOT NULL,
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    position    BIGINT NOT NULL,
    profile     BIGINT NOT NULL,
    payload     TEXT NOT NULL,
    error       TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    first_at    BIGINT NOT NULL,
    last_at     BIGINT NOT NULL,
    replay      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX delivery_dead_letters_page ON delivery_dead_letters (workspace, destination, id);
CREATE INDEX delivery_dead_letters_replay ON delivery_dead_letters (workspace, destination, id) WHERE replay;

-- Keyed by profile first: Ledger(profile) reads one range. kinds is the
-- sorted, comma-separated set of kinds delivered.
CREATE TABLE delivery_ledger (
    workspace   TEXT NOT NULL,
    profile     BIGINT NOT NULL,
    destination TEXT NOT NULL,
    day         BIGINT NOT NULL, -- midnight UTC
    deliveries  BIGINT NOT NULL,
    kinds       TEXT NOT NULL,
    last        BIGINT NOT NULL,
    PRIMARY KEY (workspace, profile, destination, day)
);

CREATE TABLE delivery_replays (
    id            BIGSERIAL PRIMARY KEY,
    workspace     TEXT NOT NULL,
    destination   TEXT NOT NULL,
    since         BIGINT NOT NULL,
    until_ns      BIGINT NOT NULL,
    cursor        BIGINT NOT NULL,
    outbox_cursor BIGINT NOT NULL,
    done          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);
CREATE INDEX delivery_replays_pending ON delivery_replays (workspace, destination, id) WHERE NOT done;

-- +goose Down
DROP TABLE delivery_replays;
DROP TABLE delivery_ledger;
DROP TABLE delivery_dead_letters;
DROP TABLE delivery_cursors;
