package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/destination/webhook"
	"github.com/kithcdp/kith/egress"
	"github.com/kithcdp/kith/httpapi"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
	analytics "github.com/segmentio/analytics-go/v3"
)

// The admin API of destinations, over a real SQLite store: definitions
// (with the config file's, which the API may not change), secrets that
// never leave sealed, status, dead letters, replays, the ledger, and an
// end-to-end run — the official Segment client sends, a webhook receiver
// checks the signatures — with a running delivery engine.

const (
	dWebKey   = "wk_dweb_1234567890"
	dAdmin    = "tok_dops_1234567890"
	dDebug    = "tok_ddebug_1234567890"
	dDesk     = "tok_ddesk_1234567890"
	dGlobex   = "tok_dglobex_1234567890"
	dAPI      = "/v1/workspaces/acme/destinations"
	natsToken = "nats-token-never-shown-1"
	// The Standard Webhooks specification's example secret, and another.
	hookSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hookSecret2 = "whsec_QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD"
)

const destinationConfig = `
workspaces:
  - slug: acme
    sources:
      - {slug: web, write_key: wk_dweb_1234567890}
    tokens:
      - {name: ops, token: tok_dops_1234567890, scopes: [admin]}
      - {name: debugger, token: tok_ddebug_1234567890, scopes: [debug]}
      - {name: desk, token: tok_ddesk_1234567890, scopes: [profiles:read]}
    destinations:
      - name: audit
        type: nats
        events: {types: [track]}
        strictly_necessary: true
        config: {url: "nats://127.0.0.1:4222", subject: kith.acme.audit, token: nats-token-never-shown-1}
  - slug: globex
    sources:
      - {slug: app, write_key: wk_dglobex_1234567890}
    tokens:
      - {name: ops, token: tok_dglobex_1234567890, scopes: [admin]}
`

type destBundle struct {
	st  store.Store
	reg *tenant.Registry
	dir string
	srv *httptest.Server
}

// destSetup starts a server on a fresh SQLite store loaded with
// destinationConfig; with deliver, a processor folds acme and a delivery
// engine delivers its destinations, reaching loopback receivers (what
// kith serve --egress-allow=127.0.0.1 does).
func destSetup(t *testing.T, deliver bool) *destBundle {
	t.Helper()
	b := setup(t, withConfig(destinationConfig), withOptions(func(b *bundle, o *httpapi.Options) {
		if !deliver {
			return
		}
		rules := defaultRules(t)
		quiet := slog.New(slog.DiscardHandler)
		p := process.New(process.Options{
			Store: b.st, Owner: "test", Rules: rules,
			Wake: b.gc.Committed, Poll: 20 * time.Millisecond, Coalesce: 5 * time.Millisecond,
			DefinitionsPoll: 50 * time.Millisecond, Logger: quiet,
		})
		client := egress.New(egress.Options{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		e := delivery.New(delivery.Options{
			Store: b.st, Owner: "test", Logger: quiet,
			Senders: func(ws string, d delivery.Definition) (destination.Sender, error) {
				cfg, err := b.reg.OpenDestination(ws, d)
				if err != nil {
					return nil, err
				}
				if d.Type != delivery.TypeWebhook {
					return nil, fmt.Errorf("type %s is not run in this test", d.Type)
				}
				return webhook.New(cfg, client)
			},
			Rules:           rules,
			Poll:            20 * time.Millisecond,
			DefinitionsPoll: 50 * time.Millisecond,
			LeaseTTL:        3 * time.Second,
		})
		o.Delivery = e
		b.wg.Go(func() { p.Run(b.ctx, []string{"acme"}) })
		b.wg.Go(func() { e.Run(b.ctx, []string{"acme"}) })
	}))
	return &destBundle{st: b.st, reg: b.reg, dir: b.dir, srv: b.srv}
}

func (b *destBundle) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, s := range []string{hookSecret, hookSecret2, natsToken, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "kith:v1:", "Bearer hdr-secret"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("%s %s answered a secret (%q): %s", method, path, s, raw)
		}
	}
	if resp.StatusCode >= 500 {
		t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, m
}

// storedBodies reads every destination body from the definitions table
// itself.
func (b *destBundle) storedBodies(t *testing.T) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var bodies sql.NullString
	if err := db.QueryRow(`SELECT group_concat(body, ' ') FROM definitions WHERE kind = 'destination'`).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	return bodies.String
}

