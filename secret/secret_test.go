package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kithcdp/kith/secret"
)

func box(t *testing.T, key string) *secret.Box {
	t.Helper()
	b, err := secret.New([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	b := box(t, "0123456789abcdef0123456789abcdef")
	scope := secret.Scope("acme", "crm")
	s := b.Seal(scope, "whsec_x")
	if !secret.IsSealed(s) || strings.Contains(s, "whsec_x") {
		t.Fatalf("sealed %q", s)
	}
	if s2 := b.Seal(scope, "whsec_x"); s2 == s {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	if p, err := b.Open(scope, s); err != nil || p != "whsec_x" {
		t.Fatalf("Open = %q, %v", p, err)
	}
	if _, err := b.Open(secret.Scope("acme", "other"), s); err == nil {
		t.Error("a sealed value opened for another destination")
	}
	if _, err := box(t, "another server secret of 32 bytes").Open(scope, s); err == nil {
		t.Error("a sealed value opened under another server secret")
	}
	for _, bad := range []string{"", "kith:v1:", "kith:v1:abcd", "kith:v1:abcd:!!", "kith:v1:abcd:AAAA"} {
		if _, err := b.Open(scope, bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if got, want := b.Redact(s), "…"+b.Fingerprint("whsec_x"); got != want || b.Redact("whsec_x") != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if _, err := secret.New([]byte("short")); err == nil {
		t.Error("a short server secret was accepted")
	}
}

func TestConfigs(t *testing.T) {
	t.Parallel()
	b := box(t, "0123456789abcdef0123456789abcdef")
	scope := secret.Scope("acme", "hook")
	plain := json.RawMessage(`{"url":"https://h.example.com","secrets":["whsec_one","whsec_two"],"batch":12345678901234567890,"headers":{"Authorization":"Bearer t0k"}}`)
	sealed, err := b.SealConfig(scope, "webhook", plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"whsec_one", "whsec_two", "t0k"} {
		if bytes.Contains(sealed, []byte(s)) {
			t.Errorf("sealed config holds %q: %s", s, sealed)
		}
	}
	if !bytes.Contains(sealed, []byte("12345678901234567890")) || !bytes.Contains(sealed, []byte("https://h.example.com")) {
		t.Errorf("sealed config lost a plain field: %s", sealed)
	}
	opened, err := b.OpenConfig(scope, "webhook", sealed)
	if err != nil {
		t.Fatal(err)
	}
	var a, c any
	_ = json.Unmarshal(plain, &a)
	_ = json.Unmarshal(opened, &c)
	if ja, _ := json.Marshal(a); string(ja) != func() string { jc, _ := json.Marshal(c); return string(jc) }() {
		t.Errorf("opened %s, want %s", opened, plain)
	}
	red := b.RedactConfig("webhook", sealed)
	if bytes.Contains(red, []byte("kith:v1:")) || !bytes.Contains(red, []byte("…")) {
		t.Errorf("redacted %s", red)
	}
	// The redacted form sent back keeps the stored secret; a new one is taken.
	var m map[string]any
	_ = json.Unmarshal(red, &m)
	m["secrets"] = []any{m["secrets"].([]any)[1], "whsec_three"}
	back, _ := json.Marshal(m)
	res, err := b.Resolve(scope, "webhook", back, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(res, []byte(`["whsec_two","whsec_three"]`)) || !bytes.Contains(res, []byte("Bearer t0k")) {
		t.Errorf("resolved %s", res)
	}
	if _, err := b.Resolve(scope, "webhook", []byte(`{"secrets":["…00000000"]}`), sealed); err == nil {
		t.Error("an unknown fingerprint was resolved")
	}
	if _, err := b.SealConfig(scope, "webhook", sealed); !errors.Is(err, secret.ErrSealedInput) {
		t.Errorf("sealing a sealed config: %v", err)
	}
	// Types without secrets, and configs that are not objects.
	if out, err := b.SealConfig(scope, "audience_export", []byte(`{"dir":"/x"}`)); err != nil || string(out) != `{"dir":"/x"}` {
		t.Errorf("export: %s, %v", out, err)
	}
	if _, err := b.SealConfig(scope, "forward", []byte(`[1]`)); err == nil {
		t.Error("a list was taken as a config")
	}
	if string(b.RedactConfig("forward", []byte(`nope`))) != "null" {
		t.Error("a broken config was not redacted to null")
	}
}
