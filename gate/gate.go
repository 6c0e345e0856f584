// Package gate is the ingestion gate: what a batch may store before it is
// appended to the log. The Tracking API (package httpapi) and `kith
// import` both pass every batch through a Gate, which removes
//
//   - the events carrying an identifier on the workspace's suppression
//     list (suppression.go), and
//   - the events whose own consent denies a purpose the workspace
//     requires for storage, consent.store_requires (consent.go).
//
// A dropped event is stored nowhere; the caller counts it as handled (the
// Tracking API answers it as accepted, an import counts it as dropped).
package gate

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// Suppressions is the part of store.Store the gate reads: the suppression
// lists.
type Suppressions interface {
	ScanSuppressed(ctx context.Context, workspace string, fn func(store.Suppression) error) error
}

// Workspaces is what the gate reads of the workspaces; *tenant.Registry
// implements it.
type Workspaces interface {
	// Hash is the keyed hash (HMAC-SHA-256 under the server secret) the
	// suppression list's digests are made with (privacy.Digest).
	Hash(secret string) []byte
	// Workspace returns a workspace's settings: its identity rules
	// (Identity; nil applies none), its purposes (Purposes, not nil when
	// StoreRequires is set) and the purposes storage requires
	// (StoreRequires).
	Workspace(slug string) (*tenant.Workspace, bool)
}

// Options configure a Gate.
type Options struct {
	Store      Suppressions // required
	Workspaces Workspaces   // required
	// Metrics receives the counters kith_events_suppressed_total and
	// kith_events_consent_dropped_total; required.
	Metrics prometheus.Registerer
	// OnError is told of a background reload of a suppression list that
	// failed (the previous list stays in use); nil ignores it.
	OnError func(workspace string, err error)
}

// Gate filters batches before they are appended. It is safe for
// concurrent use.
type Gate struct {
	st         Suppressions
	reg        Workspaces
	onError    func(ws string, err error)
	suppressed *prometheus.CounterVec
	noConsent  *prometheus.CounterVec
	sets       sync.Map // workspace → *suppressSet
}

// New builds a Gate and registers its counters with o.Metrics.
func New(o Options) *Gate {
	if o.OnError == nil {
		o.OnError = func(string, error) {}
	}
	g := &Gate{st: o.Store, reg: o.Workspaces, onError: o.OnError,
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_events_suppressed_total",
			Help: "Events dropped at ingestion because an identifier they carry is on the suppression list.",
		}, []string{"workspace"}),
		noConsent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_events_consent_dropped_total",
			Help: "Events dropped at ingestion because their own consent denies a purpose the workspace requires for storage (consent.store_requires).",
		}, []string{"workspace"}),
	}
	o.Metrics.MustRegister(g.suppressed, g.noConsent)
	return g
}

// Filter removes from b, a batch of workspace ws, the events (and
// quarantined entries) the gate drops — first the suppressed ones, then
// those without the consent storage requires — and returns how many events
// it removed (quarantined entries not counted). It fails only when ws's
// suppression list cannot be loaded the first time; b is then unchanged.
func (g *Gate) Filter(ctx context.Context, ws string, b *store.Batch) (droppedEvents int, err error) {
	n, err := g.suppress(ctx, ws, b)
	if err != nil {
		return 0, err
	}
	return n + g.consent(ws, b), nil
}

// drop removes from b the events for which event reports true and the
// quarantined entries whose raw JSON quarantined reports true, adds how
// many it removed of both to ws's count in counter, and returns how many
// events (quarantined entries not counted) it removed.
func drop(b *store.Batch, counter *prometheus.CounterVec, ws string, event func(*store.Event) bool, quarantined func(json.RawMessage) bool) int {
	events := 0
	kept := b.Events[:0]
	for i := range b.Events {
		if event(&b.Events[i]) {
			events++
			continue
		}
		kept = append(kept, b.Events[i])
	}
	b.Events = kept
	n := events
	keptQ := b.Quarantine[:0]
	for _, q := range b.Quarantine {
		if quarantined(q.Raw) {
			n++
			continue
		}
		keptQ = append(keptQ, q)
	}
	b.Quarantine = keptQ
	if n > 0 {
		counter.WithLabelValues(ws).Add(float64(n))
	}
	return events
}
