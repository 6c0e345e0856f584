package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/postgres"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/store/storetest"
)

const (
	eraseKey    = "wk_erasure_0123456789"
	eraseDPO    = "tok_erasure_dpo_0123456789"
	eraseConfig = `workspaces:
  - slug: acme
    sources:
      - slug: web
        write_key: wk_erasure_0123456789
    tokens:
      - name: dpo
        token: tok_erasure_dpo_0123456789
        scopes: [privacy, debug]
`
	// The person's identifiers: values found nowhere else.
	eraseUser  = "user-erase-7f3a91"
	eraseAnon  = "anon-erase-91c2d4"
	eraseEmail = "ada.erase.5e1b@example.com"
)

// getJSON reads path with the token and decodes the JSON answer.
func (p *kithProcess) getJSON(path, token string) (int, map[string]any) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.url+path, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m
}

// mustPost posts body to path with key (a write key or a token) and
// requires want.
func (p *kithProcess) mustPost(path, key, body string, want int) []byte {
	p.t.Helper()
	code, resp, err := p.post(http.DefaultClient, path, key, []byte(body))
	if err != nil || code != want {
		p.t.Fatalf("POST %s %s: %d %s %v, want %d", path, body, code, resp, err, want)
	}
	return resp
}

// waitUntil polls cond until it holds, failing after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// seedPerson sends the person's events through the Tracking API — a page
// as an anonymous visitor, an identify with the user id and email, a
// track, and a batch holding an event quarantined for want of an identity
// that carries the email — and waits until kith serve folded them.
func seedPerson(t *testing.T, p *kithProcess) {
	t.Helper()
	p.mustPost("/v1/page", eraseKey, `{"anonymousId":"`+eraseAnon+`","name":"Pricing"}`, 200)
	p.mustPost("/v1/identify", eraseKey, `{"anonymousId":"`+eraseAnon+`","userId":"`+eraseUser+`","traits":{"email":"`+eraseEmail+`","name":"Ada"}}`, 200)
	p.mustPost("/v1/track", eraseKey, `{"userId":"`+eraseUser+`","event":"Order Completed","properties":{"total":20}}`, 200)
	resp := p.mustPost("/v1/batch", eraseKey, `{"batch":[{"type":"track","event":"Newsletter","properties":{"email":"`+eraseEmail+`"}},
		{"type":"track","userId":"someone-else","event":"Visit"}]}`, 200)
	if !bytes.Contains(resp, []byte("missing_identity")) {
		t.Fatalf("the bad event was not quarantined: %s", resp)
	}
	waitUntil(t, "the person's events to be folded", func() bool {
		code, m := p.getJSON("/v1/workspaces/acme/privacy/profiles/user_id:"+eraseUser+"/export", eraseDPO)
		evs, _ := m["events"].([]any)
		return code == 200 && len(evs) == 3
	})
}

// openTracer opens the store kith serve uses, to search it.
func openTracer(t *testing.T, storeURL, dataDir string) storetest.Tracer {
	t.Helper()
	var st store.Store
	var err error
	if storeURL == "" {
		st, err = sqlite.Open(context.Background(), dataDir)
	} else {
		st, err = postgres.Open(context.Background(), storeURL)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(storetest.Tracer)
}

// TestErasureEndToEnd: a person's data sent through the Tracking API and
// folded by kith serve, erased by a SUPPRESS_WITH_DELETE regulation; once
// the regulation is FINISHED, every column of every table (of kith.db and
// state.db, or of the PostgreSQL schema) and the bytes of the SQLite files
// and their WALs hold none of the person's identifiers. Events sent again
// with the same ids are answered 200 and stored nowhere.
func TestErasureEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts kith processes")
	}
	t.Parallel()
	eachStore(t, func(t *testing.T, storeURL string) {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		p := startKith(t, "--data", data, "--config", writeConfig(t, dir, eraseConfig), "--store", storeURL)
		seedPerson(t, p)
		needles := []string{eraseEmail, eraseUser, eraseAnon}
		tr := openTracer(t, storeURL, data)
		before, err := tr.Traces(context.Background(), needles)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if !strings.Contains(strings.Join(before, "\n"), n) {
				t.Fatalf("before the erasure %q is found nowhere (the search does not work): %q", n, before)
			}
		}

		resp := p.mustPost("/v1/workspaces/acme/regulations", eraseDPO,
			`{"regulationType":"SUPPRESS_WITH_DELETE","subjectType":"USER_ID","subjectIds":["`+eraseUser+`"]}`, 200)
		var created struct {
			Data struct {
				RegulateID string `json:"regulateId"`
			} `json:"data"`
		}
		if err := json.Unmarshal(resp, &created); err != nil || created.Data.RegulateID == "" {
			t.Fatalf("regulate: %s %v", resp, err)
		}
		waitUntil(t, "the regulation to finish", func() bool {
			code, m := p.getJSON("/v1/workspaces/acme/regulations/"+created.Data.RegulateID, eraseDPO)
			reg, _ := m["data"].(map[string]any)["regulation"].(map[string]any)
			if code != 200 || reg["overallStatus"] == "FAILED" {
				t.Fatalf("regulation: %d %v", code, m)
			}
			return reg["overallStatus"] == "FINISHED"
		})
		if after, err := tr.Traces(context.Background(), needles); err != nil || len(after) > 0 {
			t.Fatalf("after the erasure, the store still holds the person:\n%s\n(%v)", strings.Join(after, "\n"), err)
		}

		// Sent again: answered as stored, stored nowhere.
		p.mustPost("/v1/identify", eraseKey, `{"userId":"`+eraseUser+`","traits":{"email":"`+eraseEmail+`"}}`, 200)
		p.mustPost("/v1/track", eraseKey, `{"anonymousId":"`+eraseAnon+`","event":"Back"}`, 200)
		p.mustPost("/v1/batch", eraseKey, `{"batch":[{"type":"track","userId":"`+eraseUser+`","event":"Again"}]}`, 200)
		if after, err := tr.Traces(context.Background(), needles); err != nil || len(after) > 0 {
			t.Fatalf("events sent again were stored:\n%s\n(%v)", strings.Join(after, "\n"), err)
		}
	})
}

