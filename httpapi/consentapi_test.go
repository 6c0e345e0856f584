package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/httpapi"
	"github.com/kithcdp/kith/store"
)

const consentConfig = `
workspaces:
  - slug: acme
    sources:
      - {slug: web, write_key: wk_cweb_1234567890}
    tokens:
      - {name: dpo, token: tok_cdpo_1234567890, scopes: [privacy]}
      - {name: ops, token: tok_cops_1234567890, scopes: [admin]}
      - {name: desk, token: tok_cdesk_1234567890, scopes: [profiles:read]}
    consent:
      store_requires: [personalization]
      purposes:
        - {name: loyalty, description: Points and rewards., lawful_basis: contract, categories: [Loyalty], marketing: true}
  - slug: globex
    sources:
      - {slug: app, write_key: wk_capp_1234567890}
    tokens:
      - {name: dpo, token: tok_cgdpo_1234567890, scopes: [privacy]}
`

const (
	csWebKey = "wk_cweb_1234567890"
	csDPO    = "tok_cdpo_1234567890"
	csOps    = "tok_cops_1234567890"
	csDesk   = "tok_cdesk_1234567890"
	csGlobex = "tok_cgdpo_1234567890"
	csPath   = "/v1/workspaces/acme/privacy/profiles/"
)

var consentNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// consentSetup serves ada, who granted analytics and advertising, then
// browsed with Sec-GPC: 1.
func consentSetup(t *testing.T) *bundle {
	t.Helper()
	b := setup(t, withConfig(consentConfig), withOptions(func(_ *bundle, o *httpapi.Options) {
		o.Now = func() time.Time { return consentNow }
	}))
	for _, call := range []struct{ path, body, gpc string }{
		{"/v1/identify", `{"userId":"u-42","traits":{"email":"ada@example.com"},"timestamp":"2026-11-24T09:00:00Z"}`, ""},
		{"/v1/track", `{"userId":"u-42","event":"Segment Consent Preference Updated","context":{"consent":{"categoryPreferences":{"Analytics":true,"Advertising":true,"Loyalty":true}}},"timestamp":"2026-11-24T09:01:00Z"}`, ""},
		{"/v1/page", `{"userId":"u-42","name":"Pricing","timestamp":"2026-11-24T09:02:00Z"}`, "1"},
	} {
		var h []string
		if call.gpc != "" {
			h = []string{"Sec-GPC", call.gpc}
		}
		if code, m, _ := b.post(t, call.path, csWebKey, call.body, h...); code != 200 {
			t.Fatalf("%s: %d %v", call.path, code, m)
		}
	}
	b.fold(t, "acme")
	return b
}

// purposeStates maps each purpose to "status allowed by".
func purposeStates(t *testing.T, m map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	ps, _ := m["purposes"].([]any)
	for _, p := range ps {
		p := p.(map[string]any)
		by, _ := p["by"].(string)
		out[p["name"].(string)] = strings.TrimSpace(p["status"].(string) + " " + map[bool]string{true: "allowed", false: "denied"}[p["allowed"].(bool)] + " " + by)
	}
	return out
}

