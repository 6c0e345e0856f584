package compute

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/kithcdp/kith/store"
)

// ConsentValue is the computed value that holds a profile's current
// consent: the categoryPreferences (Segment's context.consent) of the
// latest event, by timestamp, that carried any, and whether any of its
// events came with the Global Privacy Control signal (Sec-GPC: 1, kept in
// the event's request signals, so a replay applies it too), as
// {"categoryPreferences": {...}, "timestamp": ..., "position": ...,
// "gpc": true}. GPC is an opt-out of sale and sharing that stays: a later
// event without it does not undo it, and a merge keeps it. The delivery
// engine's consent gate reads the value; the name is reserved.
const ConsentValue = "consent"

type consentValue struct {
	CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences,omitempty"`
	Timestamp           time.Time                  `json:"timestamp"`
	Position            int64                      `json:"position"`
	GPC                 bool                       `json:"gpc,omitempty"`
}

// consent records the consent an event carries (its categoryPreferences,
// its GPC signal) on its profile; hasPrefs is whether its raw JSON names
// categoryPreferences at all (the caller has looked).
func (e *Engine) consent(p store.ProfileID, ev *store.Event, hasPrefs bool) {
	var f struct {
		Context struct {
			Consent struct {
				CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
			} `json:"consent"`
		} `json:"context"`
	}
	if hasPrefs {
		_ = json.Unmarshal(ev.Raw, &f) // validated at ingest; a failure leaves no preferences
	}
	prefs := f.Context.Consent.CategoryPreferences
	if len(prefs) == 0 && !ev.Signals.GPC {
		return
	}
	pr := e.get(p, false)
	if len(prefs) == 0 && bytes.Contains(pr.values[ConsentValue], []byte(`"gpc":true`)) {
		return // GPC again on a profile that has it: nothing to merge
	}
	next := consentValue{Timestamp: ev.Timestamp, Position: ev.Position, GPC: ev.Signals.GPC}
	if len(prefs) > 0 {
		next.CategoryPreferences = prefs
	} else {
		// GPC alone: the preferences held stay as they are.
		next.Timestamp, next.Position = time.Time{}, 0
	}
	if v := mergeConsent(pr.values[ConsentValue], next); v != nil {
		e.setValue(p, pr, ConsentValue, v, ev.ReceivedAt, ev.Position)
	}
}

// mergeConsent combines a held consent value with another: the later
// preferences (by timestamp, then position) win, GPC is kept if either
// has it. It returns the encoded result, or nil if it equals held.
func mergeConsent(held json.RawMessage, other consentValue) json.RawMessage {
	var cur consentValue
	if held != nil && json.Unmarshal(held, &cur) != nil {
		cur = consentValue{}
	}
	out := cur
	out.GPC = cur.GPC || other.GPC
	if other.CategoryPreferences != nil && (cur.CategoryPreferences == nil || other.Timestamp.After(cur.Timestamp) ||
		(other.Timestamp.Equal(cur.Timestamp) && other.Position > cur.Position)) {
		out.CategoryPreferences, out.Timestamp, out.Position = other.CategoryPreferences, other.Timestamp, other.Position
	}
	v, err := json.Marshal(out)
	if err != nil || (held != nil && bytes.Equal(v, held)) {
		return nil
	}
	return v
}
