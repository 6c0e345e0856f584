package delivery

import (
	"encoding/json"
	"testing"

	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/store"
)

// defaultPurposes is the catalogue the gate tests evaluate against.
var defaultPurposes = consent.Default()

// TestConsentGateDecisions: the gate's reading of an event and a profile,
// and its decision, for each source of consent.
func TestConsentGateDecisions(t *testing.T) {
	t.Parallel()
	// A published TC string (IAB TCF v2.2 spec example): service-specific,
	// no purpose consented.
	const tcNone = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"
	event := func(consent string) Consent {
		raw := []byte(`{"type":"track","context":{"consent":` + consent + `}}`)
		return eventConsentOf(defaultPurposes, raw).withTCString(defaultPurposes, raw)
	}
	for _, tc := range []struct {
		name           string
		purposes       []string
		event, profile Consent
		gpc, missing   bool
		want           string // the purpose that stops delivery; "" allowed
	}{
		{"granted by a category alias", []string{"advertising"}, event(`{"categoryPreferences":{"Targeting":true}}`), nil, false, false, ""},
		{"a destination's Consent Mode name", []string{"ad_storage"}, event(`{"categoryPreferences":{"Advertising":true}}`), nil, false, false, ""},
		{"denied by the event", []string{"advertising"}, event(`{"categoryPreferences":{"C0004":false}}`), nil, false, false, "advertising"},
		{"denied by the event's TC string", []string{"analytics"}, event(`{"tcString":"` + tcNone + `"}`), nil, false, false, "analytics"},
		{"categories before the TC string", []string{"analytics"}, event(`{"categoryPreferences":{"Analytics":true},"tcString":"` + tcNone + `"}`), nil, false, false, ""},
		{"denied by the profile's TC string", []string{"analytics"}, event(`{"categoryPreferences":{"Analytics":true}}`),
			profileConsent(defaultPurposes, []byte(`{"tcString":"`+tcNone+`"}`)), false, false, "analytics"},
		{"granted by the profile", []string{"analytics"}, nil, profileConsent(defaultPurposes, []byte(`{"categoryPreferences":{"Analytics":true}}`)), false, false, ""},
		{"the profile's GPC", []string{"sale"}, event(`{"categoryPreferences":{"Sale":true}}`), profileConsent(defaultPurposes, []byte(`{"gpc":true}`)), false, false, "sale_sharing"},
		{"the event's GPC", []string{"targeting"}, event(`{"categoryPreferences":{"Targeting":true}}`), nil, true, false, "advertising"},
		{"GPC leaves analytics", []string{"analytics"}, event(`{"categoryPreferences":{"Analytics":true}}`), nil, true, false, ""},
		{"the profile's terms", []string{"personalization"}, event(`{"categoryPreferences":{"Personalization":true}}`),
			profileConsent(defaultPurposes, []byte(`{"terms":["no-profiling"]}`)), false, false, "personalization"},
		{"restricted", []string{"analytics"}, event(`{"categoryPreferences":{"Analytics":true}}`),
			profileConsent(defaultPurposes, []byte(`{"restricted":["all"]}`)), false, false, "analytics"},
		{"objected to marketing", []string{"email"}, nil,
			profileConsent(defaultPurposes, []byte(`{"categoryPreferences":{"marketing":true},"objected":["marketing"]}`)), false, false, "marketing"},
		{"not recorded", []string{"analytics"}, nil, nil, false, false, "analytics"},
		{"not recorded, allowed by the workspace", []string{"analytics"}, nil, nil, false, true, ""},
		{"a profile value that cannot be read", []string{"analytics"}, nil, profileConsent(defaultPurposes, []byte(`{"gpc":1}`)), false, false, "analytics"},
		{"strictly necessary", []string{"necessary"}, nil, profileConsent(defaultPurposes, []byte(`{"restricted":["all"]}`)), false, false, ""},
	} {
		ev := tc.event
		if tc.gpc {
			ev = ev.optOutOfSale(defaultPurposes)
		}
		purpose, ok := allowed(defaultPurposes, tc.purposes, ev, tc.profile, tc.missing)
		if ok != (tc.want == "") || purpose != tc.want {
			t.Errorf("%s: allowed = %q, %v; want %q stopping it", tc.name, purpose, ok, tc.want)
		}
	}
}

// TestGateValues: a profile receives nothing when its consent value
// restricts all processing (whatever else it holds) or it is in a
// suppress_all audience; a narrower restriction, an objection or a value
// that cannot be read blocks nothing (the consent gate decides).
func TestGateValues(t *testing.T) {
	t.Parallel()
	vals := func(consent string, vip string) []store.ComputedValue {
		vs := []store.ComputedValue{{Name: compute.ConsentValue, Value: json.RawMessage(consent)}}
		if vip != "" {
			vs = append(vs, store.ComputedValue{Name: "vip", Value: json.RawMessage(vip)})
		}
		return vs
	}
	for _, c := range []struct {
		consent, vip string
		want         string
	}{
		{`{"restricted":["all"]}`, "", "restricted"},
		{`{"categoryPreferences":{"Analytics":true},"restricted":["marketing","all"]}`, "", "restricted"},
		{`{"restricted":["all"]}`, "true", "restricted"},
		{`{"restricted":["marketing"],"objected":["profiling"]}`, "", ""},
		{`{"objected":["all"]}`, "", ""},
		{`{"restricted":"all"}`, "", ""}, // not a list: unreadable
		{`{"categoryPreferences":{"Analytics":true}}`, "true", "suppressed"},
		{`{"categoryPreferences":{"Analytics":true}}`, "false", ""},
	} {
		if _, got := gateValues(defaultPurposes, vals(c.consent, c.vip), []string{"vip"}); got != c.want {
			t.Errorf("consent %s, vip %s: blocked %q, want %q", c.consent, c.vip, got, c.want)
		}
	}
}
