package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kithcdp/kith/httpapi"
)

// sdkDir fills a directory the way dist/umd of @segment/analytics-next
// would, plus files that must never be served: a dot file, a file in a
// subdirectory, and a file beside the directory.
func sdkDir(t *testing.T) string {
	t.Helper()
	parent := t.TempDir()
	dir := filepath.Join(parent, "umd")
	files := map[string]string{
		"standalone.js":                          "/* standalone */",
		"standalone.js.gz":                       gzipped(t, "/* standalone, gzipped */"),
		"index.js":                               "/* npm entry point */",
		"schemaFilter.bundle.0123abcd.js":        "/* chunk */",
		"schemaFilter.bundle.0123abcd.js.map":    `{"version":3}`,
		"ajs-destination.bundle.4567cdef.js":     "/* chunk without a gzip twin */",
		"queryString.bundle.89ab.js":             "/* chunk */",
		"queryString.bundle.89ab.js.gz":          gzipped(t, "/* chunk, gzipped */"),
		".secret.bundle.0000.js":                 "dot file",
		"nested/inner.bundle.1111.js":            "in a subdirectory",
		"dir.bundle.2222.js/placeholder.txt":     "a directory with a chunk's name",
		"../outside.bundle.3333.js":              "beside the directory",
		"../umd-private/standalone.bundle.44.js": "in a sibling directory",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// fetchRaw GETs path with the given headers, without Go's transparent
// gzip, and returns the status, the headers and the body as sent.
func fetchRaw(t *testing.T, srv *httptest.Server, path string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// jsonErrCode is the error code of a JSON error body, or "" for any other body.
func jsonErrCode(t *testing.T, h http.Header, body string) string {
	t.Helper()
	if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("error body is not JSON: %q", body)
	}
	return errCode(m)
}

// TestSDKFilesNotHosted: without Options.SDKDir, the CDN paths answer a
// JSON 404 that says so.
func TestSDKFilesNotHosted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, p := range []string{
		"/analytics.js/v1/" + webKey + "/analytics.min.js",
		"/analytics.js/v1/wk_unknown_123456/analytics.min.js",
		"/analytics-next/bundles/schemaFilter.bundle.0123abcd.js",
	} {
		code, h, body := fetchRaw(t, b.srv, p)
		if code != 404 || jsonErrCode(t, h, body) != "sdk_not_hosted" {
			t.Errorf("GET %s: %d %s %q, want 404 sdk_not_hosted", p, code, h.Get("Content-Type"), body)
		}
	}
}

// TestSDKFiles serves a directory like analytics-next's dist/umd at the
// paths of Segment's CDN: the right file, its gzip twin when accepted,
// caching per kind of file, and nothing outside the chunks it names.
func TestSDKFiles(t *testing.T) {
	t.Parallel()
	dir := sdkDir(t)
	b := setup(t, withOptions(func(_ *bundle, o *httpapi.Options) { o.SDKDir = dir }))
	snippet := "/analytics.js/v1/" + webKey + "/analytics.min.js"
	const (
		short   = "public, max-age=300"
		forever = "public, max-age=31536000, immutable"
		js      = "text/javascript; charset=utf-8"
	)
	cases := []struct {
		name, path, acceptEncoding string
		status                     int
		body, encoding, cache, typ string // for a 200
		code                       string // for a 404: the error code
	}{
		{"snippet script", snippet, "", 200, "/* standalone */", "", short, js, ""},
		{"snippet script, gzip accepted", snippet, "gzip, deflate, br", 200, gzipped(t, "/* standalone, gzipped */"), "gzip", short, js, ""},
		{"snippet script, gzip refused", snippet, "gzip;q=0, br", 200, "/* standalone */", "", short, js, ""},
		{"snippet script, gzip refused as 0.0", snippet, "br, gzip; q=0.0", 200, "/* standalone */", "", short, js, ""},
		{"snippet script, gzip weighted", snippet, "br;q=1, GZIP; q=0.5", 200, gzipped(t, "/* standalone, gzipped */"), "gzip", short, js, ""},
		{"snippet script, other source", "/analytics.js/v1/wk_shop_1234567890/analytics.min.js", "", 200, "/* standalone */", "", short, js, ""},
		{"snippet script, unknown key", "/analytics.js/v1/wk_unknown_123456/analytics.min.js", "", 404, "", "", "", "", "invalid_write_key"},
		{"chunk", "/analytics-next/bundles/schemaFilter.bundle.0123abcd.js", "", 200, "/* chunk */", "", forever, js, ""},
		{"chunk, gzip accepted", "/analytics-next/bundles/queryString.bundle.89ab.js", "gzip", 200, gzipped(t, "/* chunk, gzipped */"), "gzip", forever, js, ""},
		{"chunk, gzip accepted, no twin", "/analytics-next/bundles/ajs-destination.bundle.4567cdef.js", "gzip", 200, "/* chunk without a gzip twin */", "", forever, js, ""},
		{"source map", "/analytics-next/bundles/schemaFilter.bundle.0123abcd.js.map", "", 200, `{"version":3}`, "", forever, "application/json", ""},
		{"unknown chunk", "/analytics-next/bundles/nope.bundle.0123abcd.js", "", 404, "", "", "", "", "not_found"},
		{"not a chunk name", "/analytics-next/bundles/standalone.js", "", 404, "", "", "", "", "not_found"},
		{"npm entry point", "/analytics-next/bundles/index.js", "", 404, "", "", "", "", "not_found"},
		{"gzip twin by name", "/analytics-next/bundles/queryString.bundle.89ab.js.gz", "", 404, "", "", "", "", "not_found"},
		{"dot file", "/analytics-next/bundles/.secret.bundle.0000.js", "", 404, "", "", "", "", "not_found"},
		{"encoded dot file", "/analytics-next/bundles/%2esecret.bundle.0000.js", "", 404, "", "", "", "", "not_found"},
		{"a directory", "/analytics-next/bundles/dir.bundle.2222.js", "", 404, "", "", "", "", "not_found"},
		{"encoded slash into a subdirectory", "/analytics-next/bundles/nested%2Finner.bundle.1111.js", "", 404, "", "", "", "", "not_found"},
		{"encoded dot-dot", "/analytics-next/bundles/..%2Foutside.bundle.3333.js", "", 404, "", "", "", "", "not_found"},
		{"all encoded dot-dot", "/analytics-next/bundles/%2e%2e%2foutside.bundle.3333.js", "", 404, "", "", "", "", "not_found"},
		{"dot-dot into a sibling", "/analytics-next/bundles/..%2Fumd-private%2Fstandalone.bundle.44.js", "", 404, "", "", "", "", "not_found"},
		{"backslash", "/analytics-next/bundles/..%5Coutside.bundle.3333.js", "", 404, "", "", "", "", "not_found"},
		{"NUL byte", "/analytics-next/bundles/schemaFilter.bundle.0123abcd.js%00.js", "", 404, "", "", "", "", "not_found"},
		{"dot-dot in the write key", "/analytics.js/v1/..%2F..%2Fetc/analytics.min.js", "", 404, "", "", "", "", "invalid_write_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, h, body := fetchRaw(t, b.srv, c.path, "Accept-Encoding", c.acceptEncoding)
			if code != c.status {
				t.Fatalf("GET %s: %d %q, want %d", c.path, code, body, c.status)
			}
			if c.status != 200 {
				// Any 404 the mux gives on its own (a cleaned path
				// redirected, say) would not be JSON.
				if got := jsonErrCode(t, h, body); got != c.code {
					t.Errorf("GET %s: error code %q (%q), want %q", c.path, got, body, c.code)
				}
				if strings.Contains(body, "chunk") || strings.Contains(body, "directory") || strings.Contains(body, "dot file") {
					t.Errorf("GET %s: served a file: %q", c.path, body)
				}
				return
			}
			if body != c.body {
				t.Errorf("GET %s: body %q, want %q", c.path, body, c.body)
			}
			if got := h.Get("Content-Encoding"); got != c.encoding {
				t.Errorf("GET %s: Content-Encoding %q, want %q", c.path, got, c.encoding)
			}
			if got := h.Get("Cache-Control"); got != c.cache {
				t.Errorf("GET %s: Cache-Control %q, want %q", c.path, got, c.cache)
			}
			if got := h.Get("Content-Type"); got != c.typ {
				t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.typ)
			}
			if got := h.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("GET %s: Vary %q, want Accept-Encoding (one URL, two bodies)", c.path, got)
			}
			if h.Get("Last-Modified") == "" {
				t.Errorf("GET %s: no Last-Modified", c.path)
			}
		})
	}

	// Revalidation: a browser holding the file gets a 304.
	_, h, _ := fetchRaw(t, b.srv, snippet)
	if code, _, body := fetchRaw(t, b.srv, snippet, "If-Modified-Since", h.Get("Last-Modified")); code != 304 || body != "" {
		t.Errorf("conditional GET: %d %q, want 304 and no body", code, body)
	}
}
