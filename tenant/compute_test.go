package tenant_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

// definitionsText lists a workspace's stored definitions as
// "kind name origin vN".
func (b *bundle) definitionsText(t *testing.T, ws string) []string {
	t.Helper()
	defs, err := b.st.Definitions(b.ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range defs {
		out = append(out, fmt.Sprintf("%s %s %s v%d", d.Kind, d.Name, d.Origin, d.Version))
	}
	return out
}

func (b *bundle) putAPI(t *testing.T, ws, kind, name, body string) {
	t.Helper()
	if _, err := b.st.PutDefinition(b.ctx, store.Definition{Workspace: ws, Kind: kind, Name: name, Body: json.RawMessage(body), Origin: "api"}); err != nil {
		t.Fatal(err)
	}
}

const computeConfig = `
workspaces:
  - slug: acme
    sources: [{slug: web, write_key: wk_web_1234567890}]
    computed_traits:
      - {name: orders, kind: count, events: [Order Completed]}
      - {name: ltv, kind: sum, events: [Order Completed], property: properties.total}
    audiences:
      - {name: buyers, condition: "computed.orders >= 1"}
  - slug: beta
    sources: [{slug: web, write_key: wk_beta_1234567890}]
    audiences:
      - {name: pros, condition: "traits.plan == 'pro'"}
`

// TestConfigDefinitionsSync: the file's computed traits and audiences are
// stored with origin config; on the next start, those it no longer
// declares are deleted, changed ones get a new version, unchanged ones
// stay as they are, and definitions made through the admin API are left
// alone.
func TestConfigDefinitionsSync(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.load(t, computeConfig)
	if got, want := b.definitionsText(t, "acme"), []string{"audience buyers config v1", "trait ltv config v1", "trait orders config v1"}; !slices.Equal(got, want) {
		t.Fatalf("acme definitions %q, want %q", got, want)
	}
	if got, want := b.definitionsText(t, "beta"), []string{"audience pros config v1"}; !slices.Equal(got, want) {
		t.Fatalf("beta definitions %q, want %q", got, want)
	}
	// Made through the admin API meanwhile; one of them reads a config trait.
	b.putAPI(t, "acme", store.DefinitionAudience, "big", `{"name":"big","condition":"computed.ltv > 100.0"}`)
	b.putAPI(t, "acme", store.DefinitionAudience, "api_only", `{"name":"api_only","condition":"true"}`)

	// Restarted with ltv's where changed, orders gone (and buyers changed
	// not to read it), beta no longer in the file.
	changed := `
workspaces:
  - slug: acme
    sources: [{slug: web, write_key: wk_web_1234567890}]
    computed_traits:
      - {name: ltv, kind: sum, events: [Order Completed], property: properties.total, where: "properties.total > 0"}
    audiences:
      - {name: buyers, condition: "computed.ltv > 0.0"}
`
	changedDefs := []string{"audience api_only api v1", "audience big api v1", "audience buyers config v2", "trait ltv config v2"}
	b.load(t, changed)
	if got := b.definitionsText(t, "acme"); !slices.Equal(got, changedDefs) {
		t.Fatalf("acme definitions after the change %q, want %q", got, changedDefs)
	}
	if got := b.definitionsText(t, "beta"); len(got) != 0 {
		t.Fatalf("beta's config definitions should be gone: %q", got)
	}
	// The same file again changes nothing.
	b.load(t, changed)
	if got := b.definitionsText(t, "acme"); !slices.Equal(got, changedDefs) {
		t.Fatalf("acme definitions after the same file %q, want %q", got, changedDefs)
	}
	// A file that declares an API-made audience takes it over.
	b.load(t, `
workspaces:
  - slug: acme
    sources: [{slug: web, write_key: wk_web_1234567890}]
    computed_traits:
      - {name: ltv, kind: sum, events: [Order Completed], property: properties.total, where: "properties.total > 0"}
    audiences:
      - {name: buyers, condition: "computed.ltv > 0.0"}
      - {name: api_only, condition: "true"}
`)
	if got, want := b.definitionsText(t, "acme"), []string{"audience api_only config v1", "audience big api v1", "audience buyers config v2", "trait ltv config v2"}; !slices.Equal(got, want) {
		t.Fatalf("acme definitions after taking api_only over %q, want %q", got, want)
	}
	// A file without workspaces leaves definitions alone.
	b.load(t, "")
	if got := b.definitionsText(t, "acme"); len(got) != 4 {
		t.Fatalf("definitions after a start without a config: %q", got)
	}
}

// TestConfigDefinitionsMustCompileWithAPIOnes: removing from the file a
// computed trait that an API-made audience reads fails the start, and
// changes nothing.
func TestConfigDefinitionsMustCompileWithAPIOnes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.load(t, computeConfig)
	b.putAPI(t, "acme", store.DefinitionAudience, "big", `{"name":"big","condition":"computed.ltv > 100.0"}`)
	cfg, err := config.Parse([]byte(`
workspaces:
  - slug: acme
    sources: [{slug: web, write_key: wk_web_1234567890}]
    computed_traits:
      - {name: orders, kind: count, events: [Order Completed]}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = tenant.Load(b.ctx, b.st, cfg)
	if err == nil || !strings.Contains(err.Error(), "admin API") || !strings.Contains(err.Error(), "ltv") {
		t.Fatalf("load: %v, want an error naming the unknown trait", err)
	}
	if got, want := b.definitionsText(t, "acme"), []string{"audience big api v1", "audience buyers config v1", "trait ltv config v1", "trait orders config v1"}; !slices.Equal(got, want) {
		t.Fatalf("definitions after the failed start %q, want %q", got, want)
	}
}

// TestConfigDefinitionErrors: bad definitions in the file are refused by
// config.Parse with their line, so they never reach the store.
func TestConfigDefinitionErrors(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`{name: x, kind: count, colour: red}`,
		`{name: x, condition: "computed.nope > 1"}`,
	} {
		key := "computed_traits"
		if strings.Contains(src, "condition") {
			key = "audiences"
		}
		_, err := config.Parse([]byte("workspaces:\n  - slug: acme\n    " + key + ":\n      - " + src + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 4") {
			t.Errorf("%s: %v, want an error at line 4", src, err)
		}
	}
}
