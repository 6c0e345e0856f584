// Package sqlstate implements store.State — the derived state the processor
// folds the log into — once, over database/sql, for both backends. The SQL
// is written for SQLite and PostgreSQL alike (upserts with ON CONFLICT,
// row-value comparisons, RETURNING); a Dialect covers what differs. Each
// backend owns its schema migrations (see store/sqlite and store/postgres)
// and passes its connections to New.
package sqlstate

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kithcdp/kith/store"
)

// Dialect is what differs between the SQL of the backends.
type Dialect struct {
	// Numbered placeholders ($1, $2, …) instead of "?".
	Numbered bool
	// Least and Greatest are the two-argument scalar min and max functions.
	Least, Greatest string
	// NoSync, if set, is run first in each Commit so that the commit does
	// not wait for its flush to disk: derived state is rebuilt from the log,
	// and a commit lost in a crash takes its cursor move with it.
	NoSync string
	// Unnest, if set, inserts many rows with one array per column
	// (PostgreSQL's unnest) instead of VALUES (…), (…): the statement's
	// text does not depend on the number of rows, so the server parses it
	// once per connection, and 4,000 parameters become 8.
	Unnest bool
}

// Dialects of the two backends.
var (
	SQLite   = Dialect{Least: "min", Greatest: "max"}
	Postgres = Dialect{Numbered: true, Least: "LEAST", Greatest: "GREATEST", NoSync: "SET LOCAL synchronous_commit = off", Unnest: true}
)

// State implements store.State on a database that has the state schema.
type State struct {
	w, r *sql.DB // writer and readers (may be the same pool)
	d    Dialect
	now  func() time.Time
	// OnCommit, if set, is called after each committed write transaction.
	OnCommit func()

	// Multi-row inserts prepared on the writer (see prepared).
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared, by query
	wanted map[string]bool      // to prepare before the next transaction
}

var _ store.State = (*State)(nil)

// New returns a State writing through w and reading through r.
func New(w, r *sql.DB, d Dialect) *State {
	return &State{w: w, r: r, d: d, now: time.Now, stmts: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// prepared returns query (already rewritten by q) as a statement of tx,
// prepared once on the writer, or nil the first time it is asked for. A
// statement cannot be prepared on the writer while tx holds it (SQLite's
// writer is one connection), so a new one is prepared before the next
// transaction begins (prepareWanted), and tx runs it unprepared. Parsing
// and planning the 500-row inserts of each commit took ~10% of a replay's
// CPU.
func (s *State) prepared(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	if s.stmts == nil {
		return nil
	}
	s.stmtMu.Lock()
	st := s.stmts[query]
	if st == nil {
		s.wanted[query] = true
	}
	s.stmtMu.Unlock()
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// prepareWanted prepares on the writer the statements asked for since the
// last call. It runs outside any transaction of the writer.
func (s *State) prepareWanted(ctx context.Context) {
	s.stmtMu.Lock()
	var qs []string
	for q := range s.wanted {
		qs = append(qs, q)
		delete(s.wanted, q)
	}
	s.stmtMu.Unlock()
	for _, q := range qs {
		// Not under stmtMu: the writer may be busy with a transaction that
		// asks for statements.
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			continue // run unprepared
		}
		s.stmtMu.Lock()
		if s.stmts[q] == nil {
			s.stmts[q] = st
			st = nil
		}
		s.stmtMu.Unlock()
		if st != nil {
			st.Close()
		}
	}
}

// q rewrites a query written with "?" placeholders and {least}/{greatest}
// for the dialect.
func (s *State) q(query string) string { return s.d.q(query) }

func (d Dialect) q(query string) string {
	query = strings.NewReplacer("{least}", d.Least, "{greatest}", d.Greatest).Replace(query)
	if !d.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (s *State) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	return tx.ExecContext(ctx, s.q(query), args...)
}

func (s *State) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.stmts != nil {
		s.prepareWanted(ctx)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if s.OnCommit != nil {
		s.OnCommit()
	}
	return nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// AcquireLease takes or renews a workspace's lease (see store.State).
func (s *State) AcquireLease(ctx context.Context, workspace, owner string, ttl time.Duration) (store.Lease, error) {
	now := s.now()
	until := now.Add(ttl)
	l := store.Lease{Workspace: workspace, Owner: owner, Until: until}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO state_leases (workspace, owner, epoch, position, next_profile, until_ns)
			VALUES (?, '', 0, 0, 1, 0) ON CONFLICT (workspace) DO NOTHING`, workspace); err != nil {
			return fmt.Errorf("acquire lease: %w", err)
		}
		row := tx.QueryRowContext(ctx, s.q(`UPDATE state_leases
			SET epoch = CASE WHEN owner = ? THEN epoch ELSE epoch + 1 END, owner = ?, until_ns = ?
			WHERE workspace = ? AND (owner = ? OR until_ns < ?)
			RETURNING epoch, position, next_profile`), owner, owner, until.UnixNano(), workspace, owner, now.UnixNano())
		var next int64
		if err := row.Scan(&l.Epoch, &l.Position, &next); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrLeaseHeld
			}
			return fmt.Errorf("acquire lease: %w", err)
		}
		l.NextProfileID = store.ProfileID(next)
		return nil
	})
	return l, err
}

// ReleaseLease lets another owner take the lease at once.
func (s *State) ReleaseLease(ctx context.Context, l store.Lease) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE state_leases SET until_ns = 0 WHERE workspace = ? AND owner = ? AND epoch = ?`,
			l.Workspace, l.Owner, l.Epoch)
		return err
	})
}

