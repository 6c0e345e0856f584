package privacy_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// TestConsentChangeOf: which events record a consent change, and what it
// says of each.
func TestConsentChangeOf(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	control := func(cmd privacy.Command) store.Event {
		ev, err := cmd.Event("acme", at)
		if err != nil {
			t.Fatal(err)
		}
		ev.Position = 7
		return ev
	}
	ada := store.Identifier{Type: "email", Value: "ada@example.com"}
	for _, tc := range []struct {
		name string
		ev   store.Event
		want string // the change as JSON; "" for none
	}{
		{"consent through the API", control(privacy.Command{Action: privacy.ActionConsent, Identifier: ada, Consent: map[string]bool{"analytics": false}, Actor: "token:dpo", Via: "api"}),
			`{"position":7,"at":"2026-11-24T09:00:00Z","how":"privacy consent","source":"api","actor":"token:dpo","consent":{"analytics":false}}`},
		{"terms withdrawn in the portal", control(privacy.Command{Action: privacy.ActionTerms, Identifier: ada, Actor: "portal", Via: "portal"}),
			`{"position":7,"at":"2026-11-24T09:00:00Z","how":"privacy terms","source":"portal","actor":"portal"}`},
		{"a restriction", control(privacy.Command{Action: privacy.ActionRestrict, Identifier: ada, Scope: privacy.ScopeAll, Actor: "cli", Via: "cli", Request: "r-1"}),
			`{"position":7,"at":"2026-11-24T09:00:00Z","how":"privacy restrict","source":"cli","actor":"cli","scope":"all","request":"r-1"}`},
		{"a correction is no consent change", control(privacy.Command{Action: privacy.ActionCorrect, Identifier: ada, Traits: map[string]json.RawMessage{"plan": []byte(`"pro"`)}, Actor: "cli"}), ""},
		{"an event with a TC string", store.Event{Position: 3, Type: "page", Name: "Pricing", Source: "web", Timestamp: at,
			Raw: []byte(`{"type":"page","context":{"consent":{"tcString":"CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA"}}}`)},
			`{"position":3,"at":"2026-11-24T09:00:00Z","how":"page Pricing","source":"web","actor":"person","tc_string":"CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA"}`},
		{"GPC alone", store.Event{Position: 4, Type: "identify", Source: "web", Timestamp: at, Signals: store.Signals{GPC: true}, Raw: []byte(`{"type":"identify"}`)},
			`{"position":4,"at":"2026-11-24T09:00:00Z","how":"identify","source":"web","actor":"person","gpc":true}`},
		{"an event without consent", store.Event{Type: "track", Name: "Viewed", Raw: []byte(`{"type":"track","context":{"ip":"1.2.3.4"}}`)}, ""},
		{"consent of a wrong type", store.Event{Type: "track", Raw: []byte(`{"context":{"consent":{"categoryPreferences":["x"]}}}`)}, ""},
		{"a malformed control event", store.Event{Type: store.TypePrivacy, Raw: []byte(`{"action":`)}, ""},
		{"an identity control event", store.Event{Type: store.TypeIdentity, Raw: []byte(`{"action":"block","context":{"consent":{"categoryPreferences":{"a":true}}}}`)}, ""},
	} {
		c, ok := privacy.ConsentChangeOf(&tc.ev)
		got := ""
		if ok {
			got = js(t, c)
		}
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestScopesAreConsentScopes: these personal terms, which a command may
// name, are in the consent model's catalogue (the scopes of privacy
// commands are its own constants).
func TestScopesAreConsentScopes(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"no-third-party-sharing", "no-tracking-off-site", "no-profiling", "no-marketing"} {
		if _, ok := consent.LookupTerm(name); !ok {
			t.Errorf("term %q is not in the catalogue", name)
		}
	}
}

// TestExportConsentChoices: the export's consent holds the GPC opt-out,
// the terms and restrictions folded from control events, and its
// consent_history lists each change, newest first — on both backends.
func TestExportConsentChoices(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		appendEvents(t, st, seedWS, `{"type":"identify","userId":"u-7","traits":{"email":"cy@example.com"},"timestamp":"2026-11-24T09:00:00Z","messageId":"c-1"}`)
		ev, err := (&privacy.Command{Action: privacy.ActionTerms, Identifier: store.Identifier{Type: "user_id", Value: "u-7"},
			Terms: []string{"no-profiling"}, Actor: "portal", Via: "portal"}).Event(seedWS, seedRX.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		restrict, err := (&privacy.Command{Action: privacy.ActionRestrict, Identifier: store.Identifier{Type: "email", Value: "cy@example.com"},
			Scope: privacy.ScopeMarketing, Actor: "token:dpo", Via: "api"}).Event(seedWS, seedRX.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		gpc := store.Event{Workspace: seedWS, Source: "web", MessageID: "c-2", Type: "page", Name: "Home", UserID: "u-7",
			Timestamp: seedRX.Add(3 * time.Minute), ReceivedAt: seedRX.Add(3 * time.Minute), Format: store.FormatVersion,
			Signals: store.Signals{GPC: true}, Raw: []byte(`{"type":"page","userId":"u-7","name":"Home"}`)}
		if _, err := st.Append(ctx, &store.Batch{Events: []store.Event{ev, restrict, gpc}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		fold(t, st, seedWS)
		e, _, files := exportBoth(t, st, seedWS, lookup(t, st, seedWS, "user_id", "u-7"))
		if c := e.Consent; c == nil || !c.GPC || js(t, c.Terms) != `["no-profiling"]` || js(t, c.Restricted) != `["marketing"]` {
			t.Errorf("consent %s", js(t, e.Consent))
		}
		var hows []string
		for _, c := range e.ConsentHistory {
			hows = append(hows, c.How+" by "+c.Actor)
		}
		if js(t, hows) != `["page Home by person","privacy restrict by token:dpo","privacy terms by portal"]` {
			t.Errorf("consent_history %q", hows)
		}
		if rows := files["consent_history.csv"]; len(rows) != 4 || rows[3][2] != "privacy terms" || rows[3][9] != `["no-profiling"]` {
			t.Errorf("consent_history.csv %q", rows)
		}
	})
}