func TestConsentAPI(t *testing.T) {
	t.Parallel()
	b := consentSetup(t)

	code, m := b.get(t, csPath+"email:ADA@example.com/consent", csDPO)
	if code != 200 {
		t.Fatalf("GET consent: %d %v", code, m)
	}
	want := map[string]string{
		"necessary":       "not_recorded allowed",
		"analytics":       "granted allowed categoryPreferences.Analytics",
		"personalization": "not_recorded denied",
		"advertising":     "denied denied gpc",
		"marketing":       "not_recorded denied",
		"sale_sharing":    "denied denied gpc",
		"loyalty":         "granted allowed categoryPreferences.Loyalty",
	}
	if got := purposeStates(t, m); len(got) != len(want) {
		t.Errorf("purposes %v, want %v", got, want)
	} else {
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %q, want %q", k, got[k], w)
			}
		}
	}
	cm := m["consent_mode"].(map[string]any)
	if cm["analytics_storage"] != "granted" || cm["ad_storage"] != "denied" || cm["ad_user_data"] != "denied" || m["gpc"] != true || m["given_at"] != "2026-11-24T09:01:00Z" {
		t.Errorf("consent_mode %v, gpc %v, given_at %v", cm, m["gpc"], m["given_at"])
	}
	hist := m["history"].([]any)
	if len(hist) != 2 || m["history_next"] != "" {
		t.Fatalf("history %v (next %q): want the GPC page and the consent event", hist, m["history_next"])
	}
	if h := hist[0].(map[string]any); h["how"] != "page Pricing" || h["gpc"] != true || h["source"] != "web" || h["actor"] != "person" {
		t.Errorf("newest change %v", h)
	}
	if h := hist[1].(map[string]any); h["how"] != "track Segment Consent Preference Updated" || h["at"] != "2026-11-24T09:01:00Z" ||
		h["category_preferences"].(map[string]any)["Advertising"] != true {
		t.Errorf("oldest change %v", h)
	}

	// A change through the API: a control event, folded at its place.
	code, m = b.call(t, "PUT", csPath+"user_id:u-42/consent", csOps, `{"purposes":{"Analytics":false,"C0003":true}}`)
	if code != 202 || m["position"] == nil || js(t, m["purposes"]) != `{"analytics":false,"personalization":true}` {
		t.Fatalf("PUT consent: %d %v", code, m)
	}
	b.fold(t, "acme")
	code, m = b.get(t, csPath+"1/consent?history_limit=1", csDPO)
	if code != 200 {
		t.Fatalf("GET consent by kith id: %d %v", code, m)
	}
	got := purposeStates(t, m)
	if got["analytics"] != "denied denied categoryPreferences.analytics" || got["personalization"] != "granted allowed categoryPreferences.personalization" {
		t.Errorf("after the change: %v", got)
	}
	hist = m["history"].([]any)
	if h := hist[0].(map[string]any); len(hist) != 1 || h["how"] != "privacy consent" || h["source"] != "api" || h["actor"] != "token:ops" ||
		js(t, h["consent"]) != `{"analytics":false,"personalization":true}` {
		t.Errorf("history page %v", hist)
	}
	// The pages go on from where the last one stopped.
	next, _ := m["history_next"].(string)
	var all []string
	for next != "" {
		code, m = b.get(t, next, csDPO)
		if code != 200 {
			t.Fatalf("GET %s: %d %v", next, code, m)
		}
		for _, h := range m["history"].([]any) {
			all = append(all, h.(map[string]any)["how"].(string))
		}
		next, _ = m["history_next"].(string)
	}
	if js(t, all) != `["page Pricing","track Segment Consent Preference Updated"]` {
		t.Errorf("later pages %q", all)
	}

	code, m = b.get(t, "/v1/workspaces/acme/privacy/purposes", csDPO)
	if code != 200 || len(m["purposes"].([]any)) != 7 || js(t, m["store_requires"]) != `["personalization"]` || len(m["terms"].([]any)) != 4 {
		t.Errorf("GET purposes: %d %v", code, m)
	}
	for _, term := range m["terms"].([]any) {
		if term := term.(map[string]any); term["name"] == "no-marketing" && js(t, term["denies"]) != `["advertising","marketing","loyalty"]` {
			t.Errorf("no-marketing denies %v", term["denies"])
		}
	}
}

