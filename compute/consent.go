package compute

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"time"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// ConsentValue is the computed value that holds a profile's consent and
// privacy choices:
//
//   - categoryPreferences and tcString are what the latest event, by
//     timestamp, that carried any said (Segment's context.consent), with
//     the purposes a person or an admin set since (privacy control events,
//     ActionConsent) merged in by name;
//   - gpc is whether any of the profile's events came with the Global
//     Privacy Control signal (Sec-GPC: 1, kept in the event's request
//     signals, so a replay applies it too): an opt-out of sale and sharing
//     that stays — a later event without it does not undo it, and a merge
//     keeps it;
//   - terms are the personal terms the person chose (ActionTerms);
//   - restricted and objected are the scopes (privacy.ScopeMarketing,
//     ScopeProfiling, ScopeAll) of the person's restrictions of processing
//     and objections. A profile restricted in "all" or "profiling", or
//     objecting to "profiling", is in no audience and has no computed
//     traits while it lasts (the counters keep counting, so lifting it
//     restores them).
//
// As JSON:
//
//	{"categoryPreferences": {...}, "tcString": "...", "timestamp": ...,
//	 "position": ..., "gpc": true, "terms": [...], "restricted": [...],
//	 "objected": [...]}
//
// The delivery engine's consent gate reads the value; the name is
// reserved.
const ConsentValue = "consent"

type consentValue struct {
	CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences,omitempty"`
	TCString            string                     `json:"tcString,omitempty"`
	Timestamp           time.Time                  `json:"timestamp"`
	Position            int64                      `json:"position"`
	GPC                 bool                       `json:"gpc,omitempty"`
	Terms               []string                   `json:"terms,omitempty"`
	Restricted          []string                   `json:"restricted,omitempty"`
	Objected            []string                   `json:"objected,omitempty"`
}

// excludes reports whether v keeps its profile out of audiences and
// computed traits.
func (v consentValue) excludes() bool {
	return slices.Contains(v.Restricted, privacy.ScopeAll) || slices.Contains(v.Restricted, privacy.ScopeProfiling) ||
		slices.Contains(v.Objected, privacy.ScopeProfiling)
}

// consent records the consent an event carries (its categoryPreferences
// and TCF string, its GPC signal) on its profile; hasPrefs is whether its
// raw JSON may carry consent at all (consent.MayHold: the caller has
// looked).
func (e *Engine) consent(p store.ProfileID, ev *store.Event, hasPrefs bool) {
	var st consent.Statement
	if hasPrefs {
		// Read as the delivery gate reads it; a failure (not an object:
		// ingest validated it) leaves no preferences.
		st, _ = consent.EventStatement(ev.Raw)
	}
	var prefs map[string]json.RawMessage
	for k, granted := range st.Categories {
		if prefs == nil {
			prefs = make(map[string]json.RawMessage, len(st.Categories))
		}
		prefs[k] = boolJSON(granted)
	}
	tc := st.TCString
	said := len(prefs) > 0 || tc != ""
	if !said && !ev.Signals.GPC {
		return
	}
	pr := e.get(p, false)
	if !said && bytes.Contains(pr.values[ConsentValue], []byte(`"gpc":true`)) {
		return // GPC again on a profile that has it: nothing to merge
	}
	e.updateConsent(p, pr, ev, func(cur *consentValue) {
		cur.GPC = cur.GPC || ev.Signals.GPC
		if said && later(ev.Timestamp, ev.Position, cur) {
			cur.CategoryPreferences, cur.TCString = prefs, tc
			cur.Timestamp, cur.Position = ev.Timestamp, ev.Position
		}
	})
}

// Control applies a privacy control event (consent, terms, restriction,
// objection and their undoing) to profile p's consent value. Other
// actions change nothing here.
func (e *Engine) Control(p store.ProfileID, cmd *privacy.Command, ev *store.Event) {
	pr := e.get(p, false)
	e.updateConsent(p, pr, ev, func(cur *consentValue) {
		switch cmd.Action {
		case privacy.ActionConsent:
			prefs := make(map[string]json.RawMessage, len(cur.CategoryPreferences)+len(cmd.Consent))
			for k, v := range cur.CategoryPreferences {
				prefs[k] = v
			}
			for k, granted := range cmd.Consent {
				prefs[k] = boolJSON(granted)
			}
			cur.CategoryPreferences = prefs
			cur.Timestamp, cur.Position = ev.Timestamp, ev.Position
		case privacy.ActionTerms:
			cur.Terms = sortedSet(cmd.Terms)
		case privacy.ActionRestrict:
			cur.Restricted = sortedSet(append(cur.Restricted, cmd.Scope))
		case privacy.ActionUnrestrict:
			cur.Restricted = slices.DeleteFunc(cur.Restricted, func(s string) bool { return s == cmd.Scope })
		case privacy.ActionObject:
			cur.Objected = sortedSet(append(cur.Objected, cmd.Scope))
		case privacy.ActionUnobject:
			cur.Objected = slices.DeleteFunc(cur.Objected, func(s string) bool { return s == cmd.Scope })
		}
	})
}

