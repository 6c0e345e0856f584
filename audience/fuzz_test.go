package audience

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzCompile compiles random conditions next to a valid audience: Compile
// never panics and gives either a Set or positioned Errors; a condition
// that compiles evaluates, within the cost limit, on a profile of every
// shape without panicking.
func FuzzCompile(f *testing.F) {
	for _, d := range testDefs {
		f.Add(d.Condition, d.Entity == "account")
	}
	for _, c := range []string{
		`traits.plan == "pro" &&`, `events.count("A", 3, 'properties["a\'b"] == 1 && nope') > 0`,
		"events.count(\"A\", 3, \"\"\"properties.x == 1 &&\n  nope\"\"\") > 0", `events.then("A", "B", "1 hour", 3)`,
		`accounts.exists(a, a.traits.tags.exists(t, t == "x"))`, `[1,2].map(x, x * 2).size() == 2`, `traits["a"] in audiences`,
		`"x" in traits`, `has(traits.a.b)`, `now - days(1.5) < now - hours(traits.h)`, `users.all(u, "vip" in u.audiences)`,
	} {
		f.Add(c, false)
		f.Add(c, true)
	}
	profile := func() *Profile {
		p := &Profile{
			Traits:     map[string]any{"plan": "pro", "colors": []any{"red"}, "age": 3.0, "a": map[string]any{"b": 1.0}, "signed_up_at": "2020-01-01T00:00:00Z"},
			Computed:   map[string]any{"order_count": int64(3), "seats": 4.0},
			Audiences:  map[string]bool{"base": true},
			Conditions: map[string]any{},
			Now:        testNow,
		}
		p.Related = []*Profile{{Traits: map[string]any{"plan": "enterprise"}, Audiences: map[string]bool{"base_account": true}, Related: []*Profile{p}}, {}}
		return p
	}
	f.Fuzz(func(t *testing.T, cond string, account bool) {
		entity := ""
		if account {
			entity = "account"
		}
		defs := []Definition{
			{Name: "base", Condition: `traits.plan == "pro"`},
			{Name: "base_account", Entity: "account", Condition: `computed.seats > 3`},
			{Name: "fuzzed", Entity: entity, Condition: cond, RespectSuppressions: true},
		}
		s, err := Compile(defs, testComputed)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not Errors", err, err)
			}
			lines := 1
			for _, r := range cond {
				if r == '\n' {
					lines++
				}
			}
			for _, e := range errs {
				if e.Code == "" || e.Msg == "" || e.Line < 0 || e.Line > lines || e.Column < 0 || e.Column > utf8.RuneCountInString(cond)+1 {
					t.Fatalf("bad error %#v for %q", e, cond)
				}
			}
			return
		}
		a := s.Audience("fuzzed")
		if a == nil {
			t.Fatal("compiled set without the audience")
		}
		a.Eval(profile())
		a.Eval(&Profile{Now: testNow})
	})
}
