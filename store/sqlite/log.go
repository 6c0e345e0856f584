package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	res, err := s.appendInTx(ctx, nil, b, dedupWindow)
	if err != nil {
		return nil, fmt.Errorf("append to log: %w", err)
	}
	return res, nil
}

// appendInTx runs before (if set) and appends b in one write transaction,
// and updates the in-memory dedup index once it committed.
func (s *Store) appendInTx(ctx context.Context, before func(*sql.Tx) error, b *store.Batch, window time.Duration) ([]store.Appended, error) {
	s.dedup.mu.Lock()
	defer s.dedup.mu.Unlock()
	var res []store.Appended
	var done func()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if before != nil {
			if err := before(tx); err != nil {
				return err
			}
		}
		var err error
		res, done, err = s.appendTx(ctx, tx, b, window)
		return err
	})
	if err != nil {
		return nil, err
	}
	done()
	return res, nil
}

type dedupKey struct{ workspace, messageID string }

// The writer's statements, prepared once when the store opens (parsing a
// multi-row INSERT took ~12% of a commit's CPU). Rows are inserted in chunks
// of the sizes in insertSizes, largest first, so a batch of n events takes at
// most n/100 + 18 statements; 100 events use 1,700 of SQLite's 32,766
// variables. Hashes are looked up 100 or 10 at a time (lookupSizes), the
// last chunk padded by repeating a hash: a commit of a few single calls pays
// for 10 lookups, not 100.
const (
	eventInsert = `INSERT INTO events (workspace, position, source, message_id, type, name, user_id,
		anonymous_id, timestamp, received_at, flags, format, ip, user_agent, origin, gpc, raw) VALUES `
	eventCols    = 17
	recentInsert = `INSERT INTO dedup_recent (h, position, received_at) VALUES `
	mergeInsert  = `INSERT OR IGNORE INTO dedup_hash (h, position, received_at) VALUES `
	dedupCols    = 3
)

var (
	insertSizes = []int{100, 10, 1}
	lookupSizes = []int{100, 10}
)

