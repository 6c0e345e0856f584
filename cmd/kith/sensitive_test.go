package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
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

// An import applies the Tracking API's ingestion gate: the events of a
// suppressed user id or email, and an event whose own consent denies a
// purpose the workspace requires for storage, are stored nowhere — not in
// the rejects file either — and counted in the summary; the others are
// stored.
func TestImportAppliesTheIngestionGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, files := t.TempDir(), t.TempDir()
	cfg, err := config.Parse([]byte("workspaces:\n  - slug: acme\n    consent: {store_requires: [analytics]}\n    sources: [{slug: crm, write_key: wk_gated_import_0123}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := tenant.Load(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Suppressed as the suppression API does: the keyed digests of the
	// normalized identifiers.
	ws, _ := reg.Workspace("acme")
	for _, id := range []store.Identifier{{Type: "user_id", Value: "u-erased"}, {Type: "email", Value: "Erased@Example.com"}} {
		id, ok := ws.Identity.Normalize(id)
		if !ok {
			t.Fatalf("%+v is not an identifier", id)
		}
		if err := st.Suppress(ctx, []store.Suppression{{Workspace: "acme", Digest: privacy.Digest(reg.Hash, id), Reason: "erasure", At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	in := writeFile(t, filepath.Join(files, "crm.jsonl"), []byte(strings.Join([]string{
		`{"type":"identify","userId":"u-erased","traits":{"name":"Erased Person"}}`,
		`{"type":"track","userId":"u-erased","event":"Order Completed"}`,
		`{"type":"identify","userId":"u-new-id","traits":{"email":" ERASED@example.com","name":"Erased Person"}}`,
		`{"type":"track","userId":"u-1","event":"Denied","context":{"consent":{"categoryPreferences":{"Analytics":false}}}}`,
		`{"type":"track","userId":"u-1","event":"Kept"}`,
		`{"type":"identify","userId":"u-1","traits":{"email":"ada@example.com"}}`,
		`{"type":"track","userId":"u-1"}`, // rejected: no event name
	}, "\n")+"\n"))
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"import", "--data", data, "--workspace", "acme", "--source", "crm", in}, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	rejects := in + ".rejects.jsonl"
	if want := "imported 2 events (0 duplicates) from 7 lines, 4 dropped (suppressed or no consent), 1 rejected → " + rejects + "\n"; out.String() != want {
		t.Errorf("summary %q, want %q", out.String(), want)
	}
	if b, err := os.ReadFile(rejects); err != nil || strings.Count(string(b), "\n") != 1 || strings.Contains(string(b), "rased") {
		t.Errorf("rejects file %q, %v; want line 7 only", b, err)
	}

	st, err = sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Read(ctx, store.LogQuery{Workspace: "acme", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+" "+e.UserID+" "+e.Name)
	}
	if want := []string{"track u-1 Kept", "identify u-1 "}; !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
	matches, _ := filepath.Glob(filepath.Join(data, "*"))
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("rased")) {
			t.Errorf("%s holds the suppressed person's data", filepath.Base(f))
		}
	}
}
