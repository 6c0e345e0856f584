package sqlstate

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/kithcdp/kith/store"
)

// maxRows bounds the rows of one multi-row INSERT (SQLite allows 32,766
// parameters per statement, PostgreSQL 65,535).
const maxRows = 500

// insert runs a multi-row INSERT (see InsertRows) in the State's dialect.
// On SQLite its statements have a few fixed numbers of rows and are
// prepared once (see prepared).
func (s *State) insert(ctx context.Context, tx *sql.Tx, head string, cols int, tail string, args []any) error {
	if s.d.Unnest {
		return s.insertUnnest(ctx, tx, head, cols, tail, args)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	for _, n := range insertSizes {
		for len(args) >= n*cols {
			q := s.q(head + " VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + " " + tail)
			var err error
			if st := s.prepared(ctx, tx, q); st != nil {
				_, err = st.ExecContext(ctx, args[:n*cols]...)
			} else {
				_, err = tx.ExecContext(ctx, q, args[:n*cols]...)
			}
			if err != nil {
				return err
			}
			args = args[n*cols:]
		}
	}
	return nil
}

// insertSizes are the numbers of rows of the statements insert runs, so
// that a few prepared statements serve every number of rows.
var insertSizes = []int{maxRows, 100, 10, 1}

// InsertRows runs head VALUES (…),(…) tail, written with "?" placeholders,
// for args holding cols values per row, in chunks of at most maxRows rows;
// or, when d.Unnest is set, head SELECT * FROM unnest(…) tail, once.
// Values are strings, integers, []byte and bools.
func InsertRows(ctx context.Context, tx *sql.Tx, d Dialect, head string, cols int, tail string, args []any) error {
	s := &State{d: d}
	return s.insert(ctx, tx, head, cols, tail, args)
}

// insertUnnest runs head SELECT * FROM unnest(…) tail with one array
// argument per column (see InsertRows).
func (s *State) insertUnnest(ctx context.Context, tx *sql.Tx, head string, cols int, tail string, args []any) error {
	arrays, casts, err := unnestArrays(cols, args)
	if err != nil || arrays == nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(head+" SELECT * FROM unnest("+strings.Join(casts, ", ")+") "+tail), arrays...)
	return err
}

// unnestArrays turns args, cols values per row, into one array per column
// and the placeholder casting each to its SQL array type: strings to TEXT[],
// integers to BIGINT[], []byte to BYTEA[], bools to BOOLEAN[]. It returns
// nil arrays when there are no rows.
func unnestArrays(cols int, args []any) ([]any, []string, error) {
	rows := len(args) / cols
	if rows == 0 {
		return nil, nil, nil
	}
	arrays := make([]any, cols)
	casts := make([]string, cols)
	for j := range cols {
		var err error
		switch args[j].(type) {
		case string:
			arrays[j], err = column[string](args, cols, j)
			casts[j] = "CAST(? AS TEXT[])"
		case []byte:
			arrays[j], err = column[[]byte](args, cols, j)
			casts[j] = "CAST(? AS BYTEA[])"
		case bool:
			arrays[j], err = column[bool](args, cols, j)
			casts[j] = "CAST(? AS BOOLEAN[])"
		default:
			a := make([]int64, rows)
			for i := range a {
				switch v := args[i*cols+j].(type) {
				case int64:
					a[i] = v
				case int:
					a[i] = int64(v)
				default:
					return nil, nil, fmt.Errorf("insert rows: column %d holds %T, want a string, an integer, []byte or a bool", j, v)
				}
			}
			arrays[j], casts[j] = a, "CAST(? AS BIGINT[])"
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return arrays, casts, nil
}

// column returns column j of args (cols values per row) as a []T.
func column[T any](args []any, cols, j int) ([]T, error) {
	a := make([]T, len(args)/cols)
	for i := range a {
		v, ok := args[i*cols+j].(T)
		if !ok {
			return nil, fmt.Errorf("insert rows: column %d mixes %T and %T", j, args[i*cols+j], a[0])
		}
		a[i] = v
	}
	return a, nil
}

// traitWins is the condition under which a new trait value (excluded)
// replaces the held one: higher priority, then later timestamp, then later
// position. It makes trait commits commutative.
const traitWins = `(excluded.priority, excluded.ts, excluded.position) > (state_traits.priority, state_traits.ts, state_traits.position)`

const traitUpsert = `ON CONFLICT (workspace, profile, key) DO UPDATE SET value = excluded.value, ts = excluded.ts,
	source = excluded.source, priority = excluded.priority, position = excluded.position WHERE ` + traitWins

// searchKeys are the traits whose words the free-text search finds.
var searchKeys = map[string]bool{"name": true, "first_name": true, "last_name": true, "firstName": true,
	"lastName": true, "email": true, "company": true, "username": true}

// Commit applies one folded batch and moves the cursor (see store.State).
func (s *State) Commit(ctx context.Context, c *store.Changes) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.NoSync != "" {
			if _, err := tx.ExecContext(ctx, s.d.NoSync); err != nil {
				return fmt.Errorf("commit state: %w", err)
			}
		}
		res, err := s.exec(ctx, tx, `UPDATE state_leases SET position = ?, next_profile = ?
			WHERE workspace = ? AND epoch = ? AND position = ?`, c.To, int64(c.NextProfileID), c.Workspace, c.Epoch, c.From)
		if err != nil {
			return fmt.Errorf("commit state: move cursor: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return store.ErrLeaseLost
		}
		if err := s.dissolve(ctx, tx, c.Workspace, c.Rebuilt); err != nil {
			return fmt.Errorf("commit state: rebuilt profiles: %w", err)
		}
		if err := s.merge(ctx, tx, c.Workspace, c.Merges); err != nil {
			return fmt.Errorf("commit state: merges: %w", err)
		}
		for _, id := range c.Removed {
			if _, err := s.exec(ctx, tx, `DELETE FROM state_identifiers WHERE workspace = ? AND type = ? AND value = ?`,
				c.Workspace, id.Type, id.Value); err != nil {
				return fmt.Errorf("commit state: remove identifier: %w", err)
			}
		}
		for _, step := range []struct {
			what string
			fn   func(context.Context, *sql.Tx, *store.Changes) error
		}{
			{"identifiers", s.identifiers}, {"profiles", s.profiles}, {"traits", s.traits},
			{"timeline", s.timeline}, {"links", s.links}, {"decisions", s.decisions}, {"blocked", s.blocked},
			{"compute", s.compute},
		} {
			if err := step.fn(ctx, tx, c); err != nil {
				return fmt.Errorf("commit state: %s: %w", step.what, err)
			}
		}
		return nil
	})
}

// merge moves everything each merged-away profile holds to the profile it
// ends up in. The batch's merges are applied together, as set operations
// over a mapping from each merged-away profile to its final one, in a
// constant number of statements: everything a merge moves combines
// commutatively (traits by their winner order, counts by sum, timelines and
// links by union), so this equals applying the merges one by one.
func (s *State) merge(ctx context.Context, tx *sql.Tx, ws string, merges []store.Merge) error {
	if len(merges) == 0 {
		return nil
	}
	final := map[store.ProfileID]store.ProfileID{}
	for _, m := range merges {
		final[m.From] = m.Into
		for from, into := range final {
			if into == m.From {
				final[from] = m.Into
			}
		}
	}
	var values strings.Builder
	args := make([]any, 0, 2*len(final))
	for from, into := range final {
		if values.Len() > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(CAST(? AS BIGINT), CAST(? AS BIGINT))")
		args = append(args, int64(from), int64(into))
	}
	with := `WITH m (from_id, into_id) AS (VALUES ` + values.String() + `) `
	moved := `(SELECT into_id FROM m WHERE m.from_id = %[1]s)`
	froms := ` IN (SELECT from_id FROM m)`
	steps := []struct{ query string }{
		{`UPDATE state_identifiers SET profile = ` + fmt.Sprintf(moved, "state_identifiers.profile") + ` WHERE workspace = ? AND profile` + froms},
		{`INSERT INTO state_traits (workspace, profile, key, value, ts, source, priority, position)
			SELECT workspace, into_id, key, value, ts, source, priority, position FROM (
				SELECT t.*, m.into_id, ROW_NUMBER() OVER (PARTITION BY m.into_id, t.key ORDER BY t.priority DESC, t.ts DESC, t.position DESC) AS n
				FROM state_traits t JOIN m ON t.profile = m.from_id WHERE t.workspace = ?) AS best
			WHERE n = 1 ` + traitUpsert},
		{`DELETE FROM state_traits WHERE workspace = ? AND profile` + froms},
		{`UPDATE state_trait_history SET profile = ` + fmt.Sprintf(moved, "state_trait_history.profile") + ` WHERE workspace = ? AND profile` + froms},
		{`UPDATE state_timeline SET profile = ` + fmt.Sprintf(moved, "state_timeline.profile") + ` WHERE workspace = ? AND profile` + froms},
		{`INSERT INTO state_links (workspace, user_id, account_id, position, at)
			SELECT l.workspace, m.into_id, l.account_id, l.position, l.at FROM state_links l JOIN m ON l.user_id = m.from_id
			WHERE l.workspace = ? ON CONFLICT (workspace, user_id, account_id) DO NOTHING`},
		{`DELETE FROM state_links WHERE workspace = ? AND user_id` + froms},
		{`INSERT INTO state_search (workspace, term, profile)
			SELECT t.workspace, t.term, m.into_id FROM state_search t JOIN m ON t.profile = m.from_id
			WHERE t.workspace = ? ON CONFLICT (workspace, term, profile) DO NOTHING`},
		{`DELETE FROM state_search WHERE workspace = ? AND profile` + froms},
		{`INSERT INTO state_profiles (workspace, id, kind, first_seen, last_seen, events, merged_into)
			SELECT p.workspace, m.into_id, MIN(p.kind), MIN(p.first_seen), MAX(p.last_seen), SUM(p.events), 0
			FROM state_profiles p JOIN m ON p.id = m.from_id WHERE p.workspace = ? GROUP BY p.workspace, m.into_id
			ON CONFLICT (workspace, id) DO UPDATE SET first_seen = {least}(state_profiles.first_seen, excluded.first_seen),
			last_seen = {greatest}(state_profiles.last_seen, excluded.last_seen), events = state_profiles.events + excluded.events`},
		{`UPDATE state_profiles SET merged_into = ` + fmt.Sprintf(moved, "state_profiles.merged_into") + ` WHERE workspace = ? AND merged_into` + froms},
		{`UPDATE state_merges SET into_id = ` + fmt.Sprintf(moved, "state_merges.into_id") + ` WHERE workspace = ? AND into_id` + froms},
	}
	for _, st := range steps {
		if _, err := s.exec(ctx, tx, with+st.query, append(slices.Clip(args), ws)...); err != nil {
			return err
		}
	}
	// Merged-away ids redirect to their final profile, also those created
	// and merged within this batch.
	stubs := make([]any, 0, 7*len(final))
	for from, into := range final {
		stubs = append(stubs, ws, int64(from), store.KindUser, 0, 0, 0, int64(into))
	}
	if err := s.insert(ctx, tx, `INSERT INTO state_profiles (workspace, id, kind, first_seen, last_seen, events, merged_into)`, 7,
		`ON CONFLICT (workspace, id) DO UPDATE SET merged_into = excluded.merged_into, events = 0`, stubs); err != nil {
		return err
	}
	rows := make([]any, 0, 7*len(merges))
	for _, m := range merges {
		into := m.Into
		if f, ok := final[into]; ok {
			into = f
		}
		rows = append(rows, ws, int64(into), int64(m.From), m.Via.Type, m.Via.Value, m.Position, nanos(m.At))
	}
	return s.insert(ctx, tx, `INSERT INTO state_merges (workspace, into_id, from_id, via_type, via_value, position, at)`, 7, "", rows)
}

// dissolve deletes everything the given profiles hold.
func (s *State) dissolve(ctx context.Context, tx *sql.Tx, ws string, ps []store.ProfileID) error {
	for _, p := range ps {
		for _, q := range []string{
			`DELETE FROM state_identifiers WHERE workspace = ? AND profile = ?`,
			`DELETE FROM state_traits WHERE workspace = ? AND profile = ?`,
			`DELETE FROM state_trait_history WHERE workspace = ? AND profile = ?`,
			`DELETE FROM state_timeline WHERE workspace = ? AND profile = ?`,
			`DELETE FROM state_links WHERE workspace = ? AND user_id = ?`,
			`DELETE FROM state_search WHERE workspace = ? AND profile = ?`,
			`DELETE FROM state_merges WHERE workspace = ? AND into_id = ?`,
			`DELETE FROM state_profiles WHERE workspace = ? AND id = ?`,
		} {
			if _, err := s.exec(ctx, tx, q, ws, int64(p)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *State) blocked(ctx context.Context, tx *sql.Tx, c *store.Changes) error {
	for _, id := range c.Unblock {
		if _, err := s.exec(ctx, tx, `DELETE FROM state_blocked WHERE workspace = ? AND type = ? AND value = ?`, c.Workspace, id.Type, id.Value); err != nil {
			return err
		}
	}
	args := make([]any, 0, 3*len(c.Block))
	for _, id := range c.Block {
		args = append(args, c.Workspace, id.Type, id.Value)
	}
	return s.insert(ctx, tx, `INSERT INTO state_blocked (workspace, type, value)`, 3, `ON CONFLICT (workspace, type, value) DO NOTHING`, args)
}

func (s *State) identifiers(ctx context.Context, tx *sql.Tx, c *store.Changes) error {
	// The last change of an identifier wins; one statement may not touch
	// a row twice.
	last := map[store.Identifier]int{}
	for i, h := range c.Identifiers {
		last[h.Identifier] = i
	}
	rows := make([]int, 0, len(last))
	for i, h := range c.Identifiers {
		if last[h.Identifier] == i {
			rows = append(rows, i)
		}
	}
	// In primary-key order (see traits).
	slices.SortFunc(rows, func(i, j int) int {
		a, b := &c.Identifiers[i], &c.Identifiers[j]
		if a.Type != b.Type {
			return strings.Compare(a.Type, b.Type)
		}
		return strings.Compare(a.Value, b.Value)
	})
	args := make([]any, 0, 6*len(rows))
	for _, i := range rows {
		h := &c.Identifiers[i]
		args = append(args, c.Workspace, h.Type, h.Value, int64(h.Profile), h.Position, nanos(h.AddedAt))
	}
	return s.insert(ctx, tx, `INSERT INTO state_identifiers (workspace, type, value, profile, position, added_at)`, 6,
		`ON CONFLICT (workspace, type, value) DO UPDATE SET profile = excluded.profile, position = excluded.position, added_at = excluded.added_at`, args)
}

func (s *State) profiles(ctx context.Context, tx *sql.Tx, c *store.Changes) error {
	byID := map[store.ProfileID]store.ProfileDelta{}
	var order []store.ProfileID
	for _, d := range c.Profiles {
		prev, seen := byID[d.ID]
		if !seen {
			order = append(order, d.ID)
			byID[d.ID] = d
			continue
		}
		if d.FirstSeen.Before(prev.FirstSeen) {
			prev.FirstSeen = d.FirstSeen
		}
		if d.LastSeen.After(prev.LastSeen) {
			prev.LastSeen = d.LastSeen
		}
		prev.Events += d.Events
		byID[d.ID] = prev
	}
	args := make([]any, 0, 6*len(order))
	for _, id := range order {
		d := byID[id]
		args = append(args, c.Workspace, int64(d.ID), d.Kind, nanos(d.FirstSeen), nanos(d.LastSeen), d.Events)
	}
	return s.insert(ctx, tx, `INSERT INTO state_profiles (workspace, id, kind, first_seen, last_seen, events)`, 6,
		`ON CONFLICT (workspace, id) DO UPDATE SET first_seen = {least}(state_profiles.first_seen, excluded.first_seen),
		last_seen = {greatest}(state_profiles.last_seen, excluded.last_seen), events = state_profiles.events + excluded.events`, args)
}

// traitKey names one trait of one profile.
type traitKey struct {
	p store.ProfileID
	k string
}

func (s *State) traits(ctx context.Context, tx *sql.Tx, c *store.Changes) error {
	wins := func(a, b store.TraitValue) bool {
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.After(b.Timestamp)
		}
		return a.Position > b.Position
	}
	row := func(args []any, t store.TraitValue, v string) []any {
		return append(args, c.Workspace, int64(t.Profile), t.Key, v, nanos(t.Timestamp), t.Source, t.Priority, t.Position)
	}
	// History keeps a value when it differs from the one before it: the
	// previous value of the batch, or for the batch's first value of a
	// trait, the stored current value. Most identify calls repeat
	// unchanged traits; their words are in the search index already.
	held, err := s.heldTraits(ctx, tx, c)
	if err != nil {
		return err
	}
	// Rows are written in primary-key order, so that consecutive rows of a
	// statement land on the same B-tree pages.
	order := make([]int, len(c.Traits))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		a, b := &c.Traits[i], &c.Traits[j]
		if a.Profile != b.Profile {
			return cmp.Compare(a.Profile, b.Profile)
		}
		if a.Key != b.Key {
			return strings.Compare(a.Key, b.Key)
		}
		return cmp.Compare(a.Position, b.Position)
	})
	values := make([]string, len(c.Traits))
	for i, t := range c.Traits {
		values[i] = string(compactJSON(t.Value))
	}
	var history, current, touched []any
	type term struct {
		term    string
		profile int64
	}
	var terms []term
	// Within order, a trait's values are in position order, which is the
	// order of folding.
	for a := 0; a < len(order); {
		first := c.Traits[order[a]]
		b := a
		for b < len(order) && c.Traits[order[b]].Profile == first.Profile && c.Traits[order[b]].Key == first.Key {
			b++
		}
		k := traitKey{first.Profile, first.Key}
		prev, seen := held[k]
		best := order[a]
		for _, i := range order[a:b] {
			t := c.Traits[i]
			if wins(t, c.Traits[best]) {
				best = i
			}
			v := values[i]
			if seen && prev == v {
				continue
			}
			prev, seen = v, true
			history = row(history, t, v)
			if !searchKeys[t.Key] {
				continue
			}
			if text, ok := textValue(t.Value); ok {
				for _, w := range searchTerms(text) {
					terms = append(terms, term{w, int64(t.Profile)})
				}
			}
		}
		// A winner whose value is the one held only moves the held value's
		// time, source and position: its upsert leaves the index on values
		// alone.
		if v, ok := held[k]; ok && v == values[best] {
			touched = row(touched, c.Traits[best], values[best])
		} else {
			current = row(current, c.Traits[best], values[best])
		}
		a = b
	}
	const cols = `(workspace, profile, key, value, ts, source, priority, position)`
	if err := s.insert(ctx, tx, `INSERT INTO state_trait_history `+cols, 8,
		`ON CONFLICT (workspace, profile, key, position) DO NOTHING`, history); err != nil {
		return err
	}
	if err := s.insert(ctx, tx, `INSERT INTO state_traits `+cols, 8, traitUpsert, current); err != nil {
		return err
	}
	if err := s.insert(ctx, tx, `INSERT INTO state_traits `+cols, 8, `ON CONFLICT (workspace, profile, key) DO UPDATE SET
		ts = excluded.ts, source = excluded.source, priority = excluded.priority, position = excluded.position WHERE `+traitWins, touched); err != nil {
		return err
	}
	slices.SortFunc(terms, func(a, b term) int {
		if a.term != b.term {
			return strings.Compare(a.term, b.term)
		}
		return cmp.Compare(a.profile, b.profile)
	})
	terms = slices.Compact(terms)
	search := make([]any, 0, 3*len(terms))
	for _, t := range terms {
		search = append(search, c.Workspace, t.term, t.profile)
	}
	return s.insert(ctx, tx, `INSERT INTO state_search (workspace, term, profile)`, 3,
		`ON CONFLICT (workspace, term, profile) DO NOTHING`, search)
}

// heldTraits returns the stored current values of the traits of the
// profiles that c sets traits on. It reads them by profile, the primary
// key's prefix, so that no planner may prefer the index on values: without
// statistics PostgreSQL did, and scanned every profile sharing a common
// value for each trait it checked.
func (s *State) heldTraits(ctx context.Context, tx *sql.Tx, c *store.Changes) (map[traitKey]string, error) {
	var profiles []any
	seen := map[store.ProfileID]bool{}
	for _, t := range c.Traits {
		if !seen[t.Profile] {
			seen[t.Profile] = true
			profiles = append(profiles, int64(t.Profile))
		}
	}
	held := map[traitKey]string{}
	for len(profiles) > 0 {
		n := min(len(profiles), maxRows)
		q := `SELECT profile, key, value FROM state_traits WHERE workspace = ? AND profile IN (` +
			strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
		rows, err := tx.QueryContext(ctx, s.q(q), append([]any{c.Workspace}, profiles[:n]...)...)
		if err != nil {
			return nil, fmt.Errorf("read held traits: %w", err)
		}
		for rows.Next() {
			var k traitKey
			var v string
			if err := rows.Scan(&k.p, &k.k, &v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read held traits: %w", err)
			}
			held[k] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read held traits: %w", err)
		}
		profiles = profiles[n:]
	}
	return held, nil
}

// searchTerms are the lower-cased text and its words (an email's local
// part and domain count as words), each at most 200 bytes.
func searchTerms(v string) []string {
	terms := []string{v}
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '@' || r == '\t' || r == ',' }) {
		if w != v {
			terms = append(terms, w)
		}
	}
	for i, t := range terms {
		if len(t) > 200 {
			terms[i] = t[:200]
		}
	}
	return terms
}

