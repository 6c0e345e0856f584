package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kithcdp/kith/store"
)

// Data-subject requests over HTTP: Segment's regulations and Kith's own
// requests, on ada's data as privacySetup folds and delivers it.

const (
	regPath = "/v1/workspaces/acme/regulations"
	dsrPath = "/v1/workspaces/acme/privacy/requests"
)

// data returns m["data"] as an object.
func data(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	d, ok := m["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in %v", m)
	}
	return d
}

// A SUPPRESS_WITH_DELETE regulation of ada's user id: answered with its id,
// running until the processor folds the erasure, then finished; the
// webhook that received her data cannot be asked on this node (no delivery
// engine), re-sent events are dropped, and Kith's view of the request
// shows the same record.
func TestRegulationsAPI(t *testing.T) {
	t.Parallel()
	b := privacySetup(t)
	code, m := b.call(t, "POST", regPath, prDPO, `{"regulationType":"SUPPRESS_WITH_DELETE","subjectType":"USER_ID","subjectIds":["u-42"]}`)
	if code != 200 {
		t.Fatalf("regulate: %d %v", code, m)
	}
	id, _ := data(t, m)["regulateId"].(string)
	if !strings.HasPrefix(id, "dsr_") {
		t.Fatalf("regulateId %q", id)
	}
	regulation := func() map[string]any {
		t.Helper()
		code, m := b.get(t, regPath+"/"+id, prDPO)
		if code != 200 {
			t.Fatalf("get regulation: %d %v", code, m)
		}
		return data(t, m)["regulation"].(map[string]any)
	}
	if r := regulation(); r["overallStatus"] != "RUNNING" || r["regulationType"] != "SUPPRESS_WITH_DELETE" || r["workspaceId"] != "acme" {
		t.Fatalf("before folding: %v", r)
	}
	b.fold(t, "acme")
	r := regulation()
	ds, _ := r["destinationStatus"].([]any)
	if r["overallStatus"] != "FINISHED" || r["finishedAt"] == nil || len(ds) != 1 {
		t.Fatalf("after folding: %v", r)
	}
	if d := ds[0].(map[string]any); d["name"] != "crm-hook" || d["status"] != "NOT_SUPPORTED" || !strings.Contains(d["errString"].(string), "not running") {
		t.Fatalf("destination status %v", d)
	}
	// Kith's view of the same request.
	code, k := b.get(t, dsrPath+"/"+id, prOps)
	if code != 200 || k["type"] != "erasure" || k["status"] != "completed" || k["law"] != "gdpr" || k["actor"] != "dpo" || k["via"] != "api" {
		t.Fatalf("Kith's view: %d %v", code, k)
	}
	subj := k["subjects"].([]any)[0].(map[string]any)
	if subj["type"] != "user_id" || len(subj["digest"].(string)) != 64 || strings.Contains(mustJSON(t, k), "u-42") {
		t.Fatalf("subjects %v", k["subjects"])
	}
	// Ada is gone, and her re-sent events are answered 200 and stored nowhere.
	if _, err := b.st.Lookup(context.Background(), "acme", store.Identifier{Type: "email", Value: "ada@example.com"}); err == nil {
		t.Fatal("ada's profile is still held")
	}
	head := b.head(t, "acme")
	for _, body := range []string{`{"userId":"u-42","event":"Back","messageId":"again-1"}`, `{"anonymousId":"a-1","event":"Back","messageId":"again-2"}`} {
		if code, m, _ := b.post(t, "/v1/track", prWebKey, body); code != 200 || m["success"] != true {
			t.Fatalf("re-sent: %d %v", code, m)
		}
	}
	if h := b.head(t, "acme"); h != head {
		t.Fatalf("re-sent events were stored: head %d -> %d", head, h)
	}

	// The list, a page at a time.
	code, m = b.call(t, "POST", regPath, prDPO, `{"regulationType":"SUPPRESS_ONLY","subjectType":"EMAIL","subjectIds":["bob@example.com"]}`)
	if code != 200 {
		t.Fatalf("second regulation: %d %v", code, m)
	}
	second := data(t, m)["regulateId"]
	var ids []any
	cursor := ""
	for range 5 {
		code, m := b.get(t, regPath+"?pagination.count=1&pagination.cursor="+cursor, prDPO)
		if code != 200 {
			t.Fatalf("list: %d %v", code, m)
		}
		for _, r := range data(t, m)["regulations"].([]any) {
			ids = append(ids, r.(map[string]any)["id"])
		}
		next, _ := data(t, m)["pagination"].(map[string]any)["next"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if fmt.Sprint(ids) != fmt.Sprint([]any{id, second}) {
		t.Fatalf("listed %v", ids)
	}
}

// Kith's requests: an access request completes when downloaded; a
// restriction when folded; the list filters by status and pages.
func TestPrivacyRequestsAPI(t *testing.T) {
	t.Parallel()
	b := privacySetup(t)
	submit := func(body string) map[string]any {
		t.Helper()
		code, m := b.call(t, "POST", dsrPath, prDPO, body)
		if code != 201 {
			t.Fatalf("submit %s: %d %v", body, code, m)
		}
		return m
	}
	access := submit(`{"type":"access","identifier":"email:Ada@Example.com","law":"ccpa"}`)
	restrict := submit(`{"type":"restriction","identifier":"user_id:u-42","scope":"marketing"}`)
	if access["status"] != "in_progress" || access["law"] != "ccpa" || restrict["status"] != "in_progress" ||
		mustJSON(t, restrict["details"]) != `{"scope":"marketing"}` {
		t.Fatalf("submitted: %v / %v", access, restrict)
	}
	// The download is the access export, and completes the request.
	code, h, body := fetchRaw(t, b.srv, dsrPath+"/"+access["id"].(string)+"/export?format=json", "Authorization", "Bearer "+prDPO)
	if code != 200 || !strings.Contains(body, `"ada@example.com"`) || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("download: %d %.200s", code, body)
	}
	code, m := b.get(t, dsrPath+"/"+access["id"].(string), prDPO)
	if code != 200 || m["status"] != "completed" || m["completed_at"] == nil {
		t.Fatalf("access after download: %d %v", code, m)
	}
	// A second download: the request is done.
	if code, m := b.get(t, dsrPath+"/"+access["id"].(string)+"/export", prDPO); code != 409 || errCode(m) != "not_downloadable" {
		t.Fatalf("second download: %d %v", code, m)
	}
	// The audit log names the person by digests only; the download's
	// entry names the profile it read.
	var entries []store.AuditEntry
	waitFor(t, "the download's audit entry", func() bool {
		entries = auditUntil(t, b.st, "acme", 1)
		return strings.Contains(mustJSON(t, entries), `"Target":"profile:email:`)
	})
	for _, needle := range []string{"ada@", "Ada@", "u-42"} {
		if strings.Contains(mustJSON(t, entries), needle) {
			t.Fatalf("the audit log holds %q: %s", needle, mustJSON(t, entries))
		}
	}
	b.fold(t, "acme")
	code, m = b.get(t, dsrPath+"/"+restrict["id"].(string), prDPO)
	if code != 200 || m["status"] != "completed" {
		t.Fatalf("restriction after folding: %d %v", code, m)
	}
	submit(`{"type":"objection","identifier":"user_id:u-42","scope":"profiling"}`)
	for _, c := range []struct {
		query string
		n     int
	}{{"", 3}, {"?status=completed", 2}, {"?status=in_progress", 1}, {"?status=failed", 0}} {
		var got []any
		next := ""
		for range 5 {
			sep := "?"
			if c.query != "" {
				sep = "&"
			}
			code, m := b.get(t, dsrPath+c.query+sep+"limit=1&next="+next, prDPO)
			if code != 200 {
				t.Fatalf("list %s: %d %v", c.query, code, m)
			}
			got = append(got, m["data"].([]any)...)
			if next, _ = m["next"].(string); next == "" {
				break
			}
		}
		if len(got) != c.n {
			t.Errorf("list %s: %d requests, want %d", c.query, len(got), c.n)
		}
	}
}

// Auth and bad input: every error a 4xx with a stable code, and nothing
// written — no request, no control event, no suppression.
func TestRegulationsAPIErrors(t *testing.T) {
	t.Parallel()
	b := privacySetup(t)
	head := b.head(t, "acme")
	ok := `{"regulationType":"SUPPRESS_WITH_DELETE","subjectType":"USER_ID","subjectIds":["u-42"]}`
	many := `{"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":["u"` + strings.Repeat(`,"u"`, 100) + `]}`
	for _, c := range []struct {
		method, path, token, body string
		code                      int
		err                       string
	}{
		{"POST", regPath, "", ok, 401, "missing_token"},
		{"POST", regPath, "tok_nobody_1234567890", ok, 401, "invalid_token"},
		{"POST", regPath, prDesk, ok, 403, "forbidden"},
		{"POST", regPath, prDebug, ok, 403, "forbidden"},
		{"POST", regPath, prGlobex, ok, 404, "workspace_not_found"},
		{"GET", regPath, prGlobex, "", 404, "workspace_not_found"},
		{"POST", dsrPath, prGlobex, `{"type":"erasure","identifier":"user_id:u-42"}`, 404, "workspace_not_found"},
		{"GET", dsrPath, prDesk, "", 403, "forbidden"},
		{"POST", "/v1/workspaces/nope/regulations", prDPO, ok, 404, "workspace_not_found"},
		{"POST", regPath, prDPO, `not json`, 400, "invalid_json"},
		{"POST", regPath, prDPO, `{"regulationType":"SUPPRESS_ONLY","subjectType":"USER_ID","subjectIds":["u"],"extra":1}`, 400, "invalid_json"},
		{"POST", regPath, prDPO, ok + ` {}`, 400, "invalid_json"}, // data after the object
		{"POST", dsrPath, prDPO, `{"type":"erasure","identifier":"user_id:u-42","reason":"` + strings.Repeat("x", 64<<10) + `"}`, 413, "body_too_large"},
		{"POST", regPath, prDPO, `{"regulationType":"DELETE_EVERYTHING","subjectType":"USER_ID","subjectIds":["u-42"]}`, 400, "invalid_regulation"},
		{"POST", regPath, prDPO, `{"subjectType":"USER_ID","subjectIds":["u-42"]}`, 400, "invalid_regulation"},
		{"POST", regPath, prDPO, `{"regulationType":"DELETE_ONLY","subjectType":"OBJECT_ID","subjectIds":["o-1"]}`, 400, "invalid_subject_type"},
		{"POST", regPath, prDPO, `{"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":[]}`, 400, "invalid_identifier"},
		{"POST", regPath, prDPO, `{"regulationType":"DELETE_ONLY","subjectType":"USER_ID","subjectIds":[""]}`, 400, "invalid_identifier"},
		{"POST", regPath, prDPO, `{"regulationType":"DELETE_ONLY","subjectType":"EMAIL","subjectIds":["not-an-email"]}`, 400, "invalid_identifier"},
		{"POST", regPath, prDPO, many, 400, "too_many_subjects"},
		{"POST", dsrPath, prDPO, `{"type":"erasure","identifier":"u-42"}`, 400, "invalid_identifier"},
		{"POST", dsrPath, prDPO, `{"type":"erasure","identifier":"kith_id:1"}`, 400, "invalid_identifier"},
		{"POST", dsrPath, prDPO, `{"type":"forget","identifier":"user_id:u-42"}`, 400, "invalid_type"},
		{"POST", dsrPath, prDPO, `{"type":"erasure","identifier":"user_id:u-42","law":"lgpd"}`, 400, "invalid_law"},
		{"POST", dsrPath, prDPO, `{"type":"restriction","identifier":"user_id:u-42","scope":"everything"}`, 400, "invalid_scope"},
		{"POST", dsrPath, prDPO, `{"type":"rectification","identifier":"user_id:u-42"}`, 400, "invalid_traits"},
		{"POST", dsrPath, prDPO, `{"type":"consent","identifier":"user_id:u-42","consent":{}}`, 400, "invalid_consent"},
		{"POST", dsrPath, prDPO, `{"type":"suppression","identifier":"phone:+15551234567"}`, 400, "invalid_identifier"},
		{"GET", dsrPath + "?status=done", prDPO, "", 400, "invalid_status"},
		{"GET", dsrPath + "?limit=0", prDPO, "", 400, "invalid_limit"},
		{"GET", dsrPath + "?next=x", prDPO, "", 400, "invalid_cursor"},
		{"GET", regPath + "?pagination.count=5000", prDPO, "", 400, "invalid_limit"},
		{"GET", dsrPath + "/dsr_nope", prDPO, "", 404, "request_not_found"},
		{"GET", regPath + "/dsr_nope", prDPO, "", 404, "request_not_found"},
		{"GET", dsrPath + "/dsr_nope/export", prDPO, "", 404, "request_not_found"},
	} {
		code, m := b.call(t, c.method, c.path, c.token, c.body)
		if code != c.code || errCode(m) != c.err {
			t.Errorf("%s %s %s %.60s: %d %v, want %d %s", c.method, c.path, c.token, c.body, code, m, c.code, c.err)
		}
	}
	if rs, err := b.st.PrivacyRequests(context.Background(), store.RequestQuery{}); err != nil || len(rs) != 0 {
		t.Fatalf("refused requests were recorded: %v %v", rs, err)
	}
	if h := b.head(t, "acme"); h != head {
		t.Fatalf("refused requests appended to the log: head %d -> %d", head, h)
	}
	n := 0
	if err := b.st.ScanSuppressed(context.Background(), "acme", func(store.Suppression) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("refused requests suppressed %d identifiers (%v)", n, err)
	}
	// A request of another type has no download; another workspace's
	// token cannot read this one's requests.
	code, m := b.call(t, "POST", dsrPath, prDPO, `{"type":"erasure","identifier":"user_id:bob"}`)
	if code != 201 {
		t.Fatalf("erasure: %d %v", code, m)
	}
	id := m["id"].(string)
	if code, m := b.get(t, dsrPath+"/"+id+"/export", prDPO); code != 409 || errCode(m) != "not_downloadable" {
		t.Fatalf("download of an erasure: %d %v", code, m)
	}
	if code, m := b.get(t, "/v1/workspaces/globex/privacy/requests/"+id, prGlobex); code != 404 || errCode(m) != "request_not_found" {
		t.Fatalf("another workspace's request: %d %v", code, m)
	}
}

// FuzzRegulationBodies: whatever a body holds, the request APIs answer a
// 2xx or a 4xx with an error code, never a 5xx.
func FuzzRegulationBodies(f *testing.F) {
	for _, s := range []string{
		`{"regulationType":"SUPPRESS_WITH_DELETE","subjectType":"USER_ID","subjectIds":["u-42"]}`,
		`{"regulationType":"DELETE_INTERNAL","subjectType":"EMAIL","subjectIds":["Ada@Example.com"," "]}`,
		`{"type":"rectification","identifier":"user_id:u-42","traits":{"name":null}}`,
		`{"type":"consent","identifier":"email:x@example.com","consent":{"advertising":true}}`,
		`{"type":"restriction","identifier":"anonymous_id:a:b:c","scope":"all","law":"ccpa"}`,
		`{"subjectIds":[1,2]}`, `[]`, `null`, ``,
	} {
		f.Add(s)
	}
	b := setup(f, withConfig(privacyConfig))
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{regPath, dsrPath} {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+prDPO)
			rec := httptest.NewRecorder()
			b.handler.ServeHTTP(rec, req)
			if rec.Code >= 500 || rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"code"`) {
				t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}
