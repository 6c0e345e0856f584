package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kithcdp/kith/store"
)

// Append commits b in one transaction; see the package documentation for
// how positions stay gap-free. A dedupWindow <= 0 means a messageId is a
// duplicate for as long as its dedup entry is kept (until PruneDedup).
func (s *Store) Append(ctx context.Context, b *store.Batch, dedupWindow time.Duration) ([]store.Appended, error) {
	if len(b.Events) == 0 && len(b.Quarantine) == 0 {
		return []store.Appended{}, nil
	}
	var res appended
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = appendTx(ctx, tx, b, dedupWindow)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	res.fill(b)
	return res.events, nil
}

// appended is the outcome of appendTx, applied to the batch only once the
// transaction has committed.
type appended struct {
	events        []store.Appended
	quarantineIDs []int64
}

func (r appended) fill(b *store.Batch) {
	for i := range b.Events {
		b.Events[i].Position = r.events[i].Position
	}
	for i := range b.Quarantine {
		b.Quarantine[i].ID = r.quarantineIDs[i]
	}
}

type dedupKey struct{ workspace, messageID string }

type dedupEntry struct {
	position   int64
	receivedAt time.Time
}

// appendTx writes b in tx in two round trips: the first locks the heads of
// the batch's workspaces and looks up its messageIds; then the new events
// are numbered, and they, their dedup entries and the quarantine are
// written.
func appendTx(ctx context.Context, tx pgx.Tx, b *store.Batch, dedupWindow time.Duration) (appended, error) {
	res := appended{events: make([]store.Appended, len(b.Events))}
	heads, known, err := lockHeadsAndLookup(ctx, tx, b.Events)
	if err != nil {
		return res, err
	}

	var rows eventColumns
	var dedup dedupColumns
	first := make(map[dedupKey]int) // first index of each messageId in b
	for i, e := range b.Events {
		k := dedupKey{e.Workspace, e.MessageID}
		if e.MessageID != "" {
			if j, ok := first[k]; ok {
				res.events[i] = store.Appended{Position: res.events[j].Position, Duplicate: true}
				continue
			}
			first[k] = i
			if d, ok := known[k]; ok && (dedupWindow <= 0 || e.ReceivedAt.Sub(d.receivedAt) <= dedupWindow) {
				res.events[i] = store.Appended{Position: d.position, Duplicate: true}
				continue
			}
		}
		heads[e.Workspace]++
		pos := heads[e.Workspace]
		res.events[i] = store.Appended{Position: pos}
		rows.add(e, pos)
		if e.MessageID != "" {
			dedup.add(k, dedupEntry{pos, e.ReceivedAt})
		}
	}

	batch := &pgx.Batch{}
	if len(rows.position) > 0 {
		var workspaces []string
		var lasts []int64
		for w, last := range heads {
			workspaces = append(workspaces, w)
			lasts = append(lasts, last)
		}
		batch.Queue(`UPDATE log_heads h SET last_position = v.last
			FROM unnest($1::text[], $2::bigint[]) AS v(workspace, last)
			WHERE h.workspace = v.workspace AND h.last_position <> v.last`, workspaces, lasts)
		batch.Queue(insertEvents, rows.args()...)
		if len(dedup.position) > 0 {
			batch.Queue(upsertDedup, dedup.args()...)
		}
		batch.Queue(`SELECT pg_notify('kith_log', w) FROM unnest($1::text[]) AS w`, rows.workspaces())
	}
	if len(b.Quarantine) > 0 {
		batch.Queue(insertQuarantine, quarantineArgs(b.Quarantine)...).Query(func(r pgx.Rows) error {
			ids, err := pgx.CollectRows(r, pgx.RowTo[int64])
			// Identities are drawn in input order (see insertQuarantine).
			slices.Sort(ids)
			res.quarantineIDs = ids
			return err
		})
	}
	if batch.Len() == 0 {
		return res, nil
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return res, fmt.Errorf("write events: %w", err)
	}
	return res, nil
}

