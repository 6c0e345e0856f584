package audience

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/kithcdp/kith/trait"
)

var testNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// testComputed are the workspace's computed traits in the data set.
var testComputed = map[string]string{"order_count": "user", "lifetime_value": "user", "seats": "account"}

// testDefs are the audiences of the data set: every construct of the
// language at least once.
var testDefs = []Definition{
	{Name: "unsubscribed", Suppression: true, SuppressAll: true, Condition: `traits.unsubscribed == true`},
	{Name: "do_not_email", Suppression: true, Condition: `has(traits.email_bounced) && traits.email_bounced == true`},
	{Name: "pro", Condition: `traits.plan == "pro"`},
	{Name: "named", Condition: `traits["first name"] == "Ada"`},
	{Name: "red_fans", Condition: `"red" in traits.colors`},
	{Name: "adults", Condition: `traits.age >= 18`},
	{Name: "old_timers", Condition: `timestamp(traits.signed_up_at) < now - days(30)`},
	{Name: "recent", Condition: `timestamp(traits.signed_up_at) > now - hours(48)`},
	{Name: "loyal", Condition: `computed.order_count >= 3`},
	{Name: "vip", Condition: `"pro" in audiences && "loyal" in audiences`},
	{Name: "pro_not_loyal", Condition: `"pro" in audiences && !("loyal" in audiences)`},
	{Name: "big_spenders", RespectSuppressions: true, Condition: `events.count("Order Completed", 30, "properties.total > 100") >= 2`},
	{Name: "active_30d", Condition: `events.performed("Order Completed", 30) || events.performed("App Opened", 7)`},
	{Name: "exactly_one_order", Condition: `events.count("Order Completed") == 1`},
	{Name: "converted_fast", Condition: `events.then("Product Viewed", "Order Completed", "1h")`},
	{Name: "converted_recently", Condition: `events.then("Product Viewed", "Order Completed", "1h", 7)`},
	{Name: "enterprise_users", Condition: `accounts.exists(a, a.traits.plan == "enterprise")`},
	{Name: "in_big_account", Condition: `accounts.exists(a, "big_accounts" in a.audiences)`},
	{Name: "big_accounts", Entity: "account", Condition: `computed.seats >= 50 || size(users) >= 3`},
	{Name: "all_active", Entity: "account", Condition: `size(users) > 0 && users.all(u, u.traits.active == true)`},
	{Name: "no_pro_users", Entity: "account", Condition: `!users.exists(u, u.traits.plan == "pro")`},
	{Name: "has_vip", Entity: "account", Condition: `users.exists(u, "vip" in u.audiences)`},
}

// Event conditions of the data set, as in the profiles' Conditions.
var testEvents = map[string]eventCall{
	"oc30>100": {Fn: "count", Name: "Order Completed", Days: 30, Filter: "properties.total > 100"},
	"oc30":     {Fn: "count", Name: "Order Completed", Days: 30},
	"ao7":      {Fn: "count", Name: "App Opened", Days: 7},
	"oc":       {Fn: "count", Name: "Order Completed"},
	"funnel":   {Fn: "then", Name: "Product Viewed", Then: "Order Completed", Within: "1h"},
	"funnel7":  {Fn: "then", Name: "Product Viewed", Then: "Order Completed", Within: "1h", Days: 7},
}

func eventKey(t testing.TB, entity, label string) string {
	t.Helper()
	c, ok := testEvents[label]
	if !ok {
		t.Fatalf("no event condition %q", label)
	}
	tr, err := trait.Compile(conditionDefinition(entity, c))
	if err != nil {
		t.Fatal(err)
	}
	return tr.Key()
}

type testProfile struct {
	id       string
	entity   string
	traits   map[string]any
	computed map[string]any
	events   map[string]any // by label of testEvents
	related  []string
}

