package trait

import (
	"cel.dev/cel-go/common/types"
	"strings"
	"testing"
	"time"
)

func TestWhere(t *testing.T) {
	t.Parallel()
	e := ev{name: "Order Completed", at: base, props: `{"total":150,"price":9.5,"items":[{"sku":"a"},{"sku":"b"}],"coupon":null}`,
		extra: `"context":{"campaign":{"name":"Spring"},"locale":"fr-FR"},"traits":{"plan":"pro"}`}
	tests := []struct {
		where string
		want  bool
	}{
		{`properties.total > 100`, true},
		{`properties.total > 100.5`, true},
		{`properties.price < 10`, true},
		{`properties.total == 150`, true},
		{`properties.nosuch > 1`, false}, // an error does not match
		{`has(properties.nosuch) || properties.items.size() == 2`, true},
		{`properties.items.exists(i, i.sku == "b")`, true},
		{`properties.coupon == null`, true},
		{`context.campaign.name.lowerAscii() == "spring"`, true},
		{`context.locale.startsWith("fr")`, true},
		{`traits.plan == "pro"`, true},
		{`type == "track" && event == "Order Completed"`, true},
		{`timestamp == timestamp("2025-03-10T12:00:00Z")`, true},
		{`timestamp.getHours() == 12`, true},
		{`properties.total`, false}, // dyn, not a bool at run time
		{`properties.size() == 4`, true},
		{`"total" in properties && !("nosuch" in properties)`, true},
		{`properties.exists(k, k == "price")`, true},
		{`properties.items[1].sku == "b"`, true},
		{`context.campaign == {"name": "Spring"}`, true},
		{`context.campaign != properties`, true},
		{`context.campaign.nosuch.deeper == 1`, false},
		{`has(context.campaign.name) && !has(context.campaign.source)`, true},
		{`type(context.campaign) == map`, true},
		{`dyn(properties.total) == 150.0`, true},
		{`properties.items.map(i, [1,2,3,4,5,6,7,8,9,10].map(j, [1,2,3,4,5,6,7,8,9,10].map(k, [1,2,3,4,5,6,7,8,9,10].map(l, l)))).size() > 0`, false}, // over the cost limit
	}
	for _, tt := range tests {
		t.Run(tt.where, func(t *testing.T) {
			t.Parallel()
			tr := mustCompile(t, Definition{Name: "w", Kind: "count", Where: tt.where})
			if got := tr.Observe(&State{}, e.event(1)); got != tt.want {
				t.Errorf("matched = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEventReading(t *testing.T) {
	t.Parallel()
	raw := `{ "type" : "track", "event":"x", "properties" : {"a\"b": 1, "esc\u0061ped": "v\u00e9", "dup": 1, "dup": 2,` +
		` "nested": {"deep": {"er": [1, {"x": "}"}], "val": true}}, "s": "with \"quotes\" and } ] ,", "n": -1.5e2},` +
		` "context": {"traits": {"t": "ctx"}}}`
	tests := []struct {
		path string
		kind uint8
		want string
	}{
		{"properties.a\"b", rScalar, "1"},
		{"properties.escaped", rScalar, `"vé"`},
		{"properties.dup", rScalar, "2"},
		{"properties.nested.deep.val", rScalar, "true"},
		{"properties.nested.deep.er", rComposite, ""},
		{"properties.nested.deep", rComposite, ""},
		{"properties.s", rScalar, `"with \"quotes\" and } ] ,"`},
		{"properties.n", rScalar, "-150"},
		{"properties.missing", rAbsent, ""},
		{"properties.s.x", rAbsent, ""},
		{"type", rScalar, `"track"`},
		{"context.traits.t", rScalar, `"ctx"`},
	}
	e := ev{}.event(1)
	e.ev.Raw = []byte(raw)
	for _, tt := range tests {
		r := e.value(tt.path, strings.Split(tt.path, "."))
		if r.kind != tt.kind {
			t.Errorf("%s: kind %d, want %d", tt.path, r.kind, tt.kind)
			continue
		}
		if tt.kind == rScalar {
			if got := string(r.v.appendJSON(nil)); got != tt.want {
				t.Errorf("%s = %s, want %s", tt.path, got, tt.want)
			}
		}
	}
	if m := e.object(objTraits).Value().(map[string]any); m["t"] != "ctx" {
		t.Errorf("traits = %v, want context.traits", m)
	}
	if v := e.object(objProperties).Get(types.String("dup")); v != types.Double(2) {
		t.Errorf("properties.dup = %v", v)
	}
	// Malformed JSON finds nothing and does not panic.
	for _, bad := range []string{``, `{`, `{"properties"`, `{"properties":`, `{"properties":{"a":}`, `[1]`, `{"properties":{"a" 1}}`, `{"properties":"x`} {
		e := NewEvent(ev{}.event(1).ev)
		e.ev.Raw = []byte(bad)
		if r := e.value("properties.a", []string{"properties", "a"}); r.kind != rAbsent {
			t.Errorf("%q: found %v", bad, r.v)
		}
	}
	// Timestamps far from now keep their order.
	old := NewEvent(ev{at: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}.event(1).ev)
	future := NewEvent(ev{at: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}.event(1).ev)
	if !(old.ts < future.ts) || old.day >= 0 || future.day <= 0 {
		t.Errorf("ts %d %d, days %d %d", old.ts, future.ts, old.day, future.day)
	}
}