// deletionReceiver is a webhook endpoint that records the deletions it
// receives (their webhook-id and body) and takes every event.
type deletionReceiver struct {
	srv       *httptest.Server
	mu        sync.Mutex
	deletions map[string]string // webhook-id → body
}

func newDeletionReceiver(t *testing.T) *deletionReceiver {
	rc := &deletionReceiver{deletions: map[string]string{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"type":"delete"`)) {
			rc.mu.Lock()
			rc.deletions[r.Header.Get("Webhook-Id")] = string(body)
			rc.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// TestPrivacyCLI: kith privacy request, status and list on the data
// directory of a running kith serve, which delivers the person's events
// to a webhook and folds the erasure; the command sends the deletion to
// the webhook itself.
func TestPrivacyCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts a kith process")
	}
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	rcv := newDeletionReceiver(t)
	config := eraseConfig + `    destinations:
      - name: crm
        type: webhook
        events: {}
        strictly_necessary: true
        config: {url: "` + rcv.srv.URL + `/hook", allow_http: true, secrets: ["` + outboundSecret + `"], timeout: 5s}
`
	p := startKith(t, "--data", data, "--config", writeConfig(t, dir, config), "--egress-allow", "127.0.0.1/32")
	seedPerson(t, p)
	waitUntil(t, "the ledger to record the webhook as a recipient", func() bool {
		_, m := p.getJSON("/v1/workspaces/acme/privacy/profiles/user_id:"+eraseUser+"/export", eraseDPO)
		rs, _ := m["recipients"].([]any)
		return len(rs) > 0
	})
	// kith runs "kith privacy <sub> --data <data> args...".
	kith := func(sub string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"privacy", sub, "--data", data, "--egress-allow", "127.0.0.1/32"}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	status := func(id string) string {
		t.Helper()
		out, err := kith("status", id)
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		return out
	}

	out, err := kith("request", "--workspace", "acme", "--type", "erasure", "--identifier", "email:"+strings.ToUpper(eraseEmail), "--law", "ccpa")
	if err != nil {
		t.Fatalf("request: %v\n%s", err, out)
	}
	id := regexp.MustCompile(`dsr_[0-9a-f-]{36}`).FindString(out)
	if id == "" || !strings.Contains(out, "erasure (SUPPRESS_WITH_DELETE)") || !strings.Contains(out, "ccpa") ||
		strings.Contains(strings.ToLower(out), eraseEmail) {
		t.Fatalf("request printed:\n%s", out)
	}
	// The deletion was sent by the command, with the request id as the
	// webhook-id.
	if !strings.Contains(out, "crm: sent") {
		t.Fatalf("the deletion was not sent:\n%s", out)
	}
	rcv.mu.Lock()
	deletion := rcv.deletions[id]
	rcv.mu.Unlock()
	if !strings.Contains(deletion, eraseUser) || !strings.Contains(deletion, eraseEmail) {
		t.Fatalf("the webhook received no deletion for %s: %v", id, rcv.deletions)
	}
	waitUntil(t, "the request to complete", func() bool { return strings.Contains(status(id), "completed") })
	if code, _ := p.getJSON("/v1/workspaces/acme/privacy/profiles/user_id:"+eraseUser+"/export", eraseDPO); code != 404 {
		t.Fatalf("the person is still held: %d", code)
	}
	if out, err := kith("list", "--status", "completed"); err != nil || !strings.Contains(out, id) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := kith("list", "--workspace", "acme", "--status", "in_progress"); err != nil || strings.Contains(out, id) {
		t.Fatalf("list of those in progress: %v\n%s", err, out)
	}

	// Bad input: usage errors (exit code 2), nothing recorded.
	for _, args := range [][]string{
		{"request", "--workspace", "acme", "--type", "erasure"},
		{"request", "--workspace", "acme", "--type", "forget", "--identifier", "user_id:x"},
		{"request", "--workspace", "acme", "--type", "erasure", "--identifier", "x"},
		{"request", "--workspace", "nope", "--type", "erasure", "--identifier", "user_id:x"},
		{"request", "--workspace", "acme", "--type", "rectification", "--identifier", "user_id:x", "--traits", "{"},
		{"request", "--workspace", "acme", "--type", "consent", "--identifier", "user_id:x", "--consent", `{"advertising":"no"}`},
		{"request", "--workspace", "acme", "--type", "consent", "--identifier", "user_id:x"},
		{"list", "extra"},
		{"status"},
		{"frobnicate"},
	} {
		if out, err := kith(args[0], args[1:]...); exitCode(err) != 2 {
			t.Errorf("%q: %v (exit %d), want a usage error\n%s", args, err, exitCode(err), out)
		}
	}
	if _, err := kith("status", "dsr_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("status of an unknown request: %v", err)
	}
	if out, _ := kith("list"); strings.Count(out, "dsr_") != 1 {
		t.Errorf("refused requests were recorded:\n%s", out)
	}
}