// testProfiles are the profiles of the data set; users' accounts are
// given on the users, and the accounts' users follow from them.
var testProfiles = []testProfile{
	{id: "u1", traits: map[string]any{"plan": "pro", "email": "ada@example.com", "first name": "Ada", "colors": []any{"red", "blue"}, "age": 34.0, "signed_up_at": "2024-01-01T00:00:00Z"},
		computed: map[string]any{"order_count": int64(5)}, events: map[string]any{"oc30>100": int64(3), "oc30": int64(4), "oc": int64(10), "funnel": int64(2), "funnel7": int64(1)}, related: []string{"a1"}},
	{id: "u2", traits: map[string]any{"plan": "free", "colors": []any{"blue"}, "age": 17.0, "signed_up_at": "2025-05-31T12:00:00Z"},
		computed: map[string]any{"order_count": int64(0)}, events: map[string]any{"ao7": int64(1)}, related: []string{"a1"}},
	{id: "u3", traits: map[string]any{"plan": "pro", "signed_up_at": "2025-05-20T00:00:00Z"},
		computed: map[string]any{"order_count": int64(1)}, events: map[string]any{"oc": int64(1), "oc30": int64(1), "funnel": int64(1), "funnel7": int64(0)}, related: []string{"a2"}},
	{id: "u4", traits: map[string]any{"unsubscribed": true, "plan": "pro"},
		computed: map[string]any{"order_count": int64(9)}, events: map[string]any{"oc30>100": int64(5), "oc30": int64(5)}, related: []string{"a2"}},
	{id: "u5", traits: map[string]any{"email_bounced": true, "plan": "pro"},
		computed: map[string]any{"order_count": int64(4)}, events: map[string]any{"oc30>100": int64(2)}},
	{id: "u6"},
	{id: "u7", traits: map[string]any{"plan": "pro", "age": "thirty", "first name": "Ada"}},
	{id: "u8", traits: map[string]any{"age": 18.0, "colors": "red"}},
	{id: "u9", traits: map[string]any{"plan": "pro"}, computed: map[string]any{"order_count": int64(3)}, related: []string{"a3"}},
	{id: "u10", traits: map[string]any{"plan": "free"}, computed: map[string]any{"order_count": 3.0}, related: []string{"a3"}},
	{id: "u11", traits: map[string]any{"plan": "pro"}, computed: map[string]any{"order_count": int64(2)}, related: []string{"a3", "a4"}},
	{id: "u12", events: map[string]any{"oc": int64(1), "ao7": int64(0), "oc30": int64(0)}},
	{id: "u13", traits: map[string]any{"first name": "Grace"}, events: map[string]any{"ao7": int64(3)}},
	{id: "u14", events: map[string]any{"oc30>100": int64(1), "oc30": []byte("1")}, related: []string{"a4"}},
	{id: "u15", traits: map[string]any{"active": true, "plan": "free"}, computed: map[string]any{"order_count": int64(3)}, related: []string{"a5"}},
	{id: "u16", traits: map[string]any{"active": true, "plan": "free"}, related: []string{"a5"}},
	{id: "a1", entity: "account", traits: map[string]any{"plan": "enterprise"}, computed: map[string]any{"seats": int64(10)}},
	{id: "a2", entity: "account", traits: map[string]any{"plan": "startup"}, computed: map[string]any{"seats": 80.0}},
	{id: "a3", entity: "account", traits: map[string]any{"plan": "enterprise"}, computed: map[string]any{"seats": int64(5)}},
	{id: "a4", entity: "account"},
	{id: "a5", entity: "account", traits: map[string]any{"plan": "startup"}, computed: map[string]any{"seats": int64(2)}},
	{id: "a6", entity: "account", traits: map[string]any{"plan": "enterprise"}},
}

// testMembers are the expected members of each audience, checked by hand.
var testMembers = map[string][]string{
	"unsubscribed":       {"u4"},
	"do_not_email":       {"u5"},
	"pro":                {"u1", "u3", "u5", "u7", "u9", "u11"}, // u4 is unsubscribed (suppress_all)
	"named":              {"u1", "u7"},
	"red_fans":           {"u1"},       // u8's colors is a string, not a list
	"adults":             {"u1", "u8"}, // u7's age is a string
	"old_timers":         {"u1"},
	"recent":             {"u2"},
	"loyal":              {"u1", "u5", "u9", "u10", "u15"}, // u10's count is a float; u4 unsubscribed
	"vip":                {"u1", "u5", "u9"},
	"pro_not_loyal":      {"u3", "u7", "u11"},
	"big_spenders":       {"u1"}, // u4 unsubscribed, u5 respects do_not_email, u14 only 1
	"active_30d":         {"u1", "u2", "u3", "u13", "u14"},
	"exactly_one_order":  {"u3", "u12"},
	"converted_fast":     {"u1", "u3"},
	"converted_recently": {"u1"},
	"enterprise_users":   {"u1", "u2", "u9", "u10", "u11"},
	"in_big_account":     {"u3", "u9", "u10", "u11"},
	"big_accounts":       {"a2", "a3"},
	"all_active":         {"a5"},
	"no_pro_users":       {"a5", "a6"},
	"has_vip":            {"a1", "a3"}, // a2's u4 would be, but is unsubscribed
}

