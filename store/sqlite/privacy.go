package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlstate"
)

var _ store.PrivacyStore = (*Store)(nil)

// Erase physically deletes e's data (see store.PrivacyStore):
//
//  1. it reads the erased profiles (with the ids merged into them) and the
//     positions of their timelines from state.db;
//  2. it deletes the log events at those positions and the quarantined
//     events that hold one of e's identifier values, in one transaction of
//     kith.db;
//  3. it deletes the derived state and delivery rows, in one transaction
//     of state.db (sqlstate.EraseStateTx);
//  4. it checkpoints both WALs with TRUNCATE.
//
// The state goes last because the timeline is the only index from a person
// to their events: after a crash between 2 and 3, Erase run again finds the
// same positions (their events already gone) and finishes. Every
// connection of both files runs with secure_delete=ON (set when the store
// opens, checked here), so the pages the deletes free or rewrite hold
// zeros where the rows were; the checkpoint copies those pages into the
// database files and truncates the WALs, whose older frames still held the
// rows. Both files' WALs keep no old frames afterwards — unless a reader
// holds the WAL for longer than the busy timeout, and then Erase fails
// and is to be run again.
//
// The messageId dedup index (dedup_hash, dedup_recent) is kept: it holds a
// 64-bit hash of each messageId and a position, no personal data. A
// messageId of an erased event sent again is then reported as a duplicate
// while the dedup window remembers it (the event it names is gone, and
// such a candidate is taken as the same; see knownIDs); re-sent data of an
// erased person is dropped by the suppression list at ingestion anyway.
// log_heads holds positions only.
func (s *Store) Erase(ctx context.Context, e store.Erasure) (store.ErasureReport, error) {
	var r store.ErasureReport
	if e.Workspace == "" {
		return r, errors.New("erase: no workspace")
	}
	for _, db := range []*sql.DB{s.w, s.sw} {
		if err := requireSecureDelete(ctx, db); err != nil {
			return r, err
		}
	}
	profiles, err := s.State.ErasedProfiles(ctx, s.sw, e)
	if err != nil {
		return r, err
	}
	positions, err := s.State.TimelinePositions(ctx, s.sw, e.Workspace, profiles)
	if err != nil {
		return r, err
	}
	positions = append(positions, e.Positions...)
	values := sqlstate.IdentifierValues(e.Identifiers)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		err := sqlstate.InChunks(positions, func(in string, args []any) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE workspace = ? AND position IN (`+in+`)`, append([]any{e.Workspace}, args...)...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			r.Events += n
			return err
		})
		if err != nil {
			return fmt.Errorf("erase: events: %w", err)
		}
		if len(values) == 0 {
			return nil
		}
		var ids []int64
		rows, err := tx.QueryContext(ctx, `SELECT id, raw FROM quarantine WHERE workspace = ?`, e.Workspace)
		if err != nil {
			return fmt.Errorf("erase: quarantine: %w", err)
		}
		for rows.Next() {
			var id int64
			var raw []byte
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return fmt.Errorf("erase: quarantine: %w", err)
			}
			if sqlstate.HoldsValue(raw, values) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("erase: quarantine: %w", err)
		}
		return sqlstate.InChunks(ids, func(in string, args []any) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE workspace = ? AND id IN (`+in+`)`, append([]any{e.Workspace}, args...)...)
			if err != nil {
				return fmt.Errorf("erase: quarantine: %w", err)
			}
			n, err := res.RowsAffected()
			r.Quarantined += n
			return err
		})
	})
	if err != nil {
		return r, err
	}
	sr, err := s.State.EraseState(ctx, e, profiles, positions)
	r.State, r.Outbox, r.Ledger, r.DeadLetters = sr.State, sr.Outbox, sr.Ledger, sr.DeadLetters
	if err != nil {
		return r, err
	}
	for _, db := range []*sql.DB{s.w, s.sw} {
		if err := truncateWAL(ctx, db); err != nil {
			return r, fmt.Errorf("erase: %w", err)
		}
	}
	return r, nil
}

// requireSecureDelete turns secure_delete on for db's connection (the
// writer has one) and checks that it is on.
func requireSecureDelete(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("erase: secure_delete: %w", err)
	}
	var on int
	if err := db.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&on); err != nil {
		return fmt.Errorf("erase: secure_delete: %w", err)
	}
	if on != 1 {
		return fmt.Errorf("erase: secure_delete is %d, want 1", on)
	}
	return nil
}

