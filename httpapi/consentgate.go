package httpapi

import (
	"encoding/json"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// The consent gate at ingestion (docs/consent.md): a workspace may require
// purposes for storage (consent.store_requires). An event whose own
// consent — its context.consent.categoryPreferences and tcString; the
// profile may not exist yet — denies one of them is answered 200 as if
// stored, and stored nowhere, like a suppressed event. An event that says
// nothing is stored: storing is the default. The Segment Consent
// Preference Updated event is always stored, since it is the record of the
// withdrawal itself.

// consentModel is a workspace's consent model as the HTTP API applies it
// (tenant.Workspace's Purposes and StoreRequires).
type consentModel struct {
	// Purposes is the workspace's catalogue; nil means consent.Default().
	Purposes *consent.Catalogue
	// StoreRequires are the purposes an event's own consent must not deny
	// for it to be stored; empty stores every event.
	StoreRequires []string
}

// catalogue returns m's purposes.
func (m consentModel) catalogue() *consent.Catalogue {
	if m.Purposes == nil {
		return consent.Default()
	}
	return m.Purposes
}

// registryModel returns the consent model of a workspace of reg (the
// default one for a workspace reg does not know).
func registryModel(reg *tenant.Registry) func(string) consentModel {
	return func(ws string) consentModel {
		w, ok := reg.Workspace(ws)
		if !ok {
			return consentModel{}
		}
		return consentModel{Purposes: w.Purposes, StoreRequires: w.StoreRequires}
	}
}

// consentPreferenceUpdated is the event Segment's consent wrappers send
// when a person changes their consent.
const consentPreferenceUpdated = "Segment Consent Preference Updated"

type consentGate struct {
	model   func(workspace string) consentModel
	dropped *prometheus.CounterVec
}

func newConsentGate(reg *prometheus.Registry, model func(string) consentModel) *consentGate {
	g := &consentGate{model: model, dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kith_events_consent_dropped_total",
		Help: "Events dropped at ingestion because their own consent denies a purpose the workspace requires for storage (consent.store_requires).",
	}, []string{"workspace"})}
	reg.MustRegister(g.dropped)
	return g
}

// filter removes from b the events (and quarantined entries) of ws whose
// own consent denies a purpose ws requires for storage, and returns how
// many events (quarantined entries not counted) it removed. A workspace
// that requires none costs one call.
func (g *consentGate) filter(ws string, b *store.Batch) int {
	m := g.model(ws)
	if len(m.StoreRequires) == 0 {
		return 0
	}
	cat := m.catalogue()
	denies := func(raw json.RawMessage) bool {
		if !consent.MayHold(raw) {
			return false
		}
		s, err := consent.EventStatement(raw)
		if err != nil {
			return false
		}
		own := cat.Resolve(consent.Statement{Categories: s.Categories, TCString: s.TCString})
		return !cat.Evaluate(m.StoreRequires, own, nil, true).Allowed
	}
	n := 0
	kept := b.Events[:0]
	for _, e := range b.Events {
		if !(e.Type == "track" && e.Name == consentPreferenceUpdated) && denies(e.Raw) {
			n++
			continue
		}
		kept = append(kept, e)
	}
	b.Events = kept
	events := n
	keptQ := b.Quarantine[:0]
	for _, q := range b.Quarantine {
		if denies(q.Raw) {
			n++
			continue
		}
		keptQ = append(keptQ, q)
	}
	b.Quarantine = keptQ
	if n > 0 {
		g.dropped.WithLabelValues(ws).Add(float64(n))
	}
	return events
}
