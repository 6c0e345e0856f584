package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlstate"
)

var _ store.PrivacyStore = (*Store)(nil)

// erasedLogTables are the log tables Erase deletes from.
var erasedLogTables = []string{"log_events", "log_dedup", "quarantine"}

// Erase physically deletes e's data (see store.PrivacyStore) in one
// transaction: it reads the erased profiles (with the ids merged into them)
// and the positions of their timelines, deletes the log events at those
// positions with their messageIds' dedup rows, the quarantined events that
// hold one of e's identifier values, and then the derived state and
// delivery rows (sqlstate.EraseStateTx). A failed Erase changes nothing;
// one run again after a success finds nothing more to delete.
//
// After the commit it runs VACUUM (ANALYZE) on every table it deletes from,
// also when this run deleted nothing there (a crash may have come between
// an earlier run's commit and its vacuum). VACUUM cannot run inside a
// transaction. It removes the dead row versions from the tables and their
// indexes and marks their space free, so no query, index or page
// inspection through SQL finds them; ANALYZE samples the tables again, so
// the planner statistics (pg_statistic's most common values and histogram
// bounds, which hold sampled column values) no longer hold erased values.
// The freed space is not overwritten at once (plain VACUUM does not zero
// it; new rows reuse it), and PostgreSQL's WAL segments, its archive and
// base backups keep the old rows until they are recycled or expire: see the
// operations documentation on backups. VACUUM FULL would rewrite the files,
// but it locks each table exclusively for the whole rewrite, so it is left
// to an operator.
//
// The raw messageIds of the erased events are deleted from log_dedup: a
// client chooses its messageIds, and one may hold personal data (an email,
// say). A messageId of an erased event sent again is then stored as a new
// event — unless, as erasure arranges, the suppression list drops it at
// ingestion. log_heads holds positions only and is kept, so positions are
// never handed out twice.
func (s *Store) Erase(ctx context.Context, e store.Erasure) (store.ErasureReport, error) {
	var r store.ErasureReport
	if e.Workspace == "" {
		return r, errors.New("erase: no workspace")
	}
	values := sqlstate.IdentifierValues(e.Identifiers)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return r, fmt.Errorf("erase: begin: %w", err)
	}
	defer tx.Rollback()
	profiles, err := s.State.ErasedProfiles(ctx, tx, e)
	if err != nil {
		return r, err
	}
	positions, err := s.State.TimelinePositions(ctx, tx, e.Workspace, profiles)
	if err != nil {
		return r, err
	}
	positions = append(positions, e.Positions...)
	if len(positions) > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM log_dedup d USING log_events e
			WHERE e.workspace = $1 AND e.position = ANY($2) AND d.workspace = $1 AND d.message_id = e.message_id AND d.position = e.position`,
			e.Workspace, positions); err != nil {
			return r, fmt.Errorf("erase: log_dedup: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM log_events WHERE workspace = $1 AND position = ANY($2)`, e.Workspace, positions)
		if err != nil {
			return r, fmt.Errorf("erase: log_events: %w", err)
		}
		if r.Events, err = res.RowsAffected(); err != nil {
			return r, fmt.Errorf("erase: log_events: %w", err)
		}
	}
	if len(values) > 0 {
		var ids []int64
		rows, err := tx.QueryContext(ctx, `SELECT id, raw FROM quarantine WHERE workspace = $1`, e.Workspace)
		if err != nil {
			return r, fmt.Errorf("erase: quarantine: %w", err)
		}
		for rows.Next() {
			var id int64
			var raw []byte
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return r, fmt.Errorf("erase: quarantine: %w", err)
			}
			if sqlstate.HoldsValue(raw, values) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, fmt.Errorf("erase: quarantine: %w", err)
		}
		if len(ids) > 0 {
			res, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE workspace = $1 AND id = ANY($2)`, e.Workspace, ids)
			if err != nil {
				return r, fmt.Errorf("erase: quarantine: %w", err)
			}
			if r.Quarantined, err = res.RowsAffected(); err != nil {
				return r, fmt.Errorf("erase: quarantine: %w", err)
			}
		}
	}
	sr, err := s.State.EraseStateTx(ctx, tx, e, profiles, positions)
	if err != nil {
		return r, err
	}
	r.State, r.Outbox, r.Ledger, r.DeadLetters = sr.State, sr.Outbox, sr.Ledger, sr.DeadLetters
	if err := tx.Commit(); err != nil {
		return r, fmt.Errorf("erase: commit: %w", err)
	}
	s.commits.Add(1)
	tables := append(append([]string{}, erasedLogTables...), sqlstate.ErasedTables...)
	if _, err := s.pool.Exec(ctx, `VACUUM (ANALYZE) `+strings.Join(tables, ", ")); err != nil {
		return r, fmt.Errorf("erase: vacuum: %w", err)
	}
	return r, nil
}

// Suppress adds entries to the suppression list; an existing digest keeps
// its first entry.
func (s *Store) Suppress(ctx context.Context, entries []store.Suppression) error {
	if len(entries) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, e := range entries {
		if e.Workspace == "" || len(e.Digest) == 0 {
			return errors.New("suppress: no workspace or digest")
		}
		b.Queue(`INSERT INTO suppression (workspace, digest, reason, at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (workspace, digest) DO NOTHING`, e.Workspace, e.Digest, e.Reason, e.At.UTC())
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	s.commits.Add(1)
	return nil
}

// Unsuppress removes digests from a workspace's list.
func (s *Store) Unsuppress(ctx context.Context, workspace string, digests [][]byte) (int64, error) {
	if len(digests) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM suppression WHERE workspace = $1 AND digest = ANY($2)`, workspace, digests)
	if err != nil {
		return 0, fmt.Errorf("unsuppress: %w", err)
	}
	s.commits.Add(1)
	return tag.RowsAffected(), nil
}

