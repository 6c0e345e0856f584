package audience

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// base are audiences that the bad definitions may read.
var base = []Definition{
	{Name: "vip", Condition: `traits.plan == "pro"`},
	{Name: "big", Entity: "account", Condition: `computed.seats > 100`},
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	type want struct {
		audience, field string
		line, col       int
		code            string
		msg             string // a part of the message
	}
	tests := []struct {
		name string
		defs []Definition // compiled with base
		want []want
	}{
		{"syntax", []Definition{{Name: "a", Condition: `traits.plan == "pro" &&`}},
			[]want{{"a", "condition", 1, 24, CodeSyntax, "mismatched input"}}},
		{"syntax second line", []Definition{{Name: "a", Condition: "traits.plan == \"pro\"\n  && traits.x = 1"}},
			[]want{{"a", "condition", 2, 15, CodeSyntax, "token recognition error"}, {"a", "condition", 2, 17, CodeSyntax, ""}}},
		{"unknown computed trait", []Definition{{Name: "a", Condition: `computed.orders > 1`}},
			[]want{{"a", "condition", 1, 10, CodeUnknownTrait, "computed traits of users: lifetime_value, order_count"}}},
		{"unknown computed trait in has", []Definition{{Name: "a", Condition: `has(computed.orders)`}},
			[]want{{"a", "condition", 1, 14, CodeUnknownTrait, `"orders"`}}},
		{"unknown computed trait by index", []Definition{{Name: "a", Condition: `computed["orders"] > 1`}},
			[]want{{"a", "condition", 1, 10, CodeUnknownTrait, ""}}},
		{"unknown computed trait of accounts", []Definition{{Name: "a", Condition: `accounts.exists(x, x.computed.order_count > 1)`}},
			[]want{{"a", "condition", 1, 31, CodeWrongEntity, "computed trait \"order_count\" is a trait of users"}}},
		{"computed trait of the other entity", []Definition{{Name: "a", Condition: `computed.seats > 1`}},
			[]want{{"a", "condition", 1, 10, CodeWrongEntity, "trait of accounts"}}},
		{"unknown audience", []Definition{{Name: "a", Condition: `"vip" in audiences && "nope" in audiences`}},
			[]want{{"a", "condition", 1, 23, CodeUnknownAudience, "audiences of users: vip"}}},
		{"audience of the other entity", []Definition{{Name: "a", Condition: `"big" in audiences`}},
			[]want{{"a", "condition", 1, 1, CodeWrongEntity, `accounts.exists(x, "big" in x.audiences)`}}},
		{"audience name not literal", []Definition{{Name: "a", Condition: `traits.segment in audiences`}},
			[]want{{"a", "condition", 1, 1, CodeNotLiteral, `"name" in audiences`}}},
		{"audiences misused", []Definition{{Name: "a", Condition: `size(audiences) > 1`}},
			[]want{{"a", "condition", 1, 6, CodeUnsupported, `"name" in audiences`}}},
		{"cycle", []Definition{{Name: "a", Condition: `"b" in audiences`}, {Name: "b", Condition: `traits.x == 1 || "a" in audiences`}},
			[]want{{"a", "condition", 1, 1, CodeCycle, "a → b → a"}, {"b", "condition", 1, 18, CodeCycle, "a → b → a"}}},
		{"self", []Definition{{Name: "a", Condition: `!("a" in audiences)`}},
			[]want{{"a", "condition", 1, 3, CodeCycle, "a → a"}}},
		{"event name not literal", []Definition{{Name: "a", Condition: `events.count(traits.last_event) > 0`}},
			[]want{{"a", "condition", 1, 14, CodeNotLiteral, "event name of events.count"}}},
		{"window not literal", []Definition{{Name: "a", Condition: `events.performed("Signed Up", computed.order_count)`}},
			[]want{{"a", "condition", 1, 31, CodeNotLiteral, "literal number of days"}}},
		{"window negative", []Definition{{Name: "a", Condition: `events.performed("Signed Up", -1)`}},
			[]want{{"a", "condition", 1, 31, CodeType, "0: all time"}}},
		{"window too long", []Definition{{Name: "a", Condition: `events.performed("Signed Up", 5000)`}},
			[]want{{"a", "condition", 1, 31, CodeEvent, "window_days"}}},
		{"filter not literal", []Definition{{Name: "a", Condition: `events.count("A", 3, "properties.x == " + traits.x) > 0`}},
			[]want{{"a", "condition", 1, 22, CodeNotLiteral, "filter"}}},
		{"unknown events function", []Definition{{Name: "a", Condition: `events.sum("A") > 0`}},
			[]want{{"a", "condition", 1, 1, CodeUnsupported, "events.count(name[, days[, filter]])"}}},
		{"too many arguments", []Definition{{Name: "a", Condition: `events.count("A", 1, "true", 2) > 0`}},
			[]want{{"a", "condition", 1, 1, CodeType, "1 to 3 arguments"}}},
		{"bad filter", []Definition{{Name: "a", Condition: `events.count("Order Completed", 30, "properties.total >> 100") >= 2`}},
			[]want{{"a", "condition", 1, 56, CodeEvent, "in the filter"}}},
		{"bad filter on a later line, with escapes", []Definition{{Name: "a", Condition: "traits.x == 1 ||\n  events.count(\"A\", 3, 'properties[\"a\\'b\"] == 1 && nope') > 0"}},
			[]want{{"a", "condition", 2, 52, CodeEvent, "undeclared reference to 'nope'"}}},
		{"bad filter in triple quotes", []Definition{{Name: "a", Condition: "events.count(\"A\", 3, \"\"\"properties.x == 1 &&\n  nope\"\"\") > 0"}},
			[]want{{"a", "condition", 2, 3, CodeEvent, "nope"}}},
		{"bad funnel time limit", []Definition{{Name: "a", Condition: `events.then("A", "B", "1 hour")`}},
			[]want{{"a", "condition", 1, 23, CodeEvent, "time limit"}}},
		{"users in a user audience", []Definition{{Name: "a", Condition: `users.exists(u, u.traits.plan == "pro")`}},
			[]want{{"a", "condition", 1, 1, CodeWrongEntity, "only available in account audiences"}}},
		{"accounts in an account audience", []Definition{{Name: "a", Entity: "account", Condition: `traits.x == 1 && accounts.exists(u, true)`}},
			[]want{{"a", "condition", 1, 18, CodeWrongEntity, "users"}}},
		{"unknown field of an account", []Definition{{Name: "a", Condition: `accounts.exists(acc, acc.trait.plan == "x")`}},
			[]want{{"a", "condition", 1, 26, CodeUnknownField, "acc.traits.plan"}}},
		{"non-bool", []Definition{{Name: "a", Condition: `size(traits.colors) + 1`}},
			[]want{{"a", "condition", 1, 1, CodeType, "must be a bool, not int"}}},
		{"dyn result", []Definition{{Name: "a", Condition: `traits.vip`}},
			[]want{{"a", "condition", 1, 1, CodeType, "traits.vip == true"}}},
		{"type error", []Definition{{Name: "a", Condition: `now > 3`}},
			[]want{{"a", "condition", 1, 5, CodeType, "no matching overload"}}},
		{"unknown variable", []Definition{{Name: "a", Condition: `trait.plan == "pro"`}},
			[]want{{"a", "condition", 1, 1, CodeUnknownVariable, "traits, computed, audiences, events, now, accounts"}}},
		{"trait key not literal", []Definition{{Name: "a", Condition: `traits[traits.k] == 1`}},
			[]want{{"a", "condition", 1, 8, CodeNotLiteral, `traits["plan"]`}}},
		{"traits as a whole", []Definition{{Name: "a", Condition: `size(traits) > 3`}},
			[]want{{"a", "condition", 1, 6, CodeUnsupported, "traits.plan"}}},
		{"every problem", []Definition{{Name: "a", Condition: `computed.x > 1 && "y" in audiences`}, {Name: "b", Condition: `traits.x ==`}},
			[]want{{"a", "condition", 1, 10, CodeUnknownTrait, ""}, {"a", "condition", 1, 19, CodeUnknownAudience, ""}, {"b", "condition", 1, 12, CodeSyntax, ""}}},
		{"name", []Definition{{Name: "VIP list", Condition: `true`}},
			[]want{{"VIP list", "name", 0, 0, CodeInvalid, "lowercase"}}},
		{"duplicate", []Definition{{Name: "vip", Condition: `true`}},
			[]want{{"vip", "name", 0, 0, CodeDuplicate, ""}}},
		{"named like a computed trait", []Definition{{Name: "order_count", Condition: `true`}},
			[]want{{"order_count", "name", 0, 0, CodeDuplicate, "computed trait"}}},
		{"entity", []Definition{{Name: "a", Entity: "company", Condition: `true`}},
			[]want{{"a", "entity", 0, 0, CodeInvalid, `"user" (the default) or "account"`}}},
		{"empty condition", []Definition{{Name: "a", Condition: ` `}},
			[]want{{"a", "condition", 0, 0, CodeInvalid, "required"}}},
		{"too long", []Definition{{Name: "a", Condition: strings.Repeat("true && ", 1100) + "true"}},
			[]want{{"a", "condition", 0, 0, CodeTooLong, "8192"}}},
		{"too deep", []Definition{{Name: "a", Condition: strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200)}},
			[]want{{"a", "condition", 0, 0, CodeSyntax, "recursion"}}},
		{"suppress_all without suppression", []Definition{{Name: "a", SuppressAll: true, Condition: `true`}},
			[]want{{"a", "suppress_all", 0, 0, CodeInvalid, ""}}},
		{"suppression list reading an audience", []Definition{{Name: "a", Suppression: true, Condition: `"vip" in audiences`}},
			[]want{{"a", "condition", 1, 1, CodeSuppression, "only other suppression lists"}}},
		{"suppression list respecting suppressions", []Definition{{Name: "a", Suppression: true, RespectSuppressions: true, Condition: `true`}},
			[]want{{"a", "respect_suppressions", 0, 0, CodeInvalid, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Compile(append(append([]Definition(nil), base...), tt.defs...), testComputed)
			if err == nil {
				t.Fatalf("no error; order %v", s.Audiences())
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				e := errs[i]
				if e.Audience != w.audience || e.Field != w.field || e.Line != w.line || (w.col != 0 && e.Column != w.col) || e.Code != w.code || !strings.Contains(e.Msg, w.msg) {
					t.Errorf("error %d = %s\n\t(%s, %s, %d:%d, %s), want (%s, %s, %d:%d, %s, message with %q)",
						i, e, e.Audience, e.Field, e.Line, e.Column, e.Code, w.audience, w.field, w.line, w.col, w.code, w.msg)
				}
			}
			var one *Error
			if !errors.As(err, &one) || one != errs[0] {
				t.Error("errors.As does not find the first *Error")
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body  string
		want  Definition
		field string // of the error; "-" for none
	}{
		{`{"name":"vip","condition":"traits.plan == \"pro\"","respect_suppressions":true}`, Definition{Name: "vip", Condition: `traits.plan == "pro"`, RespectSuppressions: true}, "-"},
		{`{"name":"vip","entity":"account","condition":"true","suppression":true,"suppress_all":true,"description":"d"}`, Definition{Name: "vip", Entity: "account", Condition: "true", Suppression: true, SuppressAll: true, Description: "d"}, "-"},
		{`{"name":"vip","conditon":"true"}`, Definition{}, "conditon"},
		{`{"name":"vip","suppression":"yes"}`, Definition{}, "suppression"},
		{`{"name":"vip"} {}`, Definition{}, ""},
		{`[]`, Definition{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			t.Parallel()
			d, err := Parse([]byte(tt.body))
			if tt.field == "-" {
				if err != nil || d != tt.want {
					t.Fatalf("Parse = %+v, %v; want %+v", d, err, tt.want)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeJSON || e.Field != tt.field {
				t.Fatalf("Parse error = %#v, want code json on field %q", err, tt.field)
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()
	defs := []Definition{
		{Name: "dated", Condition: `timestamp(traits.signed_up_at) < now - days(30)`},
		{Name: "costly", Condition: `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, traits.list.all(x, x != a + b)))`},
		{Name: "missing", Condition: `traits.a.b.c == 1 || computed.order_count > 1 || "x" in traits.list`},
	}
	s, err := Compile(defs, testComputed)
	if err != nil {
		t.Fatal(err)
	}
	long := make([]any, 10000)
	for i := range long {
		long[i] = float64(i + 10000)
	}
	tests := []struct {
		audience string
		p        *Profile
		want     bool
		err      string
	}{
		{"dated", &Profile{Traits: map[string]any{"signed_up_at": "2020-01-01T00:00:00Z"}, Now: testNow}, true, ""},
		{"dated", &Profile{Traits: map[string]any{}, Now: testNow}, false, ""},
		{"dated", &Profile{Traits: map[string]any{"signed_up_at": 12.5}, Now: testNow}, false, ""},
		{"dated", &Profile{Traits: map[string]any{"signed_up_at": "yesterday"}, Now: testNow}, false, "timestamp"},
		{"dated", &Profile{Traits: map[string]any{"signed_up_at": "2020-01-01T00:00:00Z"}}, false, "Now is not set"},
		{"costly", &Profile{Traits: map[string]any{"list": long}}, false, "cost limit"},
		{"costly", &Profile{Traits: map[string]any{"list": []any{1.0}}}, true, ""},
		{"missing", &Profile{}, false, ""},
		{"missing", &Profile{Traits: map[string]any{"a": map[string]any{"b": "str"}, "list": "x"}}, false, ""},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i, tt.audience), func(t *testing.T) {
			t.Parallel()
			got, err := s.Audience(tt.audience).Eval(tt.p)
			if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("Eval = %v, %v; want %v, error with %q", got, err, tt.want, tt.err)
			}
		})
	}
}

// TestDocExamples compiles the conditions of the package documentation.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	user := []string{
		`traits.plan == "pro"`, `traits["first name"] == "Ada"`, `has(traits.plan)`, `"plan" in traits`, `traits.age >= 18`,
		`traits.address.city == "Paris"`, `"red" in traits.colors`, `traits.email.endsWith("@example.com")`,
		`timestamp(traits.signed_up_at) < now - days(30)`, `computed.order_count >= 3`, `computed.lifetime_value > 1000.0`,
		`"vip" in audiences`, `!("churned" in audiences)`,
		`events.count("Order Completed") >= 3`, `events.count("Order Completed", 30) == 0`,
		`events.count("Order Completed", 30, "properties.total > 100") <= 2`, `events.performed("App Opened", 7)`,
		`events.then("Product Viewed", "Order Completed", "1h")`, `events.then("Product Viewed", "Order Completed", "7d", 30)`,
		`timestamp(traits.trial_ends_at) - now < days(3)`, `now.getDayOfWeek() == 1`, `now - hours(1.5) > timestamp(traits.seen_at)`,
		`accounts.exists(a, a.traits.plan == "enterprise")`, `accounts.exists(a, "key_accounts" in a.audiences)`,
		`type(traits.age) == double`,
	}
	account := []string{
		`users.exists(u, u.computed.order_count > 0)`, `users.all(u, has(u.traits.email))`,
		`!users.exists(u, "churned" in u.audiences)`, `size(users) >= 10`, `computed.seats > 10 && events.count("Invoice Paid", 90) > 0`,
	}
	defs := []Definition{{Name: "vip", Condition: "true"}, {Name: "churned", Condition: "true"}, {Name: "key_accounts", Entity: "account", Condition: "true"}}
	for i, c := range user {
		defs = append(defs, Definition{Name: fmt.Sprintf("u%d", i), Condition: c})
	}
	for i, c := range account {
		defs = append(defs, Definition{Name: fmt.Sprintf("a%d", i), Entity: "account", Condition: c})
	}
	if _, err := Compile(defs, testComputed); err != nil {
		t.Fatal(err)
	}
}
