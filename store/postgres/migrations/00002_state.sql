-- +goose Up
-- Derived state (see store/state.go): everything here is rebuilt by a replay
-- of the log. Times are Unix nanoseconds.
CREATE TABLE state_leases (
    workspace    TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    epoch        BIGINT NOT NULL,
    position     BIGINT NOT NULL,
    next_profile BIGINT NOT NULL,
    until_ns     BIGINT NOT NULL
);

CREATE TABLE state_profiles (
    workspace   TEXT NOT NULL,
    id          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    events      BIGINT NOT NULL,
    merged_into BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX state_profiles_merged ON state_profiles (workspace, merged_into);

CREATE TABLE state_identifiers (
    workspace TEXT NOT NULL,
    type      TEXT NOT NULL,
    value     TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    position  BIGINT NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (workspace, type, value)
);
CREATE INDEX state_identifiers_profile ON state_identifiers (workspace, profile);

CREATE TABLE state_traits (
    workspace TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    ts        BIGINT NOT NULL,
    source    TEXT NOT NULL,
    priority  BIGINT NOT NULL,
    position  BIGINT NOT NULL,
    PRIMARY KEY (workspace, profile, key)
);
CREATE INDEX state_traits_value ON state_traits (workspace, key, value);

CREATE TABLE state_trait_history (
    workspace TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    key       TEXT NOT NULL,
    position  BIGINT NOT NULL,
    value     TEXT NOT NULL,
    ts        BIGINT NOT NULL,
    source    TEXT NOT NULL,
    priority  BIGINT NOT NULL,
    PRIMARY KEY (workspace, profile, key, position)
);

CREATE TABLE state_timeline (
    workspace TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    position  BIGINT NOT NULL,
    PRIMARY KEY (workspace, profile, position)
);

CREATE TABLE state_links (
    workspace  TEXT NOT NULL,
    user_id    BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (workspace, user_id, account_id)
);
CREATE INDEX state_links_account ON state_links (workspace, account_id);

CREATE TABLE state_merges (
    id        BIGSERIAL PRIMARY KEY,
    workspace TEXT NOT NULL,
    into_id   BIGINT NOT NULL,
    from_id   BIGINT NOT NULL,
    via_type  TEXT NOT NULL,
    via_value TEXT NOT NULL,
    position  BIGINT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX state_merges_into ON state_merges (workspace, into_id);

CREATE TABLE state_decisions (
    id        BIGSERIAL PRIMARY KEY,
    workspace TEXT NOT NULL,
    position  BIGINT NOT NULL,
    profile   BIGINT NOT NULL,
    type      TEXT NOT NULL,
    value     TEXT NOT NULL,
    code      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX state_decisions_position ON state_decisions (workspace, position);

CREATE TABLE state_search (
    workspace TEXT NOT NULL,
    term      TEXT NOT NULL,
    profile   BIGINT NOT NULL,
    PRIMARY KEY (workspace, term, profile)
);
CREATE INDEX state_search_profile ON state_search (workspace, profile);

CREATE TABLE state_blocked (
    workspace TEXT NOT NULL,
    type      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (workspace, type, value)
);

-- +goose Down
DROP TABLE state_blocked;
DROP TABLE state_search;
DROP TABLE state_decisions;
DROP TABLE state_merges;
DROP TABLE state_links;
DROP TABLE state_timeline;
DROP TABLE state_trait_history;
DROP TABLE state_traits;
DROP TABLE state_identifiers;
DROP TABLE state_profiles;
DROP TABLE state_leases;