func TestConsentAPIErrors(t *testing.T) {
	t.Parallel()
	b := consentSetup(t)
	purposes := "/v1/workspaces/acme/privacy/purposes"
	body := `{"purposes":{"analytics":true}}`
	for _, tc := range []struct {
		name, method, path, token, body string
		code                            int
		errCode                         string
	}{
		{"no token", "GET", csPath + "user_id:u-42/consent", "", "", 401, "missing_token"},
		{"unknown token", "PUT", csPath + "user_id:u-42/consent", "tok_nobody_1234567890", body, 401, "invalid_token"},
		{"wrong scope", "GET", csPath + "user_id:u-42/consent", csDesk, "", 403, "forbidden"},
		{"wrong scope, PUT", "PUT", csPath + "user_id:u-42/consent", csDesk, body, 403, "forbidden"},
		{"wrong scope, purposes", "GET", purposes, csDesk, "", 403, "forbidden"},
		{"another workspace's token", "GET", csPath + "user_id:u-42/consent", csGlobex, "", 404, "profile_not_found"},
		{"another workspace's token, PUT", "PUT", csPath + "user_id:u-42/consent", csGlobex, body, 404, "profile_not_found"},
		{"another workspace's token, purposes", "GET", purposes, csGlobex, "", 404, "workspace_not_found"},
		{"no such workspace", "GET", "/v1/workspaces/nope/privacy/profiles/user_id:u-42/consent", csDPO, "", 404, "profile_not_found"},
		{"no such person", "GET", csPath + "user_id:nobody/consent", csDPO, "", 404, "profile_not_found"},
		{"no such person, PUT", "PUT", csPath + "user_id:nobody/consent", csDPO, body, 404, "profile_not_found"},
		{"no such kith id", "GET", csPath + "999/consent", csDPO, "", 404, "profile_not_found"},
		{"bad id", "GET", csPath + "nobody/consent", csDPO, "", 400, "invalid_profile_id"},
		{"bad kith id", "GET", csPath + "kith_id:-3/consent", csDPO, "", 400, "invalid_profile_id"},
		{"bad history_before", "GET", csPath + "user_id:u-42/consent?history_before=x", csDPO, "", 400, "invalid_history_before"},
		{"bad history_limit", "GET", csPath + "user_id:u-42/consent?history_limit=1001", csDPO, "", 400, "invalid_history_limit"},
		{"zero history_limit", "GET", csPath + "user_id:u-42/consent?history_limit=0", csDPO, "", 400, "invalid_history_limit"},
		{"not JSON", "PUT", csPath + "user_id:u-42/consent", csDPO, `{"purposes":`, 400, "invalid_body"},
		{"two objects", "PUT", csPath + "user_id:u-42/consent", csDPO, body + body, 400, "invalid_body"},
		{"unknown field", "PUT", csPath + "user_id:u-42/consent", csDPO, `{"purposes":{"analytics":true},"reason":"x"}`, 400, "invalid_body"},
		{"not a boolean", "PUT", csPath + "user_id:u-42/consent", csDPO, `{"purposes":{"analytics":"yes"}}`, 400, "invalid_body"},
		{"no purposes", "PUT", csPath + "user_id:u-42/consent", csDPO, `{"purposes":{}}`, 400, "invalid_consent"},
		{"empty body", "PUT", csPath + "user_id:u-42/consent", csDPO, `{}`, 400, "invalid_consent"},
		{"unknown purpose", "PUT", csPath + "user_id:u-42/consent", csDPO, `{"purposes":{"telepathy":true}}`, 400, "unknown_purpose"},
		{"necessary", "PUT", csPath + "user_id:u-42/consent", csDPO, `{"purposes":{"Essential":false}}`, 400, "invalid_consent"},
		{"a purpose both ways", "PUT", csPath + "user_id:u-42/consent", csDPO, `{"purposes":{"analytics":true,"C0002":false}}`, 400, "invalid_consent"},
		{"too large", "PUT", csPath + "user_id:u-42/consent", csDPO, `{"purposes":{"` + strings.Repeat("a", 70<<10) + `":true}}`, 413, "body_too_large"},
	} {
		code, m := b.call(t, tc.method, tc.path, tc.token, tc.body)
		if code != tc.code || errCode(m) != tc.errCode {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, m, tc.code, tc.errCode)
		}
	}
	// Nothing was written by the refused changes.
	if evs, err := b.st.Read(context.Background(), store.LogQuery{Workspace: "acme", Type: store.TypePrivacy, Limit: 10}); err != nil || len(evs) != 0 {
		t.Errorf("%d control events written by refused requests (%v)", len(evs), err)
	}
}

// js is the compact JSON of v.
func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzConsentPut: any body and any id answer 202 or a JSON client error,
// never a server error.
func FuzzConsentPut(f *testing.F) {
	f.Add("user_id:u-42", `{"purposes":{"analytics":false}}`)
	f.Add("1", `{"purposes":{"C0004":true,"ad_storage":false}}`)
	f.Add("email:ADA@example.com", `{"purposes":{"necessary":true}}`)
	f.Add("kith_id:x", `[]`)
	b := setup(f, withConfig(consentConfig))
	req, _ := http.NewRequest("POST", b.srv.URL+"/v1/identify", strings.NewReader(`{"userId":"u-42","traits":{"email":"ada@example.com"}}`))
	req.SetBasicAuth(csWebKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		f.Fatalf("identify: %v %v", resp, err)
	}
	resp.Body.Close()
	b.fold(f, "acme")
	f.Fuzz(func(t *testing.T, id, body string) {
		if id == "" {
			return // not a path
		}
		code, m := b.call(t, "PUT", csPath+url.PathEscape(id)+"/consent", csDPO, body)
		if code != 202 && (code < 400 || code >= 500 || errCode(m) == "") {
			t.Fatalf("PUT %q %q: %d %v", id, body, code, m)
		}
	})
}
