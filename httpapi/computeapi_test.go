package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/httpapi"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	analytics "github.com/segmentio/analytics-go/v3"
)

// The admin API of computed traits and audiences, over a real SQLite
// store: definitions (with the config file's, which the API may not
// change), previews on a running processor, members and insights read
// from state committed by hand, and an end-to-end run with the official
// Segment client.

const computeConfig = `
workspaces:
  - slug: acme
    sources:
      - {slug: web, write_key: wk_cweb_1234567890}
    tokens:
      - {name: ops, token: tok_cops_1234567890, scopes: [admin]}
      - {name: debugger, token: tok_cdebug_1234567890, scopes: [debug]}
      - {name: desk, token: tok_cdesk_1234567890, scopes: [profiles:read]}
    computed_traits:
      - {name: pages, kind: count, types: [page]}
    audiences:
      - {name: readers, condition: "computed.pages >= 100"}
  - slug: globex
    sources:
      - {slug: app, write_key: wk_capp_1234567890}
    tokens:
      - {name: ops, token: tok_gops_1234567890, scopes: [admin]}
`

const (
	cWebKey     = "wk_cweb_1234567890"
	cAdmin      = "tok_cops_1234567890"
	cDebug      = "tok_cdebug_1234567890"
	cDesk       = "tok_cdesk_1234567890"
	globexAdmin = "tok_gops_1234567890"
	acmeAPI     = "/v1/workspaces/acme/"
)

// offsetClock is the time of real clocks plus an offset that a test moves
// forward, so that windows expire without waiting.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())).UTC() }
func (c *offsetClock) advance(d time.Duration) { c.off.Add(int64(d)) }

type computeBundle struct {
	*bundle
	clock *offsetClock
}

// computeSetup starts a server on a fresh SQLite store loaded with
// computeConfig; with fold, a processor folds acme (not globex) in the
// background and serves previews.
func computeSetup(t *testing.T, fold bool) *computeBundle {
	t.Helper()
	clock := &offsetClock{}
	b := setup(t, withConfig(computeConfig), withOptions(func(b *bundle, o *httpapi.Options) {
		o.Now = clock.now
		if fold {
			p := process.New(process.Options{
				Store: b.st, Owner: "test", Rules: defaultRules(t),
				Wake: b.gc.Committed, Poll: 20 * time.Millisecond, Coalesce: 5 * time.Millisecond,
				DefinitionsPoll: 50 * time.Millisecond, Now: clock.now, Logger: slog.New(slog.DiscardHandler),
			})
			o.Compute = p
			b.wg.Go(func() { p.Run(b.ctx, []string{"acme"}) })
		}
	}))
	return &computeBundle{bundle: b, clock: clock}
}

// defaultRules returns the default identity rules, for every workspace.
func defaultRules(t testing.TB) func(string) (*identity.Compiled, error) {
	t.Helper()
	rules, err := identity.DefaultRules().Compile()
	if err != nil {
		t.Fatal(err)
	}
	return func(string) (*identity.Compiled, error) { return rules, nil }
}

