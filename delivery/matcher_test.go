package delivery

import (
	"encoding/json"
	"testing"

	"github.com/kithcdp/kith/store"
)

// TestMatcherWhere: a destination's events.where selects events by their
// content, together with its types and names; a filter-less matcher
// matches nothing.
func TestMatcherWhere(t *testing.T) {
	t.Parallel()
	f := &EventFilter{Types: []string{"track"}, Where: `properties.price > 50`}
	where, err := f.compile()
	if err != nil {
		t.Fatal(err)
	}
	m := matcher{f: f, where: where}
	for _, c := range []struct {
		typ, raw string
		want     bool
	}{
		{"track", `{"type":"track","event":"A","properties":{"price":89.5}}`, true},
		{"track", `{"type":"track","event":"A","properties":{"price":10}}`, false},
		{"track", `{"type":"track","event":"A","properties":{}}`, false},
		{"page", `{"type":"page","name":"A","properties":{"price":89.5}}`, false},
	} {
		ev := &store.Event{Type: c.typ, Name: "A", Raw: json.RawMessage(c.raw)}
		if got := m.match(ev); got != c.want {
			t.Errorf("%s: match = %v, want %v", c.raw, got, c.want)
		}
	}
	if (&matcher{}).match(&store.Event{Type: "track"}) {
		t.Error("a destination without events matched an event")
	}
	if _, err := (&EventFilter{Where: `properties.price >`}).compile(); err == nil {
		t.Error("a broken where compiled")
	}
}
