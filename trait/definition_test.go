package trait

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Definition{Name: "orders", Kind: "count"}
	with := func(f func(*Definition)) Definition { d := ok; f(&d); return d }
	type want struct {
		field, code  string
		line, column int
	}
	tests := []struct {
		name string
		def  Definition
		want []want // every problem, in order
	}{
		{"ok", ok, nil},
		{"ok funnel", Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}, Within: "7d", WindowDays: 30, Entity: "account"}, nil},
		{"missing name", with(func(d *Definition) { d.Name = "" }), []want{{"name", "missing_name", 0, 0}}},
		{"bad name", with(func(d *Definition) { d.Name = "Orders" }), []want{{"name", "invalid_name", 0, 0}}},
		{"long name", with(func(d *Definition) { d.Name = "a" + strings.Repeat("b", 64) }), []want{{"name", "invalid_name", 0, 0}}},
		{"bad entity", with(func(d *Definition) { d.Entity = "team" }), []want{{"entity", "invalid_entity", 0, 0}}},
		{"missing kind", with(func(d *Definition) { d.Kind = "" }), []want{{"kind", "missing_kind", 0, 0}}},
		{"bad kind", with(func(d *Definition) { d.Kind = "median" }), []want{{"kind", "invalid_kind", 0, 0}}},
		{"bad type", with(func(d *Definition) { d.Types = []string{"track", "alias"} }), []want{{"types", "invalid_types", 0, 0}}},
		{"empty event name", with(func(d *Definition) { d.Events = []string{""} }), []want{{"events", "invalid_events", 0, 0}}},
		{"short funnel", Definition{Name: "f", Kind: "funnel", Events: []string{"a"}, Within: "1h"}, []want{{"events", "invalid_events", 0, 0}}},
		{"missing property", with(func(d *Definition) { d.Kind = "sum" }), []want{{"property", "missing_property", 0, 0}}},
		{"bad property", with(func(d *Definition) { d.Kind = "sum"; d.Property = "properties..total" }), []want{{"property", "invalid_property", 0, 0}}},
		{"funnel property", Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}, Within: "1h", Property: "event"}, []want{{"property", "invalid_property", 0, 0}}},
		{"negative window", with(func(d *Definition) { d.WindowDays = -1 }), []want{{"window_days", "invalid_window", 0, 0}}},
		{"long window", with(func(d *Definition) { d.WindowDays = 3651 }), []want{{"window_days", "invalid_window", 0, 0}}},
		{"missing within", Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}}, []want{{"within", "missing_within", 0, 0}}},
		{"bad within", Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}, Within: "soon"}, []want{{"within", "invalid_within", 0, 0}}},
		{"zero within", Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}, Within: "0d"}, []want{{"within", "invalid_within", 0, 0}}},
		{"within not funnel", with(func(d *Definition) { d.Within = "1h" }), []want{{"within", "invalid_within", 0, 0}}},
		{"where syntax", with(func(d *Definition) { d.Where = "properties.total >" }), []want{{"where", "invalid_where", 1, 19}}},
		{"where second line", with(func(d *Definition) { d.Where = "properties.total > 1 &&\n  nosuch == 2" }), []want{{"where", "invalid_where", 2, 3}}},
		{"where not bool", with(func(d *Definition) { d.Where = `"yes"` }), []want{{"where", "invalid_where", 0, 0}}},
		{"where type error", with(func(d *Definition) { d.Where = `event > 3` }), []want{{"where", "invalid_where", 1, 7}}},
		{"where too long", with(func(d *Definition) { d.Where = "true" + strings.Repeat(" ", maxWhere) }), []want{{"where", "invalid_where", 0, 0}}},
		{"several", Definition{Kind: "sum", WindowDays: 9999}, []want{{"name", "missing_name", 0, 0}, {"property", "missing_property", 0, 0}, {"window_days", "invalid_window", 0, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.def.Validate()
			_, cerr := Compile(tt.def)
			if (err == nil) != (cerr == nil) {
				t.Fatalf("Validate: %v, but Compile: %v", err, cerr)
			}
			var got []*Error
			if err != nil {
				var one *Error
				if errors.As(err, &one) {
					got = append(got, one)
				}
				if j, ok := err.(interface{ Unwrap() []error }); ok {
					got = got[:0]
					for _, e := range j.Unwrap() {
						var we *Error
						if !errors.As(e, &we) {
							t.Fatalf("not an *Error: %T %v", e, e)
						}
						got = append(got, we)
					}
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Validate = %v, want %d problems %v", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Field != w.field || g.Code != w.code || g.Line != w.line || g.Column != w.column {
					t.Errorf("problem %d = %+v, want %+v", i, *g, w)
				}
				if g.Msg == "" || !strings.Contains(g.Error(), w.code) {
					t.Errorf("problem %d: poor message %q", i, g.Error())
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		body        string
		field, code string
		line, col   int
	}{
		{"ok", `{"name":"spend_30d","kind":"sum","property":"properties.total","events":["Order Completed"],"window_days":30,"where":"properties.currency == \"EUR\""}`, "", "", 0, 0},
		{"ok entity", `{"name":"n","entity":"account","kind":"count","types":["page","screen"]}`, "", "", 0, 0},
		{"unknown field", `{"name":"n","kind":"count","windw_days":3}`, "windw_days", "unknown_field", 0, 0},
		{"key in another case", `{"name":"n","Kind":"count"}`, "Kind", "unknown_field", 0, 0},
		{"wrong type number", `{"name":"n","kind":"count","window_days":"30"}`, "window_days", "wrong_type", 0, 0},
		{"wrong type fraction", `{"name":"n","kind":"count","window_days":1.5}`, "window_days", "wrong_type", 0, 0},
		{"wrong type string", `{"name":7,"kind":"count"}`, "name", "wrong_type", 0, 0},
		{"wrong type list", `{"name":"n","kind":"count","events":"a"}`, "events", "wrong_type", 0, 0},
		{"wrong type list item", `{"name":"n","kind":"count","types":[1]}`, "types", "wrong_type", 0, 0},
		{"not an object", `["name"]`, "", "invalid_json", 0, 0},
		{"syntax", "{\"name\":\"n\",\n\"kind\":count}", "", "invalid_json", 2, 9},
		{"empty", ``, "", "invalid_json", 0, 0},
		{"trailing", `{"name":"n","kind":"count"} {}`, "", "invalid_json", 1, 30},
		{"invalid definition", `{"name":"n","kind":"avg"}`, "property", "missing_property", 0, 0},
		{"too large", `{"name":"` + strings.Repeat("n", maxBody) + `"}`, "", "too_large", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse([]byte(tt.body))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if d.Name == "" {
					t.Error("empty definition")
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v (%T), want an *Error", err, err)
			}
			if e.Field != tt.field || e.Code != tt.code || e.Line != tt.line || e.Column != tt.col {
				t.Errorf("Parse = %+v, want field %q code %q at %d:%d", *e, tt.field, tt.code, tt.line, tt.col)
			}
		})
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	d := Definition{Name: "spend", Kind: "sum", Property: "properties.total", Events: []string{"b", "a"}, WindowDays: 30}
	key := mustCompile(t, d).Key()
	if !strings.HasPrefix(key, "spend.") || len(key) != len("spend.")+16 {
		t.Fatalf("Key = %q", key)
	}
	if again := mustCompile(t, d).Key(); again != key {
		t.Errorf("Key not stable: %q then %q", key, again)
	}
	// A golden value: the key must not change between builds (state
	// persisted under it would be orphaned).
	if key != goldenKey {
		t.Errorf("Key = %q, want %q", key, goldenKey)
	}
	same := []func(*Definition){
		func(d *Definition) { d.Events = []string{"a", "b", "a"} },
		func(d *Definition) { d.Types = []string{"track"} },
		func(d *Definition) { d.Entity = "account" },
	}
	for i, f := range same {
		c := d
		f(&c)
		if k := mustCompile(t, c).Key(); k != key {
			t.Errorf("same #%d: Key = %q, want %q", i, k, key)
		}
	}
	changed := []func(*Definition){
		func(d *Definition) { d.Name = "spend2" },
		func(d *Definition) { d.Kind = "avg" },
		func(d *Definition) { d.Types = []string{"track", "page"} },
		func(d *Definition) { d.Events = []string{"a"} },
		func(d *Definition) { d.Property = "properties.revenue" },
		func(d *Definition) { d.Where = "true" },
		func(d *Definition) { d.WindowDays = 7 },
	}
	seen := map[string]bool{key: true}
	for i, f := range changed {
		c := d
		f(&c)
		k := mustCompile(t, c).Key()
		if seen[k] {
			t.Errorf("changed #%d: Key %q not new", i, k)
		}
		seen[k] = true
	}
	f1 := mustCompile(t, Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}, Within: "1h"})
	f2 := mustCompile(t, Definition{Name: "f", Kind: "funnel", Events: []string{"b", "a"}, Within: "1h"})
	f3 := mustCompile(t, Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}, Within: "60m"})
	f4 := mustCompile(t, Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}, Within: "2h"})
	if f1.Key() == f2.Key() || f1.Key() != f3.Key() || f1.Key() == f4.Key() {
		t.Errorf("funnel keys: %s %s %s %s", f1.Key(), f2.Key(), f3.Key(), f4.Key())
	}
	if f1.WindowDays() != 0 || mustCompile(t, d).WindowDays() != 30 {
		t.Error("WindowDays")
	}
	got := mustCompile(t, d).Definition()
	got.Events[0] = "changed"
	if mustCompile(t, d).Definition().Events[0] != "b" {
		t.Error("Definition shares its slices")
	}
}

const goldenKey = "spend.d4a729ba82521a58"
