// Package process folds each workspace's event log, in order and in
// batches, into derived state: the identity graph, profiles, traits,
// timelines and account links.
//
// One node at a time folds a workspace: it holds the workspace's lease
// (store.State.AcquireLease). It keeps the workspace's identity graph in
// memory, loaded from the state when it takes the lease, and commits each
// batch in one transaction that also moves the cursor and checks the
// lease's epoch. A crash anywhere therefore leaves the state of some
// committed batch, from which folding resumes; a node that lost its lease
// (paused, partitioned) cannot commit after another node took over, and
// throws its in-memory graph away.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is what the processor needs from a backend.
type Store interface {
	store.Log
	store.State
	store.Definitions
	store.PrivacyStore // erasure (privacy control events)
}

// Options configure a Processor.
type Options struct {
	Store Store
	// Rules returns a workspace's identity rules.
	Rules func(workspace string) (*identity.Compiled, error)
	// TraitPriority returns a source's trait priority (higher wins over
	// later timestamps); nil gives every source 0.
	TraitPriority func(workspace, source string) int
	// Owner names this node in leases; it must differ between nodes.
	Owner string
	// Batch is the most events folded per commit (default 5000): when
	// folding is behind, bigger commits write each hot page once.
	Batch int
	// LeaseTTL is how long a lease lasts unless renewed (default 10s); a
	// dead leader's workspaces are taken over after at most this long.
	LeaseTTL time.Duration
	// Poll is how often to look for new events when no wake-up arrives
	// (default 250ms; other nodes' appends are only seen by polling).
	Poll time.Duration
	// Wake, if set, returns a channel closed after the next local append.
	Wake func() <-chan struct{}
	// Coalesce is how long to wait after a partial batch before folding
	// again (default 100ms), so that light traffic is folded in a few
	// commits a second rather than one per append: each commit is an fsync
	// that would compete with the appends'.
	Coalesce time.Duration
	// DefinitionsPoll is how often to look for changed computed-trait and
	// audience definitions (default 2s); a change reloads the compute
	// engine and backfills new counters from the log.
	DefinitionsPoll time.Duration
	// ComputeSweep is how often audiences that read now are re-evaluated
	// for every profile (default 1h; see compute.Options.Sweep).
	ComputeSweep time.Duration
	Logger       *slog.Logger
	Metrics      prometheus.Registerer
	Now          func() time.Time
}

// Processor folds the logs of workspaces into derived state.
type Processor struct {
	o Options
	m *metrics

	mu        sync.Mutex
	leading   map[string]*leader  // workspaces this node folds now
	backfills map[string][2]int64 // workspace → position, head of a backfill running on this node
}

// leader is what readers outside the folding goroutine may use of a
// workspace this node folds: the identity graph and the compute engine,
// both guarded by the engine's lock.
type leader struct {
	g     *identity.Graph
	rules *identity.Compiled
	eng   *compute.Engine
}

