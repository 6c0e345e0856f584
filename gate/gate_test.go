package gate_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/gate"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// fixture is a SQLite store holding workspace acme, whose storage requires
// analytics, and globex, which requires nothing; and a Gate over them.
type fixture struct {
	ctx     context.Context
	st      store.Store
	reg     *tenant.Registry
	metrics *prometheus.Registry
	gate    *gate.Gate
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, err := config.Parse([]byte(`
workspaces:
  - slug: acme
    sources: [{slug: web, write_key: wk_gate_acme_1234567890}]
    consent:
      store_requires: [analytics]
  - slug: globex
    sources: [{slug: web, write_key: wk_gate_globex_1234567890}]
`))
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := tenant.Load(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ctx: ctx, st: st, reg: reg, metrics: prometheus.NewRegistry()}
	f.gate = gate.New(gate.Options{Store: st, Workspaces: reg, Metrics: f.metrics,
		OnError: func(ws string, err error) { t.Errorf("background reload of %s: %v", ws, err) }})
	return f
}

// suppress puts id on ws's list as the suppression API does: its keyed
// digest, normalized by the workspace's identity rules.
func (f *fixture) suppress(t *testing.T, ws, typ, value string) {
	t.Helper()
	w, _ := f.reg.Workspace(ws)
	id, ok := w.Identity.Normalize(store.Identifier{Type: typ, Value: value})
	if !ok {
		t.Fatalf("%s:%s is not an identifier", typ, value)
	}
	if err := f.st.Suppress(f.ctx, []store.Suppression{{Workspace: ws, Digest: privacy.Digest(f.reg.Hash, id), Reason: "test", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
}

// batch decodes a Tracking API batch of the given events as ws's.
func batch(t *testing.T, ws string, events ...string) *store.Batch {
	t.Helper()
	out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: []byte(`{"batch":[` + strings.Join(events, ",") + `]}`),
		ReceivedAt: time.Now()}, ingest.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	b := &store.Batch{Events: out.Events, Quarantine: out.Quarantine}
	for i := range b.Events {
		b.Events[i].Workspace = ws
	}
	for i := range b.Quarantine {
		b.Quarantine[i].Workspace = ws
	}
	return b
}

// kept returns the messageIds of b's events and quarantined entries.
func kept(b *store.Batch) (events, quarantined []string) {
	for _, e := range b.Events {
		events = append(events, e.MessageID)
	}
	for _, q := range b.Quarantine {
		quarantined = append(quarantined, q.MessageID)
	}
	return events, quarantined
}

// counter is the value of a counter of the gate for workspace ws.
func (f *fixture) counter(t *testing.T, name, ws string) float64 {
	t.Helper()
	mfs, err := f.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); len(l) == 1 && l[0].GetName() == "workspace" && l[0].GetValue() == ws {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// events are one of each case the gate decides, named by their messageIds.
var events = []string{
	`{"type":"track","userId":"u-42","event":"Viewed","messageId":"suppressed-user"}`,
	`{"type":"page","anonymousId":"a-42","messageId":"suppressed-anonymous"}`,
	`{"type":"identify","userId":"u-7","traits":{"email":" Ada@Example.COM "},"messageId":"suppressed-email"}`,
	`{"type":"track","userId":"u-7","event":"Viewed","properties":{"email":"ada@example.com"},"messageId":"email-not-identify"}`,
	`{"type":"track","userId":"u-7","event":"Viewed","context":{"consent":{"categoryPreferences":{"Analytics":false}}},"messageId":"denied"}`,
	`{"type":"track","userId":"u-7","event":"Viewed","context":{"consent":{"categoryPreferences":{"Analytics":true}}},"messageId":"granted"}`,
	`{"type":"track","userId":"u-7","event":"Segment Consent Preference Updated","context":{"consent":{"categoryPreferences":{"Analytics":false}}},"messageId":"withdrawal"}`,
	`{"type":"track","userId":"u-7","event":"Viewed","messageId":"says-nothing"}`,
	// Invalid (no event name): quarantined, with the ids only in the raw JSON.
	`{"type":"track","userId":"u-42","messageId":"quarantined-suppressed"}`,
	`{"type":"track","userId":"u-7","context":{"consent":{"categoryPreferences":{"Analytics":false}}},"messageId":"quarantined-denied"}`,
	`{"type":"track","userId":"u-7","messageId":"quarantined-kept"}`,
}

// Filter drops the events of suppressed identifiers, then those whose own
// consent denies a purpose storage requires, quarantined entries included,
// and counts each in its metric; another workspace's batch is its own.
func TestFilter(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.suppress(t, "acme", "user_id", "u-42")
	f.suppress(t, "acme", "anonymous_id", "a-42")
	f.suppress(t, "acme", "email", "ada@example.com")

	b := batch(t, "acme", events...)
	n, err := f.gate.Filter(f.ctx, "acme", b)
	if err != nil {
		t.Fatal(err)
	}
	evs, qs := kept(b)
	if want := []string{"email-not-identify", "granted", "withdrawal", "says-nothing"}; n != 4 || !slices.Equal(evs, want) {
		t.Errorf("Filter dropped %d events and kept %q; want 4 dropped and %q kept", n, evs, want)
	}
	if want := []string{"quarantined-kept"}; !slices.Equal(qs, want) {
		t.Errorf("kept quarantined entries %q, want %q", qs, want)
	}
	if got := f.counter(t, "kith_events_suppressed_total", "acme"); got != 4 {
		t.Errorf("kith_events_suppressed_total{acme} = %v, want 4 (3 events, 1 quarantined)", got)
	}
	if got := f.counter(t, "kith_events_consent_dropped_total", "acme"); got != 2 {
		t.Errorf("kith_events_consent_dropped_total{acme} = %v, want 2 (1 event, 1 quarantined)", got)
	}

	// globex suppresses nothing and requires nothing.
	b = batch(t, "globex", events...)
	if n, err := f.gate.Filter(f.ctx, "globex", b); err != nil || n != 0 || len(b.Events) != 8 || len(b.Quarantine) != 3 {
		t.Errorf("globex: %d dropped, %v; kept %d events and %d quarantined", n, err, len(b.Events), len(b.Quarantine))
	}
	for _, name := range []string{"kith_events_suppressed_total", "kith_events_consent_dropped_total"} {
		if got := f.counter(t, name, "globex"); got != 0 {
			t.Errorf("%s{globex} = %v, want 0", name, got)
		}
	}
}

// A change to the list applies at the next batch once Reload has read it.
func TestReload(t *testing.T) {
	t.Parallel()
	f := setup(t)
	send := func() []string {
		t.Helper()
		b := batch(t, "acme", `{"type":"track","userId":"u-1","event":"Viewed","messageId":"m"}`)
		if _, err := f.gate.Filter(f.ctx, "acme", b); err != nil {
			t.Fatal(err)
		}
		evs, _ := kept(b)
		return evs
	}
	if got := send(); len(got) != 1 {
		t.Fatalf("before the suppression: kept %q", got)
	}
	f.suppress(t, "acme", "user_id", "u-1")
	if got := send(); len(got) != 1 {
		t.Fatalf("the list loaded before the suppression is in use until a reload; kept %q", got)
	}
	if err := f.gate.Reload(f.ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if got := send(); len(got) != 0 {
		t.Errorf("after Reload: kept %q", got)
	}
	w, _ := f.reg.Workspace("acme")
	id, _ := w.Identity.Normalize(store.Identifier{Type: "user_id", Value: "u-1"})
	if _, err := f.st.Unsuppress(f.ctx, "acme", [][]byte{privacy.Digest(f.reg.Hash, id)}); err != nil {
		t.Fatal(err)
	}
	if err := f.gate.Reload(f.ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if got := send(); len(got) != 1 {
		t.Errorf("after the unsuppression and Reload: kept %q", got)
	}
}

// failingStore cannot read a suppression list.
type failingStore struct{}

var errScan = errors.New("store down")

func (failingStore) ScanSuppressed(context.Context, string, func(store.Suppression) error) error {
	return errScan
}

// A list that cannot be loaded fails Filter and leaves the batch whole.
func TestFilterError(t *testing.T) {
	t.Parallel()
	f := setup(t)
	g := gate.New(gate.Options{Store: failingStore{}, Workspaces: f.reg, Metrics: prometheus.NewRegistry()})
	b := batch(t, "acme", events...)
	if n, err := g.Filter(f.ctx, "acme", b); !errors.Is(err, errScan) || n != 0 || len(b.Events) != 8 || len(b.Quarantine) != 3 {
		t.Errorf("Filter: %d, %v; kept %d events and %d quarantined; want the store's error and the batch whole", n, err, len(b.Events), len(b.Quarantine))
	}
	if err := g.Reload(f.ctx, "acme"); !errors.Is(err, errScan) {
		t.Errorf("Reload: %v, want the store's error", err)
	}
}

// Batches are filtered while the list is reloaded (run with -race).
func TestConcurrentFilterAndReload(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.suppress(t, "acme", "user_id", "u-42")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if i%4 == 0 {
					if err := f.gate.Reload(f.ctx, "acme"); err != nil {
						t.Error(err)
					}
					continue
				}
				b := batch(t, "acme", events...)
				if n, err := f.gate.Filter(f.ctx, "acme", b); err != nil || n != 2 {
					t.Errorf("Filter: %d, %v; want 2 dropped (suppressed-user, denied)", n, err)
				}
			}
		})
	}
	wg.Wait()
}
