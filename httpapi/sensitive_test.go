package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kithcdp/kith/process"
)

const sensitiveConfig = `
workspaces:
  - slug: acme
    sensitive_traits: [ssn, health.*]
    sources:
      - {slug: web, write_key: wk_sens_1234567890}
    tokens:
      - {name: desk, token: tok_sdesk_1234567890, scopes: [profiles:read]}
      - {name: debugger, token: tok_sdebug_1234567890, scopes: [debug]}
      - {name: dpo, token: tok_sdpo_1234567890, scopes: [privacy]}
`

// Sensitive traits are sealed before they are stored: no file of the
// store holds them in the clear, the event log and quarantine show the
// envelope, and the Profile API (traits, their history, events) and the
// access export show the value.
func TestSensitiveTraitsEncryptedAtRest(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(sensitiveConfig))
	const ssn, blood = "123-45-6789", "AB-negative-rare"
	for _, call := range []struct{ path, body string }{
		{"/v1/identify", `{"userId":"u-1","traits":{"name":"Ada","ssn":"` + ssn + `","health":{"blood":"` + blood + `"}},"messageId":"m-1"}`},
		{"/v1/track", `{"userId":"u-1","event":"Viewed","context":{"traits":{"ssn":"` + ssn + `"}},"messageId":"m-2"}`},
		// Quarantined (no identity), sealed all the same.
		{"/v1/batch", `{"batch":[{"type":"identify","traits":{"ssn":"` + ssn + `"},"messageId":"m-3"}]}`},
	} {
		if code, m, _ := b.post(t, call.path, "wk_sens_1234567890", call.body); code != 200 {
			t.Fatalf("%s: %d %v", call.path, code, m)
		}
	}
	ctx := context.Background()
	p := process.New(process.Options{Store: b.st, Owner: "test", Rules: defaultRules(t), Logger: slog.New(slog.DiscardHandler)})
	if err := p.CatchUp(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}

	// Not in any file of the store: kith.db, state.db and their -wal.
	files, err := filepath.Glob(filepath.Join(b.dir, "*"))
	if err != nil || len(files) < 2 {
		t.Fatalf("store files %v, %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, plain := range []string{ssn, blood} {
			if bytes.Contains(data, []byte(plain)) {
				t.Errorf("%s holds %q in the clear", filepath.Base(f), plain)
			}
		}
	}

	// The debugger sees the envelope.
	_, m := b.get(t, "/v1/workspaces/acme/events", "tok_sdebug_1234567890")
	if s := jsonText(t, m); strings.Contains(s, ssn) || !strings.Contains(s, "$kith_sealed") || !strings.Contains(s, `"name":"Ada"`) {
		t.Errorf("the log API shows %s", s)
	}
	_, m = b.get(t, "/v1/workspaces/acme/quarantine", "tok_sdebug_1234567890")
	if s := jsonText(t, m); strings.Contains(s, ssn) || !strings.Contains(s, "$kith_sealed") {
		t.Errorf("the quarantine shows %s", s)
	}

	// A profiles:read token sees the values.
	users := "/v1/spaces/acme/collections/users/profiles/user_id:u-1/"
	code, m := b.get(t, users+"traits", "tok_sdesk_1234567890")
	traits, _ := m["traits"].(map[string]any)
	if health, _ := traits["health"].(map[string]any); code != 200 || traits["ssn"] != ssn || health["blood"] != blood || traits["name"] != "Ada" {
		t.Errorf("traits: %d %v", code, m)
	}
	_, m = b.get(t, users+"traits/ssn/history", "tok_sdesk_1234567890")
	if s := jsonText(t, m); !strings.Contains(s, ssn) || strings.Contains(s, "$kith_sealed") {
		t.Errorf("trait history: %s", s)
	}
	_, m = b.get(t, users+"events", "tok_sdesk_1234567890")
	if s := jsonText(t, m); !strings.Contains(s, ssn) || strings.Contains(s, "$kith_sealed") {
		t.Errorf("profile events: %s", s)
	}
	// So does the person, in their access export.
	code, _, body := fetchRaw(t, b.srv, "/v1/workspaces/acme/privacy/profiles/user_id:u-1/export", "Authorization", "Bearer tok_sdpo_1234567890")
	if code != 200 || !strings.Contains(body, ssn) || !strings.Contains(body, blood) || strings.Contains(body, "$kith_sealed") {
		t.Errorf("export: %d %s", code, body)
	}
}

// jsonText is an answer as JSON text, to look for values in it.
func jsonText(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
