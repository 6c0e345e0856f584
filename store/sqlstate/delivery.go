package sqlstate

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
)

// This file implements store.DeliveryStore. Its tables (delivery_*) are not
// derived state: Reset does not list them, so cursors, dead letters, the
// ledger and replays survive a replay of the log.

const cursorCols = `workspace, destination, owner, epoch, log, outbox, status, reason, until_ns, updated_at`

func scanCursor(r interface{ Scan(...any) error }) (store.DeliveryCursor, error) {
	var c store.DeliveryCursor
	var until, updated int64
	err := r.Scan(&c.Workspace, &c.Destination, &c.Owner, &c.Epoch, &c.Log, &c.Outbox, &c.Status, &c.Reason, &until, &updated)
	c.Until, c.UpdatedAt = fromNanos(until), fromNanos(updated)
	return c, err
}

// newCursor inserts a destination's cursor row unless it exists: with epoch
// 0, which AcquireDelivery reads as "not started yet".
const newCursor = `INSERT INTO delivery_cursors (` + cursorCols + `)
	VALUES (?, ?, '', 0, 0, 0, ?, ?, 0, ?) ON CONFLICT (workspace, destination) DO `

// AcquireDelivery takes or renews a destination's lease (see
// store.DeliveryStore). The first acquisition (epoch 0) also starts the
// cursors at startLog and startOutbox, even when SetDeliveryStatus created
// the row before.
func (s *State) AcquireDelivery(ctx context.Context, workspace, destination, owner string, ttl time.Duration, startLog, startOutbox int64) (store.DeliveryCursor, error) {
	now := s.now()
	var c store.DeliveryCursor
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, newCursor+`NOTHING`, workspace, destination, store.DestinationActive, "", now.UnixNano()); err != nil {
			return fmt.Errorf("acquire delivery: %w", err)
		}
		var err error
		c, err = scanCursor(tx.QueryRowContext(ctx, s.q(`UPDATE delivery_cursors
			SET log = CASE WHEN epoch = 0 THEN ? ELSE log END, outbox = CASE WHEN epoch = 0 THEN ? ELSE outbox END,
				epoch = CASE WHEN owner = ? AND epoch > 0 THEN epoch ELSE epoch + 1 END, owner = ?, until_ns = ?, updated_at = ?
			WHERE workspace = ? AND destination = ? AND (owner = ? OR until_ns < ?)
			RETURNING `+cursorCols), startLog, startOutbox, owner, owner, now.Add(ttl).UnixNano(), now.UnixNano(),
			workspace, destination, owner, now.UnixNano()))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrLeaseHeld
		}
		if err != nil {
			return fmt.Errorf("acquire delivery: %w", err)
		}
		return nil
	})
	return c, err
}