// writerStmts are the prepared statements of appendTx.
type writerStmts struct {
	events, recent, merge map[int]*sql.Stmt // multi-row inserts by row count
	lookup                map[int]*sql.Stmt // n hashes of one workspace, by n
	messageID             *sql.Stmt         // the messageId of the event at a position
	recentSince           *sql.Stmt         // dedup_recent rows after a seq
	forgetRecent          *sql.Stmt         // delete dedup_recent rows up to a seq
	head, moveHead        *sql.Stmt
	quarantine            *sql.Stmt
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
	w := &writerStmts{events: map[int]*sql.Stmt{}, recent: map[int]*sql.Stmt{}, merge: map[int]*sql.Stmt{},
		lookup: map[int]*sql.Stmt{}}
	for _, n := range insertSizes {
		w.events[n] = prepare(eventInsert + placeholders(n, eventCols))
		w.recent[n] = prepare(recentInsert + placeholders(n, dedupCols))
		w.merge[n] = prepare(mergeInsert + placeholders(n, dedupCols))
	}
	for _, n := range lookupSizes {
		// The event's message_id comes along, to tell a shared hash from
		// the same messageId; NULL if the event was deleted since.
		w.lookup[n] = prepare(`SELECT d.h, d.position, d.received_at, e.message_id FROM dedup_hash d
			LEFT JOIN events e ON e.workspace = ? AND e.position = d.position WHERE d.h IN ` + placeholders(1, n))
	}
	w.messageID = prepare(`SELECT message_id FROM events WHERE workspace = ? AND position = ?`)
	w.recentSince = prepare(`SELECT seq, h, position, received_at FROM dedup_recent WHERE seq > ? ORDER BY seq`)
	w.forgetRecent = prepare(`DELETE FROM dedup_recent WHERE seq <= ?`)
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
// a row), largest chunks first, and returns the rowid of the last row.
func insertRows(ctx context.Context, tx *sql.Tx, stmts map[int]*sql.Stmt, cols int, args []any) (int64, error) {
	var last int64
	for _, n := range insertSizes {
		for len(args) >= n*cols {
			r, err := tx.StmtContext(ctx, stmts[n]).ExecContext(ctx, args[:n*cols]...)
			if err != nil {
				return 0, err
			}
			if last, err = r.LastInsertId(); err != nil {
				return 0, err
			}
			args = args[n*cols:]
		}
	}
	return last, nil
}

// appendTx writes b inside tx and returns what to do to the in-memory dedup
// index once tx committed. The head of each workspace is read inside the
// write transaction, which SQLite serializes, so positions stay gap-free even
// with another process writing. The caller holds s.dedup.mu.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, b *store.Batch, window time.Duration) ([]store.Appended, func(), error) {
	d := &s.dedup
	if err := d.catchUp(ctx, tx.StmtContext(ctx, s.writer.recentSince)); err != nil {
		return nil, nil, fmt.Errorf("read recent messageIds: %w", err)
	}
	res := make([]store.Appended, len(b.Events))
	known, err := s.knownIDs(ctx, tx, b.Events)
	if err != nil {
		return nil, nil, err
	}
	heads := map[string]int64{}
	seen := map[dedupKey]int64{}
	events := make([]any, 0, len(b.Events)*eventCols)
	recent := make([]any, 0, len(b.Events)*dedupCols)
	var added []dedupEntry
	for i := range b.Events {
		e := &b.Events[i]
		key := dedupKey{e.Workspace, e.MessageID}
		if pos, ok := seen[key]; ok {
			e.Position, res[i] = pos, store.Appended{Position: pos, Duplicate: true}
			continue
		}
		if k, ok := known[i]; ok && (window <= 0 || k.receivedAt >= micros(e.ReceivedAt.Add(-window))) {
			e.Position, res[i] = k.position, store.Appended{Position: k.position, Duplicate: true}
			seen[key] = k.position
			continue
		}
		head, ok := heads[e.Workspace]
		if !ok {
			err := tx.StmtContext(ctx, s.writer.head).QueryRowContext(ctx, e.Workspace).Scan(&head)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, nil, fmt.Errorf("read log head: %w", err)
			}
		}
		head++
		heads[e.Workspace] = head
		e.Position, res[i] = head, store.Appended{Position: head}
		if e.MessageID != "" {
			seen[key] = head
			de := dedupEntry{h: dedupHash(e.Workspace, e.MessageID), position: head, receivedAt: micros(e.ReceivedAt)}
			added = append(added, de)
			recent = append(recent, de.h, de.position, de.receivedAt)
		}
		events = append(events, e.Workspace, head, e.Source, e.MessageID, e.Type, e.Name, e.UserID,
			e.AnonymousID, micros(e.Timestamp), micros(e.ReceivedAt), e.Flags, e.Format,
			e.Signals.IP, e.Signals.UserAgent, e.Signals.Origin, boolInt(e.Signals.GPC), []byte(e.Raw))
	}
	if _, err := insertRows(ctx, tx, s.writer.events, eventCols, events); err != nil {
		return nil, nil, fmt.Errorf("insert events: %w", err)
	}
	lastSeq, err := insertRows(ctx, tx, s.writer.recent, dedupCols, recent)
	if err != nil {
		return nil, nil, fmt.Errorf("remember messageIds: %w", err)
	}
	for ws, head := range heads {
		if _, err := tx.StmtContext(ctx, s.writer.moveHead).ExecContext(ctx, ws, head); err != nil {
			return nil, nil, fmt.Errorf("move log head: %w", err)
		}
	}
	for _, q := range b.Quarantine {
		if _, err := tx.StmtContext(ctx, s.writer.quarantine).ExecContext(ctx, q.Workspace, q.Source, q.MessageID,
			micros(q.ReceivedAt), q.Code, q.Reason, q.Signals.IP, q.Signals.UserAgent, q.Signals.Origin,
			boolInt(q.Signals.GPC), []byte(q.Raw)); err != nil {
			return nil, nil, fmt.Errorf("quarantine event: %w", err)
		}
	}
	// Merge a slice of the frozen messageIds into dedup_hash: twice as many
	// as this commit added, so the merge ends before the next one is due.
	step, err := s.mergeStep(ctx, tx, 2*len(added)+16)
	if err != nil {
		return nil, nil, fmt.Errorf("merge messageIds: %w", err)
	}
	return res, func() {
		for _, de := range added {
			d.add(de)
		}
		if len(added) > 0 {
			d.seq = max(d.seq, lastSeq)
		}
		d.stepped(step)
	}, nil
}

