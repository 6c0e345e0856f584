package consent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/consent/tcf"
)

// Statement is consent as one party said it: an event's own consent
// (EventStatement) or a profile's consent value (ValueStatement).
type Statement struct {
	// Categories are the categoryPreferences, names as said.
	Categories map[string]bool `json:"categoryPreferences,omitempty"`
	// TCString is an IAB TCF v2 consent string, byte for byte as said.
	TCString string `json:"tcString,omitempty"`
	// GPC: the Global Privacy Control signal (Sec-GPC: 1).
	GPC bool `json:"gpc,omitempty"`
	// Terms, Restricted and Objected are the person's personal terms,
	// restrictions and objections (profiles only).
	Terms      []string `json:"terms,omitempty"`
	Restricted []string `json:"restricted,omitempty"`
	Objected   []string `json:"objected,omitempty"`
	// Timestamp is when the categoryPreferences and TC string were said
	// (profiles only; zero when unknown).
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// Bools keeps the boolean values of categoryPreferences as decoded from
// JSON; other values say nothing and are left out. It returns nil for
// none.
func Bools(prefs map[string]json.RawMessage) map[string]bool {
	if len(prefs) == 0 {
		return nil
	}
	out := make(map[string]bool, len(prefs))
	for k, v := range prefs {
		var granted bool
		if json.Unmarshal(v, &granted) == nil {
			out[k] = granted
		}
	}
	return out
}

// EventStatement reads an event's own consent: Segment's
// context.consent.categoryPreferences and context.consent.tcString (a
// tcString that is not a JSON string is left out). It fails only when raw
// is not a JSON object.
func EventStatement(raw []byte) (Statement, error) {
	var ev struct {
		Context struct {
			Consent struct {
				CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
				TCString            json.RawMessage            `json:"tcString"`
			} `json:"consent"`
		} `json:"context"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		// A wrong type along the path says nothing; anything else is not
		// an event.
		if _, ok := err.(*json.UnmarshalTypeError); !ok {
			return Statement{}, fmt.Errorf("read the event's consent: %w", err)
		}
	}
	c := ev.Context.Consent
	s := Statement{Categories: Bools(c.CategoryPreferences)}
	_ = json.Unmarshal(c.TCString, &s.TCString)
	return s, nil
}

// ValueStatement reads a profile's consent value (the computed value
// "consent" the compute engine keeps). nil or empty raw is no consent.
func ValueStatement(raw []byte) (Statement, error) {
	if len(raw) == 0 {
		return Statement{}, nil
	}
	var v struct {
		CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
		TCString            string                     `json:"tcString"`
		Timestamp           time.Time                  `json:"timestamp"`
		GPC                 bool                       `json:"gpc"`
		Terms               []string                   `json:"terms"`
		Restricted          []string                   `json:"restricted"`
		Objected            []string                   `json:"objected"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return Statement{}, fmt.Errorf("read the profile's consent: %w", err)
	}
	return Statement{Categories: Bools(v.CategoryPreferences), TCString: v.TCString, GPC: v.GPC,
		Terms: v.Terms, Restricted: v.Restricted, Objected: v.Objected, Timestamp: v.Timestamp}, nil
}

// Choice is a decision about one purpose and what made it.
type Choice struct {
	Granted bool `json:"granted"`
	// By is what decided: "categoryPreferences.<name as said>",
	// "tcString", "gpc", "terms:<term>", "restricted:<scope>" or
	// "objected:<scope>".
	By string `json:"by"`
}

// Choices are a statement's decisions, by purpose name (or, for a name no
// purpose stands for, the name in lower case). A purpose not in Choices
// is not decided by the statement.
type Choices map[string]Choice

// Resolve turns a statement into decisions per purpose:
//
//  1. categoryPreferences: a key that is the purpose's own name decides
//     it — written exactly (as privacy control events merge it into a
//     profile's preferences, so a person's later choice wins over what an
//     event said), else in another case; otherwise its other categories
//     and GCM signals do. Among keys of equal rank a denial wins;
//  2. the TC string decides the purposes with TCF ids that step 1 left
//     undecided (ResolveTCString);
//  3. GPC, personal terms, restrictions and objections deny the purposes
//     they cover, whatever 1 and 2 said.
//
// Keys no purpose stands for are kept by their lower-case name, ranked
// the same way, so that a destination may declare a purpose of its own.
func (c *Catalogue) Resolve(s Statement) Choices {
	ch := Choices{}
	keys := make([]string, 0, len(s.Categories))
	for k := range s.Categories {
		keys = append(keys, k)
	}
	slices.Sort(keys)        // a stable choice among equal decisions
	rank := map[string]int{} // purpose → rank of the key that decided it
	for _, k := range keys {
		name, granted := c.key(k), s.Categories[k]
		r := 2 // another category or signal
		switch {
		case k == name:
			r = 0
		case strings.EqualFold(k, name):
			r = 1
		}
		prev, seen := ch[name]
		if seen && (rank[name] < r || rank[name] == r && (!prev.Granted || granted)) {
			continue
		}
		ch[name], rank[name] = Choice{Granted: granted, By: "categoryPreferences." + k}, r
	}
	ch = c.ResolveTCString(ch, s.TCString)
	if s.GPC {
		ch = c.OptOutOfSale(ch)
	}
	terms := slices.Clone(s.Terms)
	slices.Sort(terms)
	for _, name := range terms {
		if t, ok := LookupTerm(name); ok {
			c.deny(ch, "terms:"+name, t.Covers)
		}
	}
	for _, sc := range s.Restricted {
		c.deny(ch, "restricted:"+sc, func(p Purpose) bool { return scopeCovers(sc, p) })
	}
	for _, sc := range s.Objected {
		c.deny(ch, "objected:"+sc, func(p Purpose) bool { return scopeCovers(sc, p) })
	}
	return ch
}

// deny denies in ch every purpose covers selects that is not already
// denied.
func (c *Catalogue) deny(ch Choices, by string, covers func(Purpose) bool) {
	for _, p := range c.purposes {
		if prev, ok := ch[p.Name]; covers(p) && (!ok || prev.Granted) {
			ch[p.Name] = Choice{Granted: false, By: by}
		}
	}
}

// OptOutOfSale returns a copy of ch with every purpose the Global Privacy
// Control signal opts out of denied (GPC wins over an earlier or
// conflicting grant).
func (c *Catalogue) OptOutOfSale(ch Choices) Choices {
	out := make(Choices, len(ch)+len(c.purposes))
	for k, v := range ch {
		out[k] = v
	}
	c.deny(out, "gpc", func(p Purpose) bool { return p.GPC })
	return out
}

// ResolveTCString returns ch with the decisions of an IAB TCF v2 string
// added for the purposes with TCF ids that ch does not decide: granted
// when the string allows every TCF purpose the purpose maps to (consent,
// or for a purpose on legitimate interest the legitimate-interest signal,
// which TCF v2.2 allows for purposes 2 and 7–11), denied otherwise. A
// string that does not decode, or is not service-specific (which the TCF
// policy makes invalid), decides nothing. The string is only read.
func (c *Catalogue) ResolveTCString(ch Choices, tcString string) Choices {
	if tcString == "" {
		return ch
	}
	t, err := tcf.Decode(tcString)
	if err != nil || !t.IsServiceSpecific {
		return ch
	}
	if ch == nil {
		ch = Choices{}
	}
	for _, p := range c.purposes {
		if _, decided := ch[p.Name]; decided || len(p.TCF) == 0 {
			continue
		}
		granted := true
		for _, id := range p.TCF {
			li := p.Basis == BasisLegitimateInterest && (id == 2 || id >= 7) && t.PurposeLegitimateInterest(id)
			if !t.PurposeConsent(id) && !li {
				granted = false
				break
			}
		}
		ch[p.Name] = Choice{Granted: granted, By: "tcString"}
	}
	return ch
}

// Decision is the outcome of Evaluate.
type Decision struct {
	Allowed bool `json:"allowed"`
	// Purpose is the first purpose that stops it ("" when allowed).
	Purpose string `json:"purpose,omitempty"`
	// Party is whose statement stopped it: "event", "profile", or
	// "default" when neither records the purpose (default deny).
	Party string `json:"party,omitempty"`
	// By is what in that statement stopped it (Choice.By).
	By string `json:"by,omitempty"`
}

// Parties of a Decision.
const (
	PartyEvent   = "event"
	PartyProfile = "profile"
	PartyDefault = "default"
)

// Evaluate decides whether a use that needs purposes is allowed, given the
// event's own decisions and the profile's (either may be nil). Each
// purpose must be granted by one and denied by neither — the stricter
// wins. A purpose neither decides is denied (default deny) unless
// missingAllowed (a workspace's opt-in to delivering what carries no
// consent at all). The strictly necessary purpose is always allowed.
// Purpose names are matched as Lookup matches them.
func (c *Catalogue) Evaluate(purposes []string, event, profile Choices, missingAllowed bool) Decision {
	for _, need := range purposes {
		k := strings.ToLower(need) // as key does, with one lookup for both
		if i, ok := c.byAlias[k]; ok {
			if c.purposes[i].Necessary {
				continue
			}
			k = c.purposes[i].Name
		}
		ev, evOK := event[k]
		pr, prOK := profile[k]
		switch {
		case evOK && !ev.Granted:
			return Decision{Purpose: k, Party: PartyEvent, By: ev.By}
		case prOK && !pr.Granted:
			return Decision{Purpose: k, Party: PartyProfile, By: pr.By}
		case !evOK && !prOK && !missingAllowed:
			return Decision{Purpose: k, Party: PartyDefault}
		}
	}
	return Decision{Allowed: true}
}

// Purpose states, as State reports them.
const (
	StatusGranted     = "granted"
	StatusDenied      = "denied"
	StatusNotRecorded = "not_recorded"
)

// PurposeState is where one purpose stands for a profile.
type PurposeState struct {
	Purpose
	// Status is StatusGranted, StatusDenied or StatusNotRecorded.
	Status string `json:"status"`
	// Allowed is whether the purpose may be used: granted, or strictly
	// necessary (a purpose not recorded is denied by default).
	Allowed bool `json:"allowed"`
	// By is what decided (Choice.By); "" when not recorded.
	By string `json:"by,omitempty"`
}

// State reports every purpose of the catalogue as ch decides it, in the
// catalogue's order, and the Google Consent Mode signals that follow: a
// signal is "granted" when every purpose it stands for is allowed.
func (c *Catalogue) State(ch Choices) ([]PurposeState, map[string]string) {
	out := make([]PurposeState, len(c.purposes))
	gcm := map[string]string{}
	for i, p := range c.Purposes() {
		st := PurposeState{Purpose: p, Status: StatusNotRecorded, Allowed: p.Necessary}
		if v, ok := ch[p.Name]; ok {
			st.Status, st.By = StatusDenied, v.By
			if v.Granted {
				st.Status = StatusGranted
			}
			st.Allowed = st.Allowed || v.Granted
		}
		out[i] = st
		for _, s := range p.GCM {
			if gcm[s] != StatusDenied {
				gcm[s] = StatusGranted
			}
			if !st.Allowed {
				gcm[s] = StatusDenied
			}
		}
	}
	return out, gcm
}

// MayHold reports whether an event's JSON may carry consent: it is false
// only when decoding it certainly finds no context.consent — no key
// "consent" in any ASCII case, no escape, and no "ſ" (encoding/json
// matches keys as bytes.EqualFold does, and U+017F is the one letter
// outside ASCII that folds to a letter of "consent"). Other text outside
// ASCII (names, addresses) does not count. Callers skip decoding events
// for which it is false.
func MayHold(raw []byte) bool {
	if bytes.Contains(raw, []byte(`\u`)) || bytes.Contains(raw, []byte("\u017f")) {
		return true
	}
	for i, c := range raw {
		if c == '"' && i+9 <= len(raw) && bytes.EqualFold(raw[i:i+9], []byte(`"consent"`)) {
			return true
		}
	}
	return false
}
