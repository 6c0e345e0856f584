package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

const gateConfig = `
workspaces:
  - slug: acme
    sources:
      - {slug: web, write_key: wk_gate_acme_1234567890}
    tokens:
      - {name: debugger, token: tok_debug_1234567890, scopes: [debug]}
    consent:
      store_requires: [analytics]
  - slug: globex
    sources:
      - {slug: web, write_key: wk_gate_globex_1234567890}
    tokens:
      - {name: debugger, token: tok_gdebug_1234567890, scopes: [debug]}
`

// TestConsentGateAtIngestion: an event whose own consent denies a purpose
// the workspace requires for storage is answered as accepted and stored
// nowhere; everything else is stored.
func TestConsentGateAtIngestion(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(gateConfig))
	// The IAB's TCF v2.2 worked example: service-specific, no purpose
	// consented, so it denies analytics.
	const tcNone = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"
	batch := `{"batch":[` + strings.Join([]string{
		`{"type":"track","anonymousId":"a","event":"granted","context":{"consent":{"categoryPreferences":{"Analytics":true}}}}`,
		`{"type":"track","anonymousId":"a","event":"denied","context":{"consent":{"categoryPreferences":{"Analytics":false,"Advertising":true}}}}`,
		`{"type":"track","anonymousId":"a","event":"denied by an alias","context":{"CONSENT":{"categoryPreferences":{"C0002":false}}}}`,
		`{"type":"track","anonymousId":"a","event":"denied by a TC string","context":{"consent":{"tcString":"` + tcNone + `"}}}`,
		`{"type":"track","anonymousId":"a","event":"says nothing"}`,
		`{"type":"track","anonymousId":"a","event":"another purpose denied","context":{"consent":{"categoryPreferences":{"Advertising":false}}}}`,
		`{"type":"track","anonymousId":"a","event":"a TC string that does not decode","context":{"consent":{"tcString":"garbage"}}}`,
		`{"type":"track","anonymousId":"a","event":"consent of a wrong type","context":{"consent":{"categoryPreferences":"no"}}}`,
		`{"type":"track","anonymousId":"a","event":"Segment Consent Preference Updated","context":{"consent":{"categoryPreferences":{"Analytics":false}}}}`,
	}, ",") + `]}`
	for _, ws := range []struct {
		slug, key, token string
		want             []string
	}{
		{"acme", "wk_gate_acme_1234567890", "tok_debug_1234567890", []string{"granted", "says nothing", "another purpose denied",
			"a TC string that does not decode", "consent of a wrong type", "Segment Consent Preference Updated"}},
		// A workspace that requires nothing stores everything.
		{"globex", "wk_gate_globex_1234567890", "tok_gdebug_1234567890", []string{"granted", "denied", "denied by an alias", "denied by a TC string",
			"says nothing", "another purpose denied", "a TC string that does not decode", "consent of a wrong type", "Segment Consent Preference Updated"}},
	} {
		code, m, _ := b.post(t, "/v1/batch", ws.key, batch)
		if code != 200 || m["accepted"] != float64(9) {
			t.Fatalf("%s: %d %v; want every event accepted", ws.slug, code, m)
		}
		code, m = b.get(t, "/v1/workspaces/"+ws.slug+"/events?limit=100", ws.token)
		if code != 200 {
			t.Fatalf("%s: log API %d %v", ws.slug, code, m)
		}
		var got []string
		for _, e := range m["data"].([]any) {
			got = append(got, e.(map[string]any)["event"].(string))
		}
		if !sameSet(got, ws.want...) {
			t.Errorf("%s stored %q, want %q", ws.slug, got, ws.want)
		}
	}
	resp, err := http.Get(b.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(metrics), `kith_events_consent_dropped_total{workspace="acme"} 3`) {
		t.Errorf("metrics lack 3 dropped events of acme:\n%s", metrics)
	}
}
