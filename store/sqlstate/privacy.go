package sqlstate

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kithcdp/kith/store"
)

// This file is the derived-state and delivery part of store.PrivacyStore's
// Erase, shared by both backends. A backend erases in this order:
//
//  1. ErasedProfiles and TimelinePositions find what to erase: the
//     profiles, the ids merged into them, and the log positions of their
//     timelines. The timeline is the only index from a person to their
//     events in the log.
//  2. The backend deletes the log events at those positions and the
//     matching quarantined events.
//  3. EraseState (or EraseStateTx) deletes the derived state and the
//     delivery rows — timelines included — last.
//
// On PostgreSQL all three run in one transaction. On SQLite the log and the
// state are two files, so two transactions; deleting the state last keeps
// the call resumable: a crash between 2 and 3 leaves the timeline in place,
// and running Erase again finds the same positions (their events already
// gone) and finishes with the state. Deleting the state first would lose
// the positions, and with them the only way to find the person's events.

// ErasedProfiles returns the profiles e erases: e.Profiles and the ids
// merged into them (their stubs, which redirect to them, and under which
// past deliveries, dead letters and outbox entries may be recorded).
func (s *State) ErasedProfiles(ctx context.Context, q Querier, e store.Erasure) ([]int64, error) {
	if q == nil {
		q = s.r
	}
	seen := map[int64]bool{}
	var out []int64
	for _, p := range e.Profiles {
		if !seen[int64(p)] {
			seen[int64(p)] = true
			out = append(out, int64(p))
		}
	}
	var stubs []int64
	err := s.inChunks(out, func(in string, args []any) error {
		return s.scanInts(ctx, q, &stubs, `SELECT id FROM state_profiles WHERE workspace = ? AND merged_into IN (`+in+`)`,
			append([]any{e.Workspace}, args...)...)
	})
	if err != nil {
		return nil, fmt.Errorf("erase: merged profiles: %w", err)
	}
	for _, p := range stubs {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// TimelinePositions returns the log positions on the timelines of profiles.
func (s *State) TimelinePositions(ctx context.Context, q Querier, workspace string, profiles []int64) ([]int64, error) {
	if q == nil {
		q = s.r
	}
	var out []int64
	err := s.inChunks(profiles, func(in string, args []any) error {
		return s.scanInts(ctx, q, &out, `SELECT DISTINCT position FROM state_timeline WHERE workspace = ? AND profile IN (`+in+`)`,
			append([]any{workspace}, args...)...)
	})
	if err != nil {
		return nil, fmt.Errorf("erase: timelines: %w", err)
	}
	return out, nil
}

// Querier is a *sql.DB or a *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// EraseState deletes, in one transaction, the derived state and the
// delivery rows of the erased profiles (see EraseStateTx).
func (s *State) EraseState(ctx context.Context, e store.Erasure, profiles, positions []int64) (store.ErasureReport, error) {
	var r store.ErasureReport
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = s.EraseStateTx(ctx, tx, e, profiles, positions)
		return err
	})
	return r, err
}

// ErasedTables are the tables of the state schema that EraseStateTx
// deletes from (PostgreSQL vacuums them afterwards).
var ErasedTables = []string{
	"state_profiles", "state_identifiers", "state_traits", "state_trait_history", "state_timeline",
	"state_links", "state_merges", "state_decisions", "state_search",
	"state_compute", "state_computed_values", "state_audience_members", "state_audience_history",
	"state_outbox", "delivery_ledger", "delivery_dead_letters",
}