// ReleaseDelivery lets another owner take the lease at once.
func (s *State) ReleaseDelivery(ctx context.Context, c store.DeliveryCursor) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE delivery_cursors SET until_ns = 0 WHERE workspace = ? AND destination = ? AND owner = ? AND epoch = ?`,
			c.Workspace, c.Destination, c.Owner, c.Epoch); err != nil {
			return fmt.Errorf("release delivery: %w", err)
		}
		return nil
	})
}

// Progress applies a batch of deliveries (see store.DeliveryProgress).
//
// It commits synchronously. It could commit on PostgreSQL without waiting
// for the WAL flush (Dialect.NoSync, as folding does) without weakening a
// guarantee: a Progress lost in a crash of the database server (never one
// before a later synchronous commit, such as an acknowledged Append) moves
// the cursors back with its ledger rows and dead letters, so its
// deliveries are sent again with the same idempotency keys and recorded
// once — what a crash of the delivering node between sending and Progress
// already does. It is not done because it gained nothing measurable
// (BenchmarkProgress on PostgreSQL 51,000-59,000 events/s either way, 2026-12-03:
// the flush took under 1 ms on that disk; the ledger upsert is the cost).
func (s *State) Progress(ctx context.Context, p *store.DeliveryProgress) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// The epoch check comes first: on PostgreSQL it locks the cursor
		// row, so Progress calls of one destination run one after another.
		res, err := s.exec(ctx, tx, `UPDATE delivery_cursors SET log = {greatest}(log, ?), outbox = {greatest}(outbox, ?), updated_at = ?
			WHERE workspace = ? AND destination = ? AND epoch = ?`, p.Log, p.Outbox, s.now().UnixNano(), p.Workspace, p.Destination, p.Epoch)
		if err != nil {
			return fmt.Errorf("delivery progress: move cursors: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return store.ErrLeaseLost
		}
		if err := s.ledger(ctx, tx, p); err != nil {
			return fmt.Errorf("delivery progress: ledger: %w", err)
		}
		if len(p.Dead) > 0 {
			args := make([]any, 0, 12*len(p.Dead))
			for _, d := range p.Dead {
				args = append(args, p.Workspace, p.Destination, d.Key, d.Kind, d.Position, int64(d.Profile), string(d.Payload),
					d.Error, int64(d.Attempts), nanos(d.FirstAt), nanos(d.LastAt), d.Replay)
			}
			if err := s.insert(ctx, tx, `INSERT INTO delivery_dead_letters (workspace, destination, key, kind, position, profile,
				payload, error, attempts, first_at, last_at, replay)`, 12, "", args); err != nil {
				return fmt.Errorf("delivery progress: dead letters: %w", err)
			}
		}
		if len(p.Redelivered) > 0 {
			args := make([]any, 0, 2*len(p.Redelivered))
			for _, id := range p.Redelivered {
				args = append(args, p.Destination, id)
			}
			if err := s.deleteRows(ctx, tx, "delivery_dead_letters", []string{"destination", "id"}, p.Workspace, args); err != nil {
				return fmt.Errorf("delivery progress: redelivered dead letters: %w", err)
			}
		}
		if r := p.Replay; r != nil {
			if _, err := s.exec(ctx, tx, `UPDATE delivery_replays SET cursor = {greatest}(cursor, ?),
				outbox_cursor = {greatest}(outbox_cursor, ?), done = (done OR ?)
				WHERE workspace = ? AND destination = ? AND id = ?`,
				r.Cursor, r.OutboxCursor, r.Done, p.Workspace, p.Destination, r.ID); err != nil {
				return fmt.Errorf("delivery progress: replay: %w", err)
			}
		}
		return nil
	})
}

// ledgerKey is a ledger row of a Progress's workspace and destination.
type ledgerKey struct {
	profile int64
	day     int64
}

type ledgerRow struct {
	deliveries int64
	kinds      []string
	last       int64
}

// ledgerDay returns the Unix nanoseconds of the midnight (UTC) that starts
// an entry's day: of Day, or of Last if Day is not set.
func ledgerDay(e *store.LedgerEntry) int64 {
	d := e.Day
	if d.IsZero() {
		d = e.Last
	}
	return d.UTC().Truncate(24 * time.Hour).UnixNano()
}

// ledgerUpsert adds a row's deliveries, keeps its latest delivery and adds
// one kind (excluded.kinds, or none if empty) to the row's comma-separated
// set of kinds unless the set holds it. The set is kept in the order the
// kinds came; Ledger sorts it.
const ledgerUpsert = `ON CONFLICT (workspace, profile, destination, day) DO UPDATE SET
	deliveries = delivery_ledger.deliveries + excluded.deliveries,
	kinds = CASE
		WHEN excluded.kinds = '' OR length(replace(',' || delivery_ledger.kinds || ',', ',' || excluded.kinds || ',', '')) < length(delivery_ledger.kinds) + 2
			THEN delivery_ledger.kinds
		WHEN delivery_ledger.kinds = '' THEN excluded.kinds
		ELSE delivery_ledger.kinds || ',' || excluded.kinds END,
	last = {greatest}(delivery_ledger.last, excluded.last)`

// ledger upserts p's ledger entries, coalesced by profile and day: counts
// add up, kinds merge as sets, last keeps the latest. Kinds are merged in
// SQL, one kind per row and statement: the first statement upserts every
// row with its first kind, and the i-th the rows with more than i kinds with
// their i-th kind (and nothing to add). A batch's rows mostly have one kind,
// so it is mostly one statement, without reading the rows first.
func (s *State) ledger(ctx context.Context, tx *sql.Tx, p *store.DeliveryProgress) error {
	if len(p.Ledger) == 0 {
		return nil
	}
	rows := make(map[ledgerKey]*ledgerRow, len(p.Ledger))
	order := make([]ledgerKey, 0, len(p.Ledger))
	for i := range p.Ledger {
		e := &p.Ledger[i]
		k := ledgerKey{int64(e.Profile), ledgerDay(e)}
		r := rows[k]
		if r == nil {
			r = &ledgerRow{}
			rows[k] = r
			order = append(order, k)
		}
		r.deliveries += e.Deliveries
		for _, kind := range e.Kinds {
			if strings.Contains(kind, ",") {
				return fmt.Errorf("kind %q has a comma", kind)
			}
			if kind != "" && !slices.Contains(r.kinds, kind) {
				r.kinds = append(r.kinds, kind)
			}
		}
		r.last = max(r.last, nanos(e.Last))
	}
	// In key order: the upserts walk the primary key's index forwards.
	slices.SortFunc(order, func(a, b ledgerKey) int {
		return cmp.Or(cmp.Compare(a.profile, b.profile), cmp.Compare(a.day, b.day))
	})
	args := make([]any, 0, 7*len(order))
	for pass := 0; ; pass++ {
		args = args[:0]
		for _, k := range order {
			r := rows[k]
			switch {
			case pass == 0 && len(r.kinds) == 0:
				args = append(args, p.Workspace, k.profile, p.Destination, k.day, r.deliveries, "", r.last)
			case pass == 0:
				args = append(args, p.Workspace, k.profile, p.Destination, k.day, r.deliveries, r.kinds[0], r.last)
			case pass < len(r.kinds):
				args = append(args, p.Workspace, k.profile, p.Destination, k.day, int64(0), r.kinds[pass], int64(0))
			}
		}
		if len(args) == 0 {
			return nil
		}
		if err := s.insertEach(ctx, tx, `INSERT INTO delivery_ledger (workspace, profile, destination, day, deliveries, kinds, last)`, 7,
			ledgerUpsert, args); err != nil {
			return err
		}
	}
}

// insertEach runs head VALUES (…) tail for args holding cols values per
// row, as InsertRows does, but on SQLite with one prepared single-row
// statement per row: a multi-row upsert into a table that holds its rows
// makes SQLite keep a statement journal, a temporary file written a page at
// a time (a fifth of a Progress's time).
func (s *State) insertEach(ctx context.Context, tx *sql.Tx, head string, cols int, tail string, args []any) error {
	if s.d.Unnest {
		return s.insert(ctx, tx, head, cols, tail, args)
	}
	stmt, err := tx.PrepareContext(ctx, s.q(head+` VALUES (`+strings.TrimSuffix(strings.Repeat("?, ", cols), ", ")+`) `+tail))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for ; len(args) >= cols; args = args[cols:] {
		if _, err := stmt.ExecContext(ctx, args[:cols]...); err != nil {
			return err
		}
	}
	return nil
}

// SetDeliveryStatus sets a destination's status and reason.
func (s *State) SetDeliveryStatus(ctx context.Context, workspace, destination, status, reason string) error {
	switch status {
	case store.DestinationActive, store.DestinationPaused, store.DestinationDisabled:
	default:
		return fmt.Errorf("set delivery status: unknown status %q", status)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, newCursor+`UPDATE SET status = excluded.status, reason = excluded.reason, updated_at = excluded.updated_at`,
			workspace, destination, status, reason, s.now().UnixNano()); err != nil {
			return fmt.Errorf("set delivery status: %w", err)
		}
		return nil
	})
}

// Deliveries returns a workspace's cursors by destination.
func (s *State) Deliveries(ctx context.Context, workspace string) ([]store.DeliveryCursor, error) {
	var out []store.DeliveryCursor
	err := s.query(ctx, "delivery cursors", func(r *sql.Rows) error {
		c, err := scanCursor(r)
		out = append(out, c)
		return err
	}, `SELECT `+cursorCols+` FROM delivery_cursors WHERE workspace = ? ORDER BY destination`, workspace)
	return out, err
}

const deadCols = `id, workspace, destination, key, kind, position, profile, payload, error, attempts, first_at, last_at, replay`

func (s *State) deadLetters(ctx context.Context, what, where string, args ...any) ([]store.DeadLetter, error) {
	var out []store.DeadLetter
	err := s.query(ctx, what, func(r *sql.Rows) error {
		var d store.DeadLetter
		var payload string
		var first, last int64
		if err := r.Scan(&d.ID, &d.Workspace, &d.Destination, &d.Key, &d.Kind, &d.Position, &d.Profile, &payload,
			&d.Error, &d.Attempts, &first, &last, &d.Replay); err != nil {
			return err
		}
		if payload != "" {
			d.Payload = []byte(payload)
		}
		d.FirstAt, d.LastAt = fromNanos(first), fromNanos(last)
		out = append(out, d)
		return nil
	}, `SELECT `+deadCols+` FROM delivery_dead_letters WHERE workspace = ? AND destination = ? `+where+` ORDER BY id LIMIT ?`, args...)
	return out, err
}

// DeadLetters pages through a destination's dead letters by ID.
func (s *State) DeadLetters(ctx context.Context, workspace, destination string, after int64, limit int) ([]store.DeadLetter, error) {
	return s.deadLetters(ctx, "dead letters", `AND id > ?`, workspace, destination, after, store.PageSize(limit))
}

// ReplayQueue returns a destination's flagged dead letters by ID.
func (s *State) ReplayQueue(ctx context.Context, workspace, destination string, limit int) ([]store.DeadLetter, error) {
	return s.deadLetters(ctx, "replay queue", `AND replay`, workspace, destination, store.PageSize(limit))
}

// MarkReplay flags dead letters to be sent again; it counts those it
// flagged (not those flagged already).
func (s *State) MarkReplay(ctx context.Context, workspace, destination string, ids []int64) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		const update = `UPDATE delivery_dead_letters SET replay = TRUE WHERE workspace = ? AND destination = ? AND NOT replay`
		if len(ids) == 0 {
			res, err := s.exec(ctx, tx, update, workspace, destination)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		}
		if s.d.Unnest {
			res, err := s.exec(ctx, tx, update+` AND id = ANY(CAST(? AS BIGINT[]))`, workspace, destination, ids)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		}
		stmt, err := tx.PrepareContext(ctx, s.q(update+` AND id = ?`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, id := range ids {
			res, err := stmt.ExecContext(ctx, workspace, destination, id)
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
		return 0, fmt.Errorf("mark dead letters for replay: %w", err)
	}
	return n, nil
}

const replayCols = `id, workspace, destination, since, until_ns, cursor, outbox_cursor, done, created_at`

func scanReplay(r interface{ Scan(...any) error }) (store.Replay, error) {
	var x store.Replay
	var since, until, created int64
	err := r.Scan(&x.ID, &x.Workspace, &x.Destination, &since, &until, &x.Cursor, &x.OutboxCursor, &x.Done, &created)
	x.Since, x.Until, x.CreatedAt = fromNanos(since), fromNanos(until), fromNanos(created)
	return x, err
}

// AddReplay records a range replay; CreatedAt is set to now.
func (s *State) AddReplay(ctx context.Context, r store.Replay) (store.Replay, error) {
	var out store.Replay
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanReplay(tx.QueryRowContext(ctx, s.q(`INSERT INTO delivery_replays (workspace, destination, since, until_ns,
			cursor, outbox_cursor, done, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+replayCols),
			r.Workspace, r.Destination, nanos(r.Since), nanos(r.Until), r.Cursor, r.OutboxCursor, r.Done, s.now().UnixNano()))
		return err
	})
	if err != nil {
		return store.Replay{}, fmt.Errorf("add replay: %w", err)
	}
	return out, nil
}

