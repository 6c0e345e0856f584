package identity_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// ev builds an event from a Tracking API call's JSON; position and
// receivedAt follow n.
func ev(n int, raw string) *store.Event {
	e := &store.Event{Position: int64(n), ReceivedAt: t0.Add(time.Duration(n) * time.Minute), Raw: []byte(raw)}
	var f struct{ Type, UserID, AnonymousID string }
	fields := map[string]*string{`"type":"`: &f.Type, `"userId":"`: &f.UserID, `"anonymousId":"`: &f.AnonymousID}
	for k, v := range fields {
		if i := strings.Index(raw, k); i >= 0 {
			rest := raw[i+len(k):]
			*v = rest[:strings.IndexByte(rest, '"')]
		}
	}
	e.Type, e.UserID, e.AnonymousID = f.Type, f.UserID, f.AnonymousID
	return e
}

func graph(t *testing.T, mod func(*identity.Rules)) *identity.Graph {
	t.Helper()
	r := identity.DefaultRules()
	if mod != nil {
		mod(&r)
	}
	c, err := r.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return identity.NewGraph(c, 1)
}

func id(typ, v string) store.Identifier { return store.Identifier{Type: typ, Value: v} }

func owner(t *testing.T, g *identity.Graph, typ, v string) store.ProfileID {
	t.Helper()
	p, ok := g.Owner(id(typ, v))
	if !ok {
		t.Fatalf("%s:%s is held by no profile", typ, v)
	}
	return p
}

func TestExtract(t *testing.T) {
	t.Parallel()
	c, err := identity.Rules{
		Priority: []string{"user_id", "email"}, DefaultLimit: identity.Limit{Max: 5},
		Blocked: []string{"null"}, BlockedPatterns: []string{`^[0-]*$`},
		TraitIdentifiers: map[string]string{"email": "email", "phone": "phone", "crm": "crm_id"},
		DefaultRegion:    "DE", MaxIdentifiers: 10, MaxMerges: 10,
	}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		raw     string
		want    []string
		dropped []string
	}{
		{"identify traits", `{"type":"identify","userId":" u1 ","anonymousId":"a1","traits":{"email":" Ada@Example.COM","phone":"030 1234567","crm":"C-9"}}`,
			[]string{"user_id:u1", "email:ada@example.com", "anonymous_id:a1", "crm_id:C-9", "phone:+49301234567"}, nil},
		{"context traits of a track", `{"type":"track","anonymousId":"a1","context":{"traits":{"email":"b@x.io"}},"traits":{"email":"ignored@x.io"}}`,
			[]string{"email:b@x.io", "anonymous_id:a1"}, nil},
		{"devices and external ids", `{"type":"track","userId":"u1","context":{"device":{"id":"D1","advertisingId":"AD1","type":"ios"},"externalIds":[{"id":"z1","type":"zendesk_id","collection":"users"},{"id":"g","type":"group_id"},{"id":7,"type":"Shopify_ID"}]}}`,
			[]string{"user_id:u1", "ios.id:D1", "ios.idfa:AD1", "shopify_id:7", "zendesk_id:z1"}, nil},
		{"blocked values", `{"type":"identify","userId":"0","anonymousId":"NULL","traits":{"email":"not-an-email","phone":"12"}}`,
			nil, []string{"blocked user_id:0", "blocked anonymous_id:NULL", "invalid email:not-an-email", "invalid phone:12"}},
		{"alias previousId", `{"type":"alias","userId":"u2","previousId":"a9"}`, []string{"user_id:u2", "anonymous_id:a9"}, nil},
		{"duplicates collapse", `{"type":"identify","userId":"u1","traits":{"email":"a@b.c"},"context":{"externalIds":[{"id":"a@b.c","type":"email"}]}}`,
			[]string{"user_id:u1", "email:a@b.c"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ids, dropped := c.Extract(ev(1, tt.raw))
			var got, gotDropped []string
			for _, i := range ids {
				got = append(got, i.String())
			}
			for _, d := range dropped {
				gotDropped = append(gotDropped, d.Code+" "+d.Identifier.String())
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(gotDropped, tt.dropped) {
				t.Errorf("got %q dropped %q\nwant %q dropped %q", got, gotDropped, tt.want, tt.dropped)
			}
		})
	}
}

