package trait

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/kithcdp/kith/store"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"name":"spend_30d","kind":"sum","property":"properties.total","events":["Order Completed"],"window_days":30}`,
		`{"name":"f","kind":"funnel","events":["a","b"],"within":"7d","where":"properties.total > 10"}`,
		`{"name":"n","kind":"count","types":["page"],"where":"properties.total >"}`,
		`{"name":"n","Kind":"count"}`, `{"name":1}`, `[]`, `{`, ``, `{"name":"n","kind":"count"} x`,
		`{"name":"n","kind":"unique_list","property":"context.campaign.name","entity":"account"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			return
		}
		tr, err := Compile(d)
		if err != nil {
			t.Fatalf("Parse accepted what Compile rejects: %v", err)
		}
		_ = tr.Value(&State{}, time.Now())
	})
}

func FuzzDecode(f *testing.F) {
	defs := []Definition{
		{Name: "c", Kind: "count", WindowDays: 7},
		{Name: "s", Kind: "sum", Property: "properties.v", WindowDays: 7},
		{Name: "m", Kind: "max", Property: "properties.v"},
		{Name: "l", Kind: "last", Property: "properties.v", WindowDays: 7},
		{Name: "f", Kind: "most_frequent", Property: "properties.v", WindowDays: 7},
		{Name: "u", Kind: "unique_list", Property: "properties.v"},
		{Name: "p", Kind: "funnel", Events: []string{"a", "b", "c"}, Within: "1d", WindowDays: 7},
	}
	traits := make([]*Trait, len(defs))
	for i, d := range defs {
		traits[i] = mustCompile(f, d)
	}
	evs := []ev{
		{name: "a", at: days(1), props: `{"v":"x"}`}, {name: "b", at: days(1).Add(time.Hour), props: `{"v":2.5}`},
		{name: "c", at: days(2), props: `{"v":true}`}, {name: "c", at: days(1).Add(2 * time.Hour), props: `{"v":-3}`},
	}
	for i, tr := range traits {
		f.Add(uint8(i), tr.Encode(&State{}))
		f.Add(uint8(i), tr.Encode(fold(tr, evs)))
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		tr := traits[int(which)%len(traits)]
		s, err := tr.Decode(data)
		if err != nil {
			return
		}
		// What decodes is canonical and usable.
		if enc := tr.Encode(s); !bytes.Equal(enc, data) {
			t.Fatalf("Encode(Decode(b)) = %x, b = %x", enc, data)
		}
		_ = tr.Value(s, base)
		tr.Merge(s, fold(tr, evs))
		tr.Observe(s, evs[0].event(9))
		_ = tr.Expire(s, base)
		_ = tr.Value(s, base)
	})
}

// FuzzEvent checks the JSON scanner against encoding/json: on a valid
// object, every top-level field and every field of properties is found
// with the same value; on anything else, nothing panics.
func FuzzEvent(f *testing.F) {
	f.Add([]byte(orderCompleted))
	f.Add([]byte(`{"properties":{"a\"b":1,"esc\u0061ped":"v","dup":1,"dup":[2,{"x":"}"}]}, "x" : null}`))
	f.Add([]byte(`{"properties":"x`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e := NewEvent(&store.Event{Type: "track", Raw: raw})
		_ = e.value("properties.a", []string{"properties", "a"})
		var top map[string]json.RawMessage
		if !utf8.Valid(raw) || json.Unmarshal(raw, &top) != nil {
			return
		}
		same := func(a, b []byte) bool {
			var ca, cb bytes.Buffer
			return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
		}
		for k, want := range top {
			got, ok := e.topField(k)
			if !ok || !same(got, want) {
				t.Fatalf("top field %q = %s (%v), want %s", k, got, ok, want)
			}
		}
		var props map[string]json.RawMessage
		if json.Unmarshal(top["properties"], &props) != nil {
			return
		}
		for k, want := range props {
			got, ok := lookup(top["properties"], k)
			if !ok || !same(got, want) {
				t.Fatalf("properties[%q] = %s (%v), want %s", k, got, ok, want)
			}
		}
	})
}