// mergeStep is one commit's share of merging: the next n frozen messageIds
// copied into dedup_hash, and the rows of dedup_recent of a finished merge
// deleted up to n seqs at a time (all at once, 500,000 rows held up one
// commit for most of a second).
func (s *Store) mergeStep(ctx context.Context, tx *sql.Tx, n int) (mergeStep, error) {
	d := &s.dedup
	step := mergeStep{forgotten: d.forgotten}
	if rest := d.frozen[d.next:]; len(rest) > 0 {
		step.merged = min(n, len(rest))
		args := make([]any, 0, step.merged*dedupCols)
		for _, de := range rest[:step.merged] {
			args = append(args, de.h, de.position, de.receivedAt)
		}
		if _, err := insertRows(ctx, tx, s.writer.merge, dedupCols, args); err != nil {
			return mergeStep{}, err
		}
	}
	if d.forgotten < d.forgetThrough {
		step.forgotten = min(d.forgetThrough, d.forgotten+int64(n))
		if _, err := tx.StmtContext(ctx, s.writer.forgetRecent).ExecContext(ctx, step.forgotten); err != nil {
			return mergeStep{}, err
		}
	}
	return step, nil
}

// mergeStep is what one commit did of the merge.
type mergeStep struct {
	merged    int   // frozen entries copied into dedup_hash
	forgotten int64 // dedup_recent holds no row up to this seq
}

// candidate is an earlier event that may hold an incoming messageId: same
// hash, same workspace if the event still exists.
type candidate struct {
	position, receivedAt int64
	messageID            sql.NullString // the event's; invalid if not read or the event is gone
	read                 bool           // messageID was read
}

