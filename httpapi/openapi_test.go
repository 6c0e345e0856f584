package httpapi_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPIPathsExist: every path and method docs/openapi.yaml describes
// is served (it does not fall through to the not_found handler).
func TestOpenAPIPathsExist(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || len(doc.Paths) == 0 {
		t.Fatalf("docs/openapi.yaml: openapi %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}
	b := setup(t)
	fill := strings.NewReplacer("{workspace}", "acme", "{collection}", "users", "{id}", "user_id:nobody", "{key}", "k", "{action}", "block")
	for path, methods := range doc.Paths {
		for method := range methods {
			p := fill.Replace(path)
			if strings.Contains(path, "/quarantine/{id}") {
				p = strings.Replace(path, "{workspace}", "acme", 1)
				p = strings.Replace(p, "{id}", "1", 1)
			}
			if strings.HasSuffix(p, "/stream") {
				continue // an endless response; served, see TestLiveStream
			}
			req, _ := http.NewRequest(strings.ToUpper(method), b.srv.URL+p, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+adminToken)
			code, m, _ := do(t, req)
			if code == 404 && errCode(m) == "not_found" && !strings.Contains(p, "quarantine/1") {
				t.Errorf("%s %s is documented but not served", strings.ToUpper(method), path)
			}
		}
	}
}