// definitions lists what the store holds for acme as "kind name origin vN".
func (b *computeBundle) definitions(t *testing.T) []string {
	t.Helper()
	defs, err := b.st.Definitions(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range defs {
		out = append(out, fmt.Sprintf("%s %s %s v%d %s", d.Kind, d.Name, d.Origin, d.Version, d.Body))
	}
	return out
}

func TestComputeDefinitionsAPI(t *testing.T) {
	t.Parallel()
	b := computeSetup(t, false)
	const traitPath = acmeAPI + "computed-traits/"
	const audPath = acmeAPI + "audiences/"

	// The config file's definitions, read with debug.
	code, m := b.call(t, "GET", acmeAPI+"computed-traits", cDebug, "")
	data, _ := m["data"].([]any)
	if code != 200 || len(data) != 1 || data[0].(map[string]any)["origin"] != "config" || data[0].(map[string]any)["name"] != "pages" {
		t.Fatalf("computed traits: %d %v", code, m)
	}
	if d := data[0].(map[string]any)["definition"].(map[string]any); d["kind"] != "count" {
		t.Fatalf("definition %v", d)
	}

	// Creating: 201 with version 1; the same body again: 200, same
	// version; another body: version 2.
	orders := `{"name":"orders","kind":"count","events":["Order Completed"],"window_days":30}`
	code, m = b.call(t, "PUT", traitPath+"orders", cAdmin, orders)
	if code != 201 || m["version"] != 1.0 || m["origin"] != "api" || m["updated_at"] == nil || m["backfill"] != nil {
		t.Fatalf("put orders: %d %v", code, m)
	}
	code, m = b.call(t, "PUT", traitPath+"orders", cAdmin, "{\n  \"kind\": \"count\", \"events\": [\"Order Completed\"], \"window_days\": 30}")
	if code != 200 || m["version"] != 1.0 {
		t.Fatalf("put orders again (name from the path): %d %v", code, m)
	}
	code, m = b.call(t, "PUT", traitPath+"orders", cAdmin, `{"kind":"count","events":["Order Completed"],"window_days":7}`)
	if code != 200 || m["version"] != 2.0 {
		t.Fatalf("put changed orders: %d %v", code, m)
	}
	code, m = b.call(t, "PUT", audPath+"buyers", cAdmin, `{"condition":"computed.orders >= 1","description":"bought in the last week"}`)
	if code != 201 || m["members"] != 0.0 {
		t.Fatalf("put buyers: %d %v", code, m)
	}
	code, m = b.call(t, "GET", audPath+"buyers", cDebug, "")
	if def, _ := m["definition"].(map[string]any); code != 200 || def["condition"] != "computed.orders >= 1" || m["version"] != 1.0 {
		t.Fatalf("get buyers: %d %v", code, m)
	}

	// Auth: no token 401, wrong scope 403, another workspace's token 403.
	for _, c := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", acmeAPI + "computed-traits", "", "", 401},
		{"GET", acmeAPI + "computed-traits", "tok_wrong_1234567890", "", 401},
		{"GET", acmeAPI + "audiences", cDesk, "", 403},
		{"GET", acmeAPI + "audiences/buyers", globexAdmin, "", 404},
		{"PUT", traitPath + "x", cDebug, `{"kind":"count"}`, 403},
		{"PUT", traitPath + "x", cDesk, `{"kind":"count"}`, 403},
		{"PUT", traitPath + "x", globexAdmin, `{"kind":"count"}`, 404},
		{"DELETE", audPath + "buyers", cDebug, "", 403},
		{"GET", "/v1/workspaces/nowhere/audiences", cAdmin, "", 404},
		{"GET", acmeAPI + "outbox", cDesk, "", 403},
		{"GET", acmeAPI + "audiences/buyers/members", cDebug, "", 403},
	} {
		if code, m := b.call(t, c.method, c.path, c.token, c.body); code != c.want {
			t.Errorf("%s %s with %q: %d %v, want %d", c.method, c.path, c.token, code, m, c.want)
		}
	}

	// The config file's definitions are read-only here.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", traitPath + "pages", `{"kind":"count"}`},
		{"DELETE", traitPath + "pages", ""},
		{"PUT", audPath + "readers", `{"condition":"true"}`},
		{"DELETE", audPath + "readers", ""},
	} {
		if code, m := b.call(t, c.method, c.path, cAdmin, c.body); code != 409 || errCode(m) != "managed_by_config" {
			t.Errorf("%s %s: %d %v, want 409 managed_by_config", c.method, c.path, code, m)
		}
	}

	// Bad input: 4xx, never 5xx, and nothing stored.
	before := b.definitions(t)
	big := `{"kind":"count","where":"` + strings.Repeat("true && ", 10<<10) + `true"}`
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code                     string
		problem                  string // field:line:column:code of the first problem, if any
	}{
		{"bad JSON", "PUT", traitPath + "x", `{"kind":`, 400, "invalid_json", ""},
		{"not an object", "PUT", traitPath + "x", `["count"]`, 400, "invalid_json", ""},
		{"null", "PUT", audPath + "x", `null`, 400, "invalid_json", ""},
		{"empty body", "PUT", audPath + "x", ``, 400, "invalid_json", ""},
		{"unknown trait field", "PUT", traitPath + "x", `{"kind":"count","colour":"red"}`, 400, "invalid_definition", "colour:0:0:unknown_field"},
		{"unknown audience field", "PUT", audPath + "x", `{"condition":"true","colour":"red"}`, 400, "invalid_definition", "colour:0:0:json"},
		{"wrong type", "PUT", traitPath + "x", `{"kind":"count","window_days":"30"}`, 400, "invalid_definition", "window_days:0:0:wrong_type"},
		{"bad kind", "PUT", traitPath + "x", `{"kind":"median"}`, 400, "invalid_definition", "kind:0:0:invalid_kind"},
		{"bad CEL", "PUT", audPath + "x", `{"condition":"traits.plan == \"pro\" &&\n  computed.nope > 1"}`, 400, "invalid_definition", "condition:2:12:unknown_trait"},
		{"bad CEL syntax", "PUT", audPath + "x", `{"condition":"traits.plan ==== 1"}`, 400, "invalid_definition", "condition:1:15:syntax"},
		{"bad where", "PUT", traitPath + "x", `{"kind":"count","where":"nope > 1"}`, 400, "invalid_definition", "where:1:1:invalid_where"},
		{"unknown audience", "PUT", audPath + "x", `{"condition":"\"ghosts\" in audiences"}`, 400, "invalid_definition", "condition:1:1:unknown_audience"},
		{"cycle", "PUT", audPath + "buyers", `{"condition":"\"buyers\" in audiences"}`, 400, "invalid_definition", ""},
		{"name mismatch", "PUT", audPath + "x", `{"name":"y","condition":"true"}`, 400, "name_mismatch", ""},
		{"name not a string", "PUT", audPath + "x", `{"name":7,"condition":"true"}`, 400, "name_mismatch", ""},
		{"bad name", "PUT", audPath + "Bad-Name", `{"condition":"true"}`, 400, "invalid_definition", ""},
		{"name of the other kind", "PUT", audPath + "orders", `{"condition":"true"}`, 400, "invalid_definition", "name:0:0:duplicate"},
		{"too large", "PUT", traitPath + "x", big, 413, "body_too_large", ""},
		{"delete what an audience reads", "DELETE", traitPath + "orders", "", 400, "invalid_definition", ""},
		{"delete an unknown trait", "DELETE", traitPath + "ghost", "", 404, "computed_trait_not_found", ""},
		{"get an unknown audience", "GET", audPath + "ghost", "", 404, "audience_not_found", ""},
		{"bad limit", "GET", acmeAPI + "audiences?limit=0", "", 400, "invalid_limit", ""},
		{"bad cursor", "GET", acmeAPI + "audiences?next=zzz", "", 400, "invalid_cursor", ""},
	} {
		code, m := b.call(t, c.method, c.path, cAdmin, c.body)
		if code != c.status || errCode(m) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, m, c.status, c.code)
			continue
		}
		if c.problem != "" {
			ps, _ := m["problems"].([]any)
			if len(ps) == 0 {
				t.Errorf("%s: no problems in %v", c.name, m)
				continue
			}
			p := ps[0].(map[string]any)
			if got := fmt.Sprintf("%v:%v:%v:%v", p["field"], p["line"], p["column"], p["code"]); got != c.problem {
				t.Errorf("%s: first problem %s (%v), want %s", c.name, got, p, c.problem)
			}
		}
		if c.code == "invalid_definition" && m["problems"] == nil {
			t.Errorf("%s: no problems list: %v", c.name, m)
		}
	}
	if after := b.definitions(t); !slices.Equal(after, before) {
		t.Fatalf("bad requests changed the definitions:\n%q\n%q", before, after)
	}

	// Paging through a list to its end.
	for i := range 5 {
		if code, m := b.call(t, "PUT", fmt.Sprintf("%sa%d", audPath, i), cAdmin, `{"condition":"traits.plan == \"pro\""}`); code != 201 {
			t.Fatalf("put a%d: %d %v", i, code, m)
		}
	}
	var names []string
	next := ""
	for range 10 {
		code, m := b.call(t, "GET", acmeAPI+"audiences?limit=2&next="+next, cDebug, "")
		if code != 200 {
			t.Fatalf("page: %d %v", code, m)
		}
		for _, d := range m["data"].([]any) {
			names = append(names, d.(map[string]any)["name"].(string))
		}
		next, _ = m["next"].(string)
		if next == "" {
			break
		}
	}
	if want := []string{"a0", "a1", "a2", "a3", "a4", "buyers", "readers"}; !slices.Equal(names, want) {
		t.Fatalf("audiences by pages of 2: %q, want %q", names, want)
	}

	// Deleting: 204, then 404; the audience first, then the trait it read.
	if code, m := b.call(t, "DELETE", audPath+"buyers", cAdmin, ""); code != 204 {
		t.Fatalf("delete buyers: %d %v", code, m)
	}
	if code, _ := b.call(t, "GET", audPath+"buyers", cAdmin, ""); code != 404 {
		t.Fatalf("get deleted buyers: %d", code)
	}
	if code, m := b.call(t, "DELETE", traitPath+"orders", cAdmin, ""); code != 204 {
		t.Fatalf("delete orders: %d %v", code, m)
	}

	// Without a processor, previews answer 503 not_leading.
	code, m = b.call(t, "POST", audPath+"preview", cAdmin, `{"condition":"true"}`)
	if code != 503 || errCode(m) != "not_leading" || !strings.Contains(m["error"].(map[string]any)["message"].(string), "--fold=false") {
		t.Fatalf("preview without folding: %d %v", code, m)
	}
	// ... but a bad definition is still a 400.
	code, m = b.call(t, "POST", audPath+"preview", cAdmin, `{"condition":"computed.nope"}`)
	if code != 400 || errCode(m) != "invalid_definition" {
		t.Fatalf("bad preview: %d %v", code, m)
	}
}

