package identity_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// ev builds the log event of a Tracking API call's JSON at position n,
// received n minutes after t0. Its timestamp runs backwards (n hours before
// t0), so a test passes only if windows count on receivedAt.
func ev(n int, raw string) *store.Event {
	var f struct {
		Type        string `json:"type"`
		UserID      string `json:"userId"`
		AnonymousID string `json:"anonymousId"`
	}
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		panic(fmt.Sprintf("test event %s: %v", raw, err))
	}
	return &store.Event{
		Type: f.Type, UserID: f.UserID, AnonymousID: f.AnonymousID, Position: int64(n),
		ReceivedAt: t0.Add(time.Duration(n) * time.Minute), Timestamp: t0.Add(-time.Duration(n) * time.Hour),
		Raw: []byte(raw),
	}
}

func compile(t testing.TB, mod func(*identity.Rules)) *identity.Compiled {
	t.Helper()
	r := identity.DefaultRules()
	if mod != nil {
		mod(&r)
	}
	c, err := r.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func id(typ, v string) store.Identifier { return store.Identifier{Type: typ, Value: v} }

// summary renders an outcome compactly: "p2 new +user_id:B !limit
// email:e 3>2(via)".
func summary(o identity.Outcome) string {
	s := fmt.Sprintf("p%d", o.Profile)
	if o.Created {
		s += " new"
	}
	for _, h := range o.Added {
		s += " +" + h.String()
	}
	for _, m := range o.Merges {
		s += fmt.Sprintf(" %d>%d(%s)", m.From, m.Into, m.Via)
	}
	for _, d := range o.Decisions {
		s += " !" + d.Code + " " + d.Identifier.String()
	}
	return s
}

// unlimited lifts every limit and cap.
func unlimited(r *identity.Rules) {
	r.Limits = nil
	r.DefaultLimit = identity.Limit{Max: 1 << 30}
	r.MaxIdentifiers, r.MaxMerges = 1<<30, 1<<30
}

// TestResolve walks through the semantics of the identity rules, one call
// at a time; each step gives the call and what resolving it must do.
func TestResolve(t *testing.T) {
	t.Parallel()
	type step struct {
		n    int // position and minutes after t0; 0: the step's number
		raw  string
		want string
	}
	tests := []struct {
		name  string
		rules func(*identity.Rules)
		steps []step
	}{
		{"new identifiers make a profile, known ones join it", nil, []step{
			{0, `{"type":"page","anonymousId":"a"}`, "p1 new +anonymous_id:a"},
			{0, `{"type":"track","anonymousId":"a"}`, "p1"},
			{0, `{"type":"track"}`, "p0"},
		}},
		{"login on a second device merges into the older profile", nil, []step{
			{0, `{"type":"page","anonymousId":"laptop"}`, "p1 new +anonymous_id:laptop"},
			{0, `{"type":"page","anonymousId":"phone"}`, "p2 new +anonymous_id:phone"},
			{0, `{"type":"identify","userId":"u","anonymousId":"phone"}`, "p2 +user_id:u"},
			{0, `{"type":"identify","userId":"u","anonymousId":"laptop"}`, "p1 2>1(user_id:u)"},
			{0, `{"type":"page","anonymousId":"phone"}`, "p1"},
		}},
		{"a limit drops the lowest-priority identifier: {B, e} against {A, e}", nil, []step{
			{0, `{"type":"identify","userId":"A","traits":{"email":"e@x.io"}}`, "p1 new +user_id:A +email:e@x.io"},
			{0, `{"type":"identify","userId":"B","traits":{"email":"e@x.io"}}`, "p2 new +user_id:B !limit email:e@x.io"},
			{0, `{"type":"track","context":{"traits":{"email":"e@x.io"}}}`, "p1"},
		}},
		{"the lowest priority goes first even when it is not the cause", nil, []step{
			{0, `{"type":"identify","userId":"A","traits":{"email":"e@x.io"}}`, "p1 new +user_id:A +email:e@x.io"},
			{0, `{"type":"page","anonymousId":"b"}`, "p2 new +anonymous_id:b"},
			{0, `{"type":"identify","userId":"B","anonymousId":"b","traits":{"email":"e@x.io"}}`,
				"p3 new +user_id:B !limit anonymous_id:b !limit email:e@x.io"},
			{0, `{"type":"track","userId":"B","anonymousId":"b"}`, "p2 3>2(user_id:B)"},
		}},
		{"default priority: a second email is dropped", func(r *identity.Rules) { r.Limits["email"] = identity.Limit{Max: 1} }, []step{
			{0, `{"type":"identify","userId":"u","traits":{"email":"one@x.io"}}`, "p1 new +user_id:u +email:one@x.io"},
			{0, `{"type":"identify","userId":"u","traits":{"email":"two@x.io"}}`, "p1 !limit email:two@x.io"},
		}},
		{"email above user_id: the user id is dropped instead", func(r *identity.Rules) {
			r.Priority = []string{"email", "user_id"}
			r.Limits["email"] = identity.Limit{Max: 1}
		}, []step{
			{0, `{"type":"identify","userId":"u","traits":{"email":"one@x.io"}}`, "p1 new +email:one@x.io +user_id:u"},
			{0, `{"type":"identify","userId":"u","traits":{"email":"two@x.io"}}`, "p2 new +email:two@x.io !limit user_id:u"},
		}},
		{"a merge that would exceed a limit is refused", nil, []step{
			{0, `{"type":"identify","userId":"A","anonymousId":"a"}`, "p1 new +user_id:A +anonymous_id:a"},
			{0, `{"type":"identify","userId":"B","anonymousId":"b","traits":{"email":"b@x.io"}}`, "p2 new +user_id:B +email:b@x.io +anonymous_id:b"},
			{0, `{"type":"identify","anonymousId":"a","traits":{"email":"b@x.io"}}`, "p2 !limit anonymous_id:a"},
		}},
		{"many values of one type: the excess goes, last first", nil, []step{
			{0, `{"type":"track","anonymousId":"a","context":{"externalIds":[` +
				`{"id":"c1","type":"crm_id"},{"id":"c2","type":"crm_id"},{"id":"c3","type":"crm_id"},{"id":"c4","type":"crm_id"},` +
				`{"id":"c5","type":"crm_id"},{"id":"c6","type":"crm_id"},{"id":"c7","type":"crm_id"}]}}`,
				"p1 new +anonymous_id:a +crm_id:c1 +crm_id:c2 +crm_id:c3 +crm_id:c4 +crm_id:c5 !limit crm_id:c7 !limit crm_id:c6"},
		}},
		{"a profile whose identifier is dropped leaves the merge", nil, []step{
			{0, `{"type":"identify","userId":"A","anonymousId":"a1"}`, "p1 new +user_id:A +anonymous_id:a1"},
			{0, `{"type":"page","anonymousId":"a2"}`, "p2 new +anonymous_id:a2"},
			{0, `{"type":"identify","userId":"B","anonymousId":"a3"}`, "p3 new +user_id:B +anonymous_id:a3"},
			{0, `{"type":"track","anonymousId":"a1","context":{"externalIds":[{"id":"a2","type":"anonymous_id"},{"id":"a3","type":"anonymous_id"}]}}`,
				"p1 2>1(anonymous_id:a2) !limit anonymous_id:a3"},
		}},
		{"one browser, two people", nil, []step{
			{0, `{"type":"identify","userId":"A","anonymousId":"s"}`, "p1 new +user_id:A +anonymous_id:s"},
			{0, `{"type":"identify","userId":"B","anonymousId":"s"}`, "p2 new +user_id:B !limit anonymous_id:s"},
			{0, `{"type":"page","anonymousId":"s"}`, "p1"},
		}},
		{"limits count within a window on receivedAt", func(r *identity.Rules) {
			r.Limits["anonymous_id"] = identity.Limit{Max: 2, Window: time.Hour}
		}, []step{
			{1, `{"type":"identify","userId":"u","anonymousId":"a1"}`, "p1 new +user_id:u +anonymous_id:a1"},
			{2, `{"type":"identify","userId":"u","anonymousId":"a2"}`, "p1 +anonymous_id:a2"},
			{3, `{"type":"identify","userId":"u","anonymousId":"a3"}`, "p1 !limit anonymous_id:a3"},
			{61, `{"type":"identify","userId":"u","anonymousId":"a3"}`, "p1 !limit anonymous_id:a3"}, // a1, 60 minutes old, still counts
			{62, `{"type":"identify","userId":"u","anonymousId":"a3"}`, "p1 +anonymous_id:a3"},
			{62, `{"type":"identify","userId":"u","anonymousId":"a4"}`, "p1 !limit anonymous_id:a4"}, // a2 and a3
		}},
		{"blocked values", nil, []step{
			{0, `{"type":"identify","userId":"0","anonymousId":"a"}`, "p1 new +anonymous_id:a !blocked user_id:0"},
			{0, `{"type":"identify","userId":"NULL","anonymousId":"b"}`, "p2 new +anonymous_id:b !blocked user_id:NULL"},
			{0, `{"type":"identify","userId":"undefined"}`, "p0 !blocked user_id:undefined"},
			{0, `{"type":"screen","anonymousId":"c","context":{"device":{"type":"ios","id":"D","advertisingId":"00000000-0000-0000-0000-000000000000"}}}`,
				"p3 new +anonymous_id:c +ios.id:D !blocked ios.idfa:00000000-0000-0000-0000-000000000000"},
		}},
		{"blocked patterns of the workspace", func(r *identity.Rules) {
			r.BlockedPatterns = append(r.BlockedPatterns, `test-\d+`, `(?i).*@example\.com`)
		}, []step{
			{0, `{"type":"identify","userId":"test-17","anonymousId":"a","traits":{"email":"Bob@EXAMPLE.com"}}`,
				"p1 new +anonymous_id:a !blocked user_id:test-17 !blocked email:Bob@EXAMPLE.com"},
			{0, `{"type":"identify","userId":"test-17b"}`, "p2 new +user_id:test-17b"},
		}},
		{"the identifier cap", func(r *identity.Rules) { r.MaxIdentifiers = 3 }, []step{
			{0, `{"type":"identify","userId":"u","anonymousId":"a","traits":{"email":"e@x.io"}}`, "p1 new +user_id:u +email:e@x.io +anonymous_id:a"},
			{0, `{"type":"page","userId":"u","anonymousId":"b"}`, "p1 !cap_identifiers anonymous_id:b"},
		}},
		{"the merge cap", func(r *identity.Rules) { r.MaxMerges = 2 }, []step{
			{0, `{"type":"page","anonymousId":"v0"}`, "p1 new +anonymous_id:v0"},
			{0, `{"type":"page","anonymousId":"v1"}`, "p2 new +anonymous_id:v1"},
			{0, `{"type":"page","anonymousId":"v2"}`, "p3 new +anonymous_id:v2"},
			{0, `{"type":"page","anonymousId":"v3"}`, "p4 new +anonymous_id:v3"},
			{0, `{"type":"identify","anonymousId":"v0","traits":{"email":"t@t.io"}}`, "p1 +email:t@t.io"},
			{0, `{"type":"identify","anonymousId":"v1","traits":{"email":"t@t.io"}}`, "p1 2>1(anonymous_id:v1)"},
			{0, `{"type":"identify","anonymousId":"v2","traits":{"email":"t@t.io"}}`, "p1 3>1(anonymous_id:v2)"},
			{0, `{"type":"identify","anonymousId":"v3","traits":{"email":"t@t.io"}}`, "p1 !cap_merges anonymous_id:v3"},
		}},
		{"merges keep the oldest id, merging several at once", nil, []step{
			{0, `{"type":"page","anonymousId":"a"}`, "p1 new +anonymous_id:a"},
			{0, `{"type":"screen","context":{"device":{"type":"android","id":"d"}}}`, "p2 new +android.id:d"},
			{0, `{"type":"identify","userId":"u"}`, "p3 new +user_id:u"},
			{0, `{"type":"track","userId":"u","anonymousId":"a","context":{"device":{"type":"android","id":"d"}}}`,
				"p1 2>1(android.id:d) 3>1(user_id:u)"},
		}},
		{"alias: previousId held as a user id", func(r *identity.Rules) { r.Limits["user_id"] = identity.Limit{Max: 2} }, []step{
			{0, `{"type":"identify","userId":"old"}`, "p1 new +user_id:old"},
			{0, `{"type":"alias","userId":"new","previousId":"old"}`, "p1 +user_id:new"},
		}},
		{"alias: previousId held as an anonymous id", nil, []step{
			{0, `{"type":"page","anonymousId":"x"}`, "p1 new +anonymous_id:x"},
			{0, `{"type":"identify","userId":"u"}`, "p2 new +user_id:u"},
			{0, `{"type":"alias","userId":"u","previousId":"x"}`, "p1 2>1(user_id:u)"},
		}},
		{"alias: previousId held by neither is an anonymous id", nil, []step{
			{0, `{"type":"alias","userId":"u","previousId":"y"}`, "p1 new +user_id:u +anonymous_id:y"},
			{0, `{"type":"page","anonymousId":"y"}`, "p1"},
		}},
		{"alias: a user id before an anonymous id of the same value", func(r *identity.Rules) { r.Limits["user_id"] = identity.Limit{Max: 2} }, []step{
			{0, `{"type":"identify","userId":"s"}`, "p1 new +user_id:s"},
			{0, `{"type":"page","anonymousId":"s"}`, "p2 new +anonymous_id:s"},
			{0, `{"type":"alias","userId":"n","previousId":"s","anonymousId":"z"}`, "p1 +user_id:n +anonymous_id:z"},
		}},
		{"alias of two user ids under a limit of one drops previousId", nil, []step{
			{0, `{"type":"identify","userId":"a-old"}`, "p1 new +user_id:a-old"},
			{0, `{"type":"alias","userId":"z-new","previousId":"a-old"}`, "p2 new +user_id:z-new !limit user_id:a-old"},
		}},
		{"previousId counts only in alias calls", nil, []step{
			{0, `{"type":"track","anonymousId":"a","previousId":"p"}`, "p1 new +anonymous_id:a"},
		}},
		{"group_id is never a user identifier", nil, []step{
			{0, `{"type":"group","userId":"u","groupId":"acme","context":{"externalIds":[{"id":"acme","type":"group_id"}]}}`, "p1 new +user_id:u"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := identity.NewGraph(compile(t, tt.rules), 1)
			for i, s := range tt.steps {
				n := s.n
				if n == 0 {
					n = i + 1
				}
				o := g.Resolve(ev(n, s.raw))
				if got := summary(o); got != s.want {
					t.Fatalf("step %d %s:\n got %s\nwant %s", i+1, s.raw, got, s.want)
				}
				for _, d := range o.Decisions {
					if d.Position != int64(n) || d.Profile != o.Profile || d.Reason == "" || !d.At.Equal(ev(n, s.raw).ReceivedAt) {
						t.Errorf("step %d: decision %+v", i+1, d)
					}
				}
				for _, m := range o.Merges {
					if m.Into != o.Profile || m.Position != int64(n) || m.Into >= m.From {
						t.Errorf("step %d: merge %+v", i+1, m)
					}
				}
			}
		})
	}
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
	noRegion := compile(t, nil)
	tests := []struct {
		name    string
		c       *identity.Compiled
		raw     string
		want    []string
		dropped []string
	}{
		{"identify traits", c, `{"type":"identify","userId":" u1 ","anonymousId":"a1","traits":{"email":" Ada@Example.COM","phone":"030 1234567","crm":"C-9"}}`,
			[]string{"user_id:u1", "email:ada@example.com", "anonymous_id:a1", "crm_id:C-9", "phone:+49301234567"}, nil},
		{"context traits of a track", c, `{"type":"track","anonymousId":"a1","context":{"traits":{"email":"b@x.io"}},"traits":{"email":"ignored@x.io"}}`,
			[]string{"email:b@x.io", "anonymous_id:a1"}, nil},
		{"identify reads context.traits where traits lack a key (RudderStack)", c, `{"type":"identify","userId":"u","context":{"traits":{"email":"ctx@x.io"}}}`,
			[]string{"user_id:u", "email:ctx@x.io"}, nil},
		{"identify: traits win over context.traits, either order", c, `{"type":"identify","userId":"u","context":{"traits":{"email":"ctx@x.io"}},"traits":{"email":"top@x.io"}}`,
			[]string{"user_id:u", "email:top@x.io"}, nil},
		{"identify: traits win over context.traits, traits first", c, `{"type":"identify","userId":"u","traits":{"email":"top@x.io"},"context":{"traits":{"email":"ctx@x.io"}}}`,
			[]string{"user_id:u", "email:top@x.io"}, nil},
		{"a group call's traits are the account's", c, `{"type":"group","userId":"u","groupId":"g","traits":{"email":"billing@acme.io"}}`,
			[]string{"user_id:u"}, nil},
		{"devices and external ids", c, `{"type":"track","userId":"u1","context":{"device":{"id":"D1","advertisingId":"AD1","type":"ios"},"externalIds":[{"id":"z1","type":"zendesk_id","collection":"users","encoding":"none"},{"id":"g","type":"group_id"},{"id":7,"type":"Shopify_ID"}]}}`,
			[]string{"user_id:u1", "ios.id:D1", "ios.idfa:AD1", "shopify_id:7", "zendesk_id:z1"}, nil},
		{"android, other and missing device types", c, `{"type":"screen","anonymousId":"a","context":{"device":{"id":"D2","advertisingId":"G2","type":"Android"}}}`,
			[]string{"android.id:D2", "android.idfa:G2", "anonymous_id:a"}, nil}, // unranked types: by name
		{"a device type Segment does not name", c, `{"type":"screen","context":{"device":{"id":"T","type":"tvos"}}}`, []string{"tvos.id:T"}, nil},
		{"a device without type", c, `{"type":"screen","context":{"device":{"id":"X","type":"not a type!"}}}`, []string{"device.id:X"}, nil},
		{"blocked and malformed values", c, `{"type":"identify","userId":"0","anonymousId":"NULL","traits":{"email":"not-an-email","phone":"12"}}`,
			nil, []string{"blocked user_id:0", "blocked anonymous_id:NULL", "invalid email:not-an-email", "invalid phone:12"}},
		{"a phone without country code and no default region", noRegion, `{"type":"identify","userId":"u","traits":{"phone":"030 1234567"}}`,
			[]string{"user_id:u"}, []string{"invalid phone:030 1234567"}},
		{"a phone with country code and no default region", noRegion, `{"type":"identify","userId":"u","traits":{"phone":"+49 30 1234567"}}`,
			[]string{"user_id:u", "phone:+49301234567"}, nil},
		{"alias previousId", c, `{"type":"alias","userId":"u2","previousId":"a9"}`, []string{"user_id:u2", "anonymous_id:a9"}, nil},
		{"duplicates collapse", c, `{"type":"identify","userId":"u1","traits":{"email":"a@b.c"},"context":{"externalIds":[{"id":"A@B.C","type":"email"}]}}`,
			[]string{"user_id:u1", "email:a@b.c"}, nil},
		{"same type keeps field order", c, `{"type":"track","anonymousId":"zz","context":{"externalIds":[{"id":"aa","type":"anonymous_id"}]}}`,
			[]string{"anonymous_id:zz", "anonymous_id:aa"}, nil},
		{"escapes and numbers", c, `{"type":"identify","userId":"u","tr\u0061its":{"email":"\u0041@b.c","crm":12.5e3}}`,
			[]string{"user_id:u", "email:a@b.c", "crm_id:12.5e3"}, nil},
		{"values of other shapes are not identifiers", c, `{"type":"identify","userId":"u","traits":{"email":{"x":1},"crm":true},"context":"x"}`,
			[]string{"user_id:u"}, nil},
		{"a value longer than 512 bytes", c, `{"type":"identify","userId":"u","traits":{"crm":"` + strings.Repeat("x", 513) + `"}}`,
			[]string{"user_id:u"}, []string{"invalid crm_id:" + strings.Repeat("x", 513)}},
		{"malformed JSON keeps userId and anonymousId", c, `{"type":"identify","traits":{"email":"a@b.c"`,
			[]string{"user_id:u"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := ev(1, `{}`)
			e.Raw = []byte(tt.raw)
			var f struct{ Type, UserID, AnonymousID string }
			if json.Unmarshal(e.Raw, &f) != nil {
				f.Type, f.UserID = "identify", "u" // as ingest would have read them
			}
			e.Type, e.UserID, e.AnonymousID = f.Type, f.UserID, f.AnonymousID
			ids, dropped := tt.c.Extract(e)
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

// TestBlockedPatterns checks that blocked patterns match whole values
// exactly as the regexp engine does, including the patterns matched with
// a byte table.
func TestBlockedPatterns(t *testing.T) {
	t.Parallel()
	patterns := []string{`^[0-]*$`, `[0-]+`, `[a-c]*`, `(?i)[a-c]+`, `x|y`, `[^0]*`, `[é]+`, `\d{3}`, `^.*@test\.io$`}
	values := []string{"0", "000", "-", "0-0", "00a", "abc", "ABC", "abd", "x", "xy", "y", "é", "éé", "123", "1234", "a@test.io", "a@test.iox", "a\xffb"}
	for _, p := range patterns {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			c := compile(t, func(r *identity.Rules) { r.Blocked, r.BlockedPatterns = nil, []string{p} })
			re := regexp.MustCompile(`^(?:` + p + `)$`)
			for _, v := range values {
				_, dropped := c.Extract(&store.Event{Type: "track", UserID: v, Raw: []byte(`{}`)})
				if got, want := len(dropped) == 1, re.MatchString(v); got != want {
					t.Errorf("%q: blocked %v, the regexp says %v", v, got, want)
				}
			}
		})
	}
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	g := identity.NewGraph(compile(t, nil), 1)
	u := g.Resolve(ev(1, `{"type":"identify","userId":"acme"}`)).Profile
	acct, created := g.Account(" acme ", ev(2, `{}`))
	if !created || acct == u {
		t.Fatalf("account %d created %v; user %d", acct, created, u)
	}
	if again, created := g.Account("acme", ev(3, `{}`)); again != acct || created {
		t.Fatal("account created twice")
	}
	if p, ok := g.Owner(id("group_id", "acme")); !ok || p != acct {
		t.Fatal("group_id not held by the account")
	}
	if p, _ := g.Account("  ", ev(4, `{}`)); p != 0 {
		t.Fatal("account for an empty group id")
	}
	if h := g.Holdings(acct); len(h) != 1 || h[0].Identifier != id("group_id", "acme") || h[0].Position != 2 {
		t.Fatalf("account holdings %+v", h)
	}
}

func TestCorrections(t *testing.T) {
	t.Parallel()
	g := identity.NewGraph(compile(t, nil), 1)
	g.Resolve(ev(1, `{"type":"identify","userId":"u","anonymousId":"a"}`))

	// Remove detaches; the identifier may link again, here to a new profile.
	if p, ok := g.Remove(id("anonymous_id", "a")); !ok || p != 1 {
		t.Fatalf("remove: %d %v", p, ok)
	}
	if _, ok := g.Remove(id("anonymous_id", "a")); ok {
		t.Fatal("removed twice")
	}
	if h := g.Holdings(1); len(h) != 1 || h[0].Identifier != id("user_id", "u") {
		t.Fatalf("holdings after remove: %+v", h)
	}
	if got := summary(g.Resolve(ev(2, `{"type":"page","anonymousId":"a"}`))); got != "p2 new +anonymous_id:a" {
		t.Fatalf("after remove: %s", got)
	}

	// An admin's block.
	g.Block(id("anonymous_id", "b"))
	if got := summary(g.Resolve(ev(3, `{"type":"page","userId":"u","anonymousId":"b"}`))); got != "p1 !blocked_by_admin anonymous_id:b" {
		t.Fatalf("blocked: %s", got)
	}
	g.Unblock(id("anonymous_id", "b"))
	if got := summary(g.Resolve(ev(4, `{"type":"page","userId":"u","anonymousId":"b"}`))); got != "p1 +anonymous_id:b" {
		t.Fatalf("unblocked: %s", got)
	}

	// A rebuild: the dissolved profile's events are resolved again, and
	// the first profile they create gets its id back.
	g.Dissolve(1)
	if _, ok := g.Owner(id("user_id", "u")); ok || g.Holdings(1) != nil {
		t.Fatal("a dissolved profile holds identifiers")
	}
	g.Ignore(id("anonymous_id", "b"))
	if got := summary(g.Resolve(ev(1, `{"type":"page","userId":"u","anonymousId":"b"}`))); got != "p1 new +user_id:u" {
		t.Fatalf("rebuild: %s", got)
	}
	g.EndRebuild()
	if got := summary(g.Resolve(ev(5, `{"type":"page","anonymousId":"c"}`))); got != "p3 new +anonymous_id:c" || g.Next() != 4 {
		t.Fatalf("after the rebuild: %s, next %d", got, g.Next())
	}
}

// TestTightenedRules: a profile loaded over a limit (the rules were
// tightened) still takes other types, and refuses only more of that type.
func TestTightenedRules(t *testing.T) {
	t.Parallel()
	g := identity.NewGraph(compile(t, func(r *identity.Rules) { r.DefaultLimit = identity.Limit{Max: 2} }), 1)
	for i, a := range []string{"a1", "a2", "a3"} {
		g.Load(store.HeldIdentifier{Identifier: id("anonymous_id", a), Profile: 7, Position: int64(i + 1), AddedAt: t0})
	}
	if g.Next() != 8 {
		t.Fatalf("next %d after loading profile 7", g.Next())
	}
	if got := summary(g.Resolve(ev(10, `{"type":"identify","anonymousId":"a1","traits":{"email":"e@x.io"}}`))); got != "p7 +email:e@x.io" {
		t.Fatalf("another type: %s", got)
	}
	if got := summary(g.Resolve(ev(11, `{"type":"page","anonymousId":"a4","context":{"traits":{"email":"e@x.io"}}}`))); got != "p7 !limit anonymous_id:a4" {
		t.Fatalf("the same type: %s", got)
	}
}

// stream is a random mix of calls over small pools of people's
// identifiers, so that they link in many ways. previousIds are drawn from
// the anonymous ids (user ids and anonymous ids never share a value), so
// an alias resolves the same way in any order.
func stream(rng *rand.Rand, n int) []*store.Event {
	events := make([]*store.Event, n)
	for i := range events {
		u, a, e := rng.IntN(40), rng.IntN(80), rng.IntN(50)
		var raw string
		switch rng.IntN(7) {
		case 0:
			raw = fmt.Sprintf(`{"type":"page","anonymousId":"a%d"}`, a)
		case 1:
			raw = fmt.Sprintf(`{"type":"identify","userId":"u%d","anonymousId":"a%d","traits":{"email":"E%d@x.io","name":"n"}}`, u, a, e)
		case 2:
			raw = fmt.Sprintf(`{"type":"track","userId":"u%d","context":{"traits":{"email":"e%d@x.io"}}}`, u, e)
		case 3:
			raw = fmt.Sprintf(`{"type":"alias","userId":"u%d","previousId":"a%d"}`, u, a)
		case 4:
			raw = fmt.Sprintf(`{"type":"screen","anonymousId":"a%d","context":{"device":{"type":"ios","id":"d%d","advertisingId":"ad%d"}}}`, a, a%30, e%20)
		case 5:
			raw = fmt.Sprintf(`{"type":"identify","userId":"u%d","context":{"externalIds":[{"id":"c%d","type":"crm_id","collection":"users","encoding":"none"}]}}`, u, e)
		case 6:
			raw = fmt.Sprintf(`{"type":"identify","anonymousId":"a%d","traits":{"phone":"+49 30 %07d"}}`, a, 1000000+e)
		}
		events[i] = ev(i+1, raw)
	}
	return events
}

// partitions resolves events in the given order and renders the final
// partition of identifiers into profiles and of events into profiles,
// both independent of profile ids. Events are named by their position.
func partitions(g *identity.Graph, events []*store.Event) (ids, evs string) {
	at := map[int64]store.ProfileID{}
	into := map[store.ProfileID]store.ProfileID{}
	for _, e := range events {
		o := g.Resolve(e)
		at[e.Position] = o.Profile
		for _, m := range o.Merges {
			into[m.From] = m.Into
		}
	}
	groups := map[store.ProfileID][]string{}
	for pos, p := range at {
		for into[p] != 0 {
			p = into[p]
		}
		if p == 0 {
			continue
		}
		groups[p] = append(groups[p], fmt.Sprint(pos))
	}
	var idGroups, evGroups []string
	for p, g1 := range groups {
		var hs []string
		for _, h := range g.Holdings(p) {
			hs = append(hs, h.String())
		}
		slices.Sort(hs)
		slices.Sort(g1)
		idGroups = append(idGroups, strings.Join(hs, " "))
		evGroups = append(evGroups, strings.Join(g1, " "))
	}
	slices.Sort(idGroups)
	slices.Sort(evGroups)
	return strings.Join(idGroups, "\n"), strings.Join(evGroups, "\n")
}

// TestOrderIndependence is the property that, without limits (and with
// no cap reached), the final partition of identifiers and of events into
// profiles does not depend on the order in which events arrive.
func TestOrderIndependence(t *testing.T) {
	t.Parallel()
	c := compile(t, unlimited)
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 99))
			events := stream(rng, 300)
			wantIDs, wantEvents := partitions(identity.NewGraph(c, 1), events)
			for range 4 {
				rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
				gotIDs, gotEvents := partitions(identity.NewGraph(c, 1), events)
				if gotIDs != wantIDs || gotEvents != wantEvents {
					t.Fatalf("the partition depends on the order:\n%s\nvs\n%s", gotIDs, wantIDs)
				}
			}
		})
	}
}

