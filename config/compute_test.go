package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const computeHead = `
workspaces:
  - slug: acme
`

func TestParseDefinitions(t *testing.T) {
	t.Parallel()
	cfg, err := parseTest(computeHead + `
    computed_traits:
      - name: orders_30d
        kind: count
        events: [Order Completed]
        window_days: 30
      - {name: ltv, kind: sum, events: [Order Completed], property: properties.total}
      - name: seats
        entity: account
        kind: max
        types: [group]
        property: traits.seats
    audiences:
      - name: repeat_buyers
        condition: computed.orders_30d >= 2
        description: Two orders or more in 30 days
      - name: big_accounts
        entity: account
        condition: |
          computed.seats >= 100 &&
            users.exists(u, "repeat_buyers" in u.audiences)
      - name: do_not_contact
        suppression: true
        suppress_all: true
        condition: traits.unsubscribed == true
  - slug: empty
`)
	if err != nil {
		t.Fatal(err)
	}
	defs := cfg.Workspaces[0].Definitions
	var got []string
	for _, d := range defs {
		if d.Workspace != "acme" || d.Origin != "config" || !json.Valid(d.Body) {
			t.Errorf("definition %+v", d)
		}
		got = append(got, d.Kind+" "+d.Name)
	}
	want := []string{"trait orders_30d", "trait ltv", "trait seats", "audience repeat_buyers", "audience big_accounts", "audience do_not_contact"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("definitions %q, want %q", got, want)
	}
	// The body is the definition as the admin API takes it.
	if string(defs[0].Body) != `{"name":"orders_30d","kind":"count","events":["Order Completed"],"window_days":30}` {
		t.Errorf("trait body %s", defs[0].Body)
	}
	if !strings.Contains(string(defs[4].Body), `"condition":"computed.seats \u003e= 100 \u0026\u0026\n  users.exists`) {
		t.Errorf("audience body %s", defs[4].Body)
	}
	if len(cfg.Workspaces[1].Definitions) != 0 {
		t.Errorf("a workspace without definitions has %v", cfg.Workspaces[1].Definitions)
	}
}

func TestParseDefinitionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string // each error, in order
	}{
		{"unknown field in a trait", `
    computed_traits:
      - name: n
        kind: count
        colour: red
`, []string{`kith.yaml:6: workspaces[0].computed_traits[0].colour: unknown field "colour" (unknown_field)`}},
		{"unknown field in an audience", `
    audiences:
      - {name: a, condition: "true", colour: red}
`, []string{`kith.yaml:4: workspaces[0].audiences[0].colour: unknown field "colour"; allowed: name, entity, condition, description, suppression, suppress_all, respect_suppressions (json)`}},
		{"wrong type", `
    computed_traits:
      - name: n
        kind: count
        window_days: "30"
`, []string{`kith.yaml:6: workspaces[0].computed_traits[0].window_days:`}},
		{"not a mapping", `
    audiences: [vip]
`, []string{`kith.yaml:3: workspaces[0].audiences[0]: must be a mapping, not "vip"`}},
		{"bad CEL with its position (plain scalar)", `
    audiences:
      - name: vip
        condition: traits.plan == "pro" && computed.nope > 1
`, []string{`kith.yaml:5:53: workspaces[0].audiences[0].condition: unknown computed trait "nope"`}},
		{"bad CEL with its position (literal block)", `
    audiences:
      - name: vip
        condition: |
          traits.plan == "pro" &&
            bogus
`, []string{`kith.yaml:7:13: workspaces[0].audiences[0].condition: unknown variable "bogus"`}},
		{"bad CEL with its position (quoted)", `
    audiences:
      - {name: vip, condition: "traits.plan ==== 1"}
`, []string{`kith.yaml:4:`, `workspaces[0].audiences[0].condition:`, `(syntax)`}},
		{"bad CEL in a trait's where", `
    computed_traits:
      - name: big
        kind: count
        where: properties.total > 100 && nope
`, []string{`kith.yaml:6:42: workspaces[0].computed_traits[0].where: undeclared reference to 'nope' (invalid_where)`}},
		{"a bad trait field", `
    computed_traits:
      - {name: n, kind: median}
`, []string{`kith.yaml:4: workspaces[0].computed_traits[0].kind:`, `(invalid_kind)`}},
		{"cycle", `
    audiences:
      - name: a
        condition: '"b" in audiences'
      - name: b
        condition: '"a" in audiences'
`, []string{`kith.yaml:5:21: workspaces[0].audiences[0].condition: audiences read each other in a cycle`, `kith.yaml:7:21: workspaces[0].audiences[1].condition: audiences read each other in a cycle`}},
		{"duplicate names across kinds", `
    computed_traits:
      - {name: vip, kind: count}
    audiences:
      - {name: vip, condition: "true"}
`, []string{`kith.yaml:6: workspaces[0].audiences[0].name: "vip" is already the name of workspaces[0].computed_traits[0] (line 4)`}},
		{"duplicate audiences", `
    audiences:
      - {name: vip, condition: "true"}
      - name: vip
        condition: "false"
`, []string{`kith.yaml:5: workspaces[0].audiences[1].name: "vip" is already the name of workspaces[0].audiences[0] (line 4)`}},
		{"a trait of the other entity", `
    computed_traits:
      - {name: seats, kind: max, entity: account, types: [group], property: traits.seats}
    audiences:
      - {name: vip, condition: "computed.seats > 1"}
`, []string{`kith.yaml:6:`, `(wrong_entity)`}},
		{"field set twice", `
    audiences:
      - name: vip
        name: vap
        condition: "true"
`, []string{`kith.yaml:5: workspaces[0].audiences[0].name: set twice`}},
		{"alias", `
    audiences:
      - &a {name: vip, condition: "true"}
      - *a
`, []string{`workspaces[0].audiences[1]: YAML aliases`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseTest(computeHead + strings.TrimLeft(tt.src, "\n"))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			var es []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				es = j.Unwrap()
			} else {
				es = []error{err}
			}
			if tt.name == "cycle" && len(es) != 2 || tt.name != "cycle" && !strings.HasPrefix(tt.name, "bad CEL in a trait") && len(es) < 1 {
				t.Fatalf("errors %v", es)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\nwant it to contain %q", msg, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Line == 0 {
				t.Errorf("error %v has no line", err)
			}
		})
	}
}

func TestDefinitionProblems(t *testing.T) {
	t.Parallel()
	if ps := DefinitionProblems(nil); len(ps) != 0 {
		t.Fatalf("problems of nil: %v", ps)
	}
	ps := DefinitionProblems(errors.New("boom"))
	if len(ps) != 1 || ps[0].Code != "invalid_definition" || ps[0].Message != "boom" {
		t.Fatalf("problems of a plain error: %+v", ps)
	}
	_, err := parseTest(computeHead + `
    audiences:
      - {name: vip, condition: "computed.x > 1 && traits.y"}
`)
	var ce *Error
	if !errors.As(err, &ce) || ce.Column == 0 {
		t.Fatalf("error %v: want a column", err)
	}
}
