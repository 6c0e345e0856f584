package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/httpapi"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
)

// The access export over HTTP: a person's data sent through the Tracking
// API, folded by the processor with a computed trait and an audience of
// the config file, delivered (per the ledger) to a webhook, then exported
// by a privacy officer's token. What the privacy package's export holds
// is tested there (privacy/export_test.go); here, that the endpoint
// answers it, with auth, names and errors.

const privacyConfig = `
workspaces:
  - slug: acme
    retention: 30d
    sources:
      - {slug: web, write_key: wk_prweb_1234567890}
    tokens:
      - {name: dpo, token: tok_prdpo_1234567890, scopes: [privacy]}
      - {name: ops, token: tok_props_1234567890, scopes: [admin]}
      - {name: desk, token: tok_prdesk_1234567890, scopes: [profiles:read]}
      - {name: debugger, token: tok_prdebug_1234567890, scopes: [debug]}
    computed_traits:
      - {name: orders, kind: count, events: [Order Completed]}
    audiences:
      - {name: buyers, condition: "computed.orders >= 2"}
  - slug: globex
    sources:
      - {slug: app, write_key: wk_prapp_1234567890}
    tokens:
      - {name: dpo, token: tok_prgdpo_1234567890, scopes: [privacy]}
`

const (
	prWebKey  = "wk_prweb_1234567890"
	prDPO     = "tok_prdpo_1234567890"
	prOps     = "tok_props_1234567890"
	prDesk    = "tok_prdesk_1234567890"
	prDebug   = "tok_prdebug_1234567890"
	prGlobex  = "tok_prgdpo_1234567890"
	prExports = "/v1/workspaces/acme/privacy/profiles/"
)

var privacyNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// privacySetup serves a fresh store with ada's data folded and delivered.
func privacySetup(t *testing.T) *bundle {
	t.Helper()
	b := setup(t, withConfig(privacyConfig), withOptions(func(_ *bundle, o *httpapi.Options) {
		o.Now = func() time.Time { return privacyNow }
	}))
	for _, call := range []struct{ path, body string }{
		{"/v1/page", `{"anonymousId":"a-1","name":"Pricing","messageId":"m-1"}`},
		{"/v1/track", `{"anonymousId":"a-1","event":"Order Completed","properties":{"total":100},"context":{"consent":{"categoryPreferences":{"analytics":true}}},"messageId":"m-2"}`},
		{"/v1/page", `{"anonymousId":"a-2","name":"Home","messageId":"m-3"}`},
		{"/v1/identify", `{"anonymousId":"a-2","userId":"u-42","traits":{"email":"ada@example.com","name":"Ada"},"messageId":"m-4"}`},
		{"/v1/identify", `{"anonymousId":"a-1","userId":"u-42","traits":{"plan":"pro"},"messageId":"m-5"}`},
		{"/v1/group", `{"userId":"u-42","groupId":"acme","traits":{"name":"Acme"},"messageId":"m-6"}`},
		{"/v1/alias", `{"previousId":"a-3","userId":"u-42","messageId":"m-7"}`},
		{"/v1/track", `{"userId":"u-42","event":"Order Completed","properties":{"total":20},"messageId":"m-8"}`},
	} {
		if code, m, _ := b.post(t, call.path, prWebKey, call.body); code != 200 {
			t.Fatalf("%s: %d %v", call.path, code, m)
		}
	}
	ctx := context.Background()
	p := process.New(process.Options{Store: b.st, Owner: "test", Rules: defaultRules(t), Logger: slog.New(slog.DiscardHandler)})
	if err := p.CatchUp(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.PutDefinition(ctx, store.Definition{Workspace: "acme", Kind: store.DefinitionDestination, Name: "crm-hook", Origin: "api",
		Body: json.RawMessage(`{"name":"crm-hook","type":"webhook","events":{},"purposes":["analytics"],"config":{"url":"https://crm.example.com/hook"}}`)}); err != nil {
		t.Fatal(err)
	}
	ada, err := b.st.Lookup(ctx, "acme", store.Identifier{Type: "user_id", Value: "u-42"})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := b.st.AcquireDelivery(ctx, "acme", "crm-hook", "test", time.Minute, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.st.Progress(ctx, &store.DeliveryProgress{Workspace: "acme", Destination: "crm-hook", Epoch: cur.Epoch, Log: 8,
		Ledger: []store.LedgerEntry{{Profile: ada, Day: privacyNow, Deliveries: 8, Kinds: []string{"event"}, Last: privacyNow}}}); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPrivacyExportAPI(t *testing.T) {
	t.Parallel()
	b := privacySetup(t)
	ctx := context.Background()
	ada, err := b.st.Lookup(ctx, "acme", store.Identifier{Type: "email", Value: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := privacy.Export(ctx, b.st, "acme", ada, privacyNow, privacy.WithRetention(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var wantJSON, wantZip bytes.Buffer
	if err := rep.WriteJSON(&wantJSON); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteCSV(&wantZip); err != nil {
		t.Fatal(err)
	}

	// Every way of naming ada answers her export, by any token allowed.
	for _, c := range []struct{ id, token, format string }{
		{"user_id:u-42", prDPO, ""},
		{"email:ADA@example.com", prDPO, "json"}, // normalized as the identity rules do
		{"anonymous_id:a-3", prOps, "json"},      // admin implies privacy
		{"kith_id:1", prDPO, "json"},
		{"1", prDPO, "json"},
		{"user_id:u-42", prDPO, "csv"},
	} {
		code, h, body := fetchRaw(t, b.srv, prExports+c.id+"/export?format="+c.format, "Authorization", "Bearer "+c.token)
		if code != 200 {
			t.Errorf("%s %s: %d %s", c.id, c.format, code, body)
			continue
		}
		want, ct, ext := wantJSON.Bytes(), "application/json; charset=utf-8", ".json"
		if c.format == "csv" {
			want, ct, ext = wantZip.Bytes(), "application/zip", ".zip"
		}
		if body != string(want) {
			t.Errorf("%s %s: the answer is not privacy.Export's:\n%s", c.id, c.format, body)
		}
		if h.Get("Content-Type") != ct || h.Get("Cache-Control") != "no-store" ||
			h.Get("Content-Disposition") != `attachment; filename="kith-export-acme-1-20261124T120000Z`+ext+`"` {
			t.Errorf("%s %s: headers %v", c.id, c.format, h)
		}
	}

	// What the answer holds (the privacy package tests it in full): ada's
	// identifiers, the merge of the two visitors, the computed trait and
	// audience, the consent, the account, the recipient, 8 events, the
	// workspace's retention.
	var e struct {
		Profile        privacy.ProfileSummary
		Identifiers    []privacy.Identifier
		ComputedTraits []privacy.ComputedTrait `json:"computed_traits"`
		Audiences      []privacy.Audience
		Consent        *privacy.Consent
		LinkedAccounts []privacy.LinkedProfile `json:"linked_accounts"`
		Merges         []privacy.Merge
		Recipients     []privacy.Recipient
		Events         []privacy.Event
		Purposes       privacy.PurposesAndRetention `json:"purposes_and_retention"`
	}
	if err := json.Unmarshal(wantJSON.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, id := range e.Identifiers {
		ids = append(ids, id.Type+":"+id.Value)
	}
	if got := strings.Join(ids, " "); got != "anonymous_id:a-1 anonymous_id:a-2 anonymous_id:a-3 email:ada@example.com user_id:u-42" {
		t.Errorf("identifiers %s", got)
	}
	if e.Profile.KithID != 1 || e.Profile.Events != 8 || len(e.Events) != 8 || len(e.Merges) != 1 || e.Merges[0].MergedKithID != 2 ||
		len(e.ComputedTraits) != 1 || string(e.ComputedTraits[0].Value) != "2" ||
		len(e.Audiences) != 1 || e.Audiences[0].Name != "buyers" || !e.Audiences[0].Member ||
		e.Consent == nil || string(e.Consent.CategoryPreferences["analytics"]) != "true" ||
		len(e.LinkedAccounts) != 1 || e.LinkedAccounts[0].Identifiers[0].Value != "acme" ||
		len(e.Recipients) != 1 || e.Recipients[0].Destination != "crm-hook" || e.Recipients[0].Deliveries != 8 ||
		e.Purposes.EventRetentionDays != 30 {
		t.Errorf("export %s", wantJSON.Bytes())
	}
	if z, err := zip.NewReader(bytes.NewReader(wantZip.Bytes()), int64(wantZip.Len())); err != nil || len(z.File) != len(privacy.CSVFiles)+1 {
		t.Errorf("the CSV export: %v", err)
	}
	// The merged-away visitor's kith id leads to ada too.
	if code, _, body := fetchRaw(t, b.srv, prExports+"kith_id:2/export", "Authorization", "Bearer "+prDPO); code != 200 || !strings.Contains(body, `"requested_kith_id":2`) {
		t.Errorf("kith_id:2: %d %.300s", code, body)
	}
}

func TestPrivacyExportAPIErrors(t *testing.T) {
	t.Parallel()
	b := privacySetup(t)
	for _, c := range []struct {
		name, path, token string
		code              int
		errCode           string
	}{
		{"no token", prExports + "user_id:u-42/export", "", 401, "missing_token"},
		{"bad token", prExports + "user_id:u-42/export", "tok_nobody_1234567890", 401, "invalid_token"},
		{"profiles:read is not privacy", prExports + "user_id:u-42/export", prDesk, 403, "forbidden"},
		{"debug is not privacy", prExports + "user_id:u-42/export", prDebug, 403, "forbidden"},
		{"another workspace's token", prExports + "user_id:u-42/export", prGlobex, 404, "profile_not_found"},
		{"a workspace that does not exist", "/v1/workspaces/nope/privacy/profiles/user_id:u-42/export", prDPO, 404, "profile_not_found"},
		{"unknown person", prExports + "user_id:nobody/export", prDPO, 404, "profile_not_found"},
		{"unknown kith id", prExports + "kith_id:99/export", prDPO, 404, "profile_not_found"},
		{"another workspace's person", "/v1/workspaces/globex/privacy/profiles/user_id:u-42/export", prGlobex, 404, "profile_not_found"},
		{"not type:value", prExports + "u-42/export", prDPO, 400, "invalid_profile_id"},
		{"bad kith id", prExports + "kith_id:x/export", prDPO, 400, "invalid_profile_id"},
		{"bad format", prExports + "user_id:u-42/export?format=xml", prDPO, 400, "invalid_format"},
		{"bad format for an unknown person", prExports + "user_id:nobody/export?format=pdf", prDPO, 400, "invalid_format"},
	} {
		code, m := b.get(t, c.path, c.token)
		if code != c.code || errCode(m) != c.errCode {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, m, c.code, c.errCode)
		}
	}
	// Another workspace's token learns nothing: its 404 is an unknown
	// person's, word for word.
	_, foreign := b.get(t, prExports+"user_id:u-42/export", prGlobex)
	_, unknown := b.get(t, "/v1/workspaces/globex/privacy/profiles/user_id:u-42/export", prGlobex)
	if js, uk := mustJSON(t, foreign), mustJSON(t, unknown); js != uk {
		t.Errorf("a foreign workspace answers %s, an unknown person %s", js, uk)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
