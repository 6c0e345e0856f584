package audience

import (
	"fmt"
	"testing"
)

// BenchmarkEval evaluates a typical audience: traits, a computed trait, an
// event condition and an excluded audience.
func BenchmarkEval(b *testing.B) {
	defs := []Definition{
		{Name: "churned", Condition: `traits.churned == true`},
		{Name: "target", Condition: `traits.plan == "pro" && computed.order_count >= 3 && events.count("Order Completed", 30) >= 2 && !("churned" in audiences)`},
	}
	s, err := Compile(defs, testComputed)
	if err != nil {
		b.Fatal(err)
	}
	a := s.Audience("target")
	p := &Profile{
		Traits:     map[string]any{"plan": "pro", "email": "ada@example.com", "age": 34.0},
		Computed:   map[string]any{"order_count": int64(5)},
		Audiences:  map[string]bool{"churned": false},
		Conditions: map[string]any{a.Reads().Conditions[0]: int64(4)},
		Now:        testNow,
	}
	if in, err := a.Eval(p); !in || err != nil {
		b.Fatalf("Eval = %v, %v", in, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Eval(p)
	}
}

// BenchmarkEvalUsersExists evaluates an account audience over its 10
// users, none of whom matches (every user is visited).
func BenchmarkEvalUsersExists(b *testing.B) {
	defs := []Definition{
		{Name: "vip", Condition: `traits.plan == "pro"`},
		{Name: "has_vip_admin", Entity: "account", Condition: `users.exists(u, u.traits.role == "admin" && "vip" in u.audiences)`},
	}
	s, err := Compile(defs, testComputed)
	if err != nil {
		b.Fatal(err)
	}
	a := s.Audience("has_vip_admin")
	p := &Profile{Now: testNow}
	for i := range 10 {
		p.Related = append(p.Related, &Profile{
			Traits:    map[string]any{"role": "member", "email": fmt.Sprintf("u%d@example.com", i)},
			Audiences: map[string]bool{"vip": i%2 == 0},
		})
	}
	if in, err := a.Eval(p); in || err != nil {
		b.Fatalf("Eval = %v, %v", in, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Eval(p)
	}
}

// BenchmarkCompile compiles the data set's 22 audiences.
func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(testDefs, testComputed); err != nil {
			b.Fatal(err)
		}
	}
}