// New returns a Processor.
func New(o Options) *Processor {
	if o.Batch <= 0 {
		o.Batch = 5000
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Coalesce <= 0 {
		o.Coalesce = 100 * time.Millisecond
	}
	if o.DefinitionsPoll <= 0 {
		o.DefinitionsPoll = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Owner == "" {
		o.Owner = "kith"
	}
	return &Processor{o: o, m: newMetrics(o.Metrics), leading: map[string]*leader{}, backfills: map[string][2]int64{}}
}

// Run folds the given workspaces until ctx ends, one goroutine each.
func (p *Processor) Run(ctx context.Context, workspaces []string) {
	var wg sync.WaitGroup
	for _, ws := range workspaces {
		wg.Go(func() { p.runWorkspace(ctx, ws) })
	}
	wg.Wait()
}

// runWorkspace leads the workspace whenever it can get the lease.
func (p *Processor) runWorkspace(ctx context.Context, ws string) {
	for ctx.Err() == nil {
		err := p.lead(ctx, ws)
		p.m.leader.WithLabelValues(ws).Set(0)
		switch {
		case errors.Is(err, errReload):
			p.o.Logger.Info("identity rules changed; reloading the identity graph", "workspace", ws)
			continue
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, store.ErrLeaseHeld):
			// Another node folds this workspace; try again when its lease
			// could have expired.
		default:
			p.o.Logger.Warn("folding stopped; retrying", "workspace", ws, "err", err)
		}
		sleep(ctx, p.o.LeaseTTL/3)
	}
}

// lead takes the workspace's lease and folds its log until ctx ends, the
// lease is lost, or an error occurs.
func (p *Processor) lead(ctx context.Context, ws string) error {
	f, err := p.open(ctx, ws)
	if err != nil {
		return err
	}
	defer func() {
		p.mu.Lock()
		delete(p.leading, ws)
		p.mu.Unlock()
		// Hand over at once on shutdown rather than after the TTL, once
		// the commit in flight is done.
		_ = f.flush()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = p.o.Store.ReleaseLease(rctx, f.lease)
	}()
	p.m.leader.WithLabelValues(ws).Set(1)
	f.lead = true
	f.setEngine(f.eng)
	p.o.Logger.Info("folding workspace", "workspace", ws, "epoch", f.lease.Epoch, "position", f.lease.Position)
	renewAt := p.o.Now().Add(p.o.LeaseTTL / 3)
	for {
		if !p.o.Now().Before(renewAt) {
			l, err := p.o.Store.AcquireLease(ctx, ws, p.o.Owner, p.o.LeaseTTL)
			if err != nil {
				return fmt.Errorf("renew lease: %w", err)
			}
			if l.Epoch != f.lease.Epoch {
				return fmt.Errorf("renew lease: epoch moved from %d to %d", f.lease.Epoch, l.Epoch)
			}
			f.lease = l
			renewAt = p.o.Now().Add(p.o.LeaseTTL / 3)
		}
		var wake <-chan struct{}
		if p.o.Wake != nil {
			wake = p.o.Wake() // taken before reading, so no append is missed
		}
		n, err := f.step(ctx)
		if err != nil {
			return err
		}
		if n == p.o.Batch {
			continue
		}
		if err := f.flush(); err != nil {
			return err
		}
		if err := f.tick(ctx); err != nil {
			return err
		}
		if n > 0 {
			sleep(ctx, p.o.Coalesce)
		}
		t := time.NewTimer(min(p.o.Poll, time.Until(renewAt)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// folder folds one workspace under one lease. While one batch commits,
// the next is read and folded: inflight holds the result of the commit in
// flight, and pos is the position folded so far, committed or not.
type folder struct {
	p        *Processor
	ws       string
	lease    store.Lease
	pos      int64
	g        *identity.Graph
	rules    *identity.Compiled
	inflight chan error

	rulesBody string // the identity rules set through the admin API that g uses ("" if none)

	eng         *compute.Engine // set by setEngine
	lead        bool            // Run folds it: readers may reach the engine (Processor.leading)
	defsDigest  string          // of the definitions eng was loaded with
	defsCheckAt time.Time       // when to look for changed definitions next
}

// open takes the lease and loads the workspace's identity graph.
func (p *Processor) open(ctx context.Context, ws string) (*folder, error) {
	rules, err := p.o.Rules(ws)
	if err != nil {
		return nil, fmt.Errorf("identity rules of %s: %w", ws, err)
	}
	stored, err := p.o.Store.Definitions(ctx, ws)
	if err != nil {
		return nil, fmt.Errorf("definitions of %s: %w", ws, err)
	}
	apiRules, rulesBody := p.apiRules(ws, stored)
	if apiRules != nil {
		rules = apiRules
	}
	l, err := p.o.Store.AcquireLease(ctx, ws, p.o.Owner, p.o.LeaseTTL)
	if err != nil {
		return nil, err
	}
	g := identity.NewGraph(rules, max(l.NextProfileID, 1))
	if err := p.o.Store.ScanBlocked(ctx, ws, func(id store.Identifier) error {
		g.Block(id)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load identity graph of %s: %w", ws, err)
	}
	if err := p.o.Store.ScanIdentifiers(ctx, ws, func(h store.HeldIdentifier) error {
		g.Load(h)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load identity graph of %s: %w", ws, err)
	}
	if err := p.o.Store.ScanMergeCounts(ctx, ws, func(id store.ProfileID, n int) error {
		g.LoadMerges(id, n)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load identity graph of %s: %w", ws, err)
	}
	f := &folder{p: p, ws: ws, lease: l, pos: l.Position, g: g, rules: rules, rulesBody: rulesBody}
	if err := f.loadEngine(ctx, stored); err != nil {
		return nil, err
	}
	return f, nil
}

// step folds the next batch of events and commits it. It returns the
// number of events folded. After an error the folder must not be used: its
// graph may hold changes that were not committed.
func (f *folder) step(ctx context.Context) (int, error) {
	o := &f.p.o
	events, err := f.read(ctx)
	if err != nil {
		return 0, err
	}
	if len(events) == 0 {
		f.p.m.lag.WithLabelValues(f.ws).Set(0)
		return 0, f.flush()
	}
	f.p.m.lag.WithLabelValues(f.ws).Set(o.Now().Sub(events[0].ReceivedAt).Seconds())
	var prio func(string) int
	if o.TraitPriority != nil {
		prio = func(source string) int { return o.TraitPriority(f.ws, source) }
	}
	// A control event is folded in a batch of its own, after everything
	// before it is committed: it may rebuild profiles from the state.
	if i := slices.IndexFunc(events, func(e store.Event) bool { return isControl(e.Type) }); i > 0 {
		events = events[:i]
	} else if i == 0 {
		events = events[:1]
		if err := f.flush(); err != nil {
			return 0, err
		}
	}
	c, err := f.fold(ctx, events, prio)
	if err != nil {
		return 0, err
	}
	if err := f.flush(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	f.inflight = done
	go func() {
		start := time.Now()
		if err := o.Store.Commit(ctx, c); err != nil {
			done <- fmt.Errorf("commit folded events %d..%d of %s: %w", c.From+1, c.To, f.ws, err)
			return
		}
		f.p.m.commit.Observe(time.Since(start).Seconds())
		f.p.m.folded.WithLabelValues(f.ws).Add(float64(len(events)))
		f.p.m.position.WithLabelValues(f.ws).Set(float64(c.To))
		done <- nil
	}()
	f.pos = c.To
	return len(events), nil
}

// isControl reports whether events of type t are control events, folded
// in a batch of their own.
func isControl(t string) bool { return t == store.TypeIdentity || t == store.TypePrivacy }

// fold folds events into the graph and the compute engine and returns
// the changes to commit.
func (f *folder) fold(ctx context.Context, events []store.Event, prio func(string) int) (*store.Changes, error) {
	f.eng.Lock()
	defer f.eng.Unlock()
	b := newBatch(f.ws, f.lease.Epoch, f.pos, prio, f.eng)
	for i := range events {
		var err error
		switch events[i].Type {
		case store.TypeIdentity:
			err = f.control(ctx, b, &events[i])
		case store.TypePrivacy:
			err = f.privacy(ctx, b, &events[i])
		default:
			b.fold(f.g, &events[i])
		}
		if err != nil {
			return nil, err
		}
	}
	c := b.finish(f.g.Next())
	c.Compute = f.eng.Evaluate(f.p.o.Now(), c.To)
	return c, nil
}

// flush waits for the commit in flight, if any, and returns its error.
func (f *folder) flush() error {
	if f.inflight == nil {
		return nil
	}
	err := <-f.inflight
	f.inflight = nil
	return err
}

// read returns up to Batch events after the cursor, in pages.
func (f *folder) read(ctx context.Context) ([]store.Event, error) {
	var events []store.Event
	after := f.pos
	for len(events) < f.p.o.Batch {
		want := store.PageSize(f.p.o.Batch - len(events))
		page, err := f.p.o.Store.Read(ctx, store.LogQuery{Workspace: f.ws, After: after, Limit: want})
		if err != nil {
			return nil, fmt.Errorf("read log of %s: %w", f.ws, err)
		}
		events = append(events, page...)
		if len(page) < want {
			break
		}
		after = page[len(page)-1].Position
	}
	return events, nil
}

// CatchUp folds a workspace up to the log's head as it is when called, then
// releases the lease. It fails with store.ErrLeaseHeld if another owner
// folds the workspace. progress, if set, is called after each batch.
func (p *Processor) CatchUp(ctx context.Context, ws string, progress func(position, head int64)) error {
	head, err := p.o.Store.Head(ctx, ws)
	if err != nil {
		return fmt.Errorf("read head of %s: %w", ws, err)
	}
	f, err := p.open(ctx, ws)
	if err != nil {
		return err
	}
	defer func() { _ = p.o.Store.ReleaseLease(context.WithoutCancel(ctx), f.lease) }()
	defer func() { _ = f.flush() }()
	// The lease is renewed every third of its TTL, as lead does, not after
	// each batch: a renewal is a write of the state, which waits for the
	// commit in flight, so renewing after each batch kept the next batch
	// from being read and folded while the last one committed.
	renewAt := p.o.Now().Add(p.o.LeaseTTL / 3)
	for f.pos < head {
		n, err := f.step(ctx)
		if err != nil {
			return err
		}
		if progress != nil {
			progress(f.pos, head)
		}
		if n == 0 {
			break
		}
		if p.o.Now().Before(renewAt) {
			continue
		}
		l, err := p.o.Store.AcquireLease(ctx, ws, p.o.Owner, p.o.LeaseTTL)
		if err != nil {
			return fmt.Errorf("renew lease: %w", err)
		}
		if l.Epoch != f.lease.Epoch {
			return fmt.Errorf("renew lease: epoch moved from %d to %d: %w", f.lease.Epoch, l.Epoch, store.ErrLeaseLost)
		}
		f.lease = l
		renewAt = p.o.Now().Add(p.o.LeaseTTL / 3)
	}
	if err := f.flush(); err != nil {
		return err
	}
	return f.tick(ctx)
}

// Replay deletes a workspace's derived state and folds its whole log again
// (after identity rules change, or to verify that state equals a replay).
func (p *Processor) Replay(ctx context.Context, ws string, progress func(position, head int64)) error {
	l, err := p.o.Store.AcquireLease(ctx, ws, p.o.Owner, p.o.LeaseTTL)
	if err != nil {
		return err
	}
	if err := p.o.Store.Reset(ctx, ws, l.Epoch); err != nil {
		return fmt.Errorf("reset state of %s: %w", ws, err)
	}
	return p.CatchUp(ctx, ws, progress)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

type metrics struct {
	backfill *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
	position *prometheus.GaugeVec
	leader   *prometheus.GaugeVec
	folded   *prometheus.CounterVec
	commit   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		backfill: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kith_compute_backfill_position",
			Help: "Log position up to which new computed traits and audience conditions are backfilled (while a backfill runs).",
		}, []string{"workspace"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kith_process_lag_seconds",
			Help: "Age of the oldest event not yet folded into profiles (0 when caught up).",
		}, []string{"workspace"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kith_process_position",
			Help: "Log position up to which the workspace is folded.",
		}, []string{"workspace"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kith_process_leader",
			Help: "1 while this node holds the workspace's lease and folds its log.",
		}, []string{"workspace"}),
		folded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_process_events_total",
			Help: "Events folded into derived state.",
		}, []string{"workspace"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kith_process_commit_seconds",
			Help:    "Time to commit one folded batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.backfill, m.lag, m.position, m.leader, m.folded, m.commit)
	}
	return m
}
