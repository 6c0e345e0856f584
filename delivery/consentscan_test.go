package delivery

import (
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzEventConsentOf: reading only context.consent gives what decoding the
// whole event gives, for every valid JSON event.
func FuzzEventConsentOf(f *testing.F) {
	for _, s := range []string{
		`{"type":"track","context":{"consent":{"categoryPreferences":{"Analytics":true,"Ads":false}},"ip":"1.2.3.4"},"properties":{"a":[1,{"b":"}"}]}}`,
		`{"context":{"consent":{"categoryPreferences":null}}}`,
		`{"context":null,"x":"categoryPreferences"}`,
		`{"Context":{"CONSENT":{"categorypreferences":{"A":true}}}}`,
		`{"context":{"consent":{"categoryPreferences":{"A":true}}},"context":{"consent":{"categoryPreferences":{"B":false}}}}`,
		`{"context":{"consent":{"categoryPreferences":{"A":"yes","B":1,"C":true}}}}`,
		`{"context":"x","categoryPreferences":{}}`,
		`{"context":{"consent":{"categoryPreferences":{"A":true}}} , "k" : [ "\"}", 1.5e3, true, null ] }`,
		`{"cont\u0065xt":{"consent":{"categoryPreferences":{"A":true}}}}`,
		`{"context":{"consent":{"categoryPreferences":[true]}}}`,
		` { "context" : { "consent" : { "categoryPreferences" : { "A" : true } } } } `,
		`[{"context":{"consent":{"categoryPreferences":{"A":true}}}}]`,
		`{"\u212aey":1,"context":{"consent":{"categoryPreferences":{"A":false}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		got, want := eventConsentOf(defaultPurposes, raw), eventConsent(defaultPurposes, raw)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: got %v, want %v", raw, got, want)
		}
	})
}
