package consent

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TC strings of the IAB's published examples (the golden vectors of
// consent/tcf).
const (
	// spec 2.2 worked example: service-specific, no purpose consented.
	tcSpec22 = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"
	// spec 2.0 core: purposes 1, 2, 3 consented; not service-specific.
	tcPurposes123 = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
	// purposes 1–9 and 11 consented, 12–18 on legitimate interest; not
	// service-specific.
	tcPurposes1to11 = "COw4XqLOw4XqLAAAAAENAXCAAP-gAAAfwIAAACngAI8AAA.cAEAPAAAC7gAHw4AAA"
	// purposes 3, 5, 6, 8 consented; 2, 3, 5, 7, 9, 10 on legitimate
	// interest; not service-specific.
	tcLegitimate = "CGL23UdMFJzvuA9ACCENAXCEAC0AAGrAAA5YA5ht7-_d_7_vd-f-nrf4_4A4hM4JCKoK4YhmAqABgAEgAA"
)

// serviceSpecific sets the IsServiceSpecific bit (bit 138 of the core
// segment) of a published example that predates the rule making it
// mandatory, leaving every other bit as published.
func serviceSpecific(t *testing.T, s string) string {
	t.Helper()
	core, rest, _ := strings.Cut(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(core)
	if err != nil {
		t.Fatal(err)
	}
	b[138/8] |= 0x80 >> (138 % 8)
	out := base64.RawURLEncoding.EncodeToString(b)[:len(core)]
	if rest != "" {
		out += "." + rest
	}
	return out
}

func TestDefaultCatalogue(t *testing.T) {
	t.Parallel()
	c := Default()
	for name, want := range map[string]string{
		"Advertising": "advertising", "TARGETING": "advertising", "c0004": "advertising", "ad_storage": "advertising",
		"ad_user_data": "advertising", "Analytics": "analytics", "analytics_storage": "analytics", "C0002": "analytics",
		"Functional": "personalization", "Email": "marketing", "sale": "sale_sharing", "sharing": "sale_sharing",
		"Strictly Necessary": "necessary", "security_storage": "necessary",
	} {
		p, ok := c.Lookup(name)
		if !ok || p.Name != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", name, p.Name, ok, want)
		}
	}
	if _, ok := c.Lookup("email_reminders"); ok {
		t.Error("Lookup of an unknown name found a purpose")
	}
	// Purposes returns a copy.
	ps := c.Purposes()
	ps[0].Categories[0] = "changed"
	if c.Purposes()[0].Categories[0] == "changed" {
		t.Error("Purposes shares its slices with the catalogue")
	}
}

