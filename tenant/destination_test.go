package tenant_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

const (
	hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	fwdKey     = "wk_receiving_source_key_42"
)

func destinationConfig(secret string, withForward bool) string {
	src := `
workspaces:
  - slug: acme
    sources: [{slug: web, write_key: wk_web_1234567890}]
    consent: {deliver_without_consent: true}
    destinations:
      - name: hook
        type: webhook
        events: {types: [track]}
        purposes: [analytics]
        config: {url: "https://hooks.example.com/k", secrets: ["` + secret + `"], headers: {Authorization: "Bearer hdr-secret-1"}}
`
	if withForward {
		src += `      - {name: fwd, type: forward, events: {}, strictly_necessary: true, config: {url: "https://k2.example.com", write_key: "` + fwdKey + `"}}
`
	}
	return src + `  - slug: beta
    sources: [{slug: web, write_key: wk_beta_1234567890}]
`
}

// TestConfigDestinations: the file's destinations are stored with origin
// config and their secrets sealed (the definitions table holds none in
// plain text), opened again for the sender; a restart with the same file
// changes nothing, a changed secret makes a new version, a dropped
// destination is deleted, one made through the API stays; the consent
// setting reaches the workspace.
func TestConfigDestinations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	load := func(src string) *tenant.Registry {
		t.Helper()
		cfg, err := config.Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		reg, _, err := tenant.Load(ctx, st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	reg := load(destinationConfig(hookSecret, true))
	if w, _ := reg.Workspace("acme"); !w.DeliverWithoutConsent {
		t.Error("acme: deliver_without_consent did not reach the workspace")
	}
	if w, _ := reg.Workspace("beta"); w.DeliverWithoutConsent {
		t.Error("beta: deliver_without_consent is on by default")
	}

	// The table itself holds no secret.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var bodies string
	if err := db.QueryRow(`SELECT COUNT(*), group_concat(body, ' ') FROM definitions WHERE kind = 'destination'`).Scan(&n, &bodies); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d destinations stored, want 2", n)
	}
	for _, s := range []string{hookSecret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", fwdKey, "hdr-secret-1"} {
		if strings.Contains(bodies, s) {
			t.Errorf("the definitions table holds the secret %q: %s", s, bodies)
		}
	}
	if !strings.Contains(bodies, "kith:v1:") || !strings.Contains(bodies, "https://hooks.example.com/k") {
		t.Errorf("stored bodies: %s", bodies)
	}

	// The sender's view: opened.
	defs := destinations(t, st, "acme")
	var hook delivery.Definition
	if err := json.Unmarshal(defs["hook"].Body, &hook); err != nil {
		t.Fatal(err)
	}
	plain, err := reg.OpenDestination("acme", hook)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(plain), hookSecret) || !strings.Contains(string(plain), "Bearer hdr-secret-1") {
		t.Errorf("opened config %s", plain)
	}
	if red := reg.RedactDestination(defs["hook"].Body); strings.Contains(string(red), "kith:v1:") || strings.Contains(string(red), hookSecret) || !strings.Contains(string(red), "…") {
		t.Errorf("redacted %s", red)
	}
	// A sealed body copied to another destination does not open there.
	hook.Name = "other"
	if _, err := reg.OpenDestination("acme", hook); err == nil {
		t.Error("a secret opened under another destination's name")
	}

	// Same file again: nothing changes (no new version, same sealed text).
	reg = load(destinationConfig(hookSecret, true))
	again := destinations(t, st, "acme")
	if again["hook"].Version != 1 || string(again["hook"].Body) != string(defs["hook"].Body) {
		t.Errorf("an unchanged destination changed on restart: v%d", again["hook"].Version)
	}

	// An API-made destination stays; a dropped config one goes; a new
	// secret is a new version.
	if _, err := st.PutDefinition(ctx, store.Definition{Workspace: "acme", Kind: store.DefinitionDestination, Name: "mine", Origin: "api",
		Body: json.RawMessage(`{"name":"mine","type":"nats","events":{},"strictly_necessary":true,"config":{"subject":"a.b"}}`)}); err != nil {
		t.Fatal(err)
	}
	other := "whsec_" + strings.Repeat("QUJD", 8)
	load(destinationConfig(other, false))
	final := destinations(t, st, "acme")
	if _, ok := final["fwd"]; ok {
		t.Error("the dropped config destination is still stored")
	}
	if final["mine"].Origin != "api" {
		t.Error("the API's destination was removed")
	}
	if final["hook"].Version != 2 {
		t.Errorf("hook version %d after a new secret, want 2", final["hook"].Version)
	}
}

func destinations(t *testing.T, st store.Store, ws string) map[string]store.Definition {
	t.Helper()
	defs, err := st.Definitions(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Definition{}
	for _, d := range defs {
		if d.Kind == store.DefinitionDestination {
			out[d.Name] = d
		}
	}
	return out
}