func TestAnonymousThenLoginMerges(t *testing.T) {
	t.Parallel()
	g := graph(t, nil)
	o1 := g.Resolve(ev(1, `{"type":"page","anonymousId":"phone"}`))
	o2 := g.Resolve(ev(2, `{"type":"page","anonymousId":"laptop"}`))
	if !o1.Created || !o2.Created || o1.Profile == o2.Profile {
		t.Fatalf("two devices: %+v %+v", o1, o2)
	}
	g.Resolve(ev(3, `{"type":"identify","anonymousId":"laptop","userId":"u1"}`))
	o := g.Resolve(ev(4, `{"type":"identify","anonymousId":"phone","userId":"u1"}`))
	if o.Profile != o1.Profile || len(o.Merges) != 1 || o.Merges[0].From != o2.Profile || o.Merges[0].Into != o1.Profile {
		t.Fatalf("login on the second device should merge into the older profile: %+v", o)
	}
	if v := o.Merges[0].Via; v != id("anonymous_id", "phone") && v != id("user_id", "u1") {
		t.Errorf("merge via %v", v)
	}
	for _, x := range [][2]string{{"anonymous_id", "phone"}, {"anonymous_id", "laptop"}, {"user_id", "u1"}} {
		if owner(t, g, x[0], x[1]) != o1.Profile {
			t.Errorf("%v not on the merged profile", x)
		}
	}
}

func TestLimitDropsLowestPriority(t *testing.T) {
	t.Parallel()
	g := graph(t, nil)
	a := g.Resolve(ev(1, `{"type":"identify","userId":"A","traits":{"email":"e@x.io"}}`))
	// B claims the same email: keeping it would give A's profile two
	// user_ids, so the email (lower priority) is dropped and B gets a new
	// profile.
	b := g.Resolve(ev(2, `{"type":"identify","userId":"B","traits":{"email":"e@x.io"}}`))
	if b.Profile == a.Profile || !b.Created {
		t.Fatalf("B merged into A: %+v", b)
	}
	if len(b.Decisions) != 1 || b.Decisions[0].Code != "limit" || b.Decisions[0].Identifier != id("email", "e@x.io") {
		t.Fatalf("decisions %+v", b.Decisions)
	}
	if owner(t, g, "email", "e@x.io") != a.Profile {
		t.Error("the email moved away from A")
	}

	// Logout then another user on the same browser: the anonymous id stays
	// with the first user.
	g.Resolve(ev(3, `{"type":"identify","userId":"C","anonymousId":"shared"}`))
	d := g.Resolve(ev(4, `{"type":"identify","userId":"D","anonymousId":"shared"}`))
	if d.Profile == owner(t, g, "user_id", "C") {
		t.Fatal("D merged with C through a shared browser")
	}
}

func TestWindowedLimit(t *testing.T) {
	t.Parallel()
	g := graph(t, func(r *identity.Rules) {
		r.Limits["anonymous_id"] = identity.Limit{Max: 2, Window: time.Hour}
	})
	p := g.Resolve(ev(1, `{"type":"identify","userId":"u","anonymousId":"a1"}`)).Profile
	g.Resolve(ev(2, `{"type":"identify","userId":"u","anonymousId":"a2"}`))
	o := g.Resolve(ev(3, `{"type":"identify","userId":"u","anonymousId":"a3"}`))
	if len(o.Added) != 0 || len(o.Decisions) != 1 || o.Decisions[0].Code != "limit" {
		t.Fatalf("third anonymous id within the hour: %+v", o)
	}
	// Two hours later (events are a minute apart: 120 events on), the
	// window has moved past a1 and a2.
	o = g.Resolve(ev(130, `{"type":"identify","userId":"u","anonymousId":"a4"}`))
	if o.Profile != p || len(o.Added) != 1 {
		t.Fatalf("after the window: %+v", o)
	}
}

func TestCaps(t *testing.T) {
	t.Parallel()
	g := graph(t, func(r *identity.Rules) {
		r.MaxMerges = 2
		r.DefaultLimit = identity.Limit{Max: 100}
	})
	// One "email" shared by many anonymous visitors, as a bad form default
	// would do: after two merges the cap stops it.
	for i := range 5 {
		g.Resolve(ev(1+2*i, fmt.Sprintf(`{"type":"page","anonymousId":"v%d"}`, i)))
		o := g.Resolve(ev(2+2*i, fmt.Sprintf(`{"type":"identify","anonymousId":"v%d","traits":{"email":"test@test.com"}}`, i)))
		if i >= 3 && (len(o.Merges) != 0 || len(o.Decisions) == 0 || o.Decisions[0].Code != "cap_merges") {
			t.Fatalf("visitor %d: %+v", i, o)
		}
	}
}

