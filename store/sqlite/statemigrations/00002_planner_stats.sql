-- +goose Up
-- Fixed planner statistics (https://sqlite.org/lang_analyze.html, "Fixed
-- Results of ANALYZE") for a workspace of 1,000,000 profiles. Without any,
-- SQLite's planner assumes that "workspace = ?" matches about ten rows, as
-- selective as "workspace = ? AND profile = ?", and so reads a whole
-- workspace where an index would find a profile's rows: a batch's merges
-- moved from 2 to 60 ms per batch at 60,000 profiles, and kept growing. Only
-- the shape matters (a workspace holds many rows, a profile a few); the
-- numbers are measured on the Commit benchmark's state, scaled up.
ANALYZE;
DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('state_leases', 'state_leases', '10 1'),
    ('state_profiles', 'state_profiles', '1000000 1000000 1'),
    ('state_profiles', 'state_profiles_merged', '1000000 1000000 60'),
    ('state_identifiers', 'state_identifiers', '3000000 3000000 500000 1'),
    ('state_identifiers', 'state_identifiers_profile', '3000000 3000000 3'),
    ('state_traits', 'state_traits', '5000000 5000000 5 1'),
    ('state_traits', 'state_traits_value', '5000000 5000000 500000 10'),
    ('state_trait_history', 'state_trait_history', '10000000 10000000 10 2 1'),
    ('state_timeline', 'state_timeline', '10000000 10000000 10 1'),
    ('state_links', 'state_links', '100000 100000 2 1'),
    ('state_links', 'state_links_account', '100000 100000 20'),
    ('state_merges', 'state_merges_into', '100000 100000 2'),
    ('state_decisions', 'state_decisions_position', '10000 10000 1'),
    ('state_search', 'state_search', '3000000 3000000 3 1'),
    ('state_search', 'state_search_profile', '3000000 3000000 10'),
    ('state_blocked', 'state_blocked', '100 100 1 1');
-- Load them into this connection's schema (other connections load them when
-- they open).
ANALYZE sqlite_schema;

-- +goose Down
DELETE FROM sqlite_stat1;