func (s *State) timeline(ctx context.Context, tx *sql.Tx, c *store.Changes) error {
	entries := slices.Clone(c.Timeline)
	// In primary-key order (see traits).
	slices.SortFunc(entries, func(a, b store.TimelineEntry) int {
		if a.Profile != b.Profile {
			return cmp.Compare(a.Profile, b.Profile)
		}
		return cmp.Compare(a.Position, b.Position)
	})
	args := make([]any, 0, 3*len(entries))
	for _, e := range entries {
		args = append(args, c.Workspace, int64(e.Profile), e.Position)
	}
	return s.insert(ctx, tx, `INSERT INTO state_timeline (workspace, profile, position)`, 3,
		`ON CONFLICT (workspace, profile, position) DO NOTHING`, args)
}

func (s *State) links(ctx context.Context, tx *sql.Tx, c *store.Changes) error {
	args := make([]any, 0, 5*len(c.Links))
	for _, l := range c.Links {
		args = append(args, c.Workspace, int64(l.User), int64(l.Account), l.Position, nanos(l.At))
	}
	return s.insert(ctx, tx, `INSERT INTO state_links (workspace, user_id, account_id, position, at)`, 5,
		`ON CONFLICT (workspace, user_id, account_id) DO NOTHING`, args)
}

func (s *State) decisions(ctx context.Context, tx *sql.Tx, c *store.Changes) error {
	args := make([]any, 0, 8*len(c.Decisions))
	for _, d := range c.Decisions {
		args = append(args, c.Workspace, d.Position, int64(d.Profile), d.Identifier.Type, d.Identifier.Value, d.Code, d.Reason, nanos(d.At))
	}
	return s.insert(ctx, tx, `INSERT INTO state_decisions (workspace, position, profile, type, value, code, reason, at)`, 8, "", args)
}
