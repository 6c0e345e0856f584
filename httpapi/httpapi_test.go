package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/httpapi"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
	analytics "github.com/segmentio/analytics-go/v3"
)

const testConfig = `
workspaces:
  - slug: acme
    sources:
      - slug: web
        write_key: wk_web_1234567890
      - slug: shop
        write_key: wk_shop_1234567890
        allowed_origins: ["https://shop.example.com"]
      - slug: slow
        write_key: wk_slow_1234567890
        rate_limit: {events_per_second: 1, burst: 3}
    tokens:
      - name: debugger
        token: tok_debug_1234567890
        scopes: [debug]
      - name: admin
        token: tok_admin_1234567890
        scopes: [admin]
      - name: reader
        token: tok_read_1234567890
        scopes: [profiles:read]
  - slug: other
    sources:
      - slug: app
        write_key: wk_other_1234567890
    tokens:
      - name: debugger
        token: tok_other_1234567890
        scopes: [debug]
`

const (
	webKey     = "wk_web_1234567890"
	debugToken = "tok_debug_1234567890"
	adminToken = "tok_admin_1234567890"
)

// bundle is what setup builds for one test: a real SQLite store behind a
// real HTTP server.
type bundle struct {
	st      store.Store
	reg     *tenant.Registry
	gc      *store.GroupCommitter
	dir     string // the store's
	srv     *httptest.Server
	api     *httpapi.Server
	handler http.Handler // the server's, unwrapped
	// ctx is cancelled, and wg waited for, when the test ends, before the
	// store is closed: for what an option runs in the background.
	ctx context.Context
	wg  sync.WaitGroup
}

// serverSetup is what setup's options change.
type serverSetup struct {
	config string // default testConfig
	edit   func(b *bundle, o *httpapi.Options)
	wrap   func(http.Handler) http.Handler
}

// A setupOption changes the server setup builds.
type setupOption func(*serverSetup)

// withConfig loads config instead of testConfig.
func withConfig(config string) setupOption { return func(s *serverSetup) { s.config = config } }

// withOptions changes the server's Options with edit, which may start
// background work on b.wg with b.ctx.
func withOptions(edit func(b *bundle, o *httpapi.Options)) setupOption {
	return func(s *serverSetup) { s.edit = edit }
}

// withHandler serves the server's handler wrapped by wrap.
func withHandler(wrap func(http.Handler) http.Handler) setupOption {
	return func(s *serverSetup) { s.wrap = wrap }
}

// setup starts a server on a fresh SQLite store loaded with testConfig,
// or as the options say.
func setup(t testing.TB, opts ...setupOption) *bundle {
	t.Helper()
	ss := serverSetup{config: testConfig}
	for _, opt := range opts {
		opt(&ss)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &bundle{dir: t.TempDir(), ctx: ctx}
	var err error
	if b.st, err = sqlite.Open(ctx, b.dir); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(ss.config))
	if err != nil {
		t.Fatal(err)
	}
	if b.reg, _, err = tenant.Load(ctx, b.st, cfg); err != nil {
		t.Fatal(err)
	}
	b.gc = store.NewGroupCommitter(b.st, store.GroupCommitOptions{})
	o := httpapi.Options{Store: b.st, Registry: b.reg, Committer: b.gc, Limits: ingest.DefaultLimits()}
	if ss.edit != nil {
		ss.edit(b, &o)
	}
	api := httpapi.New(o)
	b.api, b.handler = api, api.Handler()
	h := b.handler
	if ss.wrap != nil {
		h = ss.wrap(h)
	}
	b.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		b.srv.Close()
		if err := api.Close(context.Background()); err != nil { // flushes the audit of reads
			t.Error(err)
		}
		cancel()
		b.wg.Wait()
		b.gc.Close()
		b.st.Close()
	})
	return b
}

// post sends body to path with the write key as HTTP Basic user (if key != "").
func (b *bundle) post(t *testing.T, path, key, body string, header ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: response is not JSON: %q", req.Method, req.URL.Path, raw)
		}
	}
	return resp.StatusCode, m, resp.Header
}

func (b *bundle) get(t *testing.T, path, token string) (int, map[string]any) {
	t.Helper()
	return b.call(t, "GET", path, token, "")
}