// updateConsent applies change to p's consent value and stores it if it
// changed; a change of whether it excludes p from audiences and computed
// traits marks p for evaluation.
func (e *Engine) updateConsent(p store.ProfileID, pr *profile, ev *store.Event, change func(*consentValue)) {
	cur := decodeConsent(pr.values[ConsentValue])
	was := cur.excludes()
	before := cur
	before.Restricted, before.Objected = slices.Clone(cur.Restricted), slices.Clone(cur.Objected)
	change(&cur)
	v, err := json.Marshal(cur)
	if err != nil || bytes.Equal(v, pr.values[ConsentValue]) {
		return
	}
	e.setValue(p, pr, ConsentValue, v, ev.ReceivedAt, ev.Position)
	pr.excluded = cur.excludes()
	if pr.excluded != was {
		e.touch(p, ev.Position) // its evaluation exits (or enters) its audiences
	} else if !pr.excluded && len(pr.members) > 0 && !sameChoices(before, cur) {
		// Most events that carry consent say again what the profile
		// holds: only a change of what was chosen writes an entry.
		e.out.Outbox = append(e.out.Outbox, e.consentEntry(p, pr, ev.Position, ev.ReceivedAt))
	}
}

// sameChoices reports whether a and b hold the same choices, whenever
// they were made.
func sameChoices(a, b consentValue) bool {
	a.Timestamp, a.Position, b.Timestamp, b.Position = time.Time{}, 0, time.Time{}, 0
	return reflect.DeepEqual(a, b)
}

// consentEntry makes the outbox entry of a consent change of a profile
// that is in audiences (store.OutboxConsentChanged): the exit of each, for
// the destinations the new consent no longer allows.
func (e *Engine) consentEntry(p store.ProfileID, pr *profile, position int64, at time.Time) store.OutboxEntry {
	exits := map[string]json.RawMessage{}
	for name, in := range pr.members {
		if in {
			exits[name] = e.outboxEntry(p, name, false, "consent", position, at).Payload
		}
	}
	payload, _ := json.Marshal(map[string]any{"exits": exits}) // raw JSON values: cannot fail
	return store.OutboxEntry{Workspace: e.o.Workspace, Kind: store.OutboxConsentChanged, Profile: p, Position: position,
		Key: ConsentValue, Payload: payload, At: at}
}

// later reports whether consent said at (ts, position) is later than
// cur's.
func later(ts time.Time, position int64, cur *consentValue) bool {
	return cur.CategoryPreferences == nil && cur.TCString == "" || ts.After(cur.Timestamp) ||
		ts.Equal(cur.Timestamp) && position > cur.Position
}

func decodeConsent(raw json.RawMessage) consentValue {
	var v consentValue
	if raw != nil && json.Unmarshal(raw, &v) != nil {
		return consentValue{}
	}
	return v
}

func boolJSON(b bool) json.RawMessage {
	if b {
		return json.RawMessage("true")
	}
	return json.RawMessage("false")
}

func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// mergeConsent combines a held consent value with another (a merge of two
// profiles): the later preferences (by timestamp, then position) win; GPC,
// terms, restrictions and objections of either are kept — the stricter
// choice stays. It returns the encoded result, or nil if it equals held.
func mergeConsent(held json.RawMessage, other consentValue) json.RawMessage {
	out := decodeConsent(held)
	out.GPC = out.GPC || other.GPC
	if (other.CategoryPreferences != nil || other.TCString != "") && later(other.Timestamp, other.Position, &out) {
		out.CategoryPreferences, out.TCString = other.CategoryPreferences, other.TCString
		out.Timestamp, out.Position = other.Timestamp, other.Position
	}
	out.Terms = sortedSet(append(out.Terms, other.Terms...))
	out.Restricted = sortedSet(append(out.Restricted, other.Restricted...))
	out.Objected = sortedSet(append(out.Objected, other.Objected...))
	v, err := json.Marshal(out)
	if err != nil || (held != nil && bytes.Equal(v, held)) {
		return nil
	}
	return v
}
