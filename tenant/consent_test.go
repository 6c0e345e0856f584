package tenant_test

import (
	"context"
	"slices"
	"testing"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

// TestConsentModel: a workspace's purposes and store_requires reach the
// registry and survive a restart that reads them back from the store
// (tenant.FromStore, as a node without the config file does); a workspace
// that declares none gets the default purposes.
func TestConsentModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Parse([]byte(`
workspaces:
  - slug: acme
    sources: [{slug: web, write_key: wk_web_1234567890}]
    consent:
      store_requires: [analytics]
      purposes:
        - name: loyalty
          description: Points and rewards.
          lawful_basis: contract
          categories: [Loyalty]
  - slug: beta
    sources: [{slug: web, write_key: wk_beta_1234567890}]
`))
	if err != nil {
		t.Fatal(err)
	}
	loaded, _, err := tenant.Load(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := tenant.FromStore(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for name, reg := range map[string]*tenant.Registry{"loaded": loaded, "restarted": restarted} {
		acme, _ := reg.Workspace("acme")
		if p, ok := acme.Purposes.Lookup("Loyalty"); !ok || p.Name != "loyalty" || !slices.Equal(acme.StoreRequires, []string{"analytics"}) {
			t.Errorf("%s: acme's loyalty purpose %+v %v, store_requires %q", name, p, ok, acme.StoreRequires)
		}
		if _, ok := acme.Purposes.Lookup("analytics"); !ok {
			t.Errorf("%s: acme lost the default purposes it did not override", name)
		}
		beta, _ := reg.Workspace("beta")
		if _, ok := beta.Purposes.Lookup("loyalty"); ok || beta.Purposes == nil || len(beta.StoreRequires) != 0 {
			t.Errorf("%s: beta has acme's model", name)
		}
	}
}
