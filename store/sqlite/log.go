package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
)

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Append commits b in one transaction; see store.Log.
func (s *Store) Append(ctx context.Context, b *store.Batch, dedupWindow time.Duration) ([]store.Appended, error) {
	var res []store.Appended
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = s.appendTx(ctx, tx, b, dedupWindow)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append to log: %w", err)
	}
	return res, nil
}

type dedupKey struct{ workspace, messageID string }

// seenID is a messageId already in the log: where, and when it arrived.
type seenID struct{ position, receivedAt int64 }

// The writer's statements, prepared once when the store opens (parsing a
// multi-row INSERT took ~12% of a commit's CPU). Rows are inserted in chunks
// of the sizes in insertSizes, largest first, so a batch of n events takes at
// most n/100 + 18 statements; 100 events use 1,700 of SQLite's 32,766
// variables. MessageIds are looked up 100 or 10 at a time (lookupSizes), the
// last chunk padded with "" (never stored as a messageId): a commit of a few
// single calls pays for 10 lookups, not 100.
const (
	eventInsert = `INSERT INTO events (workspace, position, source, message_id, type, name, user_id,
		anonymous_id, timestamp, received_at, flags, format, ip, user_agent, origin, gpc, raw) VALUES `
	eventCols   = 17
	dedupInsert = `INSERT INTO dedup (workspace, message_id, position, received_at) VALUES `
	dedupUpsert = ` ON CONFLICT (workspace, message_id) DO UPDATE SET position = excluded.position, received_at = excluded.received_at`
	dedupCols   = 4
)

var (
	insertSizes = []int{100, 10, 1}
	lookupSizes = []int{100, 10}
)

// writerStmts are the prepared statements of appendTx.
type writerStmts struct {
	events, dedup  map[int]*sql.Stmt // multi-row inserts by row count
	lookup         map[int]*sql.Stmt // n messageIds of one workspace, by n
	head, moveHead *sql.Stmt
	quarantine     *sql.Stmt
}

