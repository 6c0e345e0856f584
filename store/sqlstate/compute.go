package sqlstate

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
)

// This file implements store.ComputeStore and the compute part of Commit
// (store.ComputeChanges).

// compute applies c.Compute, last in Commit: the Rebuilt profiles' compute
// states and computed values are deleted first; memberships stay. A batch
// without compute changes or rebuilt profiles runs no statement.
func (s *State) compute(ctx context.Context, tx *sql.Tx, c *store.Changes) error {
	if len(c.Rebuilt) > 0 {
		ps := make([]any, len(c.Rebuilt))
		for i, p := range c.Rebuilt {
			ps[i] = int64(p)
		}
		for _, t := range []string{"state_compute", "state_computed_values"} {
			if err := s.deleteRows(ctx, tx, t, []string{"profile"}, c.Workspace, ps); err != nil {
				return fmt.Errorf("rebuilt profiles: %w", err)
			}
		}
	}
	cc := &c.Compute
	if cc.Empty() {
		return nil
	}
	for _, step := range []struct {
		what string
		fn   func(context.Context, *sql.Tx, string, *store.ComputeChanges) error
	}{
		{"states", s.computeStates}, {"values", s.computedValues}, {"audiences", s.audiences}, {"outbox", s.outbox},
	} {
		if err := step.fn(ctx, tx, c.Workspace, cc); err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
	}
	return nil
}

// profileKey names one row of a profile: a state's key, a value's name, or
// (with the profile second) an audience's member.
type profileKey struct {
	p store.ProfileID
	k string
}

func (s *State) computeStates(ctx context.Context, tx *sql.Tx, ws string, cc *store.ComputeChanges) error {
	if len(cc.States) == 0 {
		return nil
	}
	// The last change of a row wins; one statement may not touch a row
	// twice.
	last := make(map[profileKey]int, len(cc.States))
	for i, st := range cc.States {
		last[profileKey{st.Profile, st.Key}] = i
	}
	var upserts, deletes []any
	for i, st := range cc.States {
		if last[profileKey{st.Profile, st.Key}] != i {
			continue
		}
		if st.Data == nil {
			deletes = append(deletes, int64(st.Profile), st.Key)
			continue
		}
		upserts = append(upserts, ws, int64(st.Profile), st.Key, st.Data)
	}
	if err := s.deleteRows(ctx, tx, "state_compute", []string{"profile", "key"}, ws, deletes); err != nil {
		return err
	}
	return s.insert(ctx, tx, `INSERT INTO state_compute (workspace, profile, key, data)`, 4,
		`ON CONFLICT (workspace, profile, key) DO UPDATE SET data = excluded.data`, upserts)
}

func (s *State) computedValues(ctx context.Context, tx *sql.Tx, ws string, cc *store.ComputeChanges) error {
	if len(cc.Values) == 0 {
		return nil
	}
	last := make(map[profileKey]int, len(cc.Values))
	for i, v := range cc.Values {
		last[profileKey{v.Profile, v.Name}] = i
	}
	var upserts, deletes []any
	for i, v := range cc.Values {
		if last[profileKey{v.Profile, v.Name}] != i {
			continue
		}
		if v.Value == nil {
			deletes = append(deletes, int64(v.Profile), v.Name)
			continue
		}
		upserts = append(upserts, ws, int64(v.Profile), v.Name, string(compactJSON(v.Value)), nanos(v.At), v.Position)
	}
	if err := s.deleteRows(ctx, tx, "state_computed_values", []string{"profile", "name"}, ws, deletes); err != nil {
		return err
	}
	return s.insert(ctx, tx, `INSERT INTO state_computed_values (workspace, profile, name, value, at, position)`, 6,
		`ON CONFLICT (workspace, profile, name) DO UPDATE SET value = excluded.value, at = excluded.at, position = excluded.position`, upserts)
}

