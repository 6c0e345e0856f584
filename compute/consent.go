package compute

import (
	"encoding/json"
	"time"

	"github.com/kithcdp/kith/store"
)

// ConsentValue is the computed value that holds a profile's current
// consent: the categoryPreferences (Segment's context.consent) of the
// latest event, by timestamp, that carried any, as
// {"categoryPreferences": {...}, "timestamp": ..., "position": ...}. The
// delivery engine's consent gate reads it; the name is reserved.
const ConsentValue = "consent"

type consentValue struct {
	CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
	Timestamp           time.Time                  `json:"timestamp"`
	Position            int64                      `json:"position"`
}

// consent records the consent an event carries on its profile, unless the
// profile holds a later one.
func (e *Engine) consent(p store.ProfileID, ev *store.Event) {
	var f struct {
		Context struct {
			Consent struct {
				CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
			} `json:"consent"`
		} `json:"context"`
	}
	if json.Unmarshal(ev.Raw, &f) != nil || len(f.Context.Consent.CategoryPreferences) == 0 {
		return
	}
	v, err := json.Marshal(consentValue{f.Context.Consent.CategoryPreferences, ev.Timestamp, ev.Position})
	if err != nil {
		return
	}
	pr := e.get(p, false)
	if laterConsent(v, pr.values[ConsentValue]) {
		e.setValue(p, pr, ConsentValue, v, ev.ReceivedAt, ev.Position)
	}
}

// laterConsent reports whether consent value a was given after b (or b is
// absent): by timestamp, then position.
func laterConsent(a, b json.RawMessage) bool {
	if b == nil {
		return true
	}
	var ca, cb consentValue
	if json.Unmarshal(a, &ca) != nil {
		return false
	}
	if json.Unmarshal(b, &cb) != nil {
		return true
	}
	if !ca.Timestamp.Equal(cb.Timestamp) {
		return ca.Timestamp.After(cb.Timestamp)
	}
	return ca.Position > cb.Position
}