// seedCompute commits, by hand, ten user profiles of acme (user_id u1…u10,
// plan pro for 1…4, free for the rest; city Oslo for 1, 2 and 5), the
// memberships vip = {1, 2, 3} and active = {2, 3, 4, 5} with their
// history (3 left vip once and came back), computed values, and an outbox
// entry per membership change.
func seedCompute(t *testing.T, st store.Store) time.Time {
	t.Helper()
	ctx := context.Background()
	for _, d := range []store.Definition{
		{Kind: store.DefinitionAudience, Name: "vip", Body: json.RawMessage(`{"name":"vip","condition":"traits.plan == \"pro\""}`)},
		{Kind: store.DefinitionAudience, Name: "active", Body: json.RawMessage(`{"name":"active","condition":"true"}`)},
	} {
		d.Workspace, d.Origin = "acme", "api"
		if _, err := st.PutDefinition(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	l, err := st.AcquireLease(ctx, "acme", "seed", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	c := &store.Changes{Workspace: "acme", Epoch: l.Epoch, From: l.Position, To: 10, NextProfileID: 11}
	for i := 1; i <= 10; i++ {
		p, pos := store.ProfileID(i), int64(i)
		c.Profiles = append(c.Profiles, store.ProfileDelta{ID: p, Kind: store.KindUser, FirstSeen: t0, LastSeen: t0, Events: 1})
		c.Identifiers = append(c.Identifiers, store.HeldIdentifier{Identifier: store.Identifier{Type: "user_id", Value: fmt.Sprint("u", i)}, Profile: p, Position: pos, AddedAt: t0})
		tv := func(key, value string) {
			c.Traits = append(c.Traits, store.TraitValue{Profile: p, Key: key, Value: json.RawMessage(value), Timestamp: t0, Source: "web", Position: pos})
		}
		plan := `"free"`
		if i <= 4 {
			plan = `"pro"`
		}
		tv("plan", plan)
		tv("email", fmt.Sprintf(`"u%d@example.com"`, i))
		if i == 1 || i == 2 || i == 5 {
			tv("city", `"Oslo"`)
		}
	}
	var outbox []store.OutboxEntry
	change := func(aud string, p store.ProfileID, entered bool, day int, pos int64) {
		at := t0.AddDate(0, 0, day)
		c.Compute.Audiences = append(c.Compute.Audiences, store.AudienceChange{Audience: aud, Profile: p, Entered: entered, Reason: "evaluated", At: at, Position: pos})
		kind := store.OutboxAudienceEntered
		if !entered {
			kind = store.OutboxAudienceExited
		}
		outbox = append(outbox, store.OutboxEntry{Kind: kind, Profile: p, Position: pos, Key: aud, At: at,
			Payload: json.RawMessage(fmt.Sprintf(`{"type":"track","event":"Audience Entered","properties":{%q:%v}}`, aud, entered))})
		c.Compute.Values = append(c.Compute.Values, store.ComputedValue{Profile: p, Name: aud, Value: json.RawMessage(fmt.Sprint(entered)), At: at, Position: pos})
	}
	change("vip", 1, true, 0, 1)
	change("vip", 2, true, 0, 2)
	change("vip", 3, true, 0, 3)
	change("vip", 3, false, 1, 6)
	change("vip", 3, true, 2, 7)
	for _, p := range []store.ProfileID{2, 3, 4, 5} {
		change("active", p, true, 1, int64(p))
	}
	c.Compute.Outbox = outbox
	c.Compute.Values = append(c.Compute.Values, store.ComputedValue{Profile: 1, Name: "orders", Value: json.RawMessage(`3`), At: t0, Position: 1})
	if err := st.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	return t0
}

func TestAudienceInsightsAPI(t *testing.T) {
	t.Parallel()
	b := computeSetup(t, false)
	t0 := seedCompute(t, b.st)
	b.clock.advance(t0.AddDate(0, 0, 3).Sub(time.Now()))

	// Members, paged to the end, with user ids and since.
	var members []string
	next := ""
	for range 10 {
		code, m := b.call(t, "GET", acmeAPI+"audiences/active/members?limit=3&next="+next, cDesk, "")
		if code != 200 {
			t.Fatalf("members: %d %v", code, m)
		}
		for _, x := range m["data"].([]any) {
			e := x.(map[string]any)
			members = append(members, fmt.Sprint(e["kith_id"], "/", e["user_id"], "/", e["since"]))
		}
		if next, _ = m["next"].(string); next == "" {
			break
		}
	}
	since := t0.AddDate(0, 0, 1).Format(time.RFC3339)
	if want := []string{"2/u2/" + since, "3/u3/" + since, "4/u4/" + since, "5/u5/" + since}; !slices.Equal(members, want) {
		t.Fatalf("members of active: %q, want %q", members, want)
	}

	// History, newest first, all of it and one profile's, paged.
	var hist []string
	next = ""
	for range 10 {
		code, m := b.call(t, "GET", acmeAPI+"audiences/vip/history?limit=2&next="+next, cAdmin, "")
		if code != 200 {
			t.Fatalf("history: %d %v", code, m)
		}
		for _, x := range m["data"].([]any) {
			e := x.(map[string]any)
			sign := "-"
			if e["entered"] == true {
				sign = "+"
			}
			hist = append(hist, fmt.Sprint(sign, e["kith_id"], "@", e["position"]))
		}
		if next, _ = m["next"].(string); next == "" {
			break
		}
	}
	if want := []string{"+3@7", "-3@6", "+3@3", "+2@2", "+1@1"}; !slices.Equal(hist, want) {
		t.Fatalf("history of vip: %q, want %q", hist, want)
	}
	code, m := b.call(t, "GET", acmeAPI+"audiences/vip/history?profile=user_id:u3", cDesk, "")
	if data, _ := m["data"].([]any); code != 200 || len(data) != 3 || data[1].(map[string]any)["entered"] != false || data[1].(map[string]any)["reason"] != "evaluated" {
		t.Fatalf("history of u3: %d %v", code, m)
	}

	// Sizes by day: vip has 3 members from day 0, 2 on day 1, 3 again.
	code, m = b.call(t, "GET", acmeAPI+"audiences/vip/sizes?days=5", cDesk, "")
	var sizes []string
	for _, x := range m["data"].([]any) {
		e := x.(map[string]any)
		sizes = append(sizes, fmt.Sprint(e["day"], "=", e["members"]))
	}
	day := func(n int) string { return t0.AddDate(0, 0, n).Format(time.DateOnly) }
	if want := []string{day(-1) + "=0", day(0) + "=3", day(1) + "=2", day(2) + "=3", day(3) + "=3"}; code != 200 || !slices.Equal(sizes, want) {
		t.Fatalf("sizes: %d %q, want %q", code, sizes, want)
	}

	// Overlap: vip ∩ active = {2, 3}.
	code, m = b.call(t, "GET", acmeAPI+"audiences/overlap?a=vip&b=active", cDesk, "")
	if code != 200 || m["a"] != 3.0 || m["b"] != 4.0 || m["both"] != 2.0 || m["a_only"] != 1.0 || m["b_only"] != 2.0 || m["jaccard"] != 0.4 {
		t.Fatalf("overlap: %d %v", code, m)
	}

	// Lift: vip's plan pro is 3 of its 3 members (100%) against 4 of 10
	// users (40%): 2.5; Oslo 2 of 3 against 3 of 10: 2.22; emails are
	// held by one member each and left out from min_members 2.
	code, m = b.call(t, "GET", acmeAPI+"audiences/vip/lift?min_members=2", cDesk, "")
	var lifts []string
	for _, x := range m["data"].([]any) {
		e := x.(map[string]any)
		lifts = append(lifts, fmt.Sprintf("%v=%v %v %.2f %.2f %.2f", e["key"], e["value"], e["members_with"], e["share_in_audience"], e["share_overall"], e["lift"]))
	}
	if want := []string{"plan=pro 3 1.00 0.40 2.50", "city=Oslo 2 0.67 0.30 2.22"}; code != 200 || !slices.Equal(lifts, want) {
		t.Fatalf("lift: %d %q, want %q", code, lifts, want)
	}
	if code, m := b.call(t, "GET", acmeAPI+"audiences/vip/lift?min_members=1&limit=1", cDesk, ""); code != 200 || len(m["data"].([]any)) != 1 {
		t.Fatalf("lift with limit 1: %d %v", code, m)
	}

	// Outbox, paged to the end, in id order, payloads as JSON.
	var ids []float64
	var kinds []string
	after := "0"
	for range 20 {
		code, m := b.call(t, "GET", acmeAPI+"outbox?limit=3&after="+after, cDebug, "")
		if code != 200 {
			t.Fatalf("outbox: %d %v", code, m)
		}
		for _, x := range m["data"].([]any) {
			e := x.(map[string]any)
			ids = append(ids, e["id"].(float64))
			kinds = append(kinds, fmt.Sprint(e["kind"], " ", e["key"], " ", e["kith_id"]))
			if p, _ := e["payload"].(map[string]any); p["type"] != "track" || e["at"] == nil || e["position"] == nil {
				t.Fatalf("outbox entry %v", e)
			}
		}
		if after, _ = m["next"].(string); after == "" {
			break
		}
	}
	if len(ids) != 9 || !slices.IsSorted(ids) || kinds[3] != "audience_exited vip 3" {
		t.Fatalf("outbox ids %v kinds %q", ids, kinds)
	}

	// The Profile API shows computed values among the traits.
	code, m = b.call(t, "GET", "/v1/spaces/acme/collections/users/profiles/user_id:u3/traits", cDesk, "")
	traits, _ := m["traits"].(map[string]any)
	if code != 200 || traits["vip"] != true || traits["active"] != true || traits["plan"] != "pro" {
		t.Fatalf("traits of u3: %d %v", code, m)
	}
	code, m = b.call(t, "GET", "/v1/spaces/acme/collections/users/profiles/user_id:u1/traits?include=orders,plan,ghost&verbose=true", cDesk, "")
	traits, _ = m["traits"].(map[string]any)
	if o, _ := traits["orders"].(map[string]any); code != 200 || len(traits) != 2 || o["value"] != 3.0 || o["source"] != "computed" {
		t.Fatalf("included traits of u1: %d %v", code, m)
	}
	// Paged: the computed values take their place in key order.
	var keys []string
	next = ""
	for range 10 {
		code, m := b.call(t, "GET", "/v1/spaces/acme/collections/users/profiles/user_id:u1/traits?limit=2&next="+next, cDesk, "")
		if code != 200 {
			t.Fatalf("traits page: %d %v", code, m)
		}
		for k := range m["traits"].(map[string]any) {
			keys = append(keys, k)
		}
		c := m["cursor"].(map[string]any)
		if next, _ = c["next"].(string); next == "" {
			break
		}
	}
	slices.Sort(keys)
	if want := []string{"city", "email", "orders", "plan", "vip"}; !slices.Equal(keys, want) {
		t.Fatalf("traits of u1 by pages: %q, want %q", keys, want)
	}

	// Bad input and unknown audiences: 4xx.
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"audiences/ghost/members", 404, "audience_not_found"},
		{"audiences/ghost/lift", 404, "audience_not_found"},
		{"audiences/ghost/sizes", 404, "audience_not_found"},
		{"audiences/ghost/history", 404, "audience_not_found"},
		{"audiences/overlap?a=vip&b=ghost", 404, "audience_not_found"},
		{"audiences/overlap?a=vip", 400, "invalid_query"},
		{"audiences/vip/members?limit=0", 400, "invalid_limit"},
		{"audiences/vip/members?next=x", 400, "invalid_cursor"},
		{"audiences/vip/sizes?days=367", 400, "invalid_days"},
		{"audiences/vip/sizes?days=0", 400, "invalid_days"},
		{"audiences/vip/lift?min_members=0", 400, "invalid_min_members"},
		{"audiences/vip/history?profile=nonsense", 400, "invalid_profile_id"},
		{"audiences/vip/history?profile=user_id:ghost", 404, "profile_not_found"},
		{"outbox?after=-1", 400, "invalid_cursor"},
		{"outbox?limit=100000", 400, "invalid_limit"},
	} {
		if code, m := b.call(t, "GET", acmeAPI+c.path, cAdmin, ""); code != c.status || errCode(m) != c.code {
			t.Errorf("GET %s: %d %v, want %d %s", c.path, code, m, c.status, c.code)
		}
	}
	// Another workspace's token sees nothing of acme.
	if code, _ := b.call(t, "GET", acmeAPI+"audiences/vip/members", globexAdmin, ""); code != 404 {
		t.Errorf("members with globex's token: %d", code)
	}
}

// waitFor polls cond every 20ms for up to 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outbox reads acme's whole outbox as "kind key user_id reason", in id
// order.
func (b *computeBundle) outbox(t *testing.T) []string {
	t.Helper()
	code, m := b.call(t, "GET", acmeAPI+"outbox?limit=500", cDebug, "")
	if code != 200 {
		t.Fatalf("outbox: %d %v", code, m)
	}
	var out []string
	for _, x := range m["data"].([]any) {
		e := x.(map[string]any)
		p := e["payload"].(map[string]any)
		props := p["properties"].(map[string]any)
		out = append(out, fmt.Sprint(e["kind"], " ", e["key"], " ", p["userId"], " ", props["reason"]))
	}
	return out
}

func TestAudiencePreview(t *testing.T) {
	t.Parallel()
	b := computeSetup(t, true)
	ctx := context.Background()
	var events []store.Event
	now := time.Now().UTC()
	for i := 1; i <= 6; i++ {
		plan := "free"
		if i%2 == 0 {
			plan = "pro"
		}
		raw := fmt.Sprintf(`{"type":"identify","userId":"u%d","traits":{"plan":%q}}`, i, plan)
		events = append(events, store.Event{Workspace: "acme", Source: "web", MessageID: fmt.Sprint("i-", i), Type: "identify", UserID: fmt.Sprint("u", i),
			Timestamp: now, ReceivedAt: now, Format: store.FormatVersion, Raw: json.RawMessage(raw)})
		if i <= 3 {
			raw := fmt.Sprintf(`{"type":"track","userId":"u%d","event":"Order Completed","properties":{"total":%d}}`, i, i*50)
			events = append(events, store.Event{Workspace: "acme", Source: "web", MessageID: fmt.Sprint("t-", i), Type: "track", Name: "Order Completed",
				UserID: fmt.Sprint("u", i), Timestamp: now, ReceivedAt: now, Format: store.FormatVersion, Raw: json.RawMessage(raw)})
		}
	}
	if _, err := b.st.Append(ctx, &store.Batch{Events: events}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// Previews read trait keys no definition maintains from the store:
	// wait until the last event's traits are committed.
	waitFor(t, "the events to be folded", func() bool {
		code, m := b.call(t, "GET", "/v1/spaces/acme/collections/users/profiles/user_id:u6/traits", cDesk, "")
		return code == 200 && m["traits"].(map[string]any)["plan"] == "pro"
	})
	var m map[string]any
	waitFor(t, "the preview", func() bool {
		var code int
		code, m = b.call(t, "POST", acmeAPI+"audiences/preview?sample=2", cDesk,
			`{"condition":"traits.plan == \"pro\" || events.count(\"Order Completed\", 30, \"properties.total >= 100\") >= 1"}`)
		if code == 503 {
			return false // the processor is starting
		}
		if code != 200 {
			t.Fatalf("preview: %d %v", code, m)
		}
		return m["evaluated"] == 6.0
	})
	// Members: u2, u4, u6 (pro) and u3 (an order of 150); u2's order is 100 too.
	sample, _ := m["sample"].([]any)
	if m["members"] != 4.0 || len(sample) != 2 || sample[0].(map[string]any)["user_id"] == "" || m["took_ms"] == nil {
		t.Fatalf("preview: %v", m)
	}
	// Bad definitions are 400 with problems; nothing is stored.
	code, m := b.call(t, "POST", acmeAPI+"audiences/preview", cDesk, `{"condition":"events.count(\"x\", 99999) > 1"}`)
	if code != 400 || errCode(m) != "invalid_definition" || m["problems"] == nil {
		t.Fatalf("bad preview: %d %v", code, m)
	}
	for _, body := range []string{`{"condition":`, `{"condition":"true","x":1}`, `[]`} {
		if code, m := b.call(t, "POST", acmeAPI+"audiences/preview", cDesk, body); code != 400 {
			t.Errorf("preview of %s: %d %v", body, code, m)
		}
	}
	if code, _ := b.call(t, "POST", acmeAPI+"audiences/preview", cDebug, `{"condition":"true"}`); code != 403 {
		t.Errorf("preview with debug: %d", code)
	}
	// globex has no folding node here: 503 not_leading.
	code, m = b.call(t, "POST", "/v1/workspaces/globex/audiences/preview", globexAdmin, `{"condition":"true"}`)
	if code != 503 || errCode(m) != "not_leading" {
		t.Fatalf("preview of a workspace not folded here: %d %v", code, m)
	}
	if defs := b.definitions(t); len(defs) != 2 {
		t.Fatalf("previews stored definitions: %q", defs)
	}
}

// TestComputeEndToEndWithSegmentClient: a windowed computed trait and an
// audience on it are created through the API, events are sent with the
// official Segment client, the profile enters the audience (outbox and
// Profile API), and when the clock moves past the window it leaves, after
// it entered, with its boolean trait false.
func TestComputeEndToEndWithSegmentClient(t *testing.T) {
	t.Parallel()
	b := computeSetup(t, true)
	code, m := b.call(t, "PUT", acmeAPI+"computed-traits/orders_today", cAdmin,
		`{"kind":"count","events":["Order Completed"],"window_days":1}`)
	if code != 201 {
		t.Fatalf("put trait: %d %v", code, m)
	}
	if bf, _ := m["backfill"].(map[string]any); bf == nil || bf["running"] == nil {
		t.Fatalf("a folding node answers the backfill's progress: %v", m)
	}
	code, m = b.call(t, "PUT", acmeAPI+"audiences/buying_today", cAdmin,
		`{"condition":"computed.orders_today >= 1 && traits.plan == \"pro\"","description":"ordered today"}`)
	if code != 201 {
		t.Fatalf("put audience: %d %v", code, m)
	}

	client, err := analytics.NewWithConfig(cWebKey, analytics.Config{Endpoint: b.srv.URL, BatchSize: 1, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []analytics.Message{
		analytics.Identify{UserId: "ada", Traits: analytics.NewTraits().SetEmail("ada@example.com").Set("plan", "pro")},
		analytics.Track{UserId: "ada", Event: "Order Completed", Properties: analytics.NewProperties().SetRevenue(42)},
		analytics.Track{UserId: "bob", Event: "Order Completed"},
	} {
		if err := client.Enqueue(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "ada to enter", func() bool {
		return slices.Contains(b.outbox(t), "audience_entered buying_today ada evaluated")
	})
	traits := func() map[string]any {
		code, m := b.call(t, "GET", "/v1/spaces/acme/collections/users/profiles/user_id:ada/traits", cDesk, "")
		if code != 200 {
			t.Fatalf("traits: %d %v", code, m)
		}
		return m["traits"].(map[string]any)
	}
	if tr := traits(); tr["buying_today"] != true || tr["orders_today"] != 1.0 || tr["plan"] != "pro" {
		t.Fatalf("ada's traits after entering: %v", tr)
	}
	code, m = b.call(t, "GET", acmeAPI+"audiences/buying_today/members", cDesk, "")
	if data, _ := m["data"].([]any); code != 200 || len(data) != 1 || data[0].(map[string]any)["user_id"] != "ada" {
		t.Fatalf("members: %d %v", code, m)
	}

	// Two days later the order has left the one-day window.
	b.clock.advance(48 * time.Hour)
	var out []string
	waitFor(t, "ada to leave", func() bool {
		out = b.outbox(t)
		return slices.Contains(out, "audience_exited buying_today ada expired")
	})
	entered := slices.Index(out, "audience_entered buying_today ada evaluated")
	exited := slices.Index(out, "audience_exited buying_today ada expired")
	if entered < 0 || exited < entered {
		t.Fatalf("outbox %q: want ada's exit after her entry", out)
	}
	if tr := traits(); tr["buying_today"] != false || tr["orders_today"] != 0.0 {
		t.Fatalf("ada's traits after leaving: %v", tr)
	}
	code, m = b.call(t, "GET", acmeAPI+"audiences/buying_today", cDebug, "")
	if code != 200 || m["members"] != 0.0 {
		t.Fatalf("audience after the exit: %d %v", code, m)
	}
}
