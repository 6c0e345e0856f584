package compute

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// TestMergeConsent: a merge keeps the later preferences (by timestamp, then
// position) with their TCF string, and the stricter of everything else.
func TestMergeConsent(t *testing.T) {
	t.Parallel()
	t1, t2 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	enc := func(v consentValue) json.RawMessage {
		b, _ := json.Marshal(v)
		return b
	}
	yes, no := json.RawMessage("true"), json.RawMessage("false")
	cases := []struct {
		name  string
		held  json.RawMessage
		other consentValue
		want  string // "" when nothing changes
	}{
		{"nothing held takes the other", nil, consentValue{CategoryPreferences: map[string]json.RawMessage{"ads": yes}, Timestamp: t1, Position: 1},
			`{"categoryPreferences":{"ads":true},"timestamp":"2026-11-01T00:00:00Z","position":1}`},
		{"later held wins", enc(consentValue{CategoryPreferences: map[string]json.RawMessage{"ads": no}, Timestamp: t2, Position: 5}),
			consentValue{CategoryPreferences: map[string]json.RawMessage{"ads": yes}, Timestamp: t1, Position: 9}, ""},
		{"later other wins with its TCF string", enc(consentValue{CategoryPreferences: map[string]json.RawMessage{"ads": no}, TCString: "old", Timestamp: t1, Position: 5}),
			consentValue{TCString: "new", Timestamp: t2, Position: 2},
			`{"tcString":"new","timestamp":"2026-11-02T00:00:00Z","position":2}`},
		{"same time: higher position wins", enc(consentValue{CategoryPreferences: map[string]json.RawMessage{"ads": no}, Timestamp: t1, Position: 5}),
			consentValue{CategoryPreferences: map[string]json.RawMessage{"ads": yes}, Timestamp: t1, Position: 6},
			`{"categoryPreferences":{"ads":true},"timestamp":"2026-11-01T00:00:00Z","position":6}`},
		{"GPC, terms, restrictions and objections of either stay", enc(consentValue{GPC: true, Terms: []string{"b"}, Restricted: []string{"marketing"}, Timestamp: t2}),
			consentValue{Terms: []string{"a", "b"}, Objected: []string{"profiling"}},
			`{"timestamp":"2026-11-02T00:00:00Z","position":0,"gpc":true,"terms":["a","b"],"restricted":["marketing"],"objected":["profiling"]}`},
		{"a held GPC is not undone", enc(consentValue{GPC: true}), consentValue{}, ""},
	}
	for _, c := range cases {
		got := mergeConsent(c.held, c.other)
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// TestControl: privacy commands change the consent value, and a
// restriction of profiling takes the profile out of audiences and computed
// traits until it is lifted.
func TestControl(t *testing.T) {
	t.Parallel()
	defs, err := Compile([]store.Definition{
		{Kind: store.DefinitionTrait, Name: "views", Body: json.RawMessage(`{"name":"views","kind":"count","types":["page"]}`)},
		{Kind: store.DefinitionAudience, Name: "viewers", Body: json.RawMessage(`{"name":"viewers","condition":"computed.views >= 1"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := New(defs, Options{})
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	pos := int64(0)
	ev := func(typ string, raw string) *store.Event {
		pos++
		return &store.Event{Position: pos, Type: typ, Timestamp: now, ReceivedAt: now, Raw: json.RawMessage(raw)}
	}
	e.Observe(1, ev("page", `{"type":"page","context":{"consent":{"categoryPreferences":{"Analytics":true}}}}`))
	e.Evaluate(now, pos)
	control := func(cmd privacy.Command) store.ComputeChanges {
		e.Control(1, &cmd, ev(store.TypePrivacy, `{}`))
		return e.Evaluate(now, pos)
	}
	value := func() string { return string(e.prof[1].values[ConsentValue]) }

	out := control(privacy.Command{Action: privacy.ActionConsent, Consent: map[string]bool{"Analytics": false, "ads": true}})
	if want := `{"categoryPreferences":{"Analytics":false,"ads":true},"timestamp":"2026-11-03T00:00:00Z","position":2}`; value() != want {
		t.Errorf("after consent: %s, want %s", value(), want)
	}
	if len(out.Audiences) != 0 {
		t.Errorf("consent changed memberships: %+v", out.Audiences)
	}
	// The change of a member's consent is in the outbox, with its exits.
	if len(out.Outbox) != 1 || out.Outbox[0].Kind != store.OutboxConsentChanged ||
		!strings.Contains(string(out.Outbox[0].Payload), `"exits":{"viewers":{"type":"track","event":"Audience Exited"`) {
		t.Errorf("outbox after the consent change: %+v", out.Outbox)
	}
	// An event saying the same again, later, changes no choice: no entry.
	e.Observe(1, ev("page", `{"type":"page","context":{"consent":{"categoryPreferences":{"Analytics":false,"ads":true}}}}`))
	if out := e.Evaluate(now.Add(time.Minute), pos); slices.ContainsFunc(out.Outbox, func(o store.OutboxEntry) bool { return o.Kind == store.OutboxConsentChanged }) {
		t.Errorf("the same consent again wrote %+v", out.Outbox)
	}
	out = control(privacy.Command{Action: privacy.ActionRestrict, Scope: privacy.ScopeProfiling})
	if len(out.Audiences) != 1 || out.Audiences[0].Entered || out.Audiences[0].Reason != "restricted" {
		t.Errorf("restriction: audience changes %+v", out.Audiences)
	}
	if _, ok := e.prof[1].values["views"]; ok {
		t.Error("a restricted profile keeps its computed trait")
	}
	control(privacy.Command{Action: privacy.ActionTerms, Terms: []string{"no-third-party-sharing"}})
	out = control(privacy.Command{Action: privacy.ActionUnrestrict, Scope: privacy.ScopeProfiling})
	if len(out.Audiences) != 1 || !out.Audiences[0].Entered {
		t.Errorf("lifting the restriction: audience changes %+v", out.Audiences)
	}
	if want := `{"categoryPreferences":{"Analytics":false,"ads":true},"timestamp":"2026-11-03T00:00:00Z","position":3,"terms":["no-third-party-sharing"]}`; value() != want {
		t.Errorf("after terms and lifting: %s, want %s", value(), want)
	}
	e.Forget(1, pos)
	if out := e.Evaluate(now, pos); e.prof[1] != nil || !out.Empty() {
		t.Errorf("after Forget the engine holds %+v and writes %+v", e.prof[1], out)
	}
}

// TestEventConsentAsTheGateReadsIt: the engine records an event's consent
// as the delivery gate reads it (consent.EventStatement): keys in any
// case, and the preferences even when the TC string has the wrong type.
func TestEventConsentAsTheGateReadsIt(t *testing.T) {
	t.Parallel()
	defs, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	for raw, want := range map[string]string{
		`{"type":"page","context":{"Consent":{"CategoryPreferences":{"Ads":false}}}}`:             `{"categoryPreferences":{"Ads":false},`,
		`{"type":"page","context":{"consent":{"categoryPreferences":{"Ads":true},"tcString":5}}}`: `{"categoryPreferences":{"Ads":true},`,
		`{"type":"page","context":{"consent":{"tcString":"CQSbk4AQSbk4A"}}}`:                      `{"tcString":"CQSbk4AQSbk4A",`,
	} {
		e := New(defs, Options{})
		e.Observe(1, &store.Event{Position: 1, Type: "page", Timestamp: now, ReceivedAt: now, Raw: json.RawMessage(raw)})
		if got := string(e.prof[1].values[ConsentValue]); !strings.HasPrefix(got, want) {
			t.Errorf("%s: consent value %s, want it to start %s", raw, got, want)
		}
	}
}