// Replays returns a destination's replays that are not done, oldest first.
func (s *State) Replays(ctx context.Context, workspace, destination string) ([]store.Replay, error) {
	var out []store.Replay
	err := s.query(ctx, "replays", func(r *sql.Rows) error {
		x, err := scanReplay(r)
		out = append(out, x)
		return err
	}, `SELECT `+replayCols+` FROM delivery_replays WHERE workspace = ? AND destination = ? AND NOT done ORDER BY id`, workspace, destination)
	return out, err
}

// Ledger returns what each destination received about a profile.
func (s *State) Ledger(ctx context.Context, workspace string, p store.ProfileID) ([]store.LedgerEntry, error) {
	var out []store.LedgerEntry
	err := s.query(ctx, "delivery ledger", func(r *sql.Rows) error {
		e := store.LedgerEntry{Workspace: workspace, Profile: p}
		var d, last int64
		var kinds string
		if err := r.Scan(&e.Destination, &d, &e.Deliveries, &kinds, &last); err != nil {
			return err
		}
		if kinds != "" {
			e.Kinds = strings.Split(kinds, ",")
			slices.Sort(e.Kinds)
		}
		e.Day, e.Last = fromNanos(d), fromNanos(last)
		out = append(out, e)
		return nil
	}, `SELECT destination, day, deliveries, kinds, last FROM delivery_ledger WHERE workspace = ? AND profile = ?
		ORDER BY destination, day`, workspace, int64(p))
	return out, err
}