// call sends a request with a Bearer token (if any) and a body (if any).
func (b *bundle) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	var req *http.Request
	var err error
	if body != "" {
		req, err = http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	} else {
		req, err = http.NewRequest(method, b.srv.URL+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	code, m, _ := do(t, req)
	return code, m
}

// events reads the whole log of a workspace through the log API.
func (b *bundle) events(t *testing.T, ws string) []map[string]any {
	t.Helper()
	var all []map[string]any
	next := ""
	for {
		code, m := b.get(t, "/v1/workspaces/"+ws+"/events?limit=1000&next="+next, debugToken)
		if code != 200 {
			t.Fatalf("log API: %d %v", code, m)
		}
		for _, e := range m["data"].([]any) {
			all = append(all, e.(map[string]any))
		}
		n, _ := m["next"].(string)
		if n == "" {
			return all
		}
		next = n
	}
}

func (b *bundle) head(t *testing.T, ws string) int64 {
	t.Helper()
	h, err := b.st.Head(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestSegmentGoClient drives the server with the official Segment Go client
// for every call type and reads the events back from the log API.
func TestSegmentGoClient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	client, err := analytics.NewWithConfig(webKey, analytics.Config{
		Endpoint:  b.srv.URL,
		BatchSize: 3, // several batches
		Interval:  50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := []analytics.Message{
		analytics.Identify{UserId: "u-1", AnonymousId: "anon-1", Traits: analytics.NewTraits().SetEmail("ada@example.com").SetName("Ada")},
		analytics.Track{UserId: "u-1", Event: "Order Completed", Properties: analytics.NewProperties().SetRevenue(99.5).SetCurrency("EUR")},
		analytics.Page{UserId: "u-1", Name: "Pricing", Properties: analytics.NewProperties().SetURL("https://example.com/pricing")},
		analytics.Screen{UserId: "u-1", Name: "Home"},
		analytics.Group{UserId: "u-1", GroupId: "acct-9", Traits: analytics.NewTraits().SetName("Acme Inc")},
		analytics.Alias{PreviousId: "anon-1", UserId: "u-1"},
	}
	for _, c := range calls {
		if err := client.Enqueue(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil { // flushes and waits
		t.Fatal(err)
	}
	evs := b.events(t, "acme")
	if len(evs) != len(calls) {
		t.Fatalf("log holds %d events, want %d: %v", len(evs), len(calls), evs)
	}
	// The client sends its batches concurrently: match events by type.
	want := map[string]string{"identify": "", "track": "Order Completed", "page": "Pricing", "screen": "Home", "group": "", "alias": ""}
	byType := map[string]map[string]any{}
	for i, e := range evs {
		typ, _ := e["type"].(string)
		name, _ := e["event"].(string)
		if wantName, ok := want[typ]; !ok || name != wantName || byType[typ] != nil {
			t.Errorf("event %d: unexpected type %q name %q", i, typ, name)
		}
		byType[typ] = e
		if e["userId"] != "u-1" || e["source"] != "web" || e["position"] != float64(i+1) {
			t.Errorf("event %d: %v", i, e)
		}
		raw := e["raw"].(map[string]any)
		ctx, _ := raw["context"].(map[string]any)
		lib, _ := ctx["library"].(map[string]any)
		if lib["name"] != "analytics-go" {
			t.Errorf("event %d: context.library = %v, want analytics-go (batch context merged)", i, lib)
		}
	}
	if len(byType) != len(want) {
		t.Fatalf("got types %v", byType)
	}
	traits, _ := byType["identify"]["raw"].(map[string]any)["traits"].(map[string]any)
	if traits["email"] != "ada@example.com" {
		t.Errorf("identify traits = %v", traits)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"userId":"u","event":"E"}`))
	zw.Close()
	big := `{"userId":"u","event":"E","properties":{"x":"` + strings.Repeat("a", 600<<10) + `"}}`
	cases := []struct {
		name, path, key, body string
		header                []string
		status                int
		code                  string
	}{
		{"missing key", "/v1/track", "", `{"userId":"u","event":"E"}`, nil, 401, "missing_write_key"},
		{"wrong key", "/v1/track", "wk_nope_1234567890", `{"userId":"u","event":"E"}`, nil, 401, "invalid_write_key"},
		{"wrong key in body", "/v1/track", "", `{"writeKey":"nope","userId":"u","event":"E"}`, nil, 401, "invalid_write_key"},
		{"malformed json", "/v1/track", webKey, `{"userId":"u",`, nil, 400, "invalid_json"},
		{"not an object", "/v1/track", webKey, `[1,2]`, nil, 400, ""},
		{"empty body", "/v1/track", webKey, ``, nil, 400, ""},
		{"oversize body", "/v1/batch", webKey, big, nil, 413, "body_too_large"},
		{"track without event", "/v1/track", webKey, `{"userId":"u"}`, nil, 400, "missing_event"},
		{"no identity", "/v1/track", webKey, `{"event":"E"}`, nil, 400, "missing_identity"},
		{"alias without previousId", "/v1/alias", webKey, `{"userId":"u"}`, nil, 400, "missing_previous_id"},
		{"group without groupId", "/v1/group", webKey, `{"userId":"u"}`, nil, 400, "missing_group_id"},
		{"properties not an object", "/v1/track", webKey, `{"userId":"u","event":"E","properties":[1]}`, nil, 400, "invalid_type"},
		{"batch not an array", "/v1/batch", webKey, `{"batch":{}}`, nil, 400, ""},
		{"bad gzip", "/v1/track", webKey, `not gzip`, []string{"Content-Encoding", "gzip"}, 400, "invalid_gzip"},
		{"unknown encoding", "/v1/track", webKey, `{}`, []string{"Content-Encoding", "br"}, 415, "unsupported_encoding"},
		{"unknown call", "/v1/nope", webKey, `{}`, nil, 404, "not_found"},
		{"origin not allowed", "/v1/track", "wk_shop_1234567890", `{"userId":"u","event":"E"}`, []string{"Origin", "https://evil.example"}, 403, "origin_not_allowed"},
	}
	for _, c := range cases {
		code, m, _ := b.post(t, c.path, c.key, c.body, c.header...)
		if code != c.status {
			t.Errorf("%s: status %d, want %d (%v)", c.name, code, c.status, m)
		}
		if m == nil || errCode(m) == "" {
			t.Errorf("%s: no JSON error body: %v", c.name, m)
		} else if c.code != "" && errCode(m) != c.code {
			t.Errorf("%s: code %q, want %q", c.name, errCode(m), c.code)
		}
	}
	if h := b.head(t, "acme"); h != 0 {
		t.Fatalf("bad input stored %d events", h)
	}
	// The gzip body that is valid is accepted.
	code, m, _ := b.post(t, "/v1/track", webKey, gz.String(), "Content-Encoding", "gzip")
	if code != 200 || m["accepted"] != float64(1) {
		t.Fatalf("gzip track: %d %v", code, m)
	}
}

func TestBatchQuarantinesBadEventsAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"batch":[
		{"type":"track","userId":"u","event":"Good 1","messageId":"m1"},
		{"type":"track","userId":"u","messageId":"m2"},
		{"type":"identify","anonymousId":"a","traits":{"plan":"pro"},"messageId":"m3"}
	]}`
	code, m, _ := b.post(t, "/v1/batch", webKey, body)
	if code != 200 || m["accepted"] != float64(2) {
		t.Fatalf("batch: %d %v", code, m)
	}
	rej := m["rejected"].([]any)
	if len(rej) != 1 || rej[0].(map[string]any)["index"] != float64(1) || rej[0].(map[string]any)["code"] != "missing_event" {
		t.Fatalf("rejected = %v", rej)
	}
	if n := len(b.events(t, "acme")); n != 2 {
		t.Fatalf("log holds %d events, want 2", n)
	}
	code, q := b.get(t, "/v1/workspaces/acme/quarantine", debugToken)
	data := q["data"].([]any)
	if code != 200 || len(data) != 1 {
		t.Fatalf("quarantine: %d %v", code, q)
	}
	item := data[0].(map[string]any)
	id := fmt.Sprint(item["id"])
	if item["code"] != "missing_event" || item["messageId"] != "m2" {
		t.Fatalf("quarantined item = %v", item)
	}
	// Replaying it unchanged still fails and keeps it.
	req, _ := http.NewRequest("POST", b.srv.URL+"/v1/workspaces/acme/quarantine/"+id+"/replay", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if code, m, _ := do(t, req); code != 422 {
		t.Fatalf("replay unchanged: %d %v", code, m)
	}
	// The debug scope may not replay.
	req, _ = http.NewRequest("POST", b.srv.URL+"/v1/workspaces/acme/quarantine/"+id+"/replay", nil)
	req.Header.Set("Authorization", "Bearer "+debugToken)
	if code, _, _ := do(t, req); code != 403 {
		t.Fatalf("replay with debug scope: %d", code)
	}
	// Replaying a corrected event stores it and empties the quarantine.
	req, _ = http.NewRequest("POST", b.srv.URL+"/v1/workspaces/acme/quarantine/"+id+"/replay",
		strings.NewReader(`{"type":"track","userId":"u","event":"Fixed","messageId":"m2"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if code, m, _ := do(t, req); code != 200 || m["accepted"] != float64(1) {
		t.Fatalf("replay corrected: %d %v", code, m)
	}
	evs := b.events(t, "acme")
	if len(evs) != 3 || evs[2]["event"] != "Fixed" {
		t.Fatalf("after replay: %v", evs)
	}
	if code, q := b.get(t, "/v1/workspaces/acme/quarantine/"+id, debugToken); code != 404 {
		t.Fatalf("quarantined item after replay: %d %v", code, q)
	}
}

func TestMessageIDDedup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"userId":"u","event":"E","messageId":"dup-1"}`
	for i := range 3 {
		code, m, _ := b.post(t, "/v1/track", webKey, body)
		if code != 200 {
			t.Fatalf("try %d: %d %v", i, code, m)
		}
		if i > 0 && m["duplicates"] != float64(1) {
			t.Fatalf("retry %d not reported as duplicate: %v", i, m)
		}
	}
	if h := b.head(t, "acme"); h != 1 {
		t.Fatalf("stored %d events, want 1", h)
	}
}

func TestClockSkewCorrection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The client's clock is one hour fast: sentAt - originalTimestamp = 10s.
	now := time.Now().UTC()
	sent := now.Add(time.Hour)
	orig := sent.Add(-10 * time.Second)
	body := fmt.Sprintf(`{"batch":[{"type":"track","userId":"u","event":"E","originalTimestamp":%q}],"sentAt":%q}`,
		orig.Format(time.RFC3339Nano), sent.Format(time.RFC3339Nano))
	if code, m, _ := b.post(t, "/v1/batch", webKey, body); code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	e := b.events(t, "acme")[0]
	ts, _ := time.Parse(time.RFC3339Nano, e["timestamp"].(string))
	rx, _ := time.Parse(time.RFC3339Nano, e["receivedAt"].(string))
	if d := rx.Sub(ts); d < 9*time.Second || d > 11*time.Second {
		t.Fatalf("timestamp %v is %v before receivedAt %v, want 10s", ts, d, rx)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	batch := `{"batch":[{"type":"track","userId":"u","event":"E"},{"type":"track","userId":"u","event":"E"},{"type":"track","userId":"u","event":"E"},{"type":"track","userId":"u","event":"E"}]}`
	// A batch larger than the burst passes when the bucket is full and
	// leaves it in debt; the next request is refused.
	if code, m, _ := b.post(t, "/v1/batch", "wk_slow_1234567890", batch); code != 200 {
		t.Fatalf("first batch: %d %v", code, m)
	}
	code, m, h := b.post(t, "/v1/batch", "wk_slow_1234567890", batch)
	if code != 429 || errCode(m) != "rate_limited" || h.Get("Retry-After") == "" {
		t.Fatalf("over the burst: %d %v Retry-After=%q", code, m, h.Get("Retry-After"))
	}
	if h := b.head(t, "acme"); h != 4 {
		t.Fatalf("log holds %d events, want the first batch's 4", h)
	}
}

func TestBrowserStyleRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Preflight from another origin.
	req, _ := http.NewRequest("OPTIONS", b.srv.URL+"/v1/t", nil)
	req.Header.Set("Origin", "https://shop.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	code, _, h := do(t, req)
	if code != 204 || h.Get("Access-Control-Allow-Origin") != "https://shop.example.com" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", code, h)
	}
	// analytics-next: text/plain body with the writeKey inside, short path.
	req, _ = http.NewRequest("POST", b.srv.URL+"/v1/t", strings.NewReader(
		`{"writeKey":"wk_shop_1234567890","type":"track","event":"Clicked","anonymousId":"a-1","sentAt":"2026-01-01T00:00:00.000Z","timestamp":"2026-01-01T00:00:00.000Z"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Origin", "https://shop.example.com")
	req.Header.Set("Sec-GPC", "1")
	code, m, h := do(t, req)
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "https://shop.example.com" {
		t.Fatalf("beacon: %d %v %v", code, m, h)
	}
	e := b.events(t, "acme")[0]
	sig := e["signals"].(map[string]any)
	if sig["gpc"] != true || sig["origin"] != "https://shop.example.com" || e["source"] != "shop" {
		t.Fatalf("event = %v", e)
	}
	// The settings document points the library back at this server.
	code, doc := b.get(t, "/v1/projects/wk_shop_1234567890/settings", "")
	seg := doc["integrations"].(map[string]any)["Segment.io"].(map[string]any)
	if code != 200 || seg["apiHost"] != strings.TrimPrefix(b.srv.URL, "http://")+"/v1" || seg["protocol"] != "http" {
		t.Fatalf("settings: %d %v", code, doc)
	}
	if code, _ := b.get(t, "/v1/projects/wk_unknown_123456/settings", ""); code != 404 {
		t.Fatalf("settings for an unknown key: %d", code)
	}
}

func TestLogAPIAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		token string
		path  string
		want  int
	}{
		{"", "/v1/workspaces/acme/events", 401},
		{"tok_wrong_1234567890", "/v1/workspaces/acme/events", 401},
		{"tok_read_1234567890", "/v1/workspaces/acme/events", 403},  // lacks debug
		{"tok_other_1234567890", "/v1/workspaces/acme/events", 404}, // another workspace: as if it did not exist
		{debugToken, "/v1/workspaces/nope/events", 404},
		{debugToken, "/v1/workspaces/acme/events", 200},
		{adminToken, "/v1/workspaces/acme/events", 200},
		{debugToken, "/v1/workspaces/acme/events?limit=0", 400},
		{debugToken, "/v1/workspaces/acme/events?limit=abc", 400},
		{debugToken, "/v1/workspaces/acme/events?next=-3", 400},
		{debugToken, "/v1/workspaces/acme/events?since=yesterday", 400},
		{debugToken, "/v1/workspaces/acme/events?order=up", 400},
		{debugToken, "/v1/workspaces/acme/quarantine/abc", 400},
		{debugToken, "/v1/workspaces/acme/quarantine/99", 404},
	}
	for _, c := range cases {
		code, m := b.get(t, c.path, c.token)
		if code != c.want {
			t.Errorf("%s with %q: %d, want %d (%v)", c.path, c.token, code, c.want, m)
		}
		if code != 200 && errCode(m) == "" {
			t.Errorf("%s with %q: no JSON error: %v", c.path, c.token, m)
		}
	}
}

func TestLogFiltersAndPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var batch []string
	for i := range 25 {
		batch = append(batch, fmt.Sprintf(`{"type":"track","userId":"u%d","event":"E%d"}`, i%3, i%2))
	}
	if code, m, _ := b.post(t, "/v1/batch", webKey, `{"batch":[`+strings.Join(batch, ",")+`]}`); code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	code, m := b.get(t, "/v1/workspaces/acme/events?user_id=u1&event=E1&limit=2", debugToken)
	if code != 200 || len(m["data"].([]any)) != 2 || m["next"] == nil {
		t.Fatalf("filtered page: %d %v", code, m)
	}
	code, m = b.get(t, "/v1/workspaces/acme/events?user_id=u1&event=E1&limit=100&next="+m["next"].(string), debugToken)
	// u1 & E1: i%3==1 && i%2==1 → i in {1,7,13,19}: 4 in all, 2 on the first page.
	if code != 200 || len(m["data"].([]any)) != 2 {
		t.Fatalf("second page: %d %v", code, m)
	}
	code, m = b.get(t, "/v1/workspaces/acme/events?order=desc&limit=1", debugToken)
	if code != 200 || m["data"].([]any)[0].(map[string]any)["position"] != float64(25) {
		t.Fatalf("newest first: %d %v", code, m)
	}
}

func TestLiveStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/v1/workspaces/acme/events/stream?type=track", nil)
	req.Header.Set("Authorization", "Bearer "+debugToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q", line)
	}
	b.post(t, "/v1/identify", webKey, `{"userId":"u","traits":{}}`)
	b.post(t, "/v1/track", webKey, `{"userId":"u","event":"Live"}`)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var e map[string]any
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatal(err)
			}
			if e["type"] != "track" || e["event"] != "Live" || e["position"] != float64(2) {
				t.Fatalf("streamed %v", e)
			}
			return
		}
	}
}

func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.post(t, "/v1/track", webKey, `{"userId":"u","event":"E"}`)
	b.post(t, "/v1/track", webKey, `{"userId":"u"`)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, m := b.get(t, p, ""); code != 200 {
			t.Errorf("%s: %d %v", p, code, m)
		}
	}
	resp, err := http.Get(b.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`kith_events_accepted_total{source="web",workspace="acme"} 1`,
		`kith_requests_rejected_total{reason="invalid_json"} 1`,
		`kith_store_fsyncs_total`,
		`kith_http_request_duration_seconds_bucket`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