// buildProfiles makes the Profiles of the data set, linked both ways.
func buildProfiles(t testing.TB) (map[string]*Profile, []string) {
	t.Helper()
	ps := map[string]*Profile{}
	var ids []string
	for _, tp := range testProfiles {
		entity := tp.entity
		if entity == "" {
			entity = "user"
		}
		p := &Profile{Traits: tp.traits, Computed: tp.computed, Audiences: map[string]bool{}, Conditions: map[string]any{}, Now: testNow}
		for label, v := range tp.events {
			p.Conditions[eventKey(t, entity, label)] = v
		}
		ps[tp.id] = p
		ids = append(ids, tp.id)
	}
	for _, tp := range testProfiles {
		for _, r := range tp.related {
			ps[tp.id].Related = append(ps[tp.id].Related, ps[r])
			ps[r].Related = append(ps[r].Related, ps[tp.id])
		}
	}
	return ps, ids
}

func compileTestSet(t testing.TB) *Set {
	t.Helper()
	s, err := Compile(testDefs, testComputed)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// TestMembership evaluates the data set as the engine would (each audience
// in order, on every profile of its entity) and compares the members.
func TestMembership(t *testing.T) {
	t.Parallel()
	s := compileTestSet(t)
	ps, ids := buildProfiles(t)
	entityOf := map[string]string{}
	for _, tp := range testProfiles {
		entityOf[tp.id] = tp.entity
		if tp.entity == "" {
			entityOf[tp.id] = "user"
		}
	}
	got := map[string][]string{}
	for _, a := range s.Audiences() {
		for _, id := range ids {
			if entityOf[id] != a.Definition().Entity {
				continue
			}
			in, err := a.Eval(ps[id])
			if err != nil {
				t.Errorf("%s on %s: %v", a.Definition().Name, id, err)
			}
			ps[id].Audiences[a.Definition().Name] = in
			if in {
				got[a.Definition().Name] = append(got[a.Definition().Name], id)
			}
		}
	}
	if len(s.Audiences()) != len(testMembers) {
		t.Errorf("%d audiences, want %d", len(s.Audiences()), len(testMembers))
	}
	for name, want := range testMembers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !slices.Equal(got[name], want) {
				t.Errorf("members of %s = %v, want %v (condition %s)", name, got[name], want, s.Audience(name).Definition().Condition)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	t.Parallel()
	s := compileTestSet(t)
	seen := map[string]bool{}
	others := false
	for _, a := range s.Audiences() {
		d := a.Definition()
		if d.Suppression && others {
			t.Errorf("suppression list %s after other audiences", d.Name)
		}
		others = others || !d.Suppression
		for _, r := range a.Reads().Audiences {
			if !seen[r] {
				t.Errorf("%s comes before %s, which it reads", d.Name, r)
			}
		}
		seen[d.Name] = true
		if s.Audience(d.Name) != a {
			t.Errorf("Audience(%q) is not the audience in the order", d.Name)
		}
	}
	if s.Audience("nope") != nil {
		t.Error("Audience of an unknown name is not nil")
	}
}

func TestSuppressionOrder(t *testing.T) {
	t.Parallel()
	defs := []Definition{
		{Name: "a_first", Condition: `"zz_blocked" in audiences`},
		{Name: "zz_blocked", Suppression: true, SuppressAll: true, Condition: `"zz_fraud" in audiences || traits.blocked == true`},
		{Name: "zz_fraud", Suppression: true, Condition: `traits.fraud == true`},
		{Name: "m_account", Entity: "account", Condition: `traits.plan == "x"`},
		{Name: "b_second", RespectSuppressions: true, Condition: `traits.plan == "x"`},
	}
	s, err := Compile(defs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range s.Audiences() {
		names = append(names, a.Definition().Name)
	}
	want := []string{"zz_fraud", "zz_blocked", "a_first", "b_second", "m_account"}
	if !slices.Equal(names, want) {
		t.Errorf("order %v, want %v", names, want)
	}
	// zz_blocked (suppress_all) applies to every user audience, also one
	// that reads it; zz_fraud only to b_second, which respects
	// suppressions; neither to the account audience.
	for name, want := range map[string][]string{
		"a_first":    {"zz_blocked"},
		"b_second":   {"zz_blocked", "zz_fraud"},
		"m_account":  nil,
		"zz_blocked": {"zz_fraud"},
		"zz_fraud":   nil,
	} {
		if got := s.Audience(name).Reads().Audiences; !slices.Equal(got, want) {
			t.Errorf("%s reads audiences %v, want %v", name, got, want)
		}
	}
	p := &Profile{Traits: map[string]any{"plan": "x"}, Audiences: map[string]bool{"zz_fraud": true}}
	if in, _ := s.Audience("b_second").Eval(p); in {
		t.Error("b_second includes a member of zz_fraud, a suppression list it respects")
	}
	if in, _ := s.Audience("m_account").Eval(p); !in {
		t.Error("m_account excludes a profile for a user suppression list")
	}
	p.Audiences = map[string]bool{"zz_blocked": true}
	if in, _ := s.Audience("a_first").Eval(p); in {
		t.Error("a_first includes a member of zz_blocked (suppress_all)")
	}
}

func TestReads(t *testing.T) {
	t.Parallel()
	s := compileTestSet(t)
	key := func(label string) string { return eventKey(t, "user", label) }
	tests := []struct {
		name string
		want Reads
	}{
		{"unsubscribed", Reads{Traits: []string{"unsubscribed"}}},
		{"do_not_email", Reads{Traits: []string{"email_bounced"}}},
		{"named", Reads{Traits: []string{"first name"}, Audiences: []string{"unsubscribed"}}},
		{"old_timers", Reads{Traits: []string{"signed_up_at"}, Audiences: []string{"unsubscribed"}, Now: true}},
		{"loyal", Reads{Computed: []string{"order_count"}, Audiences: []string{"unsubscribed"}}},
		{"vip", Reads{Audiences: []string{"loyal", "pro", "unsubscribed"}}},
		{"big_spenders", Reads{Audiences: []string{"do_not_email", "unsubscribed"}, Conditions: []string{key("oc30>100")}}},
		{"active_30d", Reads{Audiences: []string{"unsubscribed"}, Conditions: sorted(key("oc30"), key("ao7"))}},
		{"converted_recently", Reads{Audiences: []string{"unsubscribed"}, Conditions: []string{key("funnel7")}}},
		{"enterprise_users", Reads{Traits: []string{"plan"}, Audiences: []string{"unsubscribed"}, Related: true}},
		{"in_big_account", Reads{Audiences: []string{"big_accounts", "unsubscribed"}, Related: true}},
		{"big_accounts", Reads{Computed: []string{"seats"}, Related: true}},
		{"has_vip", Reads{Audiences: []string{"vip"}, Related: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := s.Audience(tt.name).Reads()
			if !readsEqual(got, tt.want) {
				t.Errorf("Reads = %+v, want %+v", got, tt.want)
			}
		})
	}
	wantKeys := []string{"active", "age", "colors", "email_bounced", "first name", "plan", "signed_up_at", "unsubscribed"}
	if got := s.TraitKeys(); !slices.Equal(got, wantKeys) {
		t.Errorf("TraitKeys = %v, want %v", got, wantKeys)
	}
	var condKeys []string
	for _, c := range s.Conditions() {
		condKeys = append(condKeys, c.Key())
	}
	var want []string
	for label := range testEvents {
		want = append(want, key(label))
	}
	sort.Strings(want)
	if !slices.Equal(condKeys, want) {
		t.Errorf("Conditions = %v, want %v", condKeys, want)
	}
	// The implicit traits are what the language promises.
	for _, c := range s.Conditions() {
		d := c.Definition()
		if !slices.Equal(d.Types, []string{"track", "page", "screen"}) || (d.Kind != "count" && d.Kind != "funnel") {
			t.Errorf("condition %s: %+v", c.Key(), d)
		}
	}
}

func sorted(s ...string) []string { sort.Strings(s); return s }

func readsEqual(a, b Reads) bool {
	return slices.Equal(a.Traits, b.Traits) && slices.Equal(a.Computed, b.Computed) && slices.Equal(a.Audiences, b.Audiences) &&
		slices.Equal(a.Conditions, b.Conditions) && a.Now == b.Now && a.Related == b.Related
}
