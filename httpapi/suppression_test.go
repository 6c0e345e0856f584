package httpapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// The suppression list over HTTP: a privacy token suppresses an email and
// a user id, each change recorded in the log as a control event; events
// carrying them are answered 200 and stored nowhere, others are stored;
// after an unsuppress they are stored again.

const (
	supPath  = "/v1/workspaces/acme/privacy/suppressions"
	supDebug = "tok_prdebug_1234567890"
)

func supStored(t *testing.T, b *bundle) map[string]bool {
	t.Helper()
	code, m := b.get(t, "/v1/workspaces/acme/events?limit=1000", supDebug)
	if code != 200 {
		t.Fatalf("log API: %d %v", code, m)
	}
	ids := map[string]bool{}
	for _, e := range m["data"].([]any) {
		ev := e.(map[string]any)
		id, _ := ev["messageId"].(string)
		if id == "" {
			id, _ = ev["message_id"].(string)
		}
		ids[id] = true
	}
	return ids
}

func TestSuppressionList(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(privacyConfig))
	send := func(path, body string) {
		t.Helper()
		code, m, _ := b.post(t, path, prWebKey, body)
		if code != 200 || m["success"] != true {
			t.Fatalf("%s %s: %d %v", path, body, code, m)
		}
	}
	// Before any suppression.
	send("/v1/track", `{"userId":"u-42","event":"Before","messageId":"s-0"}`)

	var digests []string
	for _, id := range []string{"email: Ada@Example.com ", "user_id:u-42"} {
		code, m := b.call(t, "POST", supPath, prDPO, `{"identifier":"`+id+`","reason":"regulation SUPPRESS_ONLY"}`)
		if code != 201 || len(m["digest"].(string)) != 64 || m["type"] != strings.Split(id, ":")[0] {
			t.Fatalf("suppress %s: %d %v", id, code, m)
		}
		digests = append(digests, m["digest"].(string))
	}
	// Each change is in the log as a control event naming the digest only.
	controls := func() []privacy.Command {
		t.Helper()
		evs, err := b.st.Read(b.ctx, store.LogQuery{Workspace: "acme", Type: store.TypePrivacy})
		if err != nil {
			t.Fatal(err)
		}
		var out []privacy.Command
		for _, e := range evs {
			var c privacy.Command
			if err := json.Unmarshal(e.Raw, &c); err != nil || strings.Contains(string(e.Raw), "u-42") || strings.Contains(string(e.Raw), "ada@") {
				t.Fatalf("control event %s (%v)", e.Raw, err)
			}
			out = append(out, c)
		}
		return out
	}
	if cs := controls(); len(cs) != 2 || cs[0].Action != privacy.ActionSuppress || !slices.Equal(cs[0].Digests, digests[:1]) ||
		!slices.Equal(cs[1].Digests, digests[1:]) || cs[1].Actor != "token:dpo" || cs[1].Via != "api" {
		t.Fatalf("control events %+v", cs)
	}
	send("/v1/identify", `{"anonymousId":"a-9","traits":{"email":"ada@example.com"},"messageId":"s-1"}`)
	send("/v1/track", `{"userId":"u-42","event":"Order Completed","messageId":"s-2"}`)
	code, m, _ := b.post(t, "/v1/batch", prWebKey, `{"batch":[
		{"type":"track","userId":"u-42","event":"X","messageId":"s-3"},
		{"type":"track","userId":"u-7","event":"Y","messageId":"s-4"},
		{"type":"identify","userId":"u-8","traits":{"email":"bob@example.com"},"messageId":"s-5"}]}`)
	if code != 200 || m["accepted"] != float64(3) {
		t.Fatalf("batch: %d %v", code, m)
	}
	got := supStored(t, b)
	for _, id := range []string{"s-1", "s-2", "s-3"} {
		if got[id] {
			t.Errorf("suppressed event %s was stored", id)
		}
	}
	for _, id := range []string{"s-0", "s-4", "s-5"} {
		if !got[id] {
			t.Errorf("event %s was not stored (log: %v)", id, got)
		}
	}
	// The list holds digests only, never the values.
	var reasons []string
	if err := b.st.ScanSuppressed(b.ctx, "acme", func(e store.Suppression) error {
		if strings.Contains(string(e.Digest), "u-42") || strings.Contains(string(e.Digest), "ada@") {
			t.Errorf("a value in the list: %q", e.Digest)
		}
		reasons = append(reasons, e.Reason)
		return nil
	}); err != nil || len(reasons) != 2 {
		t.Fatalf("list: %v %v", reasons, err)
	}
	// The metric.
	if code, _, body := fetchRaw(t, b.srv, "/metrics"); code != 200 || !strings.Contains(body, `kith_events_suppressed_total{workspace="acme"} 3`) {
		t.Fatalf("metrics: %d, no kith_events_suppressed_total 3", code)
	}

	// Unsuppress the user id (the admin scope may too): stored again.
	code, m = b.call(t, "DELETE", supPath, prOps, `{"identifier":"user_id:u-42"}`)
	if code != 200 || m["removed"] != float64(1) {
		t.Fatalf("unsuppress: %d %v", code, m)
	}
	code, m = b.call(t, "DELETE", supPath, prDPO, `{"identifier":"user_id:u-42"}`)
	if code != 200 || m["removed"] != float64(0) {
		t.Fatalf("unsuppress again: %d %v", code, m)
	}
	if cs := controls(); len(cs) != 4 || cs[2].Action != privacy.ActionUnsuppress || cs[2].Actor != "token:ops" ||
		!slices.Equal(cs[2].Digests, digests[1:]) {
		t.Fatalf("control events after unsuppress %+v", cs)
	}
	send("/v1/track", `{"userId":"u-42","event":"After","messageId":"s-6"}`)
	send("/v1/identify", `{"userId":"u-43","traits":{"email":"ADA@example.com"},"messageId":"s-7"}`)
	got = supStored(t, b)
	if !got["s-6"] || got["s-7"] {
		t.Fatalf("after unsuppress: %v", got)
	}

	// Scope and bad input.
	for _, c := range []struct {
		method, token, body string
		code                int
		err                 string
	}{
		{"POST", "", `{"identifier":"email:x@example.com"}`, 401, "missing_token"},
		{"POST", prDesk, `{"identifier":"email:x@example.com"}`, 403, "forbidden"},
		{"POST", prDebug, `{"identifier":"email:x@example.com"}`, 403, "forbidden"},
		{"DELETE", prDesk, `{"identifier":"email:x@example.com"}`, 403, "forbidden"},
		{"POST", prGlobex, `{"identifier":"email:x@example.com"}`, 404, "workspace_not_found"},
		{"POST", prDPO, `{"identifier":"x@example.com"}`, 400, "invalid_identifier"},
		{"POST", prDPO, `{"identifier":"phone:+15551234567"}`, 400, "invalid_identifier"},
		{"POST", prDPO, `{"identifier":"email:"}`, 400, "invalid_identifier"},
		{"POST", prDPO, `{"identifier":"email:not-an-email"}`, 400, "invalid_identifier"},
		{"POST", prDPO, `{"identifier":"user_id:unknown"}`, 400, "invalid_identifier"},
		{"POST", prDPO, `not json`, 400, "invalid_json"},
		{"DELETE", prDPO, `{"identifier":"kith_id:7"}`, 400, "invalid_identifier"},
	} {
		code, m := b.call(t, c.method, supPath, c.token, c.body)
		if code != c.code || errCode(m) != c.err {
			t.Errorf("%s %s %s: %d %v, want %d %s", c.method, c.token, c.body, code, m, c.code, c.err)
		}
	}
}
