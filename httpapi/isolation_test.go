package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/config"
)

// publicRoutes are the routes that take no access token: the Tracking API
// and what browser libraries load (write keys, which are public in a web
// page, or nothing). Every other route must check a token and a scope.
var publicRoutes = map[string]bool{
	"POST /v1/{call}":                                  true,
	"OPTIONS /v1/{call}":                               true,
	"POST /beacon/v1/batch":                            true,
	"OPTIONS /beacon/v1/batch":                         true,
	"GET /v1/projects/{writeKey}/settings":             true,
	"OPTIONS /v1/projects/{writeKey}/settings":         true,
	"GET /sourceConfig":                                true,
	"OPTIONS /sourceConfig":                            true,
	"GET /sourceConfig/{$}":                            true,
	"OPTIONS /sourceConfig/{$}":                        true,
	"GET /analytics.js/v1/{writeKey}/analytics.min.js": true,
	"GET /analytics-next/bundles/{file}":               true,
}

const isolationConfig = `
workspaces:
  - slug: acme
    sources:
      - {slug: web, write_key: wk_iso_acme_1234567890}
    tokens:
      - {name: debugger, token: tok_iso_debug_1234567890, scopes: [debug]}
      - {name: desk, token: tok_iso_desk_1234567890, scopes: [profiles:read]}
      - {name: dpo, token: tok_iso_dpo_1234567890, scopes: [privacy]}
      - {name: ops, token: tok_iso_admin_1234567890, scopes: [admin]}
  - slug: globex
    sources:
      - {slug: web, write_key: wk_iso_globex_1234567890}
    tokens:
      - {name: ops, token: tok_iso_globex_1234567890, scopes: [admin]}
`

// pathValues fill a pattern's wildcards: a workspace, a profile that
// exists in neither workspace, and "x" for any other name.
var pathValues = map[string]string{
	"collection": "users",
	"id":         "user_id:nobody",
	"key":        "ssn",
	"$":          "",
}

var wildcard = regexp.MustCompile(`\{([^}]*)\}`)

// requestPath turns a pattern into a method and a path in workspace ws.
func requestPath(pattern, ws string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = wildcard.ReplaceAllStringFunc(path, func(w string) string {
		name := strings.TrimSuffix(strings.Trim(w, "{}"), "...")
		if name == "workspace" {
			return ws
		}
		if v, ok := pathValues[name]; ok {
			return v
		}
		return "x"
	})
	return method, path
}

// TestEveryRouteIsIsolatedAndScoped walks every route the server registers
// and checks, for each one that is not public: no token gets 401; another
// workspace's token gets 404 with exactly the answer of a workspace that
// does not exist; at least one of the single-scope tokens (debug,
// profiles:read, privacy) gets 403, and a route that is not a GET refuses
// the debug token (debug only reads); the admin token gets through. A
// route added without a scope check fails here.
func TestEveryRouteIsIsolatedAndScoped(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(isolationConfig))
	srv, api := b.srv, b.api

	// send makes one request; the body is read only for an error, so that
	// a stream answers without being waited for.
	send := func(t *testing.T, method, path, token string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 400 {
			return resp.StatusCode, ""
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	const admin, foreign = "tok_iso_admin_1234567890", "tok_iso_globex_1234567890"
	single := map[string]string{
		config.ScopeDebug:        "tok_iso_debug_1234567890",
		config.ScopeProfilesRead: "tok_iso_desk_1234567890",
		config.ScopePrivacy:      "tok_iso_dpo_1234567890",
	}
	patterns := api.Patterns()
	if len(patterns) < 40 {
		t.Fatalf("only %d routes registered: %q", len(patterns), patterns)
	}
	for _, pattern := range patterns {
		if publicRoutes[pattern] {
			continue
		}
		t.Run(pattern, func(t *testing.T) {
			method, path := requestPath(pattern, "acme")
			if !strings.Contains(pattern, "{workspace}") {
				t.Fatalf("the route names no {workspace}: a token cannot be checked against it")
			}
			if code, body := send(t, method, path, ""); code != 401 || !strings.Contains(body, `"missing_token"`) {
				t.Errorf("without a token: %d %s, want 401 missing_token", code, body)
			}
			_, missingPath := requestPath(pattern, "nowhere")
			wantCode, wantBody := send(t, method, missingPath, admin)
			if wantCode != 404 {
				t.Errorf("a workspace that does not exist: %d %s, want 404", wantCode, wantBody)
			}
			if code, body := send(t, method, missingPath, foreign); code != wantCode || body != wantBody {
				t.Errorf("another workspace's token, workspace that does not exist: %d %s, want %d %s", code, body, wantCode, wantBody)
			}
			if code, body := send(t, method, path, foreign); code != wantCode || body != wantBody {
				t.Errorf("another workspace's token: %d %s, want the answer of a missing workspace: %d %s", code, body, wantCode, wantBody)
			}
			refused := 0
			for scope, token := range single {
				code, body := send(t, method, path, token)
				switch {
				case code == 403 && strings.Contains(body, `"forbidden"`):
					refused++
				case code == 401 || code == 403 || strings.Contains(body, `"workspace_not_found"`):
					t.Errorf("a %s token: %d %s", scope, code, body)
				case scope == config.ScopeDebug && method != http.MethodGet:
					t.Errorf("a debug token may only read, but got %d on a %s", code, method)
				}
			}
			if refused == 0 {
				t.Errorf("no single-scope token was refused (403): the route checks no scope")
			}
			if code, body := send(t, method, path, admin); code == 401 || code == 403 || strings.Contains(body, `"workspace_not_found"`) {
				t.Errorf("the admin token: %d %s", code, body)
			}
		})
	}
}