func prepareWriter(ctx context.Context, db *sql.DB) (*writerStmts, error) {
	var err error
	prepare := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		st, perr := db.PrepareContext(ctx, q)
		if perr != nil {
			err = fmt.Errorf("prepare %.50q: %w", q, perr)
		}
		return st
	}
	w := &writerStmts{events: map[int]*sql.Stmt{}, dedup: map[int]*sql.Stmt{}, lookup: map[int]*sql.Stmt{}}
	for _, n := range insertSizes {
		w.events[n] = prepare(eventInsert + placeholders(n, eventCols))
		w.dedup[n] = prepare(dedupInsert + placeholders(n, dedupCols) + dedupUpsert)
	}
	for _, n := range lookupSizes {
		w.lookup[n] = prepare(`SELECT message_id, position, received_at FROM dedup WHERE workspace = ? AND message_id IN ` +
			placeholders(1, n))
	}
	w.head = prepare(`SELECT position FROM log_heads WHERE workspace = ?`)
	w.moveHead = prepare(`INSERT INTO log_heads (workspace, position) VALUES (?, ?)
		ON CONFLICT (workspace) DO UPDATE SET position = excluded.position`)
	w.quarantine = prepare(`INSERT INTO quarantine (workspace, source, message_id, received_at, code, reason,
		ip, user_agent, origin, gpc, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	return w, err
}

// placeholders returns n rows of cols "?" each: (?, ?), (?, ?).
func placeholders(n, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// insertRows runs the multi-row statements of stmts over args (cols values
// a row), largest chunks first.
func insertRows(ctx context.Context, tx *sql.Tx, stmts map[int]*sql.Stmt, cols int, args []any) error {
	for _, n := range insertSizes {
		for len(args) >= n*cols {
			if _, err := tx.StmtContext(ctx, stmts[n]).ExecContext(ctx, args[:n*cols]...); err != nil {
				return err
			}
			args = args[n*cols:]
		}
	}
	return nil
}

// appendTx writes b inside tx. The head of each workspace is read inside the
// write transaction, which SQLite serializes, so positions stay gap-free even
// with another process writing.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, b *store.Batch, window time.Duration) ([]store.Appended, error) {
	res := make([]store.Appended, len(b.Events))
	known, err := s.knownIDs(ctx, tx, b.Events)
	if err != nil {
		return nil, err
	}
	heads := map[string]int64{}
	seen := map[dedupKey]int64{}
	events := make([]any, 0, len(b.Events)*eventCols)
	dedup := make([]any, 0, len(b.Events)*dedupCols)
	for i := range b.Events {
		e := &b.Events[i]
		key := dedupKey{e.Workspace, e.MessageID}
		if pos, ok := seen[key]; ok {
			e.Position, res[i] = pos, store.Appended{Position: pos, Duplicate: true}
			continue
		}
		if k, ok := known[key]; ok && (window <= 0 || k.receivedAt >= micros(e.ReceivedAt.Add(-window))) {
			e.Position, res[i] = k.position, store.Appended{Position: k.position, Duplicate: true}
			seen[key] = k.position
			continue
		}
		head, ok := heads[e.Workspace]
		if !ok {
			err := tx.StmtContext(ctx, s.writer.head).QueryRowContext(ctx, e.Workspace).Scan(&head)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("read log head: %w", err)
			}
		}
		head++
		heads[e.Workspace] = head
		e.Position, res[i] = head, store.Appended{Position: head}
		if e.MessageID != "" {
			seen[key] = head
			dedup = append(dedup, e.Workspace, e.MessageID, head, micros(e.ReceivedAt))
		}
		events = append(events, e.Workspace, head, e.Source, e.MessageID, e.Type, e.Name, e.UserID,
			e.AnonymousID, micros(e.Timestamp), micros(e.ReceivedAt), e.Flags, e.Format,
			e.Signals.IP, e.Signals.UserAgent, e.Signals.Origin, boolInt(e.Signals.GPC), []byte(e.Raw))
	}
	if err := insertRows(ctx, tx, s.writer.events, eventCols, events); err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	if err := insertRows(ctx, tx, s.writer.dedup, dedupCols, dedup); err != nil {
		return nil, fmt.Errorf("remember messageIds: %w", err)
	}
	for ws, head := range heads {
		if _, err := tx.StmtContext(ctx, s.writer.moveHead).ExecContext(ctx, ws, head); err != nil {
			return nil, fmt.Errorf("move log head: %w", err)
		}
	}
	for _, q := range b.Quarantine {
		if _, err := tx.StmtContext(ctx, s.writer.quarantine).ExecContext(ctx, q.Workspace, q.Source, q.MessageID,
			micros(q.ReceivedAt), q.Code, q.Reason, q.Signals.IP, q.Signals.UserAgent, q.Signals.Origin,
			boolInt(q.Signals.GPC), []byte(q.Raw)); err != nil {
			return nil, fmt.Errorf("quarantine event: %w", err)
		}
	}
	return res, nil
}

// knownIDs looks up the batch's messageIds in the dedup table, per
// workspace, in chunks of lookupSizes.
func (s *Store) knownIDs(ctx context.Context, tx *sql.Tx, events []store.Event) (map[dedupKey]seenID, error) {
	known := map[dedupKey]seenID{}
	byWS := map[string][]any{}
	for _, e := range events {
		if e.MessageID != "" {
			byWS[e.Workspace] = append(byWS[e.Workspace], e.MessageID)
		}
	}
	args := make([]any, 1+lookupSizes[0])
	for ws, ids := range byWS {
		args[0] = ws
		for len(ids) > 0 {
			size := lookupSizes[0]
			if len(ids) <= lookupSizes[1] {
				size = lookupSizes[1]
			}
			chunk := args[:1+size]
			n := copy(chunk[1:], ids)
			for i := 1 + n; i < len(chunk); i++ {
				chunk[i] = ""
			}
			ids = ids[n:]
			if err := scanKnown(ctx, tx.StmtContext(ctx, s.writer.lookup[size]), chunk, ws, known); err != nil {
				return nil, fmt.Errorf("look up messageIds: %w", err)
			}
		}
	}
	return known, nil
}

func scanKnown(ctx context.Context, lookup *sql.Stmt, args []any, ws string, known map[dedupKey]seenID) error {
	rows, err := lookup.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var k seenID
		if err := rows.Scan(&id, &k.position, &k.receivedAt); err != nil {
			return err
		}
		known[dedupKey{ws, id}] = k
	}
	return rows.Err()
}

const eventColumns = `position, source, message_id, type, name, user_id, anonymous_id, timestamp, received_at,
	flags, format, ip, user_agent, origin, gpc, raw`

// Read returns events matching q; see store.Log.
func (s *Store) Read(ctx context.Context, q store.LogQuery) ([]store.Event, error) {
	where := []string{"workspace = ?"}
	args := []any{q.Workspace}
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if q.After > 0 {
		add("position > ?", q.After)
	}
	if q.Before > 0 {
		add("position < ?", q.Before)
	}
	if len(q.Positions) > 0 {
		where = append(where, "position IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(q.Positions)), ", ")+")")
		for _, p := range q.Positions {
			args = append(args, p)
		}
	}
	for col, v := range map[string]string{"source": q.Source, "type": q.Type, "name": q.Name, "user_id": q.UserID, "anonymous_id": q.AnonymousID} {
		if v != "" {
			add(col+" = ?", v)
		}
	}
	if !q.Since.IsZero() {
		add("timestamp >= ?", micros(q.Since))
	}
	if !q.Until.IsZero() {
		add("timestamp < ?", micros(q.Until))
	}
	order := "ASC"
	if q.Descending {
		order = "DESC"
	}
	args = append(args, store.PageSize(q.Limit))
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE `+strings.Join(where, " AND ")+
		` ORDER BY position `+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		e := store.Event{Workspace: q.Workspace}
		var ts, rx int64
		var gpc int
		var raw []byte
		if err := rows.Scan(&e.Position, &e.Source, &e.MessageID, &e.Type, &e.Name, &e.UserID, &e.AnonymousID,
			&ts, &rx, &e.Flags, &e.Format, &e.Signals.IP, &e.Signals.UserAgent, &e.Signals.Origin, &gpc, &raw); err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		e.Timestamp, e.ReceivedAt, e.Signals.GPC, e.Raw = fromMicros(ts), fromMicros(rx), gpc == 1, raw
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
}