// ScanSuppressed calls fn for every entry of a workspace's list, by digest.
func (s *Store) ScanSuppressed(ctx context.Context, workspace string, fn func(store.Suppression) error) error {
	rows, err := s.pool.Query(ctx, `SELECT digest, reason, at FROM suppression WHERE workspace = $1 ORDER BY digest`, workspace)
	if err != nil {
		return fmt.Errorf("scan suppressed: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e := store.Suppression{Workspace: workspace}
		if err := rows.Scan(&e.Digest, &e.Reason, &e.At); err != nil {
			return fmt.Errorf("scan suppressed: %w", err)
		}
		e.At = e.At.UTC()
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Traces searches everything the store holds in its schema for each of
// needles: every column of every table (bytea columns by bytes, others as
// text) and the planner statistics (pg_stats' most common values and
// histogram bounds, which hold sampled values). It returns one line per
// place a needle occurs; none after a complete erasure. It reads every
// row: a check for after an Erase, not for a hot path. It does not read
// the server's files, which a client cannot.
func (s *Store) Traces(ctx context.Context, needles []string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c JOIN information_schema.tables t
		ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	type column struct{ table, name, typ string }
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name, &c.typ); err != nil {
			rows.Close()
			return nil, fmt.Errorf("traces: %w", err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	if len(cols) == 0 {
		return nil, errors.New("traces: no tables in the current schema")
	}
	var out []string
	for _, c := range cols {
		for _, n := range needles {
			var q string
			var arg any = n
			if c.typ == "bytea" {
				q = fmt.Sprintf(`SELECT COUNT(*) FROM %s WHERE position($1::bytea IN %s) > 0`, pgx.Identifier{c.table}.Sanitize(), pgx.Identifier{c.name}.Sanitize())
				arg = []byte(n)
			} else {
				q = fmt.Sprintf(`SELECT COUNT(*) FROM %s WHERE strpos(%s::text, $1) > 0`, pgx.Identifier{c.table}.Sanitize(), pgx.Identifier{c.name}.Sanitize())
			}
			var count int64
			if err := s.db.QueryRowContext(ctx, q, arg).Scan(&count); err != nil {
				return nil, fmt.Errorf("traces: %s.%s: %w", c.table, c.name, err)
			}
			if count > 0 {
				out = append(out, fmt.Sprintf("%s.%s holds %q (%d rows)", c.table, c.name, n, count))
			}
		}
	}
	for _, n := range needles {
		err := scanStrings(ctx, s.db, func(v string) { out = append(out, fmt.Sprintf("pg_stats of %s holds %q", v, n)) },
			`SELECT tablename || '.' || attname FROM pg_stats WHERE schemaname = current_schema()
			AND (strpos(COALESCE(most_common_vals::text, ''), $1) > 0 OR strpos(COALESCE(histogram_bounds::text, ''), $1) > 0)`, n)
		if err != nil {
			return nil, fmt.Errorf("traces: pg_stats: %w", err)
		}
	}
	return out, nil
}

func scanStrings(ctx context.Context, db *sql.DB, fn func(string), q string, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		fn(v)
	}
	return rows.Err()
}