// audiences applies the membership changes in order, as one statement of
// each kind: a member that exits in the batch is deleted, and one that is a
// member at its end is inserted with since = the time of the entry after
// its last exit in the batch (or its first entry). An entry of a profile
// that is already a member keeps the member's since. Every change is kept
// in the history, in order.
func (s *State) audiences(ctx context.Context, tx *sql.Tx, ws string, cc *store.ComputeChanges) error {
	if len(cc.Audiences) == 0 {
		return nil
	}
	type member struct {
		in    bool
		since time.Time
	}
	final := make(map[profileKey]member, len(cc.Audiences))
	var order []profileKey
	exited := map[profileKey]bool{}
	history := make([]any, 0, 8*len(cc.Audiences))
	for _, a := range cc.Audiences {
		k := profileKey{a.Profile, a.Audience}
		m, seen := final[k]
		if !seen {
			order = append(order, k)
		}
		switch {
		case !a.Entered:
			exited[k] = true
			final[k] = member{}
		case !m.in:
			final[k] = member{in: true, since: a.At}
		}
		history = append(history, ws, a.Audience, int64(a.Profile), a.Entered, a.Reason, nanos(a.At), a.Position)
	}
	var deletes, inserts []any
	for _, k := range order {
		if exited[k] {
			deletes = append(deletes, k.k, int64(k.p))
		}
		if m := final[k]; m.in {
			inserts = append(inserts, ws, k.k, int64(k.p), nanos(m.since))
		}
	}
	if err := s.deleteRows(ctx, tx, "state_audience_members", []string{"audience", "profile"}, ws, deletes); err != nil {
		return err
	}
	if err := s.insert(ctx, tx, `INSERT INTO state_audience_members (workspace, audience, profile, since)`, 4,
		`ON CONFLICT (workspace, audience, profile) DO NOTHING`, inserts); err != nil {
		return err
	}
	return s.insert(ctx, tx, `INSERT INTO state_audience_history (workspace, audience, profile, entered, reason, at, position)`, 7, "", history)
}

// outbox appends the entries in order; an entry whose identity the
// workspace's outbox holds (from an earlier commit, a replay, or earlier in
// the batch) is left out.
func (s *State) outbox(ctx context.Context, tx *sql.Tx, ws string, cc *store.ComputeChanges) error {
	args := make([]any, 0, 8*len(cc.Outbox))
	for _, e := range cc.Outbox {
		args = append(args, ws, e.Kind, int64(e.Profile), e.Position, e.Key, string(e.Payload), nanos(e.At))
	}
	return s.insert(ctx, tx, `INSERT INTO state_outbox (workspace, kind, profile, position, key, payload, at)`, 7,
		`ON CONFLICT (workspace, kind, position, profile, key) DO NOTHING`, args)
}