func hookBody(url, secret string, extra string) string {
	return `{"type":"webhook","events":{"types":["track","identify"]},"strictly_necessary":true` + extra +
		`,"config":{"url":"` + url + `","allow_http":true,"secrets":["` + secret + `"],"headers":{"Authorization":"Bearer hdr-secret-9"}}}`
}

func TestDestinationAPI(t *testing.T) {
	t.Parallel()
	b := destSetup(t, false)
	ctx := context.Background()

	// The config file's destination, its token redacted; the consent
	// setting shown with the list.
	code, m := b.call(t, "GET", dAPI, dDebug, "")
	data, _ := m["data"].([]any)
	if code != 200 || len(data) != 1 {
		t.Fatalf("list: %d %v", code, m)
	}
	audit := data[0].(map[string]any)
	cfg := audit["definition"].(map[string]any)["config"].(map[string]any)
	if audit["origin"] != "config" || audit["status"] != "active" || audit["started"] != false || !strings.HasPrefix(cfg["token"].(string), "…") {
		t.Fatalf("audit: %v", audit)
	}
	if c := m["consent"].(map[string]any); c["deliver_without_consent"] != false || c["meaning"] == "" {
		t.Fatalf("consent: %v", c)
	}

	// Create a webhook: 201, secrets redacted, sealed in the table.
	code, m = b.call(t, "PUT", dAPI+"/hook", dAdmin, hookBody("https://hooks.example.com/k", hookSecret, ""))
	if code != 201 || m["version"] != 1.0 || m["origin"] != "api" || m["status"] != "active" {
		t.Fatalf("put hook: %d %v", code, m)
	}
	hc := m["definition"].(map[string]any)["config"].(map[string]any)
	fp := hc["secrets"].([]any)[0].(string)
	if !strings.HasPrefix(fp, "…") || len(fp) != len("…")+8 || !strings.HasPrefix(hc["headers"].(map[string]any)["Authorization"].(string), "…") {
		t.Fatalf("hook config answered: %v", hc)
	}
	stored := b.storedBodies(t)
	for _, s := range []string{hookSecret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", natsToken, "hdr-secret-9"} {
		if strings.Contains(stored, s) {
			t.Errorf("the definitions table holds %q: %s", s, stored)
		}
	}
	// The same again: 200, version 1. The redacted secret sent back keeps
	// the stored one; a changed batch is version 2.
	if code, m = b.call(t, "PUT", dAPI+"/hook", dAdmin, hookBody("https://hooks.example.com/k", hookSecret, "")); code != 200 || m["version"] != 1.0 {
		t.Fatalf("put hook again: %d %v", code, m)
	}
	code, m = b.call(t, "PUT", dAPI+"/hook", dAdmin, `{"type":"webhook","events":{"types":["track","identify"]},"strictly_necessary":true,
		"config":{"url":"https://hooks.example.com/k","secrets":["`+fp+`"],"batch":5,"headers":{"Authorization":"`+hc["headers"].(map[string]any)["Authorization"].(string)+`"}}}`)
	if code != 200 || m["version"] != 2.0 {
		t.Fatalf("put hook with the redacted secret: %d %v", code, m)
	}
	defs, _ := b.st.Definitions(ctx, "acme")
	var hook delivery.Definition
	for _, d := range defs {
		if d.Name == "hook" {
			_ = json.Unmarshal(d.Body, &hook)
		}
	}
	plain, err := b.reg.OpenDestination("acme", hook)
	if err != nil || !strings.Contains(string(plain), hookSecret) || !strings.Contains(string(plain), "Bearer hdr-secret-9") || !strings.Contains(string(plain), `"batch":5`) {
		t.Fatalf("the stored secret after a put with its redacted form: %s, %v", plain, err)
	}

	// Bad input: 4xx, never 5xx, nothing stored.
	before := b.storedBodies(t)
	for _, c := range []struct {
		name, path, body string
		want             int
		code             string
	}{
		{"not JSON", "/hook2", `{"type":`, 400, "invalid_json"},
		{"not an object", "/hook2", `[1]`, 400, "invalid_json"},
		{"name mismatch", "/hook2", `{"name":"other","type":"webhook"}`, 400, "name_mismatch"},
		{"bad name", "/Hook2", hookBody("https://h.example.com", hookSecret, ""), 400, "invalid_definition"},
		{"unknown type", "/hook2", `{"type":"pigeon","events":{},"strictly_necessary":true}`, 400, "invalid_definition"},
		{"no subscription", "/hook2", `{"type":"webhook","strictly_necessary":true,"config":{}}`, 400, "invalid_definition"},
		{"no consent decision", "/hook2", `{"type":"webhook","events":{}}`, 400, "invalid_definition"},
		{"bad where", "/hook2", `{"type":"webhook","events":{"where":"properties.total >"},"strictly_necessary":true}`, 400, "invalid_definition"},
		{"bad secret", "/hook2", hookBody("https://h.example.com", "whsec_short", ""), 400, "invalid_definition"},
		{"http without allow_http", "/hook2", `{"type":"webhook","events":{},"strictly_necessary":true,"config":{"url":"http://h.example.com","secrets":["` + hookSecret + `"]}}`, 400, "invalid_definition"},
		{"unknown setting", "/hook2", `{"type":"forward","events":{},"strictly_necessary":true,"config":{"url":"https://k.example.com","write_key":"abc","colour":"red"}}`, 400, "invalid_definition"},
		{"sealed value given", "/hook2", hookBody("https://h.example.com", "kith:v1:00000000:AAAA", ""), 400, "invalid_definition"},
		{"unknown fingerprint", "/hook2", hookBody("https://h.example.com", "…00000000", ""), 400, "invalid_definition"},
		{"config not an object", "/hook2", `{"type":"webhook","events":{},"strictly_necessary":true,"config":"url"}`, 400, "invalid_definition"},
		{"too large", "/hook2", `{"type":"webhook","mapping":{"a":"` + strings.Repeat("x", 70<<10) + `"}}`, 413, "body_too_large"},
		{"config destination", "/audit", `{"type":"nats","events":{},"strictly_necessary":true,"config":{"subject":"a.b"}}`, 409, "managed_by_config"},
	} {
		code, m := b.call(t, "PUT", dAPI+c.path, dAdmin, c.body)
		if code != c.want || errCode(m) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, m, c.want, c.code)
		}
		if c.code == "invalid_definition" {
			if pr, _ := m["problems"].([]any); len(pr) == 0 {
				t.Errorf("%s: no problems in %v", c.name, m)
			}
		}
	}
	code, m = b.call(t, "PUT", dAPI+"/hook2", dAdmin, hookBody("https://h.example.com", "whsec_short", ""))
	if pr := m["problems"].([]any)[0].(map[string]any); pr["field"] != "config.secrets" || pr["kind"] != "destination" {
		t.Errorf("problem of a bad secret: %v", pr)
	}
	if code, m := b.call(t, "DELETE", dAPI+"/audit", dAdmin, ""); code != 409 || errCode(m) != "managed_by_config" {
		t.Errorf("delete audit: %d %v", code, m)
	}
	if after := b.storedBodies(t); after != before {
		t.Errorf("bad input changed what is stored:\n%s\n%s", before, after)
	}

	// Auth, scopes, other workspaces, unknown destinations.
	for _, c := range []struct {
		method, path, token string
		want                int
		code                string
	}{
		{"GET", dAPI, "", 401, "missing_token"},
		{"GET", dAPI, "tok_nope_1234567890", 401, "invalid_token"},
		{"GET", dAPI, dDesk, 403, "forbidden"},
		{"GET", dAPI, dGlobex, 404, "workspace_not_found"},
		{"GET", "/v1/workspaces/nope/destinations", dAdmin, 404, "workspace_not_found"},
		{"PUT", dAPI + "/x", dDebug, 403, "forbidden"},
		{"DELETE", dAPI + "/hook", dDebug, 403, "forbidden"},
		{"POST", dAPI + "/hook/pause", dDebug, 403, "forbidden"},
		{"POST", dAPI + "/hook/replays", dDebug, 403, "forbidden"},
		{"POST", dAPI + "/hook/dead-letters/replay", dDebug, 403, "forbidden"},
		{"GET", "/v1/workspaces/globex/destinations/hook", dGlobex, 404, "destination_not_found"},
		{"GET", dAPI + "/nope", dDebug, 404, "destination_not_found"},
		{"DELETE", dAPI + "/nope", dAdmin, 404, "destination_not_found"},
		{"POST", dAPI + "/nope/pause", dAdmin, 404, "destination_not_found"},
		{"GET", dAPI + "/nope/dead-letters", dDebug, 404, "destination_not_found"},
		{"GET", dAPI + "/nope/replays", dDebug, 404, "destination_not_found"},
	} {
		if code, m := b.call(t, c.method, c.path, c.token, ""); code != c.want || errCode(m) != c.code {
			t.Errorf("%s %s (%s): %d %v, want %d %s", c.method, c.path, c.token, code, m, c.want, c.code)
		}
	}

	// Pause and resume (config destinations too); resume ends a disabled
	// state and clears its reason.
	code, m = b.call(t, "POST", dAPI+"/audit/pause", dAdmin, "")
	if code != 200 || m["status"] != "paused" || !strings.Contains(m["reason"].(string), "ops") {
		t.Fatalf("pause: %d %v", code, m)
	}
	if err := b.st.SetDeliveryStatus(ctx, "acme", "hook", store.DestinationDisabled, "disabled after a permanent error: status 401"); err != nil {
		t.Fatal(err)
	}
	if code, m = b.call(t, "GET", dAPI+"/hook", dDebug, ""); m["status"] != "disabled" || m["reason"] == nil {
		t.Fatalf("disabled: %d %v", code, m)
	}
	for _, name := range []string{"audit", "hook"} {
		code, m = b.call(t, "POST", dAPI+"/"+name+"/resume", dAdmin, "")
		if code != 200 || m["status"] != "active" || m["reason"] != nil {
			t.Fatalf("resume %s: %d %v", name, code, m)
		}
	}

	// Cursors and lag: once a node took the lease, the log's head minus
	// the cursor.
	cur, err := b.st.AcquireDelivery(ctx, "acme", "hook", "node-a", time.Minute, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if code, _, _ := (&bundle{srv: b.srv}).post(t, "/v1/track", dWebKey, fmt.Sprintf(`{"userId":"u%d","event":"E"}`, i)); code != 200 {
			t.Fatalf("track: %d", code)
		}
	}
	code, m = b.call(t, "GET", dAPI+"/hook", dDebug, "")
	if lag := m["lag"].(map[string]any); code != 200 || m["started"] != true || lag["log"] != 3.0 || m["cursors"].(map[string]any)["log"] != 0.0 ||
		m["lease"].(map[string]any)["owner"] != "node-a" {
		t.Fatalf("lag: %d %v", code, m)
	}

	// Dead letters: paging, and flagging them for replay.
	dead := make([]store.DeadLetter, 5)
	for i := range dead {
		dead[i] = store.DeadLetter{Key: fmt.Sprintf("k%d", i), Kind: destination.KindEvent, Position: int64(i + 1), Payload: json.RawMessage(`{"type":"track"}`),
			Error: "status 400: bad", Attempts: 1, FirstAt: time.Now(), LastAt: time.Now()}
	}
	if err := b.st.Progress(ctx, &store.DeliveryProgress{Workspace: "acme", Destination: "hook", Epoch: cur.Epoch, Log: 3, Dead: dead}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	next := ""
	for range 10 {
		code, m = b.call(t, "GET", dAPI+"/hook/dead-letters?limit=2&next="+next, dDebug, "")
		if code != 200 {
			t.Fatalf("dead letters: %d %v", code, m)
		}
		for _, d := range m["data"].([]any) {
			d := d.(map[string]any)
			if d["error"] != "status 400: bad" || d["replay"] != false {
				t.Errorf("dead letter %v", d)
			}
			ids = append(ids, int64(d["id"].(float64)))
		}
		if next, _ = m["next"].(string); next == "" {
			break
		}
	}
	if len(ids) != 5 {
		t.Fatalf("paged %d dead letters, want 5", len(ids))
	}
	code, m = b.call(t, "GET", dAPI+"/hook", dDebug, "")
	if d := m["dead_letters"].(map[string]any); d["count"] != 5.0 || d["flagged"] != 0.0 || m["lag"].(map[string]any)["log"] != 0.0 {
		t.Fatalf("counts: %v", m)
	}
	for _, c := range []struct {
		body string
		want int
		code string
	}{
		{`{"ids":[0]}`, 400, "invalid_ids"},
		{`{"ids":[]}`, 400, "invalid_ids"},
		{`{"ids":["a"]}`, 400, "invalid_json"},
		{`{"id":[1]}`, 400, "invalid_json"},
		{`{"ids":[` + strings.Repeat("1,", 1000) + `1]}`, 400, "too_many_ids"},
	} {
		if code, m := b.call(t, "POST", dAPI+"/hook/dead-letters/replay", dAdmin, c.body); code != c.want || errCode(m) != c.code {
			t.Errorf("replay %s: %d %v", c.body[:min(len(c.body), 20)], code, m)
		}
	}
	if code, m = b.call(t, "POST", dAPI+"/hook/dead-letters/replay", dAdmin, fmt.Sprintf(`{"ids":[%d,999999]}`, ids[0])); code != 200 || m["flagged"] != 1.0 {
		t.Fatalf("replay one: %d %v", code, m)
	}
	if code, m = b.call(t, "POST", dAPI+"/hook/dead-letters/replay", dAdmin, `{}`); code != 200 || m["flagged"] != 4.0 {
		t.Fatalf("replay all: %d %v", code, m)
	}
	if code, m = b.call(t, "GET", dAPI+"/hook", dDebug, ""); m["dead_letters"].(map[string]any)["flagged"] != 5.0 {
		t.Fatalf("flagged: %v", m)
	}
	if code, m = b.call(t, "GET", dAPI+"/hook/dead-letters?next=x", dDebug, ""); code != 400 {
		t.Errorf("bad cursor: %d %v", code, m)
	}
	if code, m = b.call(t, "GET", dAPI+"/hook/dead-letters?limit=0", dDebug, ""); code != 400 {
		t.Errorf("bad limit: %d %v", code, m)
	}

	// Range replays.
	for _, body := range []string{
		``, `{}`, `{"since":"2026-01-02T00:00:00Z"}`, `{"since":"yesterday","until":"today"}`,
		`{"since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z"}`,
		`{"since":"2026-01-01T00:00:00Z","until":"2026-01-01T00:00:00Z"}`,
		`{"since":"2026-01-01T00:00:00Z","until":"2026-06-01T00:00:00Z"}`,
		`{"since":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z","x":1}`,
	} {
		if code, m := b.call(t, "POST", dAPI+"/hook/replays", dAdmin, body); code != 400 {
			t.Errorf("replay %q: %d %v", body, code, m)
		}
	}
	code, m = b.call(t, "POST", dAPI+"/hook/replays", dAdmin, `{"since":"2026-01-01T00:00:00+01:00","until":"2026-03-31T00:00:00Z"}`)
	if code != 201 || m["id"] == nil || m["since"] != "2025-12-31T23:00:00Z" || m["done"] != false {
		t.Fatalf("add replay: %d %v", code, m)
	}
	code, m = b.call(t, "GET", dAPI+"/hook/replays", dDebug, "")
	if data, _ := m["data"].([]any); code != 200 || len(data) != 1 {
		t.Fatalf("replays: %d %v", code, m)
	}
	if code, m = b.call(t, "GET", dAPI+"/hook", dDebug, ""); m["replays"] != 1.0 {
		t.Fatalf("replays count: %v", m)
	}

	// The list pages by name.
	code, m = b.call(t, "GET", dAPI+"?limit=1", dDebug, "")
	if data := m["data"].([]any); code != 200 || len(data) != 1 || data[0].(map[string]any)["name"] != "audit" || m["next"] != "audit" {
		t.Fatalf("page 1: %d %v", code, m)
	}
	code, m = b.call(t, "GET", dAPI+"?limit=1&next=audit", dDebug, "")
	if data := m["data"].([]any); code != 200 || len(data) != 1 || data[0].(map[string]any)["name"] != "hook" || m["next"] != nil {
		t.Fatalf("page 2: %d %v", code, m)
	}
	if code, _ = b.call(t, "GET", dAPI+"?next=zzz", dDebug, ""); code != 400 {
		t.Errorf("bad list cursor: %d", code)
	}

	// Delete.
	if code, m = b.call(t, "DELETE", dAPI+"/hook", dAdmin, ""); code != 204 {
		t.Fatalf("delete: %d %v", code, m)
	}
	if code, m = b.call(t, "GET", dAPI+"/hook", dDebug, ""); code != 404 {
		t.Fatalf("get deleted: %d %v", code, m)
	}
}