// knownIDs finds, for each event of the batch with a messageId, the newest
// earlier event of its workspace with that messageId, by the index of the
// event in events. Candidates come from memory (dedup_recent) and from
// dedup_hash; a candidate whose event holds another messageId (a shared
// hash) is not the same messageId. One whose event was deleted (retention)
// cannot be compared and is taken as the same: a new event is then dropped
// with a chance of about n/2^64, n the messageIds remembered.
func (s *Store) knownIDs(ctx context.Context, tx *sql.Tx, events []store.Event) (map[int]seenID, error) {
	d := &s.dedup
	byWS := map[string][]int{}
	hashes := make([]int64, len(events))
	for i, e := range events {
		if e.MessageID != "" {
			hashes[i] = dedupHash(e.Workspace, e.MessageID)
			byWS[e.Workspace] = append(byWS[e.Workspace], i)
		}
	}
	known := map[int]seenID{}
	consider := func(ctx context.Context, i int, c candidate) error {
		e := &events[i]
		if k, ok := known[i]; ok && k.position >= c.position {
			return nil
		}
		if !c.read {
			err := tx.StmtContext(ctx, s.writer.messageID).QueryRowContext(ctx, e.Workspace, c.position).Scan(&c.messageID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if c.messageID.Valid && c.messageID.String != e.MessageID {
			return nil
		}
		known[i] = seenID{position: c.position, receivedAt: c.receivedAt}
		return nil
	}
	args := make([]any, 1+lookupSizes[0])
	for ws, idx := range byWS {
		// On disk.
		onDisk := map[int64][]candidate{}
		args[0] = ws
		for rest := idx; len(rest) > 0; {
			size := lookupSizes[0]
			if len(rest) <= lookupSizes[1] {
				size = lookupSizes[1]
			}
			chunk := args[:1+size]
			n := min(len(rest), size)
			for j := range size {
				chunk[1+j] = hashes[rest[min(j, n-1)]]
			}
			rest = rest[n:]
			if err := scanCandidates(ctx, tx.StmtContext(ctx, s.writer.lookup[size]), chunk, onDisk); err != nil {
				return nil, fmt.Errorf("look up messageIds: %w", err)
			}
		}
		for _, i := range idx {
			for _, c := range onDisk[hashes[i]] {
				if err := consider(ctx, i, c); err != nil {
					return nil, fmt.Errorf("look up messageIds: %w", err)
				}
			}
			var err error
			d.candidates(hashes[i], func(de dedupEntry) {
				if err == nil {
					err = consider(ctx, i, candidate{position: de.position, receivedAt: de.receivedAt})
				}
			})
			if err != nil {
				return nil, fmt.Errorf("look up messageIds: %w", err)
			}
		}
	}
	return known, nil
}

// seenID is a messageId already in the log: where, and when it arrived.
type seenID struct{ position, receivedAt int64 }

func scanCandidates(ctx context.Context, lookup *sql.Stmt, args []any, out map[int64][]candidate) error {
	rows, err := lookup.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h int64
		c := candidate{read: true}
		if err := rows.Scan(&h, &c.position, &c.receivedAt, &c.messageID); err != nil {
			return err
		}
		out[h] = append(out[h], c)
	}
	return rows.Err()
}

// dedupHash is the key of a messageId in the dedup tables: FNV-1a over the
// workspace, a NUL and the messageId, finished with SplitMix64's mixer. It is
// part of the on-disk format (migration 00003 computes it as
// kith_dedup_hash): never change it.
func dedupHash(workspace, messageID string) int64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(workspace); i++ {
		h = (h ^ uint64(workspace[i])) * prime
	}
	h *= prime // the NUL between the two
	for i := 0; i < len(messageID); i++ {
		h = (h ^ uint64(messageID[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return int64(h)
}

// dedupEntry is one remembered messageId: its hash, the position of the
// event that holds it, and when that event arrived (unix µs).
type dedupEntry struct{ h, position, receivedAt int64 }

// dedupIndex is the writer's memory of the rows of dedup_recent, so that
// commits look recent messageIds up without an index on disk, and of the
// merge of those rows into dedup_hash.
//
// Why: messageIds are random (UUIDs), so a B-tree keyed by them gets each
// new one on a page of its own — at 9 million remembered messageIds, a
// commit of 1,000 events wrote ~1,000 index pages (4 MB) to the WAL and
// the checkpoint wrote them again, 3–4 times the bytes of the events
// themselves. Here a commit appends its messageIds to dedup_recent (a few
// sequential pages) and keeps them in memory. When memory holds max of
// them, they are frozen, sorted by hash, and the following commits merge
// them into dedup_hash a slice at a time, in hash order: the merge writes
// each page of dedup_hash about once for all of them. Then their rows leave
// dedup_recent.
//
// Every commit first reads the dedup_recent rows other writers (kith import,
// a second handle) added since its last commit, so all writers of one file
// see each other's messageIds. mu is held from the start of a write
// transaction until its changes are applied here.
type dedupIndex struct {
	mu  sync.Mutex
	max int   // freeze active at this many entries
	seq int64 // every row of dedup_recent up to this seq is here (or merged)
	// active holds the entries not frozen, in seq order; slots is an open
	// addressing table over it (index+1, 0 = empty, at most half full),
	// probed from the low bits of the hash: 24 + 8 bytes an entry at most,
	// nothing for the garbage collector to trace.
	active []dedupEntry
	slots  []int32
	// frozen is sorted by hash and position; frozen[:next] are in dedup_hash
	// already. frozenSeq is the last seq of dedup_recent they came from.
	frozen    []dedupEntry
	next      int
	frozenSeq int64
	// The rows of dedup_recent up to forgetThrough are in dedup_hash; those
	// up to forgotten are deleted. (After a restart, rows merged but not yet
	// deleted are read back and merged again, which changes nothing.)
	forgetThrough, forgotten int64
}

// catchUp reads the rows of dedup_recent this writer has not seen: all of
// them the first time.
func (d *dedupIndex) catchUp(ctx context.Context, since *sql.Stmt) error {
	rows, err := since.QueryContext(ctx, d.seq)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var de dedupEntry
		if err := rows.Scan(&seq, &de.h, &de.position, &de.receivedAt); err != nil {
			return err
		}
		d.add(de)
		d.seq = seq
	}
	if err := rows.Err(); err != nil {
		return err
	}
	d.freeze()
	return nil
}

func (d *dedupIndex) add(de dedupEntry) {
	if 2*(len(d.active)+1) > len(d.slots) {
		d.slots = make([]int32, max(1024, 2*len(d.slots)))
		for i := range d.active {
			d.place(i)
		}
	}
	if n := len(d.active); n == cap(d.active) && n >= 1<<16 && n < d.max {
		// Once large, grow once to max rather than by steps (each step
		// leaves the old array as garbage).
		d.active = slices.Grow(d.active, d.max-n)
	}
	d.active = append(d.active, de)
	d.place(len(d.active) - 1)
}

// place puts active[i] into slots.
func (d *dedupIndex) place(i int) {
	mask := len(d.slots) - 1
	for j := int(uint64(d.active[i].h)) & mask; ; j = (j + 1) & mask {
		if d.slots[j] == 0 {
			d.slots[j] = int32(i + 1)
			return
		}
	}
}

// candidates calls fn with each entry in memory of hash h.
func (d *dedupIndex) candidates(h int64, fn func(dedupEntry)) {
	if mask := len(d.slots) - 1; mask > 0 {
		for j := int(uint64(h)) & mask; d.slots[j] != 0; j = (j + 1) & mask {
			if de := d.active[d.slots[j]-1]; de.h == h {
				fn(de)
			}
		}
	}
	for i, _ := slices.BinarySearchFunc(d.frozen, h, func(de dedupEntry, h int64) int { return cmp.Compare(de.h, h) }); i < len(d.frozen) && d.frozen[i].h == h; i++ {
		fn(d.frozen[i])
	}
}

// stepped records a committed mergeStep: drops the frozen entries once all
// are in dedup_hash (their rows of dedup_recent may then go), and freezes the
// active ones when there are enough.
func (d *dedupIndex) stepped(step mergeStep) {
	d.forgotten = step.forgotten
	d.next += step.merged
	if len(d.frozen) > 0 && d.next >= len(d.frozen) {
		d.frozen, d.next, d.forgetThrough = nil, 0, d.frozenSeq
	}
	d.freeze()
}

func (d *dedupIndex) freeze() {
	if len(d.frozen) > 0 || len(d.active) < d.max {
		return
	}
	d.frozen, d.next, d.frozenSeq = d.active, 0, d.seq
	slices.SortFunc(d.frozen, func(a, b dedupEntry) int {
		return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.position, b.position))
	})
	d.active, d.slots = nil, nil
}

// prune forgets the entries received before t (unix µs).
func (d *dedupIndex) prune(t int64) {
	active := d.active
	d.active, d.slots = nil, nil
	for _, de := range active {
		if de.receivedAt >= t {
			d.add(de)
		}
	}
	// The merged frozen entries are in dedup_hash, pruned there.
	frozen := d.frozen[d.next:]
	d.frozen, d.next = nil, 0
	for _, de := range frozen {
		if de.receivedAt >= t {
			d.frozen = append(d.frozen, de)
		}
	}
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
// log_heads, so positions are never handed out twice. It returns the number
// of rows removed from dedup_hash and dedup_recent.
func (s *Store) PruneDedup(ctx context.Context, t time.Time) (int64, error) {
	s.dedup.mu.Lock()
	defer s.dedup.mu.Unlock()
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, table := range []string{"dedup_hash", "dedup_recent"} {
			r, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE received_at < ?`, micros(t))
			if err != nil {
				return err
			}
			m, err := r.RowsAffected()
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune messageIds: %w", err)
	}
	s.dedup.prune(micros(t))
	return n, nil
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
	res, err := s.appendInTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE workspace = ? AND id = ?`, workspace, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	}, b, dedupWindow)
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
