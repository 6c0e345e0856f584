package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

func TestTokenRotate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	st, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	_, keys, err := tenant.Load(ctx, st, nil) // the default workspace, source and admin token
	st.Close()
	if err != nil || len(keys) != 1 {
		t.Fatalf("first start: %v %v", keys, err)
	}

	var out, errOut bytes.Buffer
	err = run(ctx, []string{"token", "rotate", "--data", data, "--workspace", "default", "--name", "admin", "--grace", "0"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	newToken := regexp.MustCompile(`tok_[a-z2-7]{32}`).FindString(out.String())
	if newToken == "" || !strings.Contains(out.String(), "The old one no longer works.") {
		t.Fatalf("output:\n%s", out.String())
	}
	out.Reset()
	err = run(ctx, []string{"token", "rotate", "--data", data, "--workspace", "default", "--source", "default"}, &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "The old one works until ") {
		t.Fatalf("write key: %v\n%s%s", err, out.String(), errOut.String())
	}
	newKey := regexp.MustCompile(`wk_[a-z2-7]{32}`).FindString(out.String())

	st, err = sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg, err := tenant.FromStore(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.Authenticate(keys[0].AdminToken); ok {
		t.Error("the old admin token still works after --grace 0")
	}
	if p, ok := reg.Authenticate(newToken); !ok || p.Name != "admin" {
		t.Error("the new admin token does not work")
	}
	for _, k := range []string{newKey, keys[0].Key} {
		if _, ok := reg.SourceForKey(k); !ok {
			t.Errorf("write key %q does not work during the grace period", k)
		}
	}
	es, err := st.Audit(ctx, "default", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Actor+" "+e.Action+" "+e.Target+" "+string(e.Details))
	}
	if want := `cli token.rotate token:admin {"grace":"0s"}|cli write_key.rotate source:default {"grace":"24h0m0s"}`; strings.Join(got, "|") != want {
		t.Errorf("audit %q, want %q", got, want)
	}
}

func TestTokenRotateErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	st, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tenant.Load(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, args := range [][]string{
		{"token"},
		{"token", "revoke"},
		{"token", "rotate", "--data", data, "--name", "admin"},
		{"token", "rotate", "--data", data, "--workspace", "default"},
		{"token", "rotate", "--data", data, "--workspace", "default", "--name", "admin", "--source", "default"},
		{"token", "rotate", "--data", data, "--workspace", "default", "--name", "nobody"},
		{"token", "rotate", "--data", data, "--workspace", "default", "--source", "nowhere"},
		{"token", "rotate", "--data", data, "--workspace", "nope", "--name", "admin"},
		{"token", "rotate", "--data", data, "--workspace", "default", "--name", "admin", "extra"},
		{"token", "rotate", "--data", data, "--workspace", "default", "--name", "admin", "--grace", "-1h"},
		{"token", "rotate", "--data", data, "--workspace", "default", "--name", "admin", "--grace", "9999h"},
	} {
		var out, errOut bytes.Buffer
		if err := run(ctx, args, &out, &errOut); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
		if strings.Contains(out.String(), "tok_") || strings.Contains(out.String(), "wk_") {
			t.Errorf("%q printed a token: %s", args, out.String())
		}
	}
}