func TestAliasPreviousUserID(t *testing.T) {
	t.Parallel()
	g := graph(t, func(r *identity.Rules) { r.Limits["user_id"] = identity.Limit{Max: 2} })
	a := g.Resolve(ev(1, `{"type":"identify","userId":"old"}`)).Profile
	o := g.Resolve(ev(2, `{"type":"alias","userId":"new","previousId":"old"}`))
	if o.Profile != a || owner(t, g, "user_id", "new") != a {
		t.Fatalf("alias of a previous userId: %+v", o)
	}
	if _, ok := g.Owner(id("anonymous_id", "old")); ok {
		t.Error("previousId stored as an anonymous id although it was a user id")
	}
}

func TestAccountsAndRemove(t *testing.T) {
	t.Parallel()
	g := graph(t, nil)
	u := g.Resolve(ev(1, `{"type":"identify","userId":"u"}`)).Profile
	acct, created := g.Account(" acme ", ev(2, `{}`))
	if !created || acct == u {
		t.Fatal("account not created")
	}
	if again, created := g.Account("acme", ev(3, `{}`)); again != acct || created {
		t.Fatal("account created twice")
	}
	if p, ok := g.Remove(id("user_id", "u")); !ok || p != u {
		t.Fatal("remove")
	}
	if _, ok := g.Owner(id("user_id", "u")); ok || len(g.Holdings(u)) != 0 {
		t.Fatal("identifier still held after Remove")
	}
}

// TestOrderIndependence: without limits, the partition of identifiers into
// profiles does not depend on the order events arrive in.
func TestOrderIndependence(t *testing.T) {
	t.Parallel()
	unlimited := func(r *identity.Rules) {
		r.Limits = nil
		r.DefaultLimit = identity.Limit{Max: 1_000_000}
		r.MaxIdentifiers, r.MaxMerges = 1_000_000, 1_000_000
	}
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 99))
		var events []*store.Event
		for i := range 200 {
			events = append(events, ev(i+1, fmt.Sprintf(`{"type":"identify","userId":"u%d","anonymousId":"a%d","traits":{"email":"e%d@x.io"}}`,
				rng.IntN(40), rng.IntN(60), rng.IntN(50))))
		}
		want := partition(t, graph(t, unlimited), events)
		for range 3 {
			rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
			if got := partition(t, graph(t, unlimited), events); got != want {
				t.Fatalf("seed %d: partition depends on order:\n%s\nvs\n%s", seed, got, want)
			}
		}
	}
}

// partition resolves events and renders the resulting groups of
// identifiers, independent of profile ids.
func partition(t *testing.T, g *identity.Graph, events []*store.Event) string {
	seen := map[store.ProfileID]bool{}
	var groups []string
	for _, e := range events {
		p := g.Resolve(e).Profile
		_ = p
	}
	for _, e := range events {
		p, ok := g.Owner(id("user_id", e.UserID))
		if !ok || seen[p] {
			continue
		}
		seen[p] = true
		var ids []string
		for _, h := range g.Holdings(p) {
			ids = append(ids, h.String())
		}
		slices.Sort(ids)
		groups = append(groups, strings.Join(ids, " "))
	}
	slices.Sort(groups)
	return strings.Join(groups, "\n")
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mod  func(*identity.Rules)
		want string
	}{
		{func(r *identity.Rules) { r.BlockedPatterns = []string{"a", "("} }, "blocked_patterns[1]: error parsing regexp"},
		{func(r *identity.Rules) { r.Priority = []string{"email", "email"} }, `priority[1]: "email" is listed twice`},
		{func(r *identity.Rules) { r.Limits = map[string]identity.Limit{"email": {Max: 0}} }, "limits.email: max must be at least 1"},
		{func(r *identity.Rules) { r.TraitIdentifiers = map[string]string{"org": "group_id"} }, "trait_identifiers.org"},
		{func(r *identity.Rules) { r.DefaultRegion = "ZZ" }, "default_region"},
		{func(r *identity.Rules) { r.MaxMerges = 0 }, "max_merges"},
	} {
		r := identity.DefaultRules()
		tt.mod(&r)
		if _, err := r.Compile(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
}

func FuzzExtract(f *testing.F) {
	f.Add([]byte(`{"type":"identify","userId":"u","traits":{"email":"a@b.c","phone":"+4930123456"},"context":{"device":{"id":"d","type":"ios"},"externalIds":[{"id":"x","type":"t"}]}}`))
	f.Add([]byte(`{"context":{"device":"x","externalIds":{}}}`))
	f.Add([]byte(`not json`))
	c, err := identity.DefaultRules().Compile()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e := &store.Event{Type: "identify", Raw: raw, ReceivedAt: t0}
		ids, _ := c.Extract(e)
		for _, i := range ids {
			if i.Value == "" || i.Type == "" {
				t.Fatalf("empty identifier %+v", i)
			}
		}
		g := identity.NewGraph(c, 1)
		g.Resolve(e)
	})
}
