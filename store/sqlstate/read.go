package sqlstate

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kithcdp/kith/store"
)

// query runs a read and calls scan for each row.
func (s *State) query(ctx context.Context, what string, scan func(*sql.Rows) error, query string, args ...any) error {
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

// Lookup returns the profile holding an identifier.
func (s *State) Lookup(ctx context.Context, workspace string, id store.Identifier) (store.ProfileID, error) {
	var p store.ProfileID
	err := s.r.QueryRowContext(ctx, s.q(`SELECT profile FROM state_identifiers WHERE workspace = ? AND type = ? AND value = ?`),
		workspace, id.Type, id.Value).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, store.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("look up %s: %w", id, err)
	}
	return p, nil
}

// LookupAll returns the profiles holding identifiers, in one query: the
// identifiers no profile holds are left out. It is Lookup for a page of
// events (delivery), where a query per identifier was most of the time on
// PostgreSQL (a round trip each).
func (s *State) LookupAll(ctx context.Context, workspace string, ids []store.Identifier) (map[store.Identifier]store.ProfileID, error) {
	out := make(map[store.Identifier]store.ProfileID, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500)
		chunk := ids[:n]
		ids = ids[n:]
		args := []any{workspace}
		var match string
		if s.d.Unnest {
			types, values := make([]string, n), make([]string, n)
			for i, id := range chunk {
				types[i], values[i] = id.Type, id.Value
			}
			match = `(type, value) IN (SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])))`
			args = append(args, types, values)
		} else {
			match = `(type, value) IN (VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + `)`
			for _, id := range chunk {
				args = append(args, id.Type, id.Value)
			}
		}
		err := s.query(ctx, "identifiers", func(r *sql.Rows) error {
			var id store.Identifier
			var p store.ProfileID
			if err := r.Scan(&id.Type, &id.Value, &p); err != nil {
				return err
			}
			out[id] = p
			return nil
		}, `SELECT type, value, profile FROM state_identifiers WHERE workspace = ? AND `+match, args...)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ComputedValuesOf returns the computed values named names of profiles, by
// profile, in one query (ComputedValues of a page's profiles, as far as
// delivery's consent gate needs them).
func (s *State) ComputedValuesOf(ctx context.Context, workspace string, profiles []store.ProfileID, names []string) (map[store.ProfileID][]store.ComputedValue, error) {
	out := make(map[store.ProfileID][]store.ComputedValue, len(profiles))
	if len(names) == 0 {
		return out, nil
	}
	for len(profiles) > 0 {
		n := min(len(profiles), 500)
		chunk := profiles[:n]
		profiles = profiles[n:]
		args := []any{workspace}
		var match string
		if s.d.Unnest {
			ps := make([]int64, n)
			for i, p := range chunk {
				ps[i] = int64(p)
			}
			match = `profile = ANY(CAST(? AS BIGINT[])) AND name = ANY(CAST(? AS TEXT[]))`
			args = append(args, ps, names)
		} else {
			match = `profile IN (` + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `) AND name IN (` +
				strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ") + `)`
			for _, p := range chunk {
				args = append(args, int64(p))
			}
			for _, name := range names {
				args = append(args, name)
			}
		}
		err := s.query(ctx, "computed values", func(r *sql.Rows) error {
			var v store.ComputedValue
			if err := scanValue(r, &v); err != nil {
				return err
			}
			out[v.Profile] = append(out[v.Profile], v)
			return nil
		}, `SELECT profile, name, value, at, position FROM state_computed_values WHERE workspace = ? AND `+match+` ORDER BY profile, name`, args...)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

const profileCols = `id, kind, first_seen, last_seen, events, merged_into`

func scanProfile(sc interface{ Scan(...any) error }) (store.Profile, error) {
	var p store.Profile
	var first, last int64
	err := sc.Scan(&p.ID, &p.Kind, &first, &last, &p.Events, &p.MergedInto)
	p.FirstSeen, p.LastSeen = fromNanos(first), fromNanos(last)
	return p, err
}

// Profile returns a profile's summary.
func (s *State) Profile(ctx context.Context, workspace string, id store.ProfileID) (store.Profile, error) {
	p, err := scanProfile(s.r.QueryRowContext(ctx, s.q(`SELECT `+profileCols+` FROM state_profiles WHERE workspace = ? AND id = ?`), workspace, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Profile{}, store.ErrNotFound
	}
	if err != nil {
		return store.Profile{}, fmt.Errorf("read profile %d: %w", id, err)
	}
	return p, nil
}

// Traits returns a profile's current traits by key, leaving out cleared
// (null) ones.
func (s *State) Traits(ctx context.Context, workspace string, id store.ProfileID, keys []string) ([]store.Trait, error) {
	query := `SELECT key, value, ts, source, position FROM state_traits WHERE workspace = ? AND profile = ? AND value <> 'null'`
	args := []any{workspace, int64(id)}
	if len(keys) > 0 {
		query += ` AND key IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ") + `)`
		for _, k := range keys {
			args = append(args, k)
		}
	}
	var out []store.Trait
	err := s.query(ctx, "traits", func(r *sql.Rows) error {
		var t store.Trait
		var v string
		var ts int64
		if err := r.Scan(&t.Key, &v, &ts, &t.Source, &t.Position); err != nil {
			return err
		}
		t.Value, t.Timestamp = json.RawMessage(v), fromNanos(ts)
		out = append(out, t)
		return nil
	}, query+` ORDER BY key`, args...)
	return out, err
}