// Cursors returns each workspace's folded position.
func (s *State) Cursors(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT workspace, position FROM state_leases`)
	if err != nil {
		return nil, fmt.Errorf("read cursors: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var ws string
		var pos int64
		if err := rows.Scan(&ws, &pos); err != nil {
			return nil, fmt.Errorf("read cursors: %w", err)
		}
		out[ws] = pos
	}
	return out, rows.Err()
}

// stateTables are the tables holding a workspace's derived rows.
var stateTables = []string{
	"state_profiles", "state_identifiers", "state_traits", "state_trait_history", "state_timeline",
	"state_links", "state_merges", "state_decisions", "state_search", "state_blocked",
	// compute.go: all but the outbox, whose entries a replay finds again by
	// their identity.
	"state_compute", "state_computed_values", "state_audience_members", "state_audience_history",
}

// Reset deletes a workspace's derived state and rewinds its cursor.
func (s *State) Reset(ctx context.Context, workspace string, epoch int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE state_leases SET position = 0, next_profile = 1 WHERE workspace = ? AND epoch = ?`, workspace, epoch)
		if err != nil {
			return fmt.Errorf("reset state: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return store.ErrLeaseLost
		}
		for _, t := range stateTables {
			// A table holding no other workspace's rows is emptied whole:
			// SQLite then frees its pages without reading and deleting each
			// row from each index (a replay's reset of 200,000 events' state
			// took 12% of the replay).
			var others bool
			if err := tx.QueryRowContext(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM `+t+` WHERE workspace < ?)
				OR EXISTS (SELECT 1 FROM `+t+` WHERE workspace > ?)`), workspace, workspace).Scan(&others); err != nil {
				return fmt.Errorf("reset state: %s: %w", t, err)
			}
			q := `DELETE FROM ` + t
			args := []any{}
			if others {
				q, args = q+` WHERE workspace = ?`, append(args, workspace)
			}
			if _, err := s.exec(ctx, tx, q, args...); err != nil {
				return fmt.Errorf("reset state: %s: %w", t, err)
			}
		}
		return nil
	})
}

// ScanIdentifiers calls fn for each identifier held in the workspace.
func (s *State) ScanIdentifiers(ctx context.Context, workspace string, fn func(store.HeldIdentifier) error) error {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT type, value, profile, position, added_at FROM state_identifiers WHERE workspace = ?`), workspace)
	if err != nil {
		return fmt.Errorf("scan identifiers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h store.HeldIdentifier
		var at int64
		if err := rows.Scan(&h.Type, &h.Value, &h.Profile, &h.Position, &at); err != nil {
			return fmt.Errorf("scan identifiers: %w", err)
		}
		h.AddedAt = fromNanos(at)
		if err := fn(h); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ScanBlocked calls fn for each identifier an admin blocked.
func (s *State) ScanBlocked(ctx context.Context, workspace string, fn func(store.Identifier) error) error {
	return s.query(ctx, "blocked identifiers", func(r *sql.Rows) error {
		var id store.Identifier
		if err := r.Scan(&id.Type, &id.Value); err != nil {
			return err
		}
		return fn(id)
	}, `SELECT type, value FROM state_blocked WHERE workspace = ?`, workspace)
}

// ScanMergeCounts calls fn with the number of merges into each profile.
func (s *State) ScanMergeCounts(ctx context.Context, workspace string, fn func(store.ProfileID, int) error) error {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT into_id, COUNT(*) FROM state_merges WHERE workspace = ? GROUP BY into_id`), workspace)
	if err != nil {
		return fmt.Errorf("scan merges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p store.ProfileID
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return fmt.Errorf("scan merges: %w", err)
		}
		if err := fn(p, n); err != nil {
			return err
		}
	}
	return rows.Err()
}

// textValue returns a JSON value as the text the search index holds: a
// string's contents, lower-cased; other values are not indexed.
func textValue(v json.RawMessage) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return strings.ToLower(strings.TrimSpace(s)), true
}