func TestNewCatalogueErrors(t *testing.T) {
	t.Parallel()
	necessary := Purpose{Name: "necessary", Basis: BasisContract, Necessary: true}
	for _, tc := range []struct {
		name     string
		purposes []Purpose
		want     string
	}{
		{"none necessary", []Purpose{{Name: "a", Basis: BasisConsent}}, "exactly one purpose must be strictly_necessary, not 0"},
		{"two necessary", []Purpose{necessary, {Name: "b", Basis: BasisContract, Necessary: true}}, "not 2"},
		{"bad name", []Purpose{necessary, {Name: "Ads", Basis: BasisConsent}}, `name "Ads"`},
		{"empty name", []Purpose{necessary, {Basis: BasisConsent}}, `name ""`},
		{"bad basis", []Purpose{necessary, {Name: "a", Basis: "because"}}, `lawful_basis "because"`},
		{"duplicate name", []Purpose{necessary, {Name: "necessary", Basis: BasisConsent}}, `"necessary" already stands for purpose "necessary"`},
		{"shared category", []Purpose{necessary, {Name: "a", Basis: BasisConsent, Categories: []string{"X"}}, {Name: "b", Basis: BasisConsent, Categories: []string{"x"}}}, `"x" already stands for purpose "a"`},
		{"blank category", []Purpose{necessary, {Name: "a", Basis: BasisConsent, Categories: []string{" "}}}, "not blank"},
		{"tcf 0", []Purpose{necessary, {Name: "a", Basis: BasisConsent, TCF: []int{0}}}, "tcf purpose 0"},
		{"tcf 12", []Purpose{necessary, {Name: "a", Basis: BasisConsent, TCF: []int{12}}}, "tcf purpose 12"},
		{"gcm", []Purpose{necessary, {Name: "a", Basis: BasisConsent, GCM: []string{"ads"}}}, `gcm signal "ads"`},
		{"necessary opted out", []Purpose{{Name: "n", Basis: BasisContract, Necessary: true, GPC: true}}, "cannot be opted out"},
	} {
		_, err := NewCatalogue(tc.purposes)
		if !errors.Is(err, ErrInvalidPurpose) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v; want ErrInvalidPurpose with %q", tc.name, err, tc.want)
		}
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	c := Default()
	for _, tc := range []struct {
		name string
		s    Statement
		want map[string]string // purpose → "granted by" or "denied by"; absent: undecided
	}{
		{"aliases", Statement{Categories: map[string]bool{"Advertising": true, "C0002": false, "Email": true}},
			map[string]string{"advertising": "granted categoryPreferences.Advertising", "analytics": "denied categoryPreferences.C0002", "marketing": "granted categoryPreferences.Email"}},
		{"a denial wins among aliases", Statement{Categories: map[string]bool{"Ads": true, "Targeting": false, "ad_storage": true}},
			map[string]string{"advertising": "denied categoryPreferences.Targeting"}},
		{"the purpose's own name wins over aliases", Statement{Categories: map[string]bool{"Targeting": false, "advertising": true}},
			map[string]string{"advertising": "granted categoryPreferences.advertising"}},
		{"the own name written exactly wins (a control event's)", Statement{Categories: map[string]bool{"Analytics": false, "analytics": true}},
			map[string]string{"analytics": "granted categoryPreferences.analytics"}},
		{"own name in two other cases: a denial wins", Statement{Categories: map[string]bool{"Analytics": true, "ANALYTICS": false}},
			map[string]string{"analytics": "denied categoryPreferences.ANALYTICS"}},
		{"unknown names are kept in lower case", Statement{Categories: map[string]bool{"Email_Reminders": true, "email_reminders": false}},
			map[string]string{"email_reminders": "denied categoryPreferences.email_reminders"}},
		{"a service-specific string without purposes denies the TCF purposes", Statement{TCString: tcSpec22},
			map[string]string{"analytics": "denied tcString", "personalization": "denied tcString", "advertising": "denied tcString"}},
		{"categories decide before the TC string", Statement{TCString: tcSpec22, Categories: map[string]bool{"Analytics": true}},
			map[string]string{"analytics": "granted categoryPreferences.Analytics", "personalization": "denied tcString", "advertising": "denied tcString"}},
		{"a string that is not service-specific decides nothing", Statement{TCString: tcPurposes1to11}, map[string]string{}},
		{"a string that does not decode decides nothing", Statement{TCString: "not a TC string"}, map[string]string{}},
		{"GPC denies sale and sharing whatever was granted", Statement{GPC: true, Categories: map[string]bool{"Advertising": true, "Analytics": true}},
			map[string]string{"advertising": "denied gpc", "sale_sharing": "denied gpc", "analytics": "granted categoryPreferences.Analytics"}},
		{"terms", Statement{Terms: []string{"no-profiling", "unknown-term"}, Categories: map[string]bool{"Personalization": true}},
			map[string]string{"personalization": "denied terms:no-profiling", "advertising": "denied terms:no-profiling"}},
		{"no-tracking-off-site", Statement{Terms: []string{"no-tracking-off-site"}}, map[string]string{"advertising": "denied terms:no-tracking-off-site"}},
		{"no-third-party-sharing", Statement{Terms: []string{"no-third-party-sharing"}},
			map[string]string{"advertising": "denied terms:no-third-party-sharing", "sale_sharing": "denied terms:no-third-party-sharing"}},
		{"restricted all", Statement{Restricted: []string{"all"}, Categories: map[string]bool{"Necessary": true}},
			map[string]string{"necessary": "granted categoryPreferences.Necessary", "analytics": "denied restricted:all", "personalization": "denied restricted:all",
				"advertising": "denied restricted:all", "marketing": "denied restricted:all", "sale_sharing": "denied restricted:all"}},
		{"objected to marketing", Statement{Objected: []string{"marketing"}},
			map[string]string{"advertising": "denied objected:marketing", "marketing": "denied objected:marketing"}},
		{"restricted profiling", Statement{Restricted: []string{"profiling"}},
			map[string]string{"advertising": "denied restricted:profiling", "personalization": "denied restricted:profiling"}},
	} {
		got := map[string]string{}
		for k, v := range c.Resolve(tc.s) {
			verb := "denied "
			if v.Granted {
				verb = "granted "
			}
			got[k] = verb + v.By
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, w := range tc.want {
			if got[k] != w {
				t.Errorf("%s: %s is %q, want %q (all: %v)", tc.name, k, got[k], w, got)
			}
		}
	}
}

// TestResolveTCString evaluates published TC strings made service-specific.
func TestResolveTCString(t *testing.T) {
	t.Parallel()
	c := Default()
	granted := func(tc, purpose string, cat *Catalogue) bool {
		v, ok := cat.ResolveTCString(nil, tc)[purpose]
		return ok && v.Granted
	}
	all := serviceSpecific(t, tcPurposes1to11)
	for _, p := range []string{"analytics", "personalization", "advertising"} {
		if !granted(all, p, c) {
			t.Errorf("purposes 1–9 and 11: %s not granted", p)
		}
	}
	some := serviceSpecific(t, tcPurposes123)
	for _, p := range []string{"analytics", "personalization", "advertising"} {
		if granted(some, p, c) {
			t.Errorf("purposes 1–3: %s granted, but it needs more", p)
		}
	}
	// Legitimate interest counts for a purpose on that basis, and only
	// for the TCF purposes that allow it (never 3–6).
	li, err := NewCatalogue([]Purpose{
		{Name: "necessary", Basis: BasisContract, Necessary: true},
		{Name: "measure_li", Basis: BasisLegitimateInterest, TCF: []int{7, 8, 9}},
		{Name: "measure_consent", Basis: BasisConsent, TCF: []int{7, 8}},
		{Name: "profile_li", Basis: BasisLegitimateInterest, TCF: []int{3, 5}},
		{Name: "content_li", Basis: BasisLegitimateInterest, TCF: []int{4}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := serviceSpecific(t, tcLegitimate)
	for p, want := range map[string]bool{"measure_li": true, "measure_consent": false, "profile_li": true, "content_li": false} {
		if got := granted(s, p, li); got != want {
			t.Errorf("%s: granted %v, want %v", p, got, want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	c := Default()
	grantAds := c.Resolve(Statement{Categories: map[string]bool{"Advertising": true}})
	denyAds := c.Resolve(Statement{Categories: map[string]bool{"Advertising": false}})
	gpc := c.Resolve(Statement{GPC: true})
	for _, tc := range []struct {
		name           string
		purposes       []string
		event, profile Choices
		missing        bool
		want           Decision
	}{
		{"granted by the event", []string{"advertising"}, grantAds, nil, false, Decision{Allowed: true}},
		{"granted by the profile, by an alias", []string{"targeting"}, nil, grantAds, false, Decision{Allowed: true}},
		{"the event denies", []string{"advertising"}, denyAds, grantAds, false, Decision{Purpose: "advertising", Party: PartyEvent, By: "categoryPreferences.Advertising"}},
		{"the profile denies", []string{"ad_storage"}, grantAds, denyAds, false, Decision{Purpose: "advertising", Party: PartyProfile, By: "categoryPreferences.Advertising"}},
		{"GPC on the profile", []string{"sale"}, grantAds, gpc, false, Decision{Purpose: "sale_sharing", Party: PartyProfile, By: "gpc"}},
		{"default deny", []string{"analytics"}, grantAds, nil, false, Decision{Purpose: "analytics", Party: PartyDefault}},
		{"missing allowed", []string{"analytics"}, grantAds, nil, true, Decision{Allowed: true}},
		{"missing allowed does not undo a denial", []string{"advertising"}, denyAds, nil, true, Decision{Purpose: "advertising", Party: PartyEvent, By: "categoryPreferences.Advertising"}},
		{"necessary needs nothing", []string{"necessary", "Essential"}, nil, nil, false, Decision{Allowed: true}},
		{"a purpose of the destination's own", []string{"Email_Reminders"}, Choices{"email_reminders": {Granted: true}}, nil, false, Decision{Allowed: true}},
		{"the first purpose that stops", []string{"advertising", "analytics"}, grantAds, nil, false, Decision{Purpose: "analytics", Party: PartyDefault}},
	} {
		if got := c.Evaluate(tc.purposes, tc.event, tc.profile, tc.missing); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestStatements(t *testing.T) {
	t.Parallel()
	s, err := EventStatement([]byte(`{"type":"track","context":{"consent":{"categoryPreferences":{"Advertising":true,"Analytics":"yes"},"tcString":"` + tcSpec22 + `"}}}`))
	if err != nil || len(s.Categories) != 1 || !s.Categories["Advertising"] || s.TCString != tcSpec22 {
		t.Errorf("EventStatement = %+v, %v", s, err)
	}
	for _, raw := range []string{`{"context":"x"}`, `{"context":{"consent":{"categoryPreferences":[1],"tcString":7}}}`, `{}`} {
		if s, err := EventStatement([]byte(raw)); err != nil || s.Categories != nil || s.TCString != "" {
			t.Errorf("EventStatement(%s) = %+v, %v; want nothing said, no error", raw, s, err)
		}
	}
	for _, raw := range []string{``, `{`, `[`, `"x"x`} {
		if _, err := EventStatement([]byte(raw)); err == nil {
			t.Errorf("EventStatement(%q): no error", raw)
		}
	}
	v, err := ValueStatement([]byte(`{"categoryPreferences":{"analytics":false},"tcString":"CP","timestamp":"2026-01-02T03:04:05Z","position":7,"gpc":true,"terms":["no-profiling"],"restricted":["all"],"objected":["marketing"]}`))
	if err != nil || v.Categories["analytics"] || !v.GPC || v.TCString != "CP" || v.Terms[0] != "no-profiling" || v.Restricted[0] != "all" || v.Objected[0] != "marketing" || v.Timestamp.Year() != 2026 {
		t.Errorf("ValueStatement = %+v, %v", v, err)
	}
	if v, err := ValueStatement(nil); err != nil || v.Categories != nil {
		t.Errorf("ValueStatement(nil) = %+v, %v", v, err)
	}
	if _, err := ValueStatement([]byte(`{"gpc":"yes"}`)); err == nil {
		t.Error("ValueStatement of a malformed value: no error")
	}
}

func TestState(t *testing.T) {
	t.Parallel()
	c := Default()
	states, gcm := c.State(c.Resolve(Statement{Categories: map[string]bool{"Analytics": true, "ad_storage": true}, GPC: true}))
	want := map[string]string{"necessary": "not_recorded true", "analytics": "granted true", "personalization": "not_recorded false",
		"advertising": "denied false", "marketing": "not_recorded false", "sale_sharing": "denied false"}
	for _, s := range states {
		if got := s.Status + " " + map[bool]string{true: "true", false: "false"}[s.Allowed]; got != want[s.Name] {
			t.Errorf("%s: %s, want %s", s.Name, got, want[s.Name])
		}
	}
	if gcm["analytics_storage"] != StatusGranted || gcm["ad_storage"] != StatusDenied || gcm["security_storage"] != StatusGranted || gcm["personalization_storage"] != StatusDenied {
		t.Errorf("gcm = %v", gcm)
	}
}

// FuzzStatements: reading and resolving consent from outside input never
// panics, and a resolved decision names a purpose or a lower-case name.
func FuzzStatements(f *testing.F) {
	f.Add([]byte(`{"context":{"consent":{"categoryPreferences":{"Advertising":true,"C0002":false},"tcString":"` + tcSpec22 + `"}}}`))
	f.Add([]byte(`{"categoryPreferences":{"analytics":false},"gpc":true,"terms":["no-profiling"],"restricted":["all"],"objected":["x"]}`))
	f.Add([]byte(`{"context":{"consent":{"tcString":"` + tcPurposes1to11 + `"}}}`))
	f.Add([]byte(`{"CONTEXT":{"Consent":{"categoryPreferences":{"a":true}}}}`))
	f.Add([]byte(`{"context":{"conſent":{"categoryPreferences":{"a":true}}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := Default()
		if s, err := EventStatement(raw); err == nil && !MayHold(raw) && (s.Categories != nil || s.TCString != "") {
			t.Fatalf("%s: MayHold is false, but it says %+v", raw, s)
		}
		for _, read := range []func([]byte) (Statement, error){EventStatement, ValueStatement} {
			s, err := read(raw)
			if err != nil {
				continue
			}
			for k := range c.Resolve(s) {
				if k != strings.ToLower(k) {
					t.Fatalf("%s: decision kept under %q", raw, k)
				}
			}
		}
	})
}

// TestCatalogueJSON: a catalogue's purposes survive JSON (as a
// workspace's settings are stored) and make the same catalogue.
func TestCatalogueJSON(t *testing.T) {
	t.Parallel()
	raw, err := json.Marshal(Default().Purposes())
	if err != nil {
		t.Fatal(err)
	}
	var ps []Purpose
	if err := json.Unmarshal(raw, &ps); err != nil {
		t.Fatal(err)
	}
	c, err := NewCatalogue(ps)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Purposes(), Default().Purposes()) {
		t.Errorf("after JSON: %+v", c.Purposes())
	}
}

func TestMayHold(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]bool{
		`{"context":{"consent":{}}}`:                       true,
		`{"CONTEXT":{"ConSent":{}}}`:                       true,
		`{"context":{"conſent":{}}}`:                       true,  // U+017F folds to s
		`{"context":{"con\u0073ent":{}}}`:                  true,  // an escape may spell it
		`{"type":"track","traits":{"name":"José Łukasz"}}`: false, // other text outside ASCII says nothing
		`{"type":"track","properties":{"consented":true}}`: false,
	} {
		if got := MayHold([]byte(raw)); got != want {
			t.Errorf("MayHold(%s) = %v, want %v", raw, got, want)
		}
	}
}
