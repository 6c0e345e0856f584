package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/importer"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

// importSetup makes a data directory whose store holds workspace "acme"
// with source "crm", declared in a config file as a user would, and a
// directory for input files.
func importSetup(t *testing.T) (data, files string) {
	t.Helper()
	ctx := context.Background()
	data, files = t.TempDir(), t.TempDir()
	cfg, err := config.Load(writeFile(t, filepath.Join(files, "kith.yaml"), []byte(`workspaces:
  - slug: acme
    sources:
      - slug: crm
        write_key: wk_import_test_0123456789
`)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := tenant.Load(ctx, st, cfg); err != nil {
		t.Fatal(err)
	}
	return data, files
}

func writeFile(t *testing.T, path string, content []byte) string {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestImportCommand runs kith import on files: the summary, the rejects
// file, a second run that stores nothing new, and gzipped CSV with flags
// after the file.
func TestImportCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, files := importSetup(t)
	jsonl := writeFile(t, filepath.Join(files, "events.jsonl"), []byte(
		`{"type":"identify","userId":"u1","traits":{"plan":"pro"}}`+"\n"+
			`{"type":"track","userId":"u1"}`+"\n"+
			`{"type":"track","userId":"u1","event":"Signed Up"}`+"\n"+
			`{"type":"page","anonymousId":"a1"}`+"\n"))
	rejects := jsonl + ".rejects.jsonl"
	for i, want := range []string{
		"imported 3 events (0 duplicates) from 4 lines, 1 rejected → " + rejects + "\n",
		"imported 0 events (3 duplicates) from 4 lines, 1 rejected → " + rejects + "\n",
	} {
		var stdout, stderr bytes.Buffer
		err := runImport(ctx, []string{"--data", data, "--workspace", "acme", "--source", "crm", jsonl}, &stdout, &stderr)
		if err != nil || stdout.String() != want {
			t.Fatalf("run %d: %v, stdout %q, want %q; stderr %s", i+1, err, stdout.String(), want, stderr.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("run %d: progress on a stderr that is not a terminal: %q", i+1, stderr.String())
		}
		b, err := os.ReadFile(rejects)
		if err != nil {
			t.Fatal(err)
		}
		var r importer.Reject
		if err := json.Unmarshal(b, &r); err != nil || r.Line != 2 || r.Code != "missing_event" {
			t.Errorf("run %d: rejects file %s: %+v %v", i+1, b, r, err)
		}
	}

	csvPath := writeFile(t, filepath.Join(files, "contacts.csv.gz"), gzipped(t, "id,email,age\nc1,a@example.com,36\nc2,b@example.com,41\n"))
	var stdout bytes.Buffer
	err := runImport(ctx, []string{"--data", data, "--workspace", "acme", csvPath, "--source", "crm", "--map", "id=userId,email=traits.email,age=traits.age:number"}, &stdout, os.Stderr)
	if want := "imported 2 events (0 duplicates) from 2 rows, 0 rejected\n"; err != nil || stdout.String() != want {
		t.Fatalf("csv.gz: %v, stdout %q, want %q", err, stdout.String(), want)
	}
	if _, err := os.Stat(csvPath + ".rejects.jsonl"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an import without rejects leaves a rejects file: %v", err)
	}

	stdout.Reset()
	if err := runImport(ctx, []string{"--data", data, "--workspace", "acme", "--source", "crm", "--quiet", csvPath}, &stdout, os.Stderr); err != nil || stdout.Len() != 0 {
		t.Errorf("--quiet: %v, stdout %q", err, stdout.String())
	}
}

// TestImportErrors checks that bad invocations stop before importing, with
// a clear message, and usage errors exit with status 2.
func TestImportErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, files := importSetup(t)
	good := writeFile(t, filepath.Join(files, "ok.jsonl"), []byte(`{"type":"track","userId":"u","event":"E"}`+"\n"))
	txt := writeFile(t, filepath.Join(files, "events.txt"), []byte("x\n"))
	csvNoID := writeFile(t, filepath.Join(files, "noid.csv"), []byte("name\nAda\n"))
	base := []string{"--data", data}
	for _, c := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no workspace", []string{"--source", "crm", good}, true, "needs --workspace and --source"},
		{"no file", []string{"--workspace", "acme", "--source", "crm"}, true, "takes one FILE"},
		{"two files", []string{"--workspace", "acme", "--source", "crm", good, good}, true, "takes one FILE"},
		{"unknown extension", []string{"--workspace", "acme", "--source", "crm", txt}, true, "--format"},
		{"bad format", []string{"--workspace", "acme", "--source", "crm", "--format", "xml", good}, true, "--format must be"},
		{"stdin without format", []string{"--workspace", "acme", "--source", "crm", "-"}, true, "needs --format"},
		{"map for jsonl", []string{"--workspace", "acme", "--source", "crm", "--map", "a=userId", good}, true, "CSV files only"},
		{"bad map", []string{"--workspace", "acme", "--source", "crm", "--map", "a=b", "--format", "csv", good}, true, "--map"},
		{"bad batch", []string{"--workspace", "acme", "--source", "crm", "--batch", "0", good}, true, "--batch"},
		{"unknown workspace", []string{"--workspace", "nope", "--source", "crm", good}, false, `unknown workspace "nope"`},
		{"unknown source", []string{"--workspace", "acme", "--source", "nope", good}, false, `unknown source "nope"`},
		{"missing file", []string{"--workspace", "acme", "--source", "crm", filepath.Join(files, "absent.jsonl")}, false, "absent.jsonl"},
		{"not gzip", []string{"--workspace", "acme", "--source", "crm", writeFile(t, filepath.Join(files, "fake.jsonl.gz"), []byte("plain"))}, false, "not gzip"},
		{"CSV without identity", []string{"--workspace", "acme", "--source", "crm", csvNoID}, false, "no userId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runImport(ctx, append(base, c.args...), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), c.want) {
				t.Fatalf("error %v (stderr %q), want one mentioning %q", err, stderr.String(), c.want)
			}
			if got := exitCode(err) == 2; got != c.usage {
				t.Errorf("exit code %d for %v", exitCode(err), err)
			}
		})
	}
}

// TestImportWhileServing imports into the store of a running kith serve,
// which then serves the imported events.
func TestImportWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts a kith process")
	}
	t.Parallel()
	data, files := t.TempDir(), t.TempDir()
	cfg := writeFile(t, filepath.Join(files, "kith.yaml"), []byte(durableConfig))
	srv := startKith(t, "--data", data, "--config", cfg)
	var lines strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&lines, `{"type":"track","userId":"u%d","event":"Imported","properties":{"i":%d}}`+"\n", i%100, i)
	}
	path := writeFile(t, filepath.Join(files, "events.jsonl"), []byte(lines.String()))
	var stdout bytes.Buffer
	err := runImport(context.Background(), []string{"--data", data, "--workspace", durableWorkspace, "--source", "load", path}, &stdout, os.Stderr)
	if want := "imported 5000 events (0 duplicates) from 5000 lines, 0 rejected\n"; err != nil || stdout.String() != want {
		t.Fatalf("import: %v, stdout %q, want %q", err, stdout.String(), want)
	}
	if n := len(srv.readLog(durableWorkspace, durableToken)); n != 5000 {
		t.Errorf("the server reads %d events, want 5000", n)
	}
	srv.stop()
}