// TraitHistory returns a trait's values, newest first.
func (s *State) TraitHistory(ctx context.Context, workspace string, id store.ProfileID, key string, before int64, limit int) ([]store.TraitValue, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	var out []store.TraitValue
	err := s.query(ctx, "trait history", func(r *sql.Rows) error {
		t := store.TraitValue{Profile: id, Key: key}
		var v string
		var ts int64
		if err := r.Scan(&v, &ts, &t.Source, &t.Priority, &t.Position); err != nil {
			return err
		}
		t.Value, t.Timestamp = json.RawMessage(v), fromNanos(ts)
		out = append(out, t)
		return nil
	}, `SELECT value, ts, source, priority, position FROM state_trait_history
		WHERE workspace = ? AND profile = ? AND key = ? AND position < ? ORDER BY position DESC LIMIT ?`,
		workspace, int64(id), key, before, store.PageSize(limit))
	return out, err
}

// Identifiers returns the identifiers a profile holds.
func (s *State) Identifiers(ctx context.Context, workspace string, id store.ProfileID) ([]store.HeldIdentifier, error) {
	var out []store.HeldIdentifier
	err := s.query(ctx, "identifiers", func(r *sql.Rows) error {
		h := store.HeldIdentifier{Profile: id}
		var at int64
		if err := r.Scan(&h.Type, &h.Value, &h.Position, &at); err != nil {
			return err
		}
		h.AddedAt = fromNanos(at)
		out = append(out, h)
		return nil
	}, `SELECT type, value, position, added_at FROM state_identifiers WHERE workspace = ? AND profile = ? ORDER BY type, value`,
		workspace, int64(id))
	return out, err
}

