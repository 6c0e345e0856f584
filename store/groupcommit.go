package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by a GroupCommitter after Close.
var ErrClosed = errors.New("store: group committer closed")

// GroupCommitter merges concurrent Append calls into few transactions, so
// that many requests share one fsync. Each caller still gets its own results
// and returns only after its events are durable.
type GroupCommitter struct {
	log       Log
	maxEvents int
	queue     chan *pending
	done      chan struct{}
	wg        sync.WaitGroup

	// sendMu is held for reading while an Append queues its batch and for
	// writing while Close marks the committer closed, so nothing is queued
	// after the commit loops have drained the queue.
	sendMu sync.RWMutex
	closed bool

	mu     sync.Mutex
	signal chan struct{} // closed and replaced after every commit

	statsMu sync.Mutex
	stats   CommitStats
}

// CommitStats describe the group commits done so far.
type CommitStats struct {
	Commits  int64         // transactions committed
	Events   int64         // events and quarantined entries written in them
	Requests int64         // Append calls served
	Time     time.Duration // total time spent in commits
	Failures int64         // commits that failed
}

type pending struct {
	ctx    context.Context
	batch  *Batch
	window time.Duration
	result []Appended
	err    error
	done   chan struct{}
}

// GroupCommitOptions tune a GroupCommitter.
type GroupCommitOptions struct {
	// MaxEvents caps the events merged into one transaction (default 5000).
	MaxEvents int
	// Writers is the number of transactions in flight at once (default 1;
	// more only helps backends with concurrent writers, like PostgreSQL).
	Writers int
	// OnCommit, if set, is called after each commit with its size and duration.
	OnCommit func(events int, d time.Duration)
}

// NewGroupCommitter starts the commit loops over log.
func NewGroupCommitter(log Log, o GroupCommitOptions) *GroupCommitter {
	if o.MaxEvents <= 0 {
		o.MaxEvents = 5000
	}
	if o.Writers <= 0 {
		o.Writers = 1
	}
	g := &GroupCommitter{
		log:       log,
		maxEvents: o.MaxEvents,
		queue:     make(chan *pending, 4096),
		done:      make(chan struct{}),
		signal:    make(chan struct{}),
	}
	for range o.Writers {
		g.wg.Add(1)
		go g.loop(o.OnCommit)
	}
	return g
}

// Append queues b for the next group commit and waits until it is durable.
// dedupWindow is passed to Log.Append; only batches with equal windows share
// a commit. If ctx ends first, Append returns ctx.Err(); the batch may still
// commit. After Close, Append returns ErrClosed at once.
func (g *GroupCommitter) Append(ctx context.Context, b *Batch, dedupWindow time.Duration) ([]Appended, error) {
	p := &pending{ctx: ctx, batch: b, window: dedupWindow, done: make(chan struct{})}
	g.sendMu.RLock()
	if g.closed {
		g.sendMu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case g.queue <- p:
	case <-ctx.Done():
		g.sendMu.RUnlock()
		return nil, ctx.Err()
	}
	g.sendMu.RUnlock()
	select {
	case <-p.done:
		return p.result, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Committed returns a channel that is closed after the next commit. Live
// readers wait on it and then read the log from their last position.
func (g *GroupCommitter) Committed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.signal
}

// Stats returns the cumulative commit statistics.
func (g *GroupCommitter) Stats() CommitStats {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	return g.stats
}

// Close stops accepting appends (they fail with ErrClosed), commits what is
// queued and waits.
func (g *GroupCommitter) Close() {
	g.sendMu.Lock()
	if g.closed {
		g.sendMu.Unlock()
		return
	}
	g.closed = true
	g.sendMu.Unlock()
	close(g.done)
	g.wg.Wait()
}

func (g *GroupCommitter) loop(onCommit func(int, time.Duration)) {
	defer g.wg.Done()
	var next *pending // taken from the queue but left for the next commit
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-g.queue:
			case <-g.done:
				// Closed: nothing more can be queued, so commit what was
				// queued before and stop once the queue is empty.
				select {
				case first = <-g.queue:
				default:
					return
				}
			}
		}
		group := []*pending{first}
		n := size(first.batch)
	fill:
		for n < g.maxEvents {
			select {
			case p := <-g.queue:
				if p.window != first.window {
					next = p
					break fill
				}
				group = append(group, p)
				n += size(p.batch)
			default:
				break fill
			}
		}
		g.commit(group, onCommit)
	}
}

func size(b *Batch) int { return len(b.Events) + len(b.Quarantine) }

func (g *GroupCommitter) commit(group []*pending, onCommit func(int, time.Duration)) {
	// Callers that gave up before their turn are left out.
	live := group[:0]
	for _, p := range group {
		if err := p.ctx.Err(); err != nil {
			p.err = err
			close(p.done)
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	merged := live[0].batch
	if len(live) > 1 {
		merged = &Batch{}
		for _, p := range live {
			merged.Events = append(merged.Events, p.batch.Events...)
			merged.Quarantine = append(merged.Quarantine, p.batch.Quarantine...)
		}
	}
	start := time.Now()
	// The commit must not be cut short by one caller's cancellation.
	res, err := g.log.Append(context.Background(), merged, live[0].window)
	took := time.Since(start)
	off := 0
	for _, p := range live {
		n := len(p.batch.Events)
		if err != nil {
			p.err = err
		} else {
			p.result = res[off : off+n : off+n]
			if len(live) > 1 {
				for i := range p.batch.Events {
					p.batch.Events[i].Position = merged.Events[off+i].Position
				}
			}
		}
		off += n
		close(p.done)
	}
	g.statsMu.Lock()
	if err != nil {
		g.stats.Failures++
	} else {
		g.stats.Commits++
		g.stats.Events += int64(size(merged))
		g.stats.Requests += int64(len(live))
		g.stats.Time += took
	}
	g.statsMu.Unlock()
	if err == nil {
		g.mu.Lock()
		close(g.signal)
		g.signal = make(chan struct{})
		g.mu.Unlock()
		if onCommit != nil {
			onCommit(size(merged), took)
		}
	}
}
