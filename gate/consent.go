package gate

import (
	"encoding/json"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/store"
)

// The consent gate at ingestion (docs/consent.md): a workspace may require
// purposes for storage (consent.store_requires). An event whose own
// consent — its context.consent.categoryPreferences and tcString; the
// profile may not exist yet — denies one of them is dropped, like a
// suppressed event. An event that says nothing is stored: storing is the
// default. The Segment Consent Preference Updated event is always stored,
// since it is the record of the withdrawal itself.

// consentPreferenceUpdated is the event Segment's consent wrappers send
// when a person changes their consent.
const consentPreferenceUpdated = "Segment Consent Preference Updated"

// consent removes from b the events (and quarantined entries) of ws whose
// own consent denies a purpose ws requires for storage, and returns how
// many events (quarantined entries not counted) it removed. A workspace
// that requires none costs one lookup.
func (g *Gate) consent(ws string, b *store.Batch) int {
	w, ok := g.reg.Workspace(ws)
	if !ok || len(w.StoreRequires) == 0 {
		return 0
	}
	cat := w.Purposes
	denies := func(raw json.RawMessage) bool {
		if !consent.MayHold(raw) {
			return false
		}
		s, err := consent.EventStatement(raw)
		if err != nil {
			return false
		}
		own := cat.Resolve(consent.Statement{Categories: s.Categories, TCString: s.TCString})
		return !cat.Evaluate(w.StoreRequires, own, nil, true).Allowed
	}
	return drop(b, g.noConsent, ws, func(e *store.Event) bool {
		return !(e.Type == "track" && e.Name == consentPreferenceUpdated) && denies(e.Raw)
	}, denies)
}