// Timeline returns positions of a profile's events, newest first.
func (s *State) Timeline(ctx context.Context, workspace string, id store.ProfileID, before int64, limit int) ([]int64, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	var out []int64
	err := s.query(ctx, "timeline", func(r *sql.Rows) error {
		var p int64
		if err := r.Scan(&p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	}, `SELECT position FROM state_timeline WHERE workspace = ? AND profile = ? AND position < ? ORDER BY position DESC LIMIT ?`,
		workspace, int64(id), before, store.PageSize(limit))
	return out, err
}

// Links returns a user's accounts or an account's users.
func (s *State) Links(ctx context.Context, workspace string, id store.ProfileID) ([]store.Link, error) {
	var out []store.Link
	err := s.query(ctx, "links", func(r *sql.Rows) error {
		var l store.Link
		var at int64
		if err := r.Scan(&l.User, &l.Account, &l.Position, &at); err != nil {
			return err
		}
		l.At = fromNanos(at)
		out = append(out, l)
		return nil
	}, `SELECT user_id, account_id, position, at FROM state_links WHERE workspace = ? AND (user_id = ? OR account_id = ?)
		ORDER BY position, user_id, account_id`, workspace, int64(id), int64(id))
	return out, err
}

// Merges returns the merges into a profile, oldest first.
func (s *State) Merges(ctx context.Context, workspace string, id store.ProfileID) ([]store.Merge, error) {
	var out []store.Merge
	err := s.query(ctx, "merges", func(r *sql.Rows) error {
		m := store.Merge{Into: id}
		var at int64
		if err := r.Scan(&m.From, &m.Via.Type, &m.Via.Value, &m.Position, &at); err != nil {
			return err
		}
		m.At = fromNanos(at)
		out = append(out, m)
		return nil
	}, `SELECT from_id, via_type, via_value, position, at FROM state_merges WHERE workspace = ? AND into_id = ? ORDER BY position, id`,
		workspace, int64(id))
	return out, err
}

// Decisions returns identity decisions, newest first.
func (s *State) Decisions(ctx context.Context, workspace string, before int64, limit int) ([]store.Decision, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	var out []store.Decision
	err := s.query(ctx, "decisions", func(r *sql.Rows) error {
		var d store.Decision
		var at int64
		if err := r.Scan(&d.Position, &d.Profile, &d.Identifier.Type, &d.Identifier.Value, &d.Code, &d.Reason, &at); err != nil {
			return err
		}
		d.At = fromNanos(at)
		out = append(out, d)
		return nil
	}, `SELECT position, profile, type, value, code, reason, at FROM state_decisions
		WHERE workspace = ? AND position < ? ORDER BY position DESC, id DESC LIMIT ?`, workspace, before, store.PageSize(limit))
	return out, err
}

// Search pages through the live profiles matching q, by ascending id.
func (s *State) Search(ctx context.Context, q store.ProfileSearch) ([]store.Profile, error) {
	kind := q.Kind
	if kind == "" {
		kind = store.KindUser
	}
	var match string
	var args []any
	switch {
	case q.Identifier != nil:
		match = `SELECT profile FROM state_identifiers WHERE workspace = ? AND type = ? AND value = ?`
		args = []any{q.Workspace, q.Identifier.Type, q.Identifier.Value}
	case q.TraitKey != "" && q.TraitValue != nil:
		match = `SELECT profile FROM state_traits WHERE workspace = ? AND key = ? AND value = ?`
		args = []any{q.Workspace, q.TraitKey, string(compactJSON(q.TraitValue))}
	case q.TraitKey != "" && q.TraitPrefix != "":
		lo := strings.TrimSuffix(string(mustJSON(q.TraitPrefix)), `"`)
		match = `SELECT profile FROM state_traits WHERE workspace = ? AND key = ? AND value >= ? AND value < ?`
		args = []any{q.Workspace, q.TraitKey, lo, lo + "\U0010FFFF"}
	case q.Text != "":
		lo := strings.ToLower(strings.TrimSpace(q.Text))
		match = `SELECT profile FROM state_search WHERE workspace = ? AND term >= ? AND term < ?`
		args = []any{q.Workspace, lo, lo + "\U0010FFFF"}
	default:
		return nil, fmt.Errorf("search profiles: no search given")
	}
	args = append(args, q.Workspace, kind, int64(q.After), store.PageSize(q.Limit))
	var out []store.Profile
	err := s.query(ctx, "search", func(r *sql.Rows) error {
		p, err := scanProfile(r)
		if err == nil {
			out = append(out, p)
		}
		return err
	}, `SELECT `+profileCols+` FROM state_profiles WHERE id IN (`+match+`)
		AND workspace = ? AND kind = ? AND merged_into = 0 AND id > ? ORDER BY id LIMIT ?`, args...)
	return out, err
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// compactJSON returns v without insignificant whitespace, as stored.
func compactJSON(v json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