// deleteRows deletes the rows of table in workspace ws whose columns cols
// equal one of the tuples in args (len(cols) values each). On PostgreSQL
// it is one statement with one array per column; on SQLite one prepared
// statement runs per tuple, since SQLite searches "(a, b) IN (VALUES …)"
// by the primary key's first column only: by workspace.
func (s *State) deleteRows(ctx context.Context, tx *sql.Tx, table string, cols []string, ws string, args []any) error {
	n := len(cols)
	if len(args) < n {
		return nil
	}
	if s.d.Unnest {
		arrays, casts, err := unnestArrays(n, args)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE workspace = ? AND (`+strings.Join(cols, ", ")+`) IN
			(SELECT * FROM unnest(`+strings.Join(casts, ", ")+`))`), append([]any{ws}, arrays...)...)
		return err
	}
	stmt, err := tx.PrepareContext(ctx, s.q(`DELETE FROM `+table+` WHERE workspace = ? AND `+strings.Join(cols, " = ? AND ")+` = ?`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	row := make([]any, 1+n)
	row[0] = ws
	for ; len(args) >= n; args = args[n:] {
		copy(row[1:], args[:n])
		if _, err := stmt.ExecContext(ctx, row...); err != nil {
			return err
		}
	}
	return nil
}

// scan runs a read and calls row for each row, as query does, but passes
// on an error of the caller's fn (that row returns as fnErr) unwrapped.
func (s *State) scan(ctx context.Context, what string, row func(r *sql.Rows, fnErr *error) error, query string, args ...any) error {
	var fnErr error
	err := s.query(ctx, what, func(r *sql.Rows) error { return row(r, &fnErr) }, query, args...)
	if fnErr != nil {
		return fnErr
	}
	return err
}

// ScanComputeStates calls fn for every compute state of the workspace.
func (s *State) ScanComputeStates(ctx context.Context, workspace string, fn func(store.ComputeState) error) error {
	return s.scan(ctx, "compute states", func(r *sql.Rows, fnErr *error) error {
		var st store.ComputeState
		if err := r.Scan(&st.Profile, &st.Key, &st.Data); err != nil {
			return err
		}
		if st.Data == nil {
			st.Data = []byte{} // stored empty; nil would mean deleted
		}
		*fnErr = fn(st)
		return *fnErr
	}, `SELECT profile, key, data FROM state_compute WHERE workspace = ?`, workspace)
}

func scanValue(r interface{ Scan(...any) error }, v *store.ComputedValue) error {
	var value string
	var at int64
	if err := r.Scan(&v.Profile, &v.Name, &value, &at, &v.Position); err != nil {
		return err
	}
	v.Value, v.At = json.RawMessage(value), fromNanos(at)
	return nil
}

// ScanComputedValues calls fn for every computed value of the workspace.
func (s *State) ScanComputedValues(ctx context.Context, workspace string, fn func(store.ComputedValue) error) error {
	return s.scan(ctx, "computed values", func(r *sql.Rows, fnErr *error) error {
		var v store.ComputedValue
		if err := scanValue(r, &v); err != nil {
			return err
		}
		*fnErr = fn(v)
		return *fnErr
	}, `SELECT profile, name, value, at, position FROM state_computed_values WHERE workspace = ?`, workspace)
}

// ScanTraits calls fn with every profile's current value of each of keys
// (cleared, null, values left out), by profile and key.
func (s *State) ScanTraits(ctx context.Context, workspace string, keys []string, fn func(store.ProfileID, store.Trait) error) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(keys))
	args = append(args, workspace)
	for _, k := range keys {
		args = append(args, k)
	}
	return s.scan(ctx, "traits", func(r *sql.Rows, fnErr *error) error {
		var p store.ProfileID
		var t store.Trait
		var v string
		var ts int64
		if err := r.Scan(&p, &t.Key, &v, &ts, &t.Source, &t.Position); err != nil {
			return err
		}
		t.Value, t.Timestamp = json.RawMessage(v), fromNanos(ts)
		*fnErr = fn(p, t)
		return *fnErr
	}, `SELECT profile, key, value, ts, source, position FROM state_traits
		WHERE workspace = ? AND key IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")+`) AND value <> 'null'`, args...)
}

// ScanLinks calls fn for every user-account link of the workspace.
func (s *State) ScanLinks(ctx context.Context, workspace string, fn func(store.Link) error) error {
	return s.scan(ctx, "links", func(r *sql.Rows, fnErr *error) error {
		var l store.Link
		var at int64
		if err := r.Scan(&l.User, &l.Account, &l.Position, &at); err != nil {
			return err
		}
		l.At = fromNanos(at)
		*fnErr = fn(l)
		return *fnErr
	}, `SELECT user_id, account_id, position, at FROM state_links WHERE workspace = ?`, workspace)
}

// ScanMembers calls fn for every membership of the workspace, by audience
// and profile.
func (s *State) ScanMembers(ctx context.Context, workspace string, fn func(string, store.ProfileID) error) error {
	return s.scan(ctx, "audience members", func(r *sql.Rows, fnErr *error) error {
		var a string
		var p store.ProfileID
		if err := r.Scan(&a, &p); err != nil {
			return err
		}
		*fnErr = fn(a, p)
		return *fnErr
	}, `SELECT audience, profile FROM state_audience_members WHERE workspace = ?`, workspace)
}

// ComputedValues returns a profile's computed values by name.
func (s *State) ComputedValues(ctx context.Context, workspace string, p store.ProfileID) ([]store.ComputedValue, error) {
	var out []store.ComputedValue
	err := s.query(ctx, "computed values", func(r *sql.Rows) error {
		var v store.ComputedValue
		err := scanValue(r, &v)
		out = append(out, v)
		return err
	}, `SELECT profile, name, value, at, position FROM state_computed_values WHERE workspace = ? AND profile = ? ORDER BY name`,
		workspace, int64(p))
	return out, err
}

// Members pages through an audience's members by ascending profile id.
func (s *State) Members(ctx context.Context, workspace, audience string, after store.ProfileID, limit int) ([]store.ProfileID, error) {
	var out []store.ProfileID
	err := s.query(ctx, "audience members", func(r *sql.Rows) error {
		var p store.ProfileID
		err := r.Scan(&p)
		out = append(out, p)
		return err
	}, `SELECT profile FROM state_audience_members WHERE workspace = ? AND audience = ? AND profile > ? ORDER BY profile LIMIT ?`,
		workspace, audience, int64(after), store.PageSize(limit))
	return out, err
}

// MemberCount returns the number of members of an audience.
func (s *State) MemberCount(ctx context.Context, workspace, audience string) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM state_audience_members WHERE workspace = ? AND audience = ?`),
		workspace, audience).Scan(&n); err != nil {
		return 0, fmt.Errorf("count audience members: %w", err)
	}
	return n, nil
}

// AudienceHistory returns an audience's changes newest first (see
// store.ComputeStore).
func (s *State) AudienceHistory(ctx context.Context, workspace, audience string, p store.ProfileID, before int64, limit int) ([]store.AudienceChangeEntry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	query := `SELECT seq, profile, entered, reason, at, position FROM state_audience_history WHERE workspace = ? AND audience = ?`
	args := []any{workspace, audience}
	if p != 0 {
		query += ` AND profile = ?`
		args = append(args, int64(p))
	}
	args = append(args, before, store.PageSize(limit))
	var out []store.AudienceChangeEntry
	err := s.query(ctx, "audience history", func(r *sql.Rows) error {
		e := store.AudienceChangeEntry{AudienceChange: store.AudienceChange{Audience: audience}}
		var at int64
		err := r.Scan(&e.Seq, &e.Profile, &e.Entered, &e.Reason, &at, &e.Position)
		e.At = fromNanos(at)
		out = append(out, e)
		return err
	}, query+` AND seq < ? ORDER BY seq DESC LIMIT ?`, args...)
	return out, err
}

// MaxAudienceDays bounds the days AudienceSizes returns.
const MaxAudienceDays = 366

const day = 24 * time.Hour

// AudienceSizes returns an audience's size at the end of each of the last
// days (UTC), oldest first: the entries minus the exits recorded before the
// next midnight. days is capped at MaxAudienceDays; days <= 0 returns none.
func (s *State) AudienceSizes(ctx context.Context, workspace, audience string, days int, now time.Time) ([]store.AudienceSize, error) {
	if days <= 0 {
		return nil, nil
	}
	days = min(days, MaxAudienceDays)
	first := now.UTC().Truncate(day).Add(-time.Duration(days-1) * day)
	end := first.Add(time.Duration(days) * day)
	// Bucket -1 sums everything before the first day; bucket i the i-th
	// day's changes.
	out := make([]store.AudienceSize, days)
	var before int64
	err := s.query(ctx, "audience sizes", func(r *sql.Rows) error {
		var bucket, delta int64
		if err := r.Scan(&bucket, &delta); err != nil {
			return err
		}
		if bucket < 0 {
			before += delta
		} else if bucket < int64(days) {
			out[bucket].Members += delta
		}
		return nil
	}, `SELECT CASE WHEN at < ? THEN -1 ELSE (at - ?) / ? END AS bucket, SUM(CASE WHEN entered THEN 1 ELSE -1 END)
		FROM state_audience_history WHERE workspace = ? AND audience = ? AND at < ? GROUP BY bucket`,
		first.UnixNano(), first.UnixNano(), int64(day), workspace, audience, end.UnixNano())
	if err != nil {
		return nil, err
	}
	n := before
	for i := range out {
		n += out[i].Members
		out[i] = store.AudienceSize{Day: first.Add(time.Duration(i) * day), Members: n}
	}
	return out, nil
}

// ReadOutbox returns a workspace's outbox entries with ID > after, by ID.
func (s *State) ReadOutbox(ctx context.Context, workspace string, after int64, limit int) ([]store.OutboxEntry, error) {
	var out []store.OutboxEntry
	err := s.query(ctx, "outbox", func(r *sql.Rows) error {
		e := store.OutboxEntry{Workspace: workspace}
		var payload string
		var at int64
		err := r.Scan(&e.ID, &e.Kind, &e.Profile, &e.Position, &e.Key, &payload, &at)
		if payload != "" {
			e.Payload = json.RawMessage(payload)
		}
		e.At = fromNanos(at)
		out = append(out, e)
		return err
	}, `SELECT id, kind, profile, position, key, payload, at FROM state_outbox WHERE workspace = ? AND id > ? ORDER BY id LIMIT ?`,
		workspace, after, store.PageSize(limit))
	return out, err
}

// UpsertDefinition is the statement of a backend's PutDefinition, for its
// dialect. One statement decides, so that concurrent puts from several
// nodes count every change: version 1 when new, one more when the body
// changed or the definition was deleted (its tombstone keeps the last
// version); with the same body and origin nothing changes and no row is
// returned. Its arguments are workspace, kind, name, body (as
// DefinitionBody returns it), origin and updated_at; it returns the
// version.
func UpsertDefinition(d Dialect) string {
	return d.q(`INSERT INTO definitions (workspace, kind, name, body, origin, version, updated_at)
			VALUES (?, ?, ?, ?, ?, 1, ?)
			ON CONFLICT (workspace, kind, name) DO UPDATE SET
				version = definitions.version + CASE WHEN definitions.body = excluded.body AND NOT definitions.deleted THEN 0 ELSE 1 END,
				body = excluded.body, origin = excluded.origin, updated_at = excluded.updated_at, deleted = FALSE
			WHERE definitions.deleted OR definitions.body <> excluded.body OR definitions.origin <> excluded.origin
			RETURNING version`)
}

// DefinitionBody checks a definition before a backend's Registry stores it
// (a known kind, a name, a JSON body) and returns its body compacted, as
// stored and compared: a body that differs only in insignificant
// whitespace is the same body.
func DefinitionBody(d store.Definition) (string, error) {
	switch d.Kind {
	case store.DefinitionTrait, store.DefinitionAudience, store.DefinitionDestination, store.DefinitionIdentity:
	default:
		return "", fmt.Errorf("definition kind %q: want %q, %q, %q or %q", d.Kind,
			store.DefinitionTrait, store.DefinitionAudience, store.DefinitionDestination, store.DefinitionIdentity)
	}
	if d.Workspace == "" || d.Name == "" {
		return "", fmt.Errorf("definition %s %q of workspace %q: workspace and name must not be empty", d.Kind, d.Name, d.Workspace)
	}
	if !json.Valid(d.Body) {
		return "", fmt.Errorf("definition %s %q: body is not valid JSON", d.Kind, d.Name)
	}
	return string(compactJSON(d.Body)), nil
}

// AudienceOverlap returns the number of members of both audiences.
func (s *State) AudienceOverlap(ctx context.Context, workspace, a, b string) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM state_audience_members a
		JOIN state_audience_members b ON b.workspace = a.workspace AND b.audience = ? AND b.profile = a.profile
		WHERE a.workspace = ? AND a.audience = ?`), b, workspace, a).Scan(&n); err != nil {
		return 0, fmt.Errorf("count audience overlap: %w", err)
	}
	return n, nil
}

