package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	"github.com/segmentio/analytics-go/v3"
)

const readToken = "tok_read_1234567890"

// fold folds a workspace's log into profiles, as kith serve does in the
// background.
func (b *bundle) fold(t testing.TB, ws string) {
	t.Helper()
	rules, err := identity.DefaultRules().Compile()
	if err != nil {
		t.Fatal(err)
	}
	p := process.New(process.Options{Store: b.st, Owner: "test", Rules: func(string) (*identity.Compiled, error) { return rules, nil }})
	if err := p.CatchUp(context.Background(), ws, nil); err != nil {
		t.Fatal(err)
	}
}

// profileGet reads a Profile API path with the token as the HTTP Basic
// user name, as Segment's Profile API clients send it.
func (b *bundle) profileGet(t *testing.T, path, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.SetBasicAuth(token, "")
	}
	code, m, _ := do(t, req)
	return code, m
}

const users = "/v1/spaces/acme/collections/users/profiles/"

// str renders a JSON string field, "" when absent.
func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// TestProfileAPIWithSegmentClient: an anonymous visitor browses on two
// devices with the official Segment Go client, identifies, and aliases
// the second device; the Profile API answers one profile with all events,
// identifiers and traits, whichever identifier it is asked by.
func TestProfileAPIWithSegmentClient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	client, err := analytics.NewWithConfig(webKey, analytics.Config{Endpoint: b.srv.URL, BatchSize: 2, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	calls := []analytics.Message{
		analytics.Page{AnonymousId: "anon-7", Name: "Home"},
		analytics.Page{AnonymousId: "anon-7", Name: "Pricing"},
		analytics.Track{AnonymousId: "anon-7", Event: "Signup Started"},
		analytics.Identify{AnonymousId: "anon-7", UserId: "u-7", Traits: analytics.NewTraits().SetEmail("Grace@Example.com").SetName("Grace Hopper")},
		analytics.Page{AnonymousId: "anon-8", Name: "Docs"},
		analytics.Alias{PreviousId: "anon-8", UserId: "u-7"},
		analytics.Group{UserId: "u-7", GroupId: "navy", Traits: analytics.NewTraits().SetName("US Navy")},
	}
	for _, c := range calls {
		if err := client.Enqueue(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	b.fold(t, "acme")

	code, m := b.profileGet(t, users+"user_id:u-7/traits", readToken)
	traits, _ := m["traits"].(map[string]any)
	if code != 200 || traits["email"] != "Grace@Example.com" || traits["name"] != "Grace Hopper" {
		t.Fatalf("traits: %d %v", code, m)
	}
	code, m = b.profileGet(t, users+"user_id:u-7/external_ids?limit=200", readToken)
	var ids []string
	for _, x := range m["data"].([]any) {
		e := x.(map[string]any)
		ids = append(ids, fmt.Sprint(e["type"], ":", e["id"]))
	}
	slices.Sort(ids)
	if want := []string{"anonymous_id:anon-7", "anonymous_id:anon-8", "email:grace@example.com", "user_id:u-7"}; code != 200 || !slices.Equal(ids, want) {
		t.Fatalf("external_ids: %d %v, want %v", code, ids, want)
	}
	code, m = b.profileGet(t, users+"anonymous_id:anon-8/events?limit=200", readToken)
	var kinds []string
	last := float64(1 << 62)
	for _, x := range m["data"].([]any) {
		e := x.(map[string]any)
		kinds = append(kinds, fmt.Sprint(e["type"], "/", str(e["event"]), str(e["name"])))
		if pos := e["position"].(float64); pos >= last {
			t.Errorf("events not newest first: position %v after %v", pos, last)
		} else {
			last = pos
		}
	}
	slices.Sort(kinds)
	// The client sends batches concurrently, so arrival order may differ
	// from call order.
	want := []string{"alias/", "group/", "identify/", "page/Docs", "page/Home", "page/Pricing", "track/Signup Started"}
	if code != 200 || !slices.Equal(kinds, want) {
		t.Fatalf("events: %d %v, want %v", code, kinds, want)
	}
	// Every identifier finds the same profile; emails are matched as the
	// identity rules normalize them.
	var kithIDs []any
	for _, ref := range []string{"user_id:u-7", "anonymous_id:anon-7", "anonymous_id:anon-8", "email:" + url.PathEscape(" GRACE@example.com")} {
		code, m := b.profileGet(t, users+ref+"/metadata", readToken)
		if code != 200 {
			t.Fatalf("metadata of %s: %d %v", ref, code, m)
		}
		md := m["metadata"].(map[string]any)
		kithIDs = append(kithIDs, md["kith_id"])
		if md["events"] != float64(len(calls)) {
			t.Errorf("metadata of %s: %v events, want %d", ref, md["events"], len(calls))
		}
	}
	if len(slices.Compact(slices.Clone(kithIDs))) != 1 {
		t.Fatalf("identifiers resolve to different profiles: %v", kithIDs)
	}
	code, m = b.profileGet(t, users+"user_id:u-7/links", readToken)
	links := m["data"].([]any)
	if code != 200 || len(links) != 1 || links[0].(map[string]any)["to_collection"] != "accounts" {
		t.Fatalf("links: %d %v", code, m)
	}
	code, m = b.profileGet(t, "/v1/spaces/acme/collections/accounts/profiles/group_id:navy/traits", readToken)
	if code != 200 || m["traits"].(map[string]any)["name"] != "US Navy" {
		t.Fatalf("account traits: %d %v", code, m)
	}
}

func TestProfileAPIPagingAndSearch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var batch string
	for i := range 25 {
		if i > 0 {
			batch += ","
		}
		batch += fmt.Sprintf(`{"type":"identify","userId":"p%d","traits":{"name":"Person %d","email":"p%d@example.com","tier":%d,"a%02d":true}}`, i, i, i, i%3, i)
	}
	for i := range 12 {
		batch += fmt.Sprintf(`,{"type":"track","userId":"p0","event":"E%d"}`, i)
	}
	if code, m, _ := b.post(t, "/v1/batch", webKey, `{"batch":[`+batch+`]}`); code != 200 {
		t.Fatalf("batch: %d %v", code, m)
	}
	b.fold(t, "acme")

	// Traits page by key; events page by position, newest first.
	var keys []string
	next := ""
	for page := 0; page < 10; page++ {
		code, m := b.profileGet(t, users+"user_id:p0/traits?limit=2&next="+next, readToken)
		if code != 200 {
			t.Fatalf("traits page: %d %v", code, m)
		}
		for k := range m["traits"].(map[string]any) {
			keys = append(keys, k)
		}
		c := m["cursor"].(map[string]any)
		if c["has_more"] != true {
			break
		}
		next = c["next"].(string)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"a00", "email", "name", "tier"}) {
		t.Errorf("paged traits %v", keys)
	}
	if code, m := b.profileGet(t, users+"user_id:p0/traits?include=name,tier", readToken); code != 200 || len(m["traits"].(map[string]any)) != 2 {
		t.Errorf("include: %d %v", code, m)
	}
	if code, m := b.profileGet(t, users+"user_id:p0/traits?verbose=true&include=name", readToken); code != 200 ||
		m["traits"].(map[string]any)["name"].(map[string]any)["source"] != "web" {
		t.Errorf("verbose: %d %v", code, m)
	}
	seen := 0
	next = ""
	for {
		code, m := b.profileGet(t, users+"user_id:p0/events?limit=5&next="+next, readToken)
		if code != 200 {
			t.Fatalf("events page: %d %v", code, m)
		}
		seen += len(m["data"].([]any))
		c := m["cursor"].(map[string]any)
		if c["has_more"] != true {
			break
		}
		next = c["next"].(string)
	}
	if seen != 13 {
		t.Errorf("paged %d events, want 13", seen)
	}
	if code, m := b.profileGet(t, users+"user_id:p0/traits/name/history", readToken); code != 200 || len(m["data"].([]any)) != 1 {
		t.Errorf("history: %d %v", code, m)
	}

	search := "/v1/spaces/acme/collections/users/search?"
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"identifier=email:P3@Example.com", 1},
		{"trait=tier:1", 8},
		{"trait=name:Person%204", 1},
		{"trait_prefix=email:p1", 11},
		{"q=person", 25},
		{"q=p2", 6},
		{"identifier=user_id:nobody", 0},
	} {
		total := 0
		next := ""
		for {
			code, m := b.profileGet(t, search+tt.query+"&limit=4&next="+next, readToken)
			if code != 200 {
				t.Fatalf("%s: %d %v", tt.query, code, m)
			}
			total += len(m["data"].([]any))
			c := m["cursor"].(map[string]any)
			if c["has_more"] != true {
				break
			}
			next = c["next"].(string)
		}
		if total != tt.want {
			t.Errorf("search %s: %d profiles, want %d", tt.query, total, tt.want)
		}
	}
}

func TestProfileAPIBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, m, _ := b.post(t, "/v1/identify", webKey, `{"userId":"u1","traits":{"name":"A"}}`); code != 200 {
		t.Fatalf("identify: %d %v", code, m)
	}
	b.fold(t, "acme")
	for _, tt := range []struct {
		name, path, token string
		code              int
		errCode           string
	}{
		{"no token", users + "user_id:u1/traits", "", 401, "missing_token"},
		{"wrong token", users + "user_id:u1/traits", "tok_nope_1234567890", 401, "invalid_token"},
		{"wrong scope", users + "user_id:u1/traits", debugToken, 403, "forbidden"},
		{"other workspace", "/v1/spaces/other/collections/users/profiles/user_id:u1/traits", readToken, 404, "workspace_not_found"},
		{"no type", users + "u1/traits", readToken, 400, "invalid_profile_id"},
		{"empty value", users + "user_id:/traits", readToken, 400, "invalid_profile_id"},
		{"bad kith id", users + "kith_id:x/traits", readToken, 400, "invalid_profile_id"},
		{"unknown profile", users + "user_id:u2/traits", readToken, 404, "profile_not_found"},
		{"unknown kith id", users + "kith_id:999/traits", readToken, 404, "profile_not_found"},
		{"user as account", "/v1/spaces/acme/collections/accounts/profiles/user_id:u1/traits", readToken, 404, "profile_not_found"},
		{"unknown collection", "/v1/spaces/acme/collections/people/profiles/user_id:u1/traits", readToken, 404, "unknown_collection"},
		{"limit zero", users + "user_id:u1/traits?limit=0", readToken, 400, "invalid_limit"},
		{"limit huge", users + "user_id:u1/events?limit=201", readToken, 400, "invalid_limit"},
		{"limit text", users + "user_id:u1/events?limit=ten", readToken, 400, "invalid_limit"},
		{"bad events cursor", users + "user_id:u1/events?next=abc", readToken, 400, "invalid_cursor"},
		{"bad external_ids cursor", users + "user_id:u1/external_ids?next=zz:top", readToken, 400, "invalid_cursor"},
		{"unknown section", users + "user_id:u1/friends", readToken, 404, "not_found"},
		{"search without mode", "/v1/spaces/acme/collections/users/search", readToken, 400, "invalid_search"},
		{"search two modes", "/v1/spaces/acme/collections/users/search?q=a&trait=name:A", readToken, 400, "invalid_search"},
		{"search bad trait", "/v1/spaces/acme/collections/users/search?trait=name", readToken, 400, "invalid_search"},
		{"search empty text", "/v1/spaces/acme/collections/users/search?q=%20", readToken, 400, "invalid_search"},
		{"search bad cursor", "/v1/spaces/acme/collections/users/search?q=a&next=-1", readToken, 400, "invalid_cursor"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, m := b.profileGet(t, tt.path, tt.token)
			if code != tt.code || errCode(m) != tt.errCode {
				t.Errorf("got %d %v, want %d %s", code, m, tt.code, tt.errCode)
			}
		})
	}
}

