package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestSourceConfig: GET /sourceConfig answers RudderStack's JavaScript SDK
// with a source of no destinations, or a JSON error it can log.
func TestSourceConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// What @rudderstack/analytics-js v3 asks for, configUrl set to Kith.
	const sdkQuery = "?p=npm&v=3.34.1&build=modern&lockIntegrationsVersion=true&lockPluginsVersion=true"
	cases := []struct {
		name, path, basic, origin string
		status                    int
		code                      string // the error code, for a status other than 200
		source                    string // source.id, for a 200
	}{
		{"the SDK's request", "/sourceConfig/" + sdkQuery + "&writeKey=" + webKey, webKey, "", 200, "", "acme/web"},
		{"without the trailing slash", "/sourceConfig?writeKey=" + webKey, "", "", 200, "", "acme/web"},
		{"key in the query only", "/sourceConfig/" + sdkQuery + "&writeKey=" + webKey, "", "", 200, "", "acme/web"},
		{"key in the header only", "/sourceConfig/" + sdkQuery, webKey, "", 200, "", "acme/web"},
		{"the header wins", "/sourceConfig/?writeKey=wk_unknown_123456", "wk_other_1234567890", "", 200, "", "other/app"},
		{"the header wins, when wrong too", "/sourceConfig/?writeKey=" + webKey, "wk_unknown_123456", "", 401, "invalid_write_key", ""},
		{"empty header user, key in the query", "/sourceConfig/?writeKey=" + webKey, "-", "", 200, "", "acme/web"},
		{"no key", "/sourceConfig/" + sdkQuery, "", "", 401, "missing_write_key", ""},
		{"empty key", "/sourceConfig/?writeKey=", "", "", 401, "missing_write_key", ""},
		{"unknown key", "/sourceConfig/?writeKey=wk_unknown_123456", "", "", 401, "invalid_write_key", ""},
		{"allowed origin", "/sourceConfig/?writeKey=wk_shop_1234567890", "", "https://shop.example.com", 200, "", "acme/shop"},
		{"disallowed origin", "/sourceConfig/?writeKey=wk_shop_1234567890", "", "https://evil.example", 403, "origin_not_allowed", ""},
		{"any origin for a source without a list", "/sourceConfig/?writeKey=" + webKey, "", "https://evil.example", 200, "", "acme/web"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest("GET", b.srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			switch c.basic {
			case "":
			case "-":
				req.SetBasicAuth("", "")
			default:
				req.SetBasicAuth(c.basic, "")
			}
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			code, m, h := do(t, req)
			if code != c.status {
				t.Fatalf("GET %s: %d %v, want %d", c.path, code, m, c.status)
			}
			if c.origin != "" && h.Get("Access-Control-Allow-Origin") != c.origin {
				// Also on errors, so the page's SDK can read why.
				t.Errorf("Access-Control-Allow-Origin %q, want %q", h.Get("Access-Control-Allow-Origin"), c.origin)
			}
			if code != 200 {
				if errCode(m) != c.code {
					t.Errorf("error %v, want code %q", m, c.code)
				}
				return
			}
			if got := h.Get("Cache-Control"); got != "private, max-age=60" {
				t.Errorf("Cache-Control %q: the document is per key, no shared cache may keep it", got)
			}
			checkSourceConfig(t, m, c.source)
		})
	}

	// The SDK's request carries an Authorization header: browsers ask first.
	req, _ := http.NewRequest("OPTIONS", b.srv.URL+"/sourceConfig/?writeKey="+webKey, nil)
	req.Header.Set("Origin", "https://www.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	code, _, h := do(t, req)
	if code != 204 || h.Get("Access-Control-Allow-Origin") != "https://www.example.com" || h.Get("Access-Control-Allow-Headers") != "authorization" {
		t.Errorf("preflight: %d %v", code, h)
	}
}

// checkSourceConfig asserts the shape the SDK checks before it starts
// (source.id, source.config an object, source.destinations an array,
// source.enabled) and that it reports nothing to RudderStack's metrics.
func checkSourceConfig(t *testing.T, doc map[string]any, id string) {
	t.Helper()
	src, _ := doc["source"].(map[string]any)
	ws, slug, _ := strings.Cut(id, "/")
	if doc["isHosted"] != false || src == nil || src["id"] != id || src["name"] != slug || src["workspaceId"] != ws || src["enabled"] != true {
		t.Errorf("document %v, want source %s enabled", doc, id)
	}
	if dests, ok := src["destinations"].([]any); !ok || len(dests) != 0 {
		t.Errorf("source.destinations = %#v, want an empty array", src["destinations"])
	}
	if _, ok := src["config"].(map[string]any); !ok {
		t.Errorf("source.config = %#v, want an object", src["config"])
	}
	for _, k := range []string{"errors", "metrics"} {
		if v := lookup(src, "config.statsCollection."+k+".enabled"); v != false {
			t.Errorf("source.config.statsCollection.%s.enabled = %v, want false", k, v)
		}
	}
}

// lookup follows a dotted path through decoded JSON objects.
func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}
