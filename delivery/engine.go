// Package delivery sends what Kith collects and computes to destinations,
// with retries, dead letters, replays, the consent gate and a ledger of
// who received what.
//
// Each destination reads two ordered feeds through its own durable
// cursors: the workspace's event log, and the outbox the processor writes
// in its transactions (computed trait changes, audience entries and
// exits). A delivery therefore costs no write until it is done; then the
// cursors move, the ledger counts it and failures go to the dead letters,
// in one transaction under the destination's lease (one node at a time
// delivers to a destination). A crash between a send and that transaction
// sends the page again with the same idempotency keys — duplicates only as
// retries carrying the same key. Every destination has its own goroutine
// and retries in place, so a slow or failing destination delays no other,
// and its deliveries keep the log's order.
//
// This is why Kith does not use a job queue (one job row per delivery
// would double the write load of ingestion at tens of thousands of events
// a second, and lose the per-destination order); see the README's design
// section.
package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is what delivery needs from a backend.
type Store interface {
	store.Log
	store.State
	store.Definitions
}

// Options configure an Engine.
type Options struct {
	Store Store
	// Senders makes the Sender of a destination (wired in the binary with
	// the outbound HTTP guard and the configured settings).
	Senders func(workspace string, d Definition) (destination.Sender, error)
	// Rules returns a workspace's identity rules (to find an event's
	// profile by its normalized userId or anonymousId).
	Rules func(workspace string) (*identity.Compiled, error)
	// AllowMissingConsent reports whether a workspace opted into Segment's
	// behaviour of delivering what carries no consent at all (default:
	// missing consent is denied).
	AllowMissingConsent func(workspace string) bool
	// Purposes returns a workspace's purpose catalogue (config
	// consent.purposes), which the consent gate evaluates against; nil,
	// or a nil catalogue, means consent.Default().
	Purposes        func(workspace string) *consent.Catalogue
	Owner           string        // this node's name in leases
	LeaseTTL        time.Duration // default 10s
	Poll            time.Duration // how often an idle destination looks for work (default 200ms)
	DefinitionsPoll time.Duration // how often destinations are re-read (default 2s)
	Page            int           // items read per step (default 500)
	DeleteTimeout   time.Duration // bounds a deletion (Delete; default DefaultDeleteTimeout)
	Logger          *slog.Logger
	Metrics         prometheus.Registerer
	Now             func() time.Time
}

// Engine runs the destinations of workspaces.
type Engine struct {
	o Options
	m *metrics

	mu       sync.Mutex
	workers  map[string]*worker  // workspace/name → running worker
	suppress map[string][]string // workspace → its suppress_all audiences
}

