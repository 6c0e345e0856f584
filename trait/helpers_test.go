package trait

import (
	"fmt"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// base is "now" in most tests: midday, so that day arithmetic is clear.
var base = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// ev describes a test event.
type ev struct {
	typ   string // default track
	name  string
	at    time.Time
	props string // JSON object of properties; default {}
	extra string // more top-level fields, e.g. `"context":{...}`
}

func (e ev) event(pos int64) *Event {
	typ := e.typ
	if typ == "" {
		typ = "track"
	}
	props := e.props
	if props == "" {
		props = "{}"
	}
	nameField := "event"
	if typ != "track" {
		nameField = "name"
	}
	raw := fmt.Sprintf(`{"type":%q,%q:%q,"properties":%s,"timestamp":%q`, typ, nameField, e.name, props, e.at.Format(time.RFC3339Nano))
	if e.extra != "" {
		raw += "," + e.extra
	}
	raw += "}"
	return NewEvent(&store.Event{Position: pos, Type: typ, Name: e.name, Timestamp: e.at, Raw: []byte(raw)})
}

func days(n int) time.Time { return base.AddDate(0, 0, -n) }

func mustCompile(tb testing.TB, d Definition) *Trait {
	tb.Helper()
	tr, err := Compile(d)
	if err != nil {
		tb.Fatalf("Compile(%+v): %v", d, err)
	}
	return tr
}

// fold observes events in order into a new state.
func fold(tr *Trait, evs []ev) *State {
	s := &State{}
	for i, e := range evs {
		tr.Observe(s, e.event(int64(i+1)))
	}
	return s
}

func str(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}