// lockHeadsAndLookup locks the log_heads rows of the events' workspaces and returns
// their last positions, and the dedup entries stored for the events'
// messageIds. Missing heads are created first, before any head is locked (a
// transaction that waits for a concurrent creator holds no head yet), and
// heads are locked in workspace order, so that batches spanning several
// workspaces cannot deadlock. The dedup lookup runs after the lock, so it
// sees every entry committed before.
func lockHeadsAndLookup(ctx context.Context, tx pgx.Tx, events []store.Event) (map[string]int64, map[dedupKey]dedupEntry, error) {
	var workspaces, dedupWorkspaces, ids []string
	for _, e := range events {
		workspaces = append(workspaces, e.Workspace)
		if e.MessageID != "" {
			dedupWorkspaces = append(dedupWorkspaces, e.Workspace)
			ids = append(ids, e.MessageID)
		}
	}
	slices.Sort(workspaces)
	workspaces = slices.Compact(workspaces)
	heads := make(map[string]int64, len(workspaces))
	known := make(map[dedupKey]dedupEntry)
	if len(workspaces) == 0 {
		return heads, known, nil
	}

	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO log_heads (workspace, last_position)
		SELECT unnest($1::text[]), 0 ON CONFLICT DO NOTHING`, workspaces)
	batch.Queue(`SELECT workspace, last_position FROM log_heads
		WHERE workspace = ANY($1) ORDER BY workspace FOR UPDATE`, workspaces).Query(func(rows pgx.Rows) error {
		var w string
		var last int64
		_, err := pgx.ForEachRow(rows, []any{&w, &last}, func() error {
			heads[w] = last
			return nil
		})
		return err
	})
	if len(ids) > 0 {
		batch.Queue(`SELECT d.workspace, d.message_id, d.position, d.received_at
			FROM unnest($1::text[], $2::text[]) AS k(workspace, message_id)
			JOIN log_dedup d ON d.workspace = k.workspace AND d.message_id = k.message_id`,
			dedupWorkspaces, ids).Query(func(rows pgx.Rows) error {
			var k dedupKey
			var d dedupEntry
			_, err := pgx.ForEachRow(rows, []any{&k.workspace, &k.messageID, &d.position, &d.receivedAt}, func() error {
				known[k] = d
				return nil
			})
			return err
		})
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, nil, fmt.Errorf("lock log heads: %w", err)
	}
	return heads, known, nil
}

const insertEvents = `INSERT INTO log_events (workspace, position, source, message_id, type, name,
	user_id, anonymous_id, timestamp, received_at, flags, format, ip, user_agent, origin, gpc, raw)
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
	$7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::int[], $12::int[],
	$13::text[], $14::text[], $15::text[], $16::bool[], $17::bytea[])`

// eventColumns holds new events column by column, as arrays for unnest.
type eventColumns struct {
	workspace, source, messageID, typ, name, userID, anonymousID []string
	ip, userAgent, origin                                        []string
	position                                                     []int64
	timestamp, receivedAt                                        []time.Time
	flags, format                                                []int32
	gpc                                                          []bool
	raw                                                          [][]byte
}

func (c *eventColumns) add(e store.Event, pos int64) {
	c.workspace = append(c.workspace, e.Workspace)
	c.position = append(c.position, pos)
	c.source = append(c.source, e.Source)
	c.messageID = append(c.messageID, e.MessageID)
	c.typ = append(c.typ, e.Type)
	c.name = append(c.name, e.Name)
	c.userID = append(c.userID, e.UserID)
	c.anonymousID = append(c.anonymousID, e.AnonymousID)
	c.timestamp = append(c.timestamp, e.Timestamp)
	c.receivedAt = append(c.receivedAt, e.ReceivedAt)
	c.flags = append(c.flags, int32(e.Flags))
	c.format = append(c.format, int32(e.Format))
	c.ip = append(c.ip, e.Signals.IP)
	c.userAgent = append(c.userAgent, e.Signals.UserAgent)
	c.origin = append(c.origin, e.Signals.Origin)
	c.gpc = append(c.gpc, e.Signals.GPC)
	c.raw = append(c.raw, e.Raw)
}

func (c *eventColumns) args() []any {
	return []any{c.workspace, c.position, c.source, c.messageID, c.typ, c.name,
		c.userID, c.anonymousID, c.timestamp, c.receivedAt, c.flags, c.format,
		c.ip, c.userAgent, c.origin, c.gpc, c.raw}
}

// workspaces returns the distinct workspaces of the new events.
func (c *eventColumns) workspaces() []string {
	ws := slices.Clone(c.workspace)
	slices.Sort(ws)
	return slices.Compact(ws)
}

// upsertDedup records new messageIds; an entry that exists was found
// expired by appendTx and is replaced.
const upsertDedup = `INSERT INTO log_dedup (workspace, message_id, position, received_at)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[])
	ON CONFLICT (workspace, message_id)
	DO UPDATE SET position = excluded.position, received_at = excluded.received_at`

type dedupColumns struct {
	workspace, messageID []string
	position             []int64
	receivedAt           []time.Time
}

func (c *dedupColumns) add(k dedupKey, d dedupEntry) {
	c.workspace = append(c.workspace, k.workspace)
	c.messageID = append(c.messageID, k.messageID)
	c.position = append(c.position, d.position)
	c.receivedAt = append(c.receivedAt, d.receivedAt)
}

func (c *dedupColumns) args() []any {
	return []any{c.workspace, c.messageID, c.position, c.receivedAt}
}

// insertQuarantine inserts rows in input order (ORDER BY ord), so their
// identities are drawn in that order.
const insertQuarantine = `INSERT INTO quarantine (workspace, source, message_id, received_at,
	code, reason, ip, user_agent, origin, gpc, raw)
	SELECT workspace, source, message_id, received_at, code, reason, ip, user_agent, origin, gpc, raw
	FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::text[], $10::bool[], $11::bytea[])
		WITH ORDINALITY AS q(workspace, source, message_id, received_at, code, reason,
		ip, user_agent, origin, gpc, raw, ord)
	ORDER BY ord
	RETURNING id`

func quarantineArgs(qs []store.Quarantined) []any {
	n := len(qs)
	workspace, source, messageID, code, reason := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ip, userAgent, origin := make([]string, n), make([]string, n), make([]string, n)
	receivedAt, gpc, raw := make([]time.Time, n), make([]bool, n), make([][]byte, n)
	for i, q := range qs {
		workspace[i], source[i], messageID[i], receivedAt[i] = q.Workspace, q.Source, q.MessageID, q.ReceivedAt
		code[i], reason[i] = q.Code, q.Reason
		ip[i], userAgent[i], origin[i], gpc[i] = q.Signals.IP, q.Signals.UserAgent, q.Signals.Origin, q.Signals.GPC
		raw[i] = q.Raw
	}
	return []any{workspace, source, messageID, receivedAt, code, reason, ip, userAgent, origin, gpc, raw}
}

// eventCols are the columns Read scans.
const eventCols = `position, workspace, source, message_id, type, name,
	user_id, anonymous_id, timestamp, received_at, flags, format, ip, user_agent, origin, gpc, raw`

// Read returns the events matching q in position order (newest first if
// q.Descending). Limit defaults to 100 and is capped at 1000.

func (s *Store) Read(ctx context.Context, q store.LogQuery) ([]store.Event, error) {
	args := []any{q.Workspace, q.After}
	where := "workspace = $1 AND position > $2"
	filter := func(cond string, v any) {
		args = append(args, v)
		where += " AND " + cond + " $" + strconv.Itoa(len(args))
	}
	if q.Before > 0 {
		filter("position <", q.Before)
	}
	if len(q.Positions) > 0 {
		filter("position = ANY(", q.Positions)
		where += ")"
	}
	for _, f := range []struct{ col, v string }{
		{"source", q.Source}, {"type", q.Type}, {"name", q.Name},
		{"user_id", q.UserID}, {"anonymous_id", q.AnonymousID},
	} {
		if f.v != "" {
			filter(f.col+" =", f.v)
		}
	}
	if !q.Since.IsZero() {
		filter("timestamp >=", q.Since)
	}
	if !q.Until.IsZero() {
		filter("timestamp <", q.Until)
	}
	order := "ASC"
	if q.Descending {
		order = "DESC"
	}
	limit := store.PageSize(q.Limit)
	query := `SELECT ` + eventCols + ` FROM log_events WHERE ` + where + ` ORDER BY position ` + order + ` LIMIT ` + strconv.Itoa(limit)
	if len(args) == 2 && !q.Descending && q.After <= math.MaxInt64-int64(limit) {
		// A cursor's page (folding, delivery) reads the window of positions
		// (After, After+limit] first, which holds the whole page unless the
		// head is near or retention made gaps: only then are positions
		// after the window read, in the same statement. Without the window,
		// the planner's estimate of "position > After" decides the plan:
		// without statistics (a log filled faster than autovacuum analyzes
		// it) it read every event after the cursor through a bitmap and
		// sorted them (70 ms a page of 500 at 50,000 events behind the head,
		// growing with the backlog); the window is a bounded range either
		// way (0.5-4 ms).
		query = `WITH w AS MATERIALIZED (SELECT ` + eventCols + ` FROM log_events
				WHERE workspace = $1 AND position > $2 AND position <= $2 + $3)
			SELECT * FROM w
			UNION ALL
			SELECT * FROM (SELECT ` + eventCols + ` FROM log_events
				WHERE workspace = $1 AND position > $2 + $3 AND (SELECT count(*) FROM w) < $3
				ORDER BY position LIMIT $3) AS after_window
			ORDER BY position LIMIT $3`
		args = append(args, int64(limit))
	}
	rows, _ := s.pool.Query(ctx, query, args...)
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Event, error) {
		var e store.Event
		var raw []byte
		err := r.Scan(&e.Position, &e.Workspace, &e.Source, &e.MessageID, &e.Type, &e.Name,
			&e.UserID, &e.AnonymousID, &e.Timestamp, &e.ReceivedAt, &e.Flags, &e.Format,
			&e.Signals.IP, &e.Signals.UserAgent, &e.Signals.Origin, &e.Signals.GPC, &raw)
		e.Timestamp, e.ReceivedAt, e.Raw = e.Timestamp.UTC(), e.ReceivedAt.UTC(), raw
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return events, nil
}

// Head returns the last position handed out in workspace (0 if none). It is
// committed with the events, so it is the highest visible position.
func (s *Store) Head(ctx context.Context, workspace string) (int64, error) {
	var head int64
	err := s.pool.QueryRow(ctx, `SELECT last_position FROM log_heads WHERE workspace = $1`, workspace).Scan(&head)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("read log head: %w", err)
	}
	return head, nil
}

// DeleteBefore removes the workspace's events received before t whose type
// is not in keepTypes. Positions are never reused.
func (s *Store) DeleteBefore(ctx context.Context, workspace string, t time.Time, keepTypes []string) (int64, error) {
	if keepTypes == nil {
		keepTypes = []string{} // NULL would make the type test unknown
	}
	n, err := s.exec(ctx, `DELETE FROM log_events
		WHERE workspace = $1 AND received_at < $2 AND type <> ALL($3)`, workspace, t, keepTypes)
	if err != nil {
		return 0, fmt.Errorf("delete events before %s: %w", t.Format(time.RFC3339), err)
	}
	return n, nil
}

// PruneDedup forgets messageIds received before t, in all workspaces.
func (s *Store) PruneDedup(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.exec(ctx, `DELETE FROM log_dedup WHERE received_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("prune message ids before %s: %w", t.Format(time.RFC3339), err)
	}
	return n, nil
}