// TestLoadContinues: a graph loaded from what another one holds (as the
// processor loads it from the store after a restart, in no particular
// order) decides every later event exactly as the original does.
func TestLoadContinues(t *testing.T) {
	t.Parallel()
	tight := func(r *identity.Rules) {
		r.Limits["anonymous_id"] = identity.Limit{Max: 3, Window: 2 * time.Hour}
		r.MaxIdentifiers, r.MaxMerges = 12, 4
	}
	for seed := range uint64(10) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			c := compile(t, tight)
			rng := rand.New(rand.NewPCG(seed, 7))
			events := stream(rng, 600)
			g := identity.NewGraph(c, 1)
			merges := map[store.ProfileID]int{}
			cut := 200 + rng.IntN(200)
			for _, e := range events[:cut] {
				for _, m := range g.Resolve(e).Merges {
					merges[m.Into] += merges[m.From] + 1
					delete(merges, m.From)
				}
			}
			var held []store.HeldIdentifier
			for p := store.ProfileID(1); p < g.Next(); p++ {
				held = append(held, g.Holdings(p)...)
			}
			rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
			loaded := identity.NewGraph(c, g.Next())
			for _, h := range held {
				loaded.Load(h)
			}
			for p, n := range merges {
				loaded.LoadMerges(p, n)
			}
			decisions := 0
			for _, e := range events[cut:] {
				want, got := g.Resolve(e), loaded.Resolve(e)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("position %d after a reload:\n got %+v\nwant %+v", e.Position, got, want)
				}
				decisions += len(want.Decisions)
			}
			if decisions == 0 {
				t.Fatal("the stream made no decision: the test does not exercise the limits")
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mod  func(*identity.Rules)
		want string
	}{
		{func(r *identity.Rules) { r.BlockedPatterns = []string{"a", "("} }, "blocked_patterns[1]: error parsing regexp"},
		{func(r *identity.Rules) { r.Priority = []string{"email", "email"} }, `priority[1]: "email" is listed twice`},
		{func(r *identity.Rules) { r.Priority = []string{"Email"} }, `priority[0]: "Email" is not an identifier type`},
		{func(r *identity.Rules) { r.Limits = map[string]identity.Limit{"email": {Max: 0}} }, "limits.email: max must be at least 1"},
		{func(r *identity.Rules) { r.Limits = map[string]identity.Limit{"email": {Max: 1, Window: -1}} }, "limits.email"},
		{func(r *identity.Rules) { r.DefaultLimit = identity.Limit{} }, "default_limit"},
		{func(r *identity.Rules) { r.TraitIdentifiers = map[string]string{"org": "group_id"} }, "trait_identifiers.org"},
		{func(r *identity.Rules) { r.DefaultRegion = "ZZ" }, "default_region"},
		{func(r *identity.Rules) { r.MaxMerges = 0 }, "max_merges"},
		{func(r *identity.Rules) { r.MaxIdentifiers = 0 }, "max_identifiers"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			r := identity.DefaultRules()
			tt.mod(&r)
			if _, err := r.Compile(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// reference extracts the identifiers of an event's JSON with
// encoding/json, the slow and obvious way, for FuzzExtract to compare the
// scanner with.
func reference(c *identity.Compiled, e *store.Event) []store.Identifier {
	var f struct {
		PreviousID json.RawMessage            `json:"previousId"`
		Traits     map[string]json.RawMessage `json:"traits"`
		Context    struct {
			Traits   map[string]json.RawMessage                        `json:"traits"`
			Device   struct{ ID, AdvertisingID, Type json.RawMessage } `json:"device"`
			External []struct{ ID, Type json.RawMessage }              `json:"externalIds"`
		} `json:"context"`
	}
	// A value of an unexpected type is skipped, the rest decoded.
	_ = json.Unmarshal(e.Raw, &f)
	text := func(raw json.RawMessage) string {
		var s string
		switch {
		case len(raw) == 0:
		case raw[0] == '"':
			_ = json.Unmarshal(raw, &s)
		case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
			s = string(raw)
		}
		return s
	}
	var ids []store.Identifier
	put := func(typ, v string) {
		if n, ok := c.Normalize(store.Identifier{Type: typ, Value: v}); ok && v != "" && n.Value != "" && len(n.Value) <= identity.MaxValueLen {
			ids = append(ids, n)
		}
	}
	if e.Type == "alias" {
		put("anonymous_id", text(f.PreviousID))
	}
	traits := f.Context.Traits
	if e.Type == "identify" {
		traits = f.Traits
	}
	put("email", text(traits["email"]))
	put("phone", text(traits["phone"]))
	validType := regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,63}$`)
	if d := f.Context.Device; text(d.ID) != "" || text(d.AdvertisingID) != "" {
		kind := strings.ToLower(strings.TrimSpace(text(d.Type)))
		if !validType.MatchString(kind + ".idfa") {
			kind = "device"
		}
		put(kind+".id", text(d.ID))
		put(kind+".idfa", text(d.AdvertisingID))
	}
	for _, x := range f.Context.External {
		if t := strings.ToLower(strings.TrimSpace(text(x.Type))); validType.MatchString(t) && t != "group_id" {
			put(t, text(x.ID))
		}
	}
	return ids
}

func FuzzExtract(f *testing.F) {
	f.Add("identify", []byte(`{"type":"identify","userId":"u","traits":{"email":"a@b.c","phone":"+4930123456"},"context":{"device":{"id":"d","type":"ios"},"externalIds":[{"id":"x","type":"t"}]}}`))
	f.Add("alias", []byte(`{"previousId":"p","context":{"device":"x","externalIds":{}}}`))
	f.Add("track", []byte(`{"context":{"traits":{"email":"\u00e9@b.c","phone":4930123456}}}`))
	f.Add("identify", []byte(`not json`))
	f.Add("identify", []byte(`{"traits":{"email":"a@b.c","email":"z@b.c"},"TRAITS":{"phone":"+49301234567"}}`))
	f.Add("screen", []byte(`{"context":{"device":{"id":"d","type":"android"},"Device":{"advertisingId":7},"externalIds":[{"id":"X","type":" CRM "},null,3]}}`))
	c := compile(f, nil)
	f.Fuzz(func(t *testing.T, typ string, raw []byte) {
		e := &store.Event{Type: typ, Raw: raw, ReceivedAt: t0, Position: 1}
		ids, dropped := c.Extract(e)
		for _, i := range ids {
			if i.Value == "" || i.Type == "" || len(i.Value) > identity.MaxValueLen {
				t.Fatalf("bad identifier %+v", i)
			}
		}
		for _, d := range dropped {
			if d.Code == "" || d.Reason == "" {
				t.Fatalf("decision without code or reason: %+v", d)
			}
		}
		// On valid JSON, the scanner reads what encoding/json reads.
		if json.Valid(raw) {
			var got, want []string
			for _, i := range ids {
				got = append(got, i.String())
			}
			for _, i := range reference(c, e) {
				want = append(want, i.String())
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, slices.Compact(want)) {
				t.Fatalf("scanner %q, encoding/json %q", got, want)
			}
		}
		identity.NewGraph(c, 1).Resolve(e)
	})
}

// TestForget: an erased profile's identifiers are held by no one, its id
// is not given again, and the same identifiers later make a new profile.
func TestForget(t *testing.T) {
	t.Parallel()
	g := identity.NewGraph(compile(t, nil), 1)
	p := g.Resolve(ev(1, `{"type":"identify","userId":"ada","anonymousId":"a1"}`)).Profile
	q := g.Resolve(ev(2, `{"type":"identify","userId":"bob"}`)).Profile
	g.Forget(p)
	if _, held := g.Owner(id("user_id", "ada")); held || len(g.Holdings(p)) != 0 {
		t.Fatalf("ada still held after Forget: %v", g.Holdings(p))
	}
	if o, _ := g.Owner(id("user_id", "bob")); o != q {
		t.Errorf("bob moved to %d", o)
	}
	if again := g.Resolve(ev(3, `{"type":"identify","userId":"ada"}`)); !again.Created || again.Profile == p || again.Profile == q {
		t.Errorf("ada again: %s, want a new profile (not %d or %d)", summary(again), p, q)
	}
}
