package consent

import "testing"

// BenchmarkEventGate is the work of a gate for one event: read its
// consent, resolve it, evaluate a destination's purposes.
func BenchmarkEventGate(b *testing.B) {
	c := Default()
	for _, bc := range []struct{ name, raw string }{
		{"categoryPreferences", `{"type":"track","event":"Viewed","context":{"ip":"203.0.113.7","consent":{"categoryPreferences":{"Analytics":true,"Advertising":false,"C0003":true}}},"properties":{"sku":"a-1"}}`},
		{"tcString", `{"type":"track","event":"Viewed","context":{"consent":{"tcString":"` + tcSpec22 + `"}}}`},
		{"none", `{"type":"track","event":"Viewed","context":{"ip":"203.0.113.7"},"properties":{"sku":"a-1"}}`},
	} {
		raw := []byte(bc.raw)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ch Choices
				if MayHold(raw) {
					s, _ := EventStatement(raw)
					ch = c.Resolve(s)
				}
				c.Evaluate([]string{"analytics"}, ch, nil, false)
			}
		})
	}
}

// BenchmarkResolve resolves the categoryPreferences of one event.
func BenchmarkResolve(b *testing.B) {
	c := Default()
	s := Statement{Categories: map[string]bool{"Analytics": true, "Advertising": false, "C0003": true}}
	b.ReportAllocs()
	for b.Loop() {
		c.Resolve(s)
	}
}