// truncateWAL checkpoints db's WAL into the database file and truncates
// it, retrying while readers or another checkpointer keep it busy.
func truncateWAL(ctx context.Context, db *sql.DB) error {
	var busy, log, done int
	for range 50 {
		if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("checkpoint: the WAL stayed busy (%d of %d frames copied); run Erase again", done, log)
}

// Suppress adds entries to the suppression list; an existing digest keeps
// its first entry.
func (s *Store) Suppress(ctx context.Context, entries []store.Suppression) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range entries {
			if e.Workspace == "" || len(e.Digest) == 0 {
				return errors.New("no workspace or digest")
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO suppression (workspace, digest, reason, at) VALUES (?, ?, ?, ?)
				ON CONFLICT (workspace, digest) DO NOTHING`, e.Workspace, e.Digest, e.Reason, micros(e.At)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	return nil
}

// Unsuppress removes digests from a workspace's list.
func (s *Store) Unsuppress(ctx context.Context, workspace string, digests [][]byte) (int64, error) {
	var n int64
	if len(digests) == 0 {
		return 0, nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, d := range digests {
			res, err := tx.ExecContext(ctx, `DELETE FROM suppression WHERE workspace = ? AND digest = ?`, workspace, d)
			if err != nil {
				return err
			}
			m, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("unsuppress: %w", err)
	}
	return n, nil
}

// ScanSuppressed calls fn for every entry of a workspace's list, by digest.
func (s *Store) ScanSuppressed(ctx context.Context, workspace string, fn func(store.Suppression) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT digest, reason, at FROM suppression WHERE workspace = ? ORDER BY digest`, workspace)
	if err != nil {
		return fmt.Errorf("scan suppressed: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e := store.Suppression{Workspace: workspace}
		var at int64
		if err := rows.Scan(&e.Digest, &e.Reason, &at); err != nil {
			return fmt.Errorf("scan suppressed: %w", err)
		}
		e.At = fromMicros(at)
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Traces searches everything the store holds for each of needles: every
// column of every table of kith.db and state.db (cast to bytes, so text
// and blobs alike), then the bytes of the database files and their WALs.
// It returns one line per place a needle occurs ("state.db: state_traits.value
// (2 rows)", "kith.db-wal: byte 40960"); none after a complete erasure.
// It reads every row and every byte: a check for after an Erase, not for a
// hot path.
func (s *Store) Traces(ctx context.Context, needles []string) ([]string, error) {
	var out []string
	for _, db := range []struct {
		name string
		db   *sql.DB
	}{{FileName, s.r}, {StateFileName, s.sr}} {
		found, err := tableTraces(ctx, db.db, needles)
		if err != nil {
			return nil, fmt.Errorf("traces: %s: %w", db.name, err)
		}
		for _, f := range found {
			out = append(out, db.name+": "+f)
		}
		var seq int
		var name, path string
		if err := db.db.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &path); err != nil {
			return nil, fmt.Errorf("traces: %s: %w", db.name, err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
			found, err := fileTraces(p, needles)
			if err != nil {
				return nil, fmt.Errorf("traces: %w", err)
			}
			out = append(out, found...)
		}
	}
	return out, nil
}

// tableTraces searches every column of every table of db.
func tableTraces(ctx context.Context, db *sql.DB, needles []string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tables {
		cols, err := columns(ctx, db, t)
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			for _, n := range needles {
				var count int64
				q := fmt.Sprintf(`SELECT COUNT(*) FROM %q WHERE instr(CAST(%q AS BLOB), ?) > 0`, t, c)
				if err := db.QueryRowContext(ctx, q, []byte(n)).Scan(&count); err != nil {
					return nil, fmt.Errorf("%s.%s: %w", t, c, err)
				}
				if count > 0 {
					out = append(out, fmt.Sprintf("%s.%s holds %q (%d rows)", t, c, n, count))
				}
			}
		}
	}
	return out, nil
}

func columns(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// fileTraces searches the file at path (if it exists) for each needle's
// bytes.
func fileTraces(path string, needles []string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	longest := 0
	for _, n := range needles {
		longest = max(longest, len(n))
	}
	var out []string
	reported := map[string]bool{}
	buf := make([]byte, 0, 1<<20+longest)
	var base int64 // file offset of buf[0]
	for {
		chunk := buf[len(buf):cap(buf)]
		n, err := f.Read(chunk)
		buf = buf[:len(buf)+n]
		for _, nd := range needles {
			if i := bytes.Index(buf, []byte(nd)); i >= 0 && nd != "" && !reported[nd] {
				reported[nd] = true
				out = append(out, fmt.Sprintf("%s holds %q at byte %d", filepath.Base(path), nd, base+int64(i)))
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		// Keep the last longest-1 bytes, in case a needle spans chunks.
		keep := min(len(buf), max(longest-1, 0))
		base += int64(len(buf) - keep)
		copy(buf, buf[len(buf)-keep:])
		buf = buf[:keep]
	}
}
