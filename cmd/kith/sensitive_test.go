package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

// An import, and a correction through kith privacy, encrypt sensitive
// traits as the Tracking API does.
func TestImportAndCorrectionSealSensitiveTraits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, files := t.TempDir(), t.TempDir()
	cfg, err := config.Parse([]byte("workspaces:\n  - slug: acme\n    sensitive_traits: [ssn]\n    sources: [{slug: crm, write_key: wk_sealed_import_0123}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tenant.Load(ctx, st, cfg); err != nil {
		t.Fatal(err)
	}
	st.Close()
	in := writeFile(t, filepath.Join(files, "people.jsonl"), []byte(`{"type":"identify","userId":"u-1","traits":{"ssn":"123-45-6789","name":"Ada"}}`+"\n"))
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"import", "--data", data, "--workspace", "acme", "--source", "crm", "--quiet", in}, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	// A correction (a data-subject request) carries trait values too.
	if err := run(ctx, []string{"privacy", "request", "--data", data, "--workspace", "acme", "--type", "rectification",
		"--identifier", "user_id:u-1", "--traits", `{"ssn":"987-65-4321"}`}, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	matches, _ := filepath.Glob(filepath.Join(data, "*"))
	stored := false
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("123-45-6789")) || bytes.Contains(b, []byte("987-65-4321")) {
			t.Errorf("%s holds an ssn in the clear", filepath.Base(f))
		}
		stored = stored || bytes.Contains(b, []byte(`"name":"Ada"`))
	}
	if !stored {
		t.Error("the event is in no file of the store")
	}
}