// EraseStateTx deletes in tx every row of the state schema that belongs to
// the profiles (ErasedProfiles) or holds one of e's identifier values:
//
//   - by profile: the profiles' rows, identifiers, current traits, trait
//     history, search terms, timelines, computed states and values,
//     audience memberships and their history, outbox entries, ledger rows
//     and dead letters; links where the profile is the user or the
//     account; merges into or from it; identity decisions about it;
//   - by position: the timeline entries of other profiles at the erased
//     positions (a group call is on the account's timeline too), whose
//     events are gone from the log;
//   - by value: identity decisions and merges whose identifier is one of
//     e's, and dead letters whose payload holds one of the values as a JSON
//     string or whose error message mentions one.
//
// It leaves alone what holds no personal data or is not the person's:
// state_leases (cursors), delivery_cursors and delivery_replays (ranges of
// time), and state_blocked, the identifiers an admin blocked — a control
// decision recorded in the log by a control event, which erasure does not
// rewrite (an admin unblocks an identifier to remove it from the list).
func (s *State) EraseStateTx(ctx context.Context, tx *sql.Tx, e store.Erasure, profiles, positions []int64) (store.ErasureReport, error) {
	var r store.ErasureReport
	ws := e.Workspace
	del := func(n *int64, query string, args ...any) error {
		res, err := tx.ExecContext(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		*n += m
		return err
	}
	byProfile := []struct {
		table, where string
		count        *int64
	}{
		{"state_identifiers", "profile IN (%s)", &r.State},
		{"state_traits", "profile IN (%s)", &r.State},
		{"state_trait_history", "profile IN (%s)", &r.State},
		{"state_search", "profile IN (%s)", &r.State},
		{"state_timeline", "profile IN (%s)", &r.State},
		{"state_links", "user_id IN (%s)", &r.State},
		{"state_links", "account_id IN (%s)", &r.State},
		{"state_merges", "into_id IN (%s)", &r.State},
		{"state_merges", "from_id IN (%s)", &r.State},
		{"state_decisions", "profile IN (%s)", &r.State},
		{"state_compute", "profile IN (%s)", &r.State},
		{"state_computed_values", "profile IN (%s)", &r.State},
		{"state_audience_members", "profile IN (%s)", &r.State},
		{"state_audience_history", "profile IN (%s)", &r.State},
		{"state_profiles", "id IN (%s)", &r.State},
		{"state_outbox", "profile IN (%s)", &r.Outbox},
		{"delivery_ledger", "profile IN (%s)", &r.Ledger},
		{"delivery_dead_letters", "profile IN (%s)", &r.DeadLetters},
	}
	for _, b := range byProfile {
		err := s.inChunks(profiles, func(in string, args []any) error {
			return del(b.count, `DELETE FROM `+b.table+` WHERE workspace = ? AND `+fmt.Sprintf(b.where, in), append([]any{ws}, args...)...)
		})
		if err != nil {
			return r, fmt.Errorf("erase: %s: %w", b.table, err)
		}
	}
	err := s.inChunks(positions, func(in string, args []any) error {
		return del(&r.State, `DELETE FROM state_timeline WHERE workspace = ? AND position IN (`+in+`)`, append([]any{ws}, args...)...)
	})
	if err != nil {
		return r, fmt.Errorf("erase: state_timeline: %w", err)
	}
	for _, id := range e.Identifiers {
		if err := del(&r.State, `DELETE FROM state_decisions WHERE workspace = ? AND type = ? AND value = ?`, ws, id.Type, id.Value); err != nil {
			return r, fmt.Errorf("erase: state_decisions: %w", err)
		}
		if err := del(&r.State, `DELETE FROM state_merges WHERE workspace = ? AND via_type = ? AND via_value = ?`, ws, id.Type, id.Value); err != nil {
			return r, fmt.Errorf("erase: state_merges: %w", err)
		}
	}
	if values := IdentifierValues(e.Identifiers); len(values) > 0 {
		var ids []int64
		err := s.scanRows(ctx, tx, func(rows *sql.Rows) error {
			var id int64
			var payload, msg string
			if err := rows.Scan(&id, &payload, &msg); err != nil {
				return err
			}
			if HoldsValue([]byte(payload), values) || mentions(msg, values) {
				ids = append(ids, id)
			}
			return nil
		}, `SELECT id, payload, error FROM delivery_dead_letters WHERE workspace = ?`, ws)
		if err != nil {
			return r, fmt.Errorf("erase: dead letters: %w", err)
		}
		err = s.inChunks(ids, func(in string, args []any) error {
			return del(&r.DeadLetters, `DELETE FROM delivery_dead_letters WHERE workspace = ? AND id IN (`+in+`)`, append([]any{ws}, args...)...)
		})
		if err != nil {
			return r, fmt.Errorf("erase: dead letters: %w", err)
		}
	}
	return r, nil
}

// IdentifierValues returns the values to search for: those of ids,
// trimmed, without empty ones.
func IdentifierValues(ids []store.Identifier) []string {
	var out []string
	for _, id := range ids {
		if v := strings.TrimSpace(id.Value); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// HoldsValue reports whether raw, a JSON document, holds one of values as a
// JSON string (an object's key or a value, at any depth), compared after
// decoding — so whatever escapes the sender used — and ignoring case and
// surrounding space, as identifiers are normalized. A raw that does not
// parse is searched for each value as JSON would write it (quoted, with and
// without HTML escaping), ignoring case.
func HoldsValue(raw []byte, values []string) bool {
	if len(values) == 0 || len(raw) == 0 {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			return holdsQuoted(raw, values)
		}
		if str, ok := tok.(string); ok && matches(str, values) {
			return true
		}
	}
}

func matches(s string, values []string) bool {
	s = strings.TrimSpace(s)
	for _, v := range values {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}

// mentions reports whether text contains one of values, ignoring case.
func mentions(text string, values []string) bool {
	text = strings.ToLower(text)
	for _, v := range values {
		if strings.Contains(text, strings.ToLower(v)) {
			return true
		}
	}
	return false
}

func holdsQuoted(raw []byte, values []string) bool {
	lower := bytes.ToLower(raw)
	for _, v := range values {
		plain, _ := json.Marshal(strings.ToLower(v))
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(strings.ToLower(v))
		if bytes.Contains(lower, bytes.ToLower(plain)) || bytes.Contains(lower, bytes.ToLower(bytes.TrimSpace(b.Bytes()))) {
			return true
		}
	}
	return false
}

// inChunks calls fn with placeholders and arguments for at most maxRows of
// the values at a time (none when values is empty).
func (s *State) inChunks(values []int64, fn func(in string, args []any) error) error {
	for len(values) > 0 {
		n := min(len(values), maxRows)
		args := make([]any, n)
		for i, v := range values[:n] {
			args[i] = v
		}
		if err := fn(strings.TrimSuffix(strings.Repeat("?, ", n), ", "), args); err != nil {
			return err
		}
		values = values[n:]
	}
	return nil
}

// InChunks is inChunks for a backend's own queries, written with "?"
// placeholders.
func InChunks(values []int64, fn func(in string, args []any) error) error {
	return (&State{}).inChunks(values, fn)
}

func (s *State) scanInts(ctx context.Context, q Querier, out *[]int64, query string, args ...any) error {
	return s.scanRows(ctx, q, func(rows *sql.Rows) error {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return err
		}
		*out = append(*out, v)
		return nil
	}, query, args...)
}

func (s *State) scanRows(ctx context.Context, q Querier, fn func(*sql.Rows) error, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