// BenchmarkProfileTraits reads a profile's traits over HTTP from a
// workspace of 20,000 profiles.
func BenchmarkProfileTraits(b *testing.B) {
	bb := setup(b)
	const n = 20000
	for i := 0; i < n; i += 500 {
		batch := ""
		for j := i; j < i+500; j++ {
			if j > i {
				batch += ","
			}
			batch += fmt.Sprintf(`{"type":"identify","userId":"u%d","anonymousId":"a%d","traits":{"name":"Person %d","email":"p%d@example.com","plan":"pro"}}`, j, j, j, j)
		}
		req, _ := http.NewRequest("POST", bb.srv.URL+"/v1/batch", strings.NewReader(`{"batch":[`+batch+`]}`))
		req.SetBasicAuth(webKey, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	bb.fold(b, "acme")
	client := &http.Client{}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s%suser_id:u%d/traits", bb.srv.URL, users, i%n), nil)
		req.SetBasicAuth(readToken, "")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		i += 7919
	}
}

func TestIdentityCorrections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, m, _ := b.post(t, "/v1/batch", webKey, `{"batch":[
		{"type":"identify","userId":"u1","traits":{"email":"shared@example.com"}},
		{"type":"identify","anonymousId":"a2","traits":{"email":"shared@example.com"}}]}`); code != 200 {
		t.Fatalf("batch: %d %v", code, m)
	}
	b.fold(t, "acme")
	post := func(path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		code, m, _ := do(t, req)
		return code, m
	}
	const block = "/v1/workspaces/acme/identity/block"
	for _, tt := range []struct {
		name, path, token, body string
		code                    int
		errCode                 string
	}{
		{"read token", block, readToken, `{"identifier":"email:shared@example.com"}`, 403, "forbidden"},
		{"unknown action", "/v1/workspaces/acme/identity/merge", adminToken, `{"identifier":"email:x@y.z"}`, 404, "unknown_action"},
		{"not json", block, adminToken, `email:x`, 400, "invalid_json"},
		{"no type", block, adminToken, `{"identifier":"shared"}`, 400, "invalid_profile_id"},
		{"kith id", block, adminToken, `{"identifier":"kith_id:1"}`, 400, "invalid_identifier"},
		{"not an email", block, adminToken, `{"identifier":"email:nope"}`, 400, "invalid_identifier"},
	} {
		if code, m := post(tt.path, tt.token, tt.body); code != tt.code || errCode(m) != tt.errCode {
			t.Errorf("%s: %d %v, want %d %s", tt.name, code, m, tt.code, tt.errCode)
		}
	}
	head := b.head(t, "acme")
	code, m := post(block, adminToken, `{"identifier":"email: Shared@Example.com "}`)
	if code != 200 || m["identifier"] != "email:shared@example.com" || m["position"] != float64(head+1) {
		t.Fatalf("block: %d %v", code, m)
	}
	b.fold(t, "acme")
	_, m1 := b.profileGet(t, users+"user_id:u1/metadata", readToken)
	_, m2 := b.profileGet(t, users+"anonymous_id:a2/metadata", readToken)
	if m1["metadata"].(map[string]any)["kith_id"] == m2["metadata"].(map[string]any)["kith_id"] {
		t.Fatal("blocking the shared email did not split the profile")
	}
	code, m = b.get(t, "/v1/workspaces/acme/identity/decisions", debugToken)
	if code != 200 || len(m["data"].([]any)) == 0 || m["data"].([]any)[0].(map[string]any)["code"] != "admin_block" {
		t.Fatalf("decisions: %d %v", code, m)
	}
}

func TestUnmergeAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, m, _ := b.post(t, "/v1/batch", webKey, `{"batch":[
		{"type":"identify","userId":"u1","anonymousId":"a1"},
		{"type":"page","anonymousId":"a2"},
		{"type":"identify","userId":"u1","anonymousId":"a2"}]}`); code != 200 {
		t.Fatalf("batch: %d %v", code, m)
	}
	b.fold(t, "acme")
	_, md := b.profileGet(t, users+"user_id:u1/metadata", readToken)
	merged := md["metadata"].(map[string]any)["merged_from"].([]any)
	if len(merged) != 1 {
		t.Fatalf("merged_from %v", merged)
	}
	into, from := md["metadata"].(map[string]any)["kith_id"], merged[0].(map[string]any)["kith_id"]
	post := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", b.srv.URL+"/v1/workspaces/acme/identity/unmerge", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		code, m, _ := do(t, req)
		return code, m
	}
	for body, want := range map[string]string{
		`{"kith_id": 1}`:                                       "invalid_json",
		`{"kith_id": "x", "from": 2}`:                          "invalid_json",
		`{"kith_id": 1, "from": 99}`:                           "merge_not_found",
		fmt.Sprintf(`{"kith_id": %v, "from": %v}`, from, into): "merge_not_found",
	} {
		if code, m := post(body); code/100 != 4 || errCode(m) != want {
			t.Errorf("%s: %d %v, want %s", body, code, m, want)
		}
	}
	if code, m := post(fmt.Sprintf(`{"kith_id": %v, "from": %v}`, into, from)); code != 200 || m["action"] != "unmerge" {
		t.Fatalf("unmerge: %d %v", code, m)
	}
	b.fold(t, "acme")
	_, md = b.profileGet(t, users+"anonymous_id:a2/metadata", readToken)
	if md["metadata"].(map[string]any)["kith_id"] != from {
		t.Fatalf("a2 after unmerge: %v, want profile %v back", md, from)
	}
}

func TestIdentityRulesAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, m := b.get(t, "/v1/workspaces/acme/identity/rules", debugToken)
	if code != 200 || m["max_merges"] != float64(100) || m["limits"].(map[string]any)["user_id"].(map[string]any)["max"] != float64(1) {
		t.Fatalf("rules: %d %v", code, m)
	}
	if code, m := b.get(t, "/v1/workspaces/acme/identity/rules", readToken); code != 403 {
		t.Fatalf("rules with a profiles:read token: %d %v", code, m)
	}
	if m["origin"] != "config" {
		t.Errorf("origin %v, want config", m["origin"])
	}
	put := func(method, body, token string) (int, map[string]any) {
		req, _ := http.NewRequest(method, b.srv.URL+"/v1/workspaces/acme/identity/rules", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		code, m, _ := do(t, req)
		return code, m
	}
	// Bad input: nothing stored.
	for body, want := range map[string]string{
		`{"priority":["user_id"],"surprise":1}`: "invalid_json",
		`[1,2]`:                                 "invalid_json",
		`{"default_limit":{"max":5},"blocked_patterns":["(unclosed"]}`: "invalid_rules",
		`{"default_limit":{"max":0}}`:                                  "invalid_rules",
	} {
		if code, m := put("PUT", body, adminToken); code != 400 || errCode(m) != want {
			t.Errorf("PUT %s: %d %v, want 400 %s", body, code, m, want)
		}
	}
	if code, _ := put("PUT", `{"default_limit":{"max":5}}`, debugToken); code != 403 {
		t.Errorf("PUT with a debug token: %d, want 403", code)
	}
	if _, m := b.get(t, "/v1/workspaces/acme/identity/rules", debugToken); m["origin"] != "config" {
		t.Fatalf("after refused PUTs: %v", m)
	}
	// Rules set through the API block a value from the next event on.
	rules := `{"priority":["user_id","email"],"limits":{"user_id":{"max":1}},"default_limit":{"max":5},
		"blocked":["test-user"],"max_identifiers":1000,"max_merges":100}`
	code, m = put("PUT", rules, adminToken)
	if code != 200 || m["origin"] != "api" || !strings.Contains(fmt.Sprint(m["applies"]), "kith replay") {
		t.Fatalf("PUT: %d %v", code, m)
	}
	if _, m := b.get(t, "/v1/workspaces/acme/identity/rules", debugToken); m["origin"] != "api" || fmt.Sprint(m["blocked"]) != "[test-user]" {
		t.Fatalf("GET after PUT: %v", m)
	}
	if code, m, _ := b.post(t, "/v1/identify", webKey, `{"userId":"test-user","traits":{"email":"t@example.com"}}`); code != 200 {
		t.Fatalf("identify: %d %v", code, m)
	}
	b.fold(t, "acme")
	if _, err := b.st.Lookup(context.Background(), "acme", store.Identifier{Type: "user_id", Value: "test-user"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user_id:test-user is held (%v): the API's blocked value was not applied", err)
	}
	if code, _ := put("DELETE", "", adminToken); code != 204 {
		t.Fatalf("DELETE: %d", code)
	}
	if code, m := put("DELETE", "", adminToken); code != 404 {
		t.Errorf("DELETE again: %d %v", code, m)
	}
	if _, m := b.get(t, "/v1/workspaces/acme/identity/rules", debugToken); m["origin"] != "config" {
		t.Errorf("after DELETE: %v", m)
	}
}

// TestDecisionsPaging: pages of decisions never split one event's.
func TestDecisionsPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	batch := ""
	for i := range 5 {
		if i > 0 {
			batch += ","
		}
		// Three blocked values per event: three decisions at one position.
		batch += fmt.Sprintf(`{"type":"identify","userId":"0","anonymousId":"null","traits":{"email":"nope%d"}}`, i)
	}
	if code, m, _ := b.post(t, "/v1/batch", webKey, `{"batch":[`+batch+`]}`); code != 200 {
		t.Fatalf("batch: %d %v", code, m)
	}
	b.fold(t, "acme")
	seen, next := 0, ""
	for range 20 {
		code, m := b.get(t, "/v1/workspaces/acme/identity/decisions?limit=4&next="+next, debugToken)
		if code != 200 {
			t.Fatalf("decisions: %d %v", code, m)
		}
		seen += len(m["data"].([]any))
		if next, _ = m["next"].(string); next == "" {
			break
		}
	}
	if seen != 15 {
		t.Fatalf("paged %d decisions, want 15", seen)
	}
}