const quarantineColumns = `id, workspace, source, message_id, received_at, code, reason,
	ip, user_agent, origin, gpc, raw`

func scanQuarantined(r pgx.CollectableRow) (store.Quarantined, error) {
	var q store.Quarantined
	var raw []byte
	err := r.Scan(&q.ID, &q.Workspace, &q.Source, &q.MessageID, &q.ReceivedAt, &q.Code, &q.Reason,
		&q.Signals.IP, &q.Signals.UserAgent, &q.Signals.Origin, &q.Signals.GPC, &raw)
	q.ReceivedAt, q.Raw = q.ReceivedAt.UTC(), raw
	return q, err
}

// ListQuarantine pages through a workspace's quarantine by ascending ID.
// Limit defaults to 100 and is capped at 1000.
func (s *Store) ListQuarantine(ctx context.Context, q store.QuarantineQuery) ([]store.Quarantined, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+quarantineColumns+` FROM quarantine
		WHERE workspace = $1 AND id > $2 AND ($3 = '' OR code = $3)
		ORDER BY id LIMIT $4`, q.Workspace, q.After, q.Code, store.PageSize(q.Limit))
	list, err := pgx.CollectRows(rows, scanQuarantined)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return list, nil
}

// GetQuarantined returns one quarantined event, or store.ErrNotFound.
func (s *Store) GetQuarantined(ctx context.Context, workspace string, id int64) (store.Quarantined, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+quarantineColumns+` FROM quarantine
		WHERE workspace = $1 AND id = $2`, workspace, id)
	q, err := pgx.CollectExactlyOneRow(rows, scanQuarantined)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Quarantined{}, fmt.Errorf("get quarantined event %d: %w", id, err)
	}
	return q, nil
}

// ReplayQuarantined deletes quarantined event id and appends b in one
// transaction; it returns store.ErrNotFound if id is gone.
func (s *Store) ReplayQuarantined(ctx context.Context, workspace string, id int64, b *store.Batch, dedupWindow time.Duration) ([]store.Appended, error) {
	var res appended
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM quarantine WHERE workspace = $1 AND id = $2`, workspace, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		res, err = appendTx(ctx, tx, b, dedupWindow)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replay quarantined event %d: %w", id, err)
	}
	res.fill(b)
	return res.events, nil
}

// DeleteQuarantined discards one quarantined event (store.ErrNotFound if
// absent).
func (s *Store) DeleteQuarantined(ctx context.Context, workspace string, id int64) error {
	n, err := s.exec(ctx, `DELETE FROM quarantine WHERE workspace = $1 AND id = $2`, workspace, id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete quarantined event %d: %w", id, err)
	}
	return nil
}