// Head returns the highest stored position of a workspace.
func (s *Store) Head(ctx context.Context, workspace string) (int64, error) {
	var h int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) FROM events WHERE workspace = ?`, workspace).Scan(&h); err != nil {
		return 0, fmt.Errorf("read log head: %w", err)
	}
	return h, nil
}

// DeleteBefore deletes events received before t, except keepTypes.
func (s *Store) DeleteBefore(ctx context.Context, workspace string, t time.Time, keepTypes []string) (int64, error) {
	q := `DELETE FROM events WHERE workspace = ? AND received_at < ?`
	args := []any{workspace, micros(t)}
	if len(keepTypes) > 0 {
		q += ` AND type NOT IN (?` + strings.Repeat(", ?", len(keepTypes)-1) + `)`
		for _, k := range keepTypes {
			args = append(args, k)
		}
	}
	return s.exec(ctx, "apply retention", q, args...)
}

// PruneDedup forgets messageIds received before t. Heads live in
// log_heads, so positions are never handed out twice.
func (s *Store) PruneDedup(ctx context.Context, t time.Time) (int64, error) {
	return s.exec(ctx, "prune messageIds", `DELETE FROM dedup WHERE received_at < ?`, micros(t))
}

func (s *Store) exec(ctx context.Context, doing, q string, args ...any) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", doing, err)
	}
	return n, nil
}

const quarantineColumns = `id, workspace, source, message_id, received_at, code, reason, ip, user_agent, origin, gpc, raw`

func scanQuarantined(sc interface{ Scan(...any) error }) (store.Quarantined, error) {
	var q store.Quarantined
	var rx int64
	var gpc int
	var raw []byte
	err := sc.Scan(&q.ID, &q.Workspace, &q.Source, &q.MessageID, &rx, &q.Code, &q.Reason,
		&q.Signals.IP, &q.Signals.UserAgent, &q.Signals.Origin, &gpc, &raw)
	q.ReceivedAt, q.Signals.GPC, q.Raw = fromMicros(rx), gpc == 1, raw
	return q, err
}

// ListQuarantine pages through a workspace's quarantine.
func (s *Store) ListQuarantine(ctx context.Context, q store.QuarantineQuery) ([]store.Quarantined, error) {
	query := `SELECT ` + quarantineColumns + ` FROM quarantine WHERE workspace = ? AND id > ?`
	args := []any{q.Workspace, q.After}
	if q.Code != "" {
		query += ` AND code = ?`
		args = append(args, q.Code)
	}
	args = append(args, store.PageSize(q.Limit))
	rows, err := s.r.QueryContext(ctx, query+` ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	defer rows.Close()
	var out []store.Quarantined
	for rows.Next() {
		item, err := scanQuarantined(rows)
		if err != nil {
			return nil, fmt.Errorf("list quarantine: %w", err)
		}
		out = append(out, item)
	}
	return out, rows.Err()
}

// GetQuarantined returns one quarantined event.
func (s *Store) GetQuarantined(ctx context.Context, workspace string, id int64) (store.Quarantined, error) {
	q, err := scanQuarantined(s.r.QueryRowContext(ctx, `SELECT `+quarantineColumns+` FROM quarantine WHERE workspace = ? AND id = ?`, workspace, id))
	if errors.Is(err, sql.ErrNoRows) {
		return q, store.ErrNotFound
	}
	if err != nil {
		return q, fmt.Errorf("read quarantine: %w", err)
	}
	return q, nil
}

// ReplayQuarantined appends b and removes quarantined event id atomically.
func (s *Store) ReplayQuarantined(ctx context.Context, workspace string, id int64, b *store.Batch, dedupWindow time.Duration) ([]store.Appended, error) {
	var res []store.Appended
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE workspace = ? AND id = ?`, workspace, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		res, err = s.appendTx(ctx, tx, b, dedupWindow)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replay quarantined event: %w", err)
	}
	return res, nil
}

// DeleteQuarantined discards one quarantined event.
func (s *Store) DeleteQuarantined(ctx context.Context, workspace string, id int64) error {
	n, err := s.exec(ctx, "delete quarantined event", `DELETE FROM quarantine WHERE workspace = ? AND id = ?`, workspace, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