// ProfileCount returns the number of profiles of a kind that are not
// merged into another.
func (s *State) ProfileCount(ctx context.Context, workspace, kind string) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM state_profiles WHERE workspace = ? AND kind = ? AND merged_into = 0`),
		workspace, kind).Scan(&n); err != nil {
		return 0, fmt.Errorf("count profiles: %w", err)
	}
	return n, nil
}

// TraitLift groups the traits of an audience's members by key and value,
// keeps the values at least minMembers members hold, counts the profiles
// of the kind holding each (through the state_traits_value index), and
// orders them by the members' share of those holders.
func (s *State) TraitLift(ctx context.Context, workspace, audience, kind string, minMembers, limit int) ([]store.TraitLift, error) {
	var out []store.TraitLift
	err := s.query(ctx, "trait lift", func(r *sql.Rows) error {
		var l store.TraitLift
		var v string
		err := r.Scan(&l.Key, &v, &l.Members, &l.Overall)
		l.Value = json.RawMessage(v)
		out = append(out, l)
		return err
	}, `SELECT key, value, n, overall FROM (
		SELECT m.key, m.value, m.n,
			(SELECT COUNT(*) FROM state_traits o
				JOIN state_profiles p ON p.workspace = o.workspace AND p.id = o.profile
				WHERE o.workspace = ? AND o.key = m.key AND o.value = m.value AND p.kind = ? AND p.merged_into = 0) AS overall
		FROM (SELECT t.key, t.value, COUNT(*) AS n
			FROM state_audience_members a
			JOIN state_traits t ON t.workspace = a.workspace AND t.profile = a.profile
			WHERE a.workspace = ? AND a.audience = ? AND t.value <> 'null'
			GROUP BY t.key, t.value
			HAVING COUNT(*) >= ?) m
		) x
		ORDER BY CASE WHEN overall > 0 THEN n * 1.0 / overall ELSE 0 END DESC, n DESC, key, value
		LIMIT ?`,
		workspace, kind, workspace, audience, max(minMembers, 1), store.PageSize(limit))
	return out, err
}