// New returns an Engine.
func New(o Options) *Engine {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.DefinitionsPoll <= 0 {
		o.DefinitionsPoll = 2 * time.Second
	}
	if o.Page <= 0 {
		o.Page = 500
	}
	if o.DeleteTimeout <= 0 {
		o.DeleteTimeout = DefaultDeleteTimeout
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
	return &Engine{o: o, m: newMetrics(o.Metrics), workers: map[string]*worker{}, suppress: map[string][]string{}}
}

// Run delivers to the destinations of the given workspaces until ctx ends,
// starting and stopping destinations as their definitions change.
func (e *Engine) Run(ctx context.Context, workspaces []string) {
	var wg sync.WaitGroup
	for _, ws := range workspaces {
		wg.Go(func() { e.watch(ctx, ws) })
	}
	wg.Wait()
}

// running is a destination's worker with what stops it.
type running struct {
	body   string
	cancel context.CancelFunc
	done   chan struct{}
}

// watch keeps one worker per destination of a workspace.
func (e *Engine) watch(ctx context.Context, ws string) {
	run := map[string]*running{}
	defer func() {
		for _, r := range run {
			r.cancel()
			<-r.done
		}
	}()
	for ctx.Err() == nil {
		defs, err := e.o.Store.Definitions(ctx, ws)
		if err != nil {
			e.o.Logger.Warn("read destinations", "workspace", ws, "err", err)
			sleep(ctx, e.o.DefinitionsPoll)
			continue
		}
		want := map[string]string{}
		var suppress []string
		for _, d := range defs {
			switch d.Kind {
			case store.DefinitionDestination:
				want[d.Name] = string(d.Body)
			case store.DefinitionAudience:
				var a struct {
					Suppression bool `json:"suppression"`
					SuppressAll bool `json:"suppress_all"`
				}
				if json.Unmarshal(d.Body, &a) == nil && a.Suppression && a.SuppressAll {
					suppress = append(suppress, d.Name)
				}
			}
		}
		e.mu.Lock()
		e.suppress[ws] = suppress
		e.mu.Unlock()
		for _, name := range slices.Sorted(maps.Keys(run)) {
			if r := run[name]; want[name] != r.body {
				r.cancel()
				<-r.done
				delete(run, name)
				e.mu.Lock()
				delete(e.workers, ws+"/"+name)
				e.mu.Unlock()
			}
		}
		for name, body := range want {
			if run[name] != nil {
				continue
			}
			w, err := e.worker(ws, []byte(body))
			if err != nil {
				e.o.Logger.Error("destination cannot start", "workspace", ws, "destination", name, "err", err)
				run[name] = &running{body: body, cancel: func() {}, done: closed()}
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			r := &running{body: body, cancel: cancel, done: make(chan struct{})}
			run[name] = r
			e.mu.Lock()
			e.workers[ws+"/"+name] = w
			e.mu.Unlock()
			go func() { defer close(r.done); w.run(wctx) }()
		}
		sleep(ctx, e.o.DefinitionsPoll)
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// worker prepares a destination's worker from its stored definition.
func (e *Engine) worker(ws string, body []byte) (*worker, error) {
	def, err := Parse(body)
	if err != nil {
		return nil, err
	}
	retry, _ := def.retryFor()
	rules, err := e.o.Rules(ws)
	if err != nil {
		return nil, fmt.Errorf("identity rules: %w", err)
	}
	w := &worker{e: e, ws: ws, body: string(body), sending: make(chan struct{}, 1), def: def, retry: retry, rules: rules, match: matcher{f: def.Events}}
	if def.Events != nil {
		if w.match.where, err = def.Events.compile(); err != nil {
			return nil, err
		}
	}
	if w.sender, err = e.o.Senders(ws, def); err != nil {
		return nil, fmt.Errorf("%s destination: %w", def.Type, err)
	}
	return w, nil
}

// suppressAll returns a workspace's workspace-wide suppression lists:
// their members receive nothing from any destination.
func (e *Engine) suppressAll(ws string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.suppress[ws]
}

// LastError returns the last send error of a destination running on this
// node ("" if none or not running here).
func (e *Engine) LastError(ws, name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w := e.workers[ws+"/"+name]; w != nil {
		if msg := w.lastErr.Load(); msg != nil {
			return *msg
		}
	}
	return ""
}

type metrics struct {
	deliveries  *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	sendSeconds *prometheus.HistogramVec
	status      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_delivery_total",
			Help: "Deliveries by destination and outcome: delivered, retried (an attempt failed and will be retried), dead, filtered_consent, suppressed (a member of a workspace-wide suppression list), restricted (the person restricted all processing).",
		}, []string{"workspace", "destination", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kith_delivery_latency_seconds",
			Help:    "From an event's arrival (or an outbox entry's making) to its delivery.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}, []string{"workspace", "destination"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kith_delivery_send_seconds",
			Help:    "Time of one successful send of a batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"workspace", "destination"}),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kith_delivery_status",
			Help: "1 for the destination's current status (active, paused, disabled) on the node that delivers to it.",
		}, []string{"workspace", "destination", "status"}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.latency, m.sendSeconds, m.status)
	}
	return m
}

func (m *metrics) count(ws, dest, outcome string, n int) {
	m.deliveries.WithLabelValues(ws, dest, outcome).Add(float64(n))
}

// catalogue returns workspace ws's purpose catalogue.
func (e *Engine) catalogue(ws string) *consent.Catalogue {
	if e.o.Purposes != nil {
		if c := e.o.Purposes(ws); c != nil {
			return c
		}
	}
	return consent.Default()
}