// receiver is a webhook endpoint that checks signatures and answers as it
// is told.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []string // event names (or "identify") of verified requests, in order
	status atomic.Int32
	bad    atomic.Int32 // requests whose signature did not verify
}

func newReceiver(t *testing.T, secret string) *receiver {
	rc := &receiver{}
	rc.status.Store(200)
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header, body, 0, time.Now()); err != nil || r.Header.Get("Authorization") != "Bearer hdr-secret-9" {
			rc.bad.Add(1)
			w.WriteHeader(401)
			return
		}
		var ev struct{ Type, Event string }
		_ = json.Unmarshal(body, &ev)
		if ev.Event == "Bad Event" {
			w.WriteHeader(422) // rejected: a dead letter
			return
		}
		if s := int(rc.status.Load()); s != 200 {
			w.WriteHeader(s)
			return
		}
		name := ev.Event
		if name == "" {
			name = ev.Type
		}
		rc.mu.Lock()
		rc.got = append(rc.got, name)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

func sameSet(got []string, want ...string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func (rc *receiver) received() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.got...)
}

// TestDestinationEndToEnd: a webhook destination put through the API
// receives what the official Segment client sends, signed; paused, it
// receives nothing, and resumed, what was sent meanwhile; a
// rejected event is a dead letter that a replay sends again; a 401
// disables the destination until it is resumed; the profile's ledger
// tells what the destination received.
func TestDestinationEndToEnd(t *testing.T) {
	t.Parallel()
	b := destSetup(t, true)
	rc := newReceiver(t, hookSecret)
	if code, m := b.call(t, "PUT", dAPI+"/hook", dAdmin, hookBody(rc.URL, hookSecret, "")); code != 201 {
		t.Fatalf("put: %d %v", code, m)
	}
	// The engine starts the destination at the log's end: wait for it.
	waitFor(t, "the destination to start", func() bool {
		_, m := b.call(t, "GET", dAPI+"/hook", dDebug, "")
		return m["started"] == true
	})

	client, err := analytics.NewWithConfig(dWebKey, analytics.Config{Endpoint: b.srv.URL, BatchSize: 1, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	send := func(msgs ...analytics.Message) {
		t.Helper()
		for _, msg := range msgs {
			if err := client.Enqueue(msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer client.Close()
	send(analytics.Identify{UserId: "ada", Traits: analytics.NewTraits().SetEmail("ada@example.com")},
		analytics.Track{UserId: "ada", Event: "First"})
	waitFor(t, "two deliveries", func() bool { return len(rc.received()) == 2 })
	// (The client sends each message on its own: they may arrive in either order.)
	if got := rc.received(); !sameSet(got, "identify", "First") || rc.bad.Load() != 0 {
		t.Fatalf("received %v (%d unverified)", got, rc.bad.Load())
	}

	// Paused: nothing arrives. Resumed: what was sent meanwhile, in order.
	if code, m := b.call(t, "POST", dAPI+"/hook/pause", dAdmin, ""); code != 200 || m["status"] != "paused" {
		t.Fatalf("pause: %d %v", code, m)
	}
	// Let the engine see the pause (it re-reads the status with its lease).
	time.Sleep(1500 * time.Millisecond)
	send(analytics.Track{UserId: "ada", Event: "While Paused 1"}, analytics.Track{UserId: "ada", Event: "While Paused 2"})
	headWas := int64(0)
	waitFor(t, "the events in the log", func() bool {
		_, m := b.call(t, "GET", dAPI+"/hook", dDebug, "")
		lag, _ := m["lag"].(map[string]any)
		if l, _ := lag["log"].(float64); l >= 2 {
			headWas = int64(l)
			return true
		}
		return false
	})
	time.Sleep(500 * time.Millisecond)
	if got := rc.received(); len(got) != 2 || headWas < 2 {
		t.Fatalf("received while paused: %v", got)
	}
	if code, m := b.call(t, "POST", dAPI+"/hook/resume", dAdmin, ""); code != 200 || m["status"] != "active" {
		t.Fatalf("resume: %d %v", code, m)
	}
	waitFor(t, "the paused events", func() bool { return len(rc.received()) == 4 })
	if got := rc.received(); !sameSet(got[2:], "While Paused 1", "While Paused 2") {
		t.Fatalf("after resume: %v", got)
	}

	// A rejected event is a dead letter; replayed, it is sent again (and,
	// still rejected, a dead letter again).
	send(analytics.Track{UserId: "ada", Event: "Bad Event"}, analytics.Track{UserId: "ada", Event: "After Bad"})
	var code int
	var m map[string]any
	var data []any
	waitFor(t, "the event after the bad one, and the dead letter", func() bool {
		code, m = b.call(t, "GET", dAPI+"/hook/dead-letters", dDebug, "")
		data, _ = m["data"].([]any)
		return len(rc.received()) == 5 && len(data) > 0
	})
	if code != 200 || len(data) != 1 || !strings.Contains(data[0].(map[string]any)["error"].(string), "422") {
		t.Fatalf("dead letters: %d %v", code, m)
	}
	firstID := data[0].(map[string]any)["id"].(float64)
	if code, m = b.call(t, "POST", dAPI+"/hook/dead-letters/replay", dAdmin, ""); code != 200 || m["flagged"] != 1.0 {
		t.Fatalf("replay: %d %v", code, m)
	}
	waitFor(t, "the replayed dead letter", func() bool {
		_, m := b.call(t, "GET", dAPI+"/hook/dead-letters", dDebug, "")
		data, _ := m["data"].([]any)
		return len(data) == 1 && data[0].(map[string]any)["id"].(float64) != firstID
	})

	// 401: disabled, with the last error; resume brings it back.
	rc.status.Store(401)
	send(analytics.Track{UserId: "ada", Event: "Unauthorized"})
	waitFor(t, "the destination to be disabled", func() bool {
		_, m := b.call(t, "GET", dAPI+"/hook", dDebug, "")
		return m["status"] == "disabled"
	})
	_, m = b.call(t, "GET", dAPI+"/hook", dDebug, "")
	if !strings.Contains(m["reason"].(string), "401") || !strings.Contains(m["last_error"].(string), "401") {
		t.Fatalf("disabled: %v", m)
	}
	rc.status.Store(200)
	if code, m := b.call(t, "POST", dAPI+"/hook/resume", dAdmin, ""); code != 200 || m["status"] != "active" || m["reason"] != nil {
		t.Fatalf("resume: %d %v", code, m)
	}
	waitFor(t, "the event refused with 401", func() bool {
		got := rc.received()
		return len(got) == 6 && got[5] == "Unauthorized"
	})

	// The ledger: what the destination received about ada.
	waitFor(t, "the ledger", func() bool {
		code, m := b.call(t, "GET", "/v1/spaces/acme/collections/users/profiles/user_id:ada/deliveries", dDesk, "")
		data, _ := m["data"].([]any)
		if code != 200 || len(data) != 1 {
			return false
		}
		e := data[0].(map[string]any)
		return e["destination"] == "hook" && e["deliveries"].(float64) >= 4 && e["kinds"].([]any)[0] == "event" && e["day"] == time.Now().UTC().Format(time.DateOnly)
	})
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/v1/spaces/acme/collections/users/profiles/user_id:ada/deliveries", dDebug, 403},
		{"/v1/spaces/acme/collections/users/profiles/user_id:nobody/deliveries", dDesk, 404},
		{"/v1/spaces/acme/collections/users/profiles/nobody/deliveries", dDesk, 400},
		{"/v1/spaces/acme/collections/users/profiles/user_id:ada/deliveries?next=zzz", dDesk, 400},
		{"/v1/spaces/globex/collections/users/profiles/user_id:ada/deliveries", dDesk, 404},
	} {
		if code, m := b.call(t, "GET", c.path, c.token, ""); code != c.want {
			t.Errorf("%s: %d %v, want %d", c.path, code, m, c.want)
		}
	}
	if n := rc.bad.Load(); n != 0 {
		t.Errorf("%d requests did not verify", n)
	}
}
