package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// rotate calls a rotation endpoint with the admin token and returns the
// new secret.
func rotate(t *testing.T, b *bundle, path string) (string, map[string]any) {
	t.Helper()
	code, m := b.call(t, "POST", path, adminToken, "")
	secret, _ := m["secret"].(string)
	if code != 200 || secret == "" {
		t.Fatalf("POST %s: %d %v", path, code, m)
	}
	return secret, m
}

func TestRotateTokenAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const events = "/v1/workspaces/acme/events"
	rotatePath := "/v1/workspaces/acme/tokens/debugger/rotate"

	// Default grace: the old token keeps working for 24 hours.
	first, m := rotate(t, b, rotatePath)
	until, err := time.Parse(time.RFC3339Nano, m["previous_valid_until"].(string))
	if err != nil || m["grace"] != "24h0m0s" || m["token"] != "debugger" || m["workspace"] != "acme" ||
		until.Sub(time.Now().Add(24*time.Hour)).Abs() > time.Minute {
		t.Fatalf("rotation answer %v (%v)", m, err)
	}
	for _, tok := range []string{first, debugToken} {
		if code, m := b.get(t, events, tok); code != 200 {
			t.Fatalf("token %q during the grace period: %d %v", tok, code, m)
		}
	}
	// grace=0 revokes the old one at once.
	second, m := rotate(t, b, rotatePath+"?grace=0")
	if _, ok := m["previous_valid_until"]; ok {
		t.Errorf("grace 0 answered a previous_valid_until: %v", m)
	}
	if code, _ := b.get(t, events, first); code != 401 {
		t.Errorf("the token rotated out with grace 0: %d, want 401", code)
	}
	if code, _ := b.get(t, events, second); code != 200 {
		t.Errorf("the new token: %d", code)
	}

	// The answer is not cached.
	req, _ := http.NewRequest("POST", b.srv.URL+rotatePath+"?grace=1h", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if code, _, h := do(t, req); code != 200 || h.Get("Cache-Control") != "no-store" {
		t.Errorf("%d, Cache-Control %q", code, h.Get("Cache-Control"))
	}

	for _, c := range []struct {
		path string
		code int
		err  string
	}{
		{rotatePath + "?grace=-1h", 400, "invalid_grace"},
		{rotatePath + "?grace=soon", 400, "invalid_grace"},
		{rotatePath + "?grace=721h", 400, "invalid_grace"},
		{"/v1/workspaces/acme/tokens/nobody/rotate", 404, "token_not_found"},
		{"/v1/workspaces/acme/sources/nowhere/write-key/rotate", 404, "source_not_found"},
		{"/v1/workspaces/other/tokens/debugger/rotate", 404, "workspace_not_found"},
	} {
		if code, m := b.call(t, "POST", c.path, adminToken, ""); code != c.code || errCode(m) != c.err {
			t.Errorf("POST %s: %d %v, want %d %s", c.path, code, m, c.code, c.err)
		}
	}
	if code, m := b.call(t, "POST", rotatePath, debugToken, ""); code != 401 {
		t.Errorf("a rotated-out token rotating: %d %v", code, m)
	}
	if code, m := b.call(t, "POST", rotatePath, second, ""); code != 403 || errCode(m) != "forbidden" {
		t.Errorf("a debug token rotating: %d %v", code, m)
	}
}

func TestRotateWriteKeyAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key, m := rotate(t, b, "/v1/workspaces/acme/sources/web/write-key/rotate?grace=0")
	if m["source"] != "web" || !strings.HasPrefix(key, "wk_") {
		t.Fatalf("rotation answer %v", m)
	}
	if code, m, _ := b.post(t, "/v1/track", key, `{"userId":"u","event":"E"}`); code != 200 {
		t.Errorf("the new write key: %d %v", code, m)
	}
	if code, m, _ := b.post(t, "/v1/track", webKey, `{"userId":"u","event":"E"}`); code != 401 || errCode(m) != "invalid_write_key" {
		t.Errorf("the old write key after grace 0: %d %v", code, m)
	}

	// Both rotations are in the audit log, without the secret.
	rotate(t, b, "/v1/workspaces/acme/tokens/reader/rotate")
	_, m = b.get(t, "/v1/workspaces/acme/audit", adminToken)
	var got []string
	for _, e := range items(m) {
		got = append(got, e["actor"].(string)+" "+e["action"].(string)+" "+e["target"].(string))
	}
	want := "admin write_key.rotate source:web|admin token.rotate token:reader"
	if strings.Join(got, "|") != want {
		t.Errorf("audit entries %q, want %q", got, want)
	}
	if s := jsonText(t, m); strings.Contains(s, key) {
		t.Error("the audit log holds the new write key")
	}
}
