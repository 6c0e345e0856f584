package secret_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kithcdp/kith/secret"
)

func traitKeys(t testing.TB, key string) *secret.TraitKeys {
	t.Helper()
	k, err := secret.NewTraitKeys([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func paths(t testing.TB, ps ...string) *secret.TraitPaths {
	t.Helper()
	tp, err := secret.CompileTraitPaths(ps)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestSealTraits(t *testing.T) {
	t.Parallel()
	k := traitKeys(t, "0123456789abcdef0123456789abcdef")
	tp := paths(t, "ssn", "health.*", "address.street")
	tests := []struct {
		name, in string
		sealed   []string // plaintexts that must be gone
		kept     string   // what the output still holds as written
	}{
		{"identify traits", `{"type":"identify","userId":"u1","traits":{"ssn":"123-45-6789","plan":"pro","n":1.50}}`,
			[]string{"123-45-6789"}, `"plan":"pro","n":1.50`},
		{"context traits", `{"type":"track","event":"E","context":{"traits":{"ssn":"987-65-4321"}},"properties":{"ssn":"kept"}}`,
			[]string{"987-65-4321"}, `"properties":{"ssn":"kept"}`},
		{"wildcard", `{"traits":{"health":{"blood":"AB-","allergies":["nuts"]},"healthy":true}}`,
			[]string{"AB-", "nuts"}, `"healthy":true`},
		{"nested", `{"traits":{"address":{"street":"1 Main St","city":"Paris"}}}`,
			[]string{"1 Main St"}, `"city":"Paris"`},
		{"object value sealed whole", `{"traits":{"ssn":{"last4":"6789"}}}`, []string{"6789"}, `"traits":{"ssn":{"$kith_sealed":"v1:`},
		{"repeated and differently cased members", `{"traits":{"ssn":"111"},"TRAITS":{"ssn":"222"},"Context":{"traits":{"ssn":"333"}}}`,
			[]string{"111", "222", "333"}, `"TRAITS":{"ssn":{"$kith_sealed"`},
		{"html characters kept", `{"traits":{"ssn":"1<2&3","note":"a<b"}}`, []string{"1<2&3"}, `"note":"a<b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, changed, err := k.SealTraits("acme", json.RawMessage(tt.in), tp)
			if err != nil || !changed {
				t.Fatalf("SealTraits = %s, %v, %v", out, changed, err)
			}
			for _, p := range tt.sealed {
				if bytes.Contains(out, []byte(p)) {
					t.Errorf("sealed output still holds %q: %s", p, out)
				}
			}
			if !bytes.Contains(out, []byte(tt.kept)) {
				t.Errorf("output lost %s: %s", tt.kept, out)
			}
			// Opening gives back the input, compact and in order.
			var want bytes.Buffer
			_ = json.Compact(&want, []byte(tt.in))
			if got := secret.OpenJSON("acme", out); string(got) != want.String() {
				t.Errorf("OpenJSON:\n got %s\nwant %s", got, want.String())
			}
			// Another workspace cannot open it.
			if got := secret.OpenJSON("globex", out); !bytes.Equal(got, out) {
				t.Errorf("opened in another workspace: %s", got)
			}
		})
	}
}

// Member names are matched as encoding/json matches them: escapes and the
// long s (which folds to s) cannot hide traits.
func TestSealTraitsEscapedNames(t *testing.T) {
	t.Parallel()
	k := traitKeys(t, "0123456789abcdef0123456789abcdef")
	out, changed, err := k.SealTraits("acme", json.RawMessage(`{"tr\u0061its":{"ssn":"444"},"traitſ":{"ssn":"555"}}`), paths(t, "ssn"))
	if err != nil || !changed || bytes.Contains(out, []byte("444")) || bytes.Contains(out, []byte("555")) {
		t.Fatalf("SealTraits = %s, %v, %v", out, changed, err)
	}
	if got, want := string(secret.OpenJSON("acme", out)), `{"traits":{"ssn":"444"},"traitſ":{"ssn":"555"}}`; got != want {
		t.Errorf("OpenJSON = %s, want %s", got, want)
	}
}

func TestSealTraitsUnchanged(t *testing.T) {
	t.Parallel()
	k := traitKeys(t, "0123456789abcdef0123456789abcdef")
	for _, in := range []string{
		`{"type":"identify", "traits":{"plan":"pro"}}`, // nothing sensitive: bytes kept, spaces too
		`{"traits":{"ssn":null}}`,                      // clearing a trait reveals nothing
		`{"traits":["ssn"]}`,                           // not an object
		`["traits"]`,
	} {
		out, changed, err := k.SealTraits("acme", json.RawMessage(in), paths(t, "ssn"))
		if err != nil || changed || string(out) != in {
			t.Errorf("SealTraits(%s) = %s, %v, %v; want it unchanged", in, out, changed, err)
		}
	}
	if out, changed, err := k.SealTraits("acme", json.RawMessage(`{"traits":{"ssn":"x"}}`), nil); err != nil || changed || string(out) != `{"traits":{"ssn":"x"}}` {
		t.Errorf("without paths: %s, %v, %v", out, changed, err)
	}
	for _, bad := range []string{`{"traits":`, `{"traits":{"ssn":"x"}} {"b":2}`, `{"traits":{"ssn":"x"}}}`, `["traits"`} {
		if _, _, err := k.SealTraits("acme", json.RawMessage(bad), paths(t, "ssn")); err == nil {
			t.Errorf("SealTraits(%q): no error", bad)
		}
	}
	// Bytes that cannot hold traits are not validated (the hot path's
	// events have none): they come back as they are.
	for _, in := range []string{`{"a":1} {"b":2}`, ``, `{"a":`} {
		if out, changed, err := k.SealTraits("acme", json.RawMessage(in), paths(t, "ssn")); err != nil || changed || string(out) != in {
			t.Errorf("SealTraits(%q) = %s, %v, %v; want it unchanged", in, out, changed, err)
		}
	}
}

func TestOpenJSONRefusesForgeries(t *testing.T) {
	t.Parallel()
	k := traitKeys(t, "0123456789abcdef0123456789abcdef")
	out, _, err := k.SealTraits("acme", json.RawMessage(`{"traits":{"ssn":"123"}}`), paths(t, "ssn"))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Traits struct {
			SSN map[string]string `json:"ssn"`
		} `json:"traits"`
	}
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatal(err)
	}
	text := ev.Traits.SSN[secret.SealedKey]
	for _, forged := range []string{
		strings.Replace(text, "v1:", "v2:", 1),
		text[:len(text)-2],
		text + "AA",
		"v1:00000000:" + strings.SplitN(text, ":", 3)[2], // unknown key id
		"v1:",
	} {
		in := `{"x":{"$kith_sealed":` + string(mustJSON(t, forged)) + `}}`
		if got := secret.OpenJSON("acme", json.RawMessage(in)); string(got) != in {
			t.Errorf("forged envelope %q opened: %s", forged, got)
		}
	}
	// An envelope sent in by a client is sealed again, so it is never opened
	// into a trait's value.
	again, _, err := k.SealTraits("acme", json.RawMessage(`{"traits":{"ssn":{"$kith_sealed":"`+text+`"}}}`), paths(t, "ssn"))
	if err != nil {
		t.Fatal(err)
	}
	if got := secret.OpenJSON("acme", again); !bytes.Contains(got, []byte(secret.SealedKey)) {
		t.Errorf("a planted envelope was opened: %s", got)
	}
	// Under another server secret the envelope does not open.
	other := traitKeys(t, "another server secret of 32 bytes")
	sealedOther, _, _ := other.SealTraits("acme", json.RawMessage(`{"traits":{"ssn":"1"}}`), paths(t, "ssn"))
	if bytes.Contains(sealedOther, []byte(text)) {
		t.Error("two server secrets gave the same envelope")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTraitPath(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"ssn", "date_of_birth", "health.*", "a.*.c", "address.street", "Ünïcode key"} {
		if _, err := secret.ParseTraitPath(ok); err != nil {
			t.Errorf("ParseTraitPath(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "a..b", ".a", "a.", "he*lth", strings.Repeat("a.", 17) + "a", strings.Repeat("x", 201)} {
		if _, err := secret.ParseTraitPath(bad); err == nil {
			t.Errorf("ParseTraitPath(%q): no error", bad)
		}
	}
}

// FuzzSealTraits checks, for any input, that sealing refuses invalid JSON,
// never fails on valid JSON, gives valid JSON, and that opening gives back
// the input's value.
func FuzzSealTraits(f *testing.F) {
	for _, s := range []string{
		`{"traits":{"ssn":"123","a":[1,{"b":2}]},"context":{"traits":{"health":{"x":1e3}}}}`,
		`{"traits":{"ssn":null,"health":[]}}`,
		`{"traits":{"ssn":{"$kith_sealed":"v1:00:AA"}}}`,
		`{"x":"\u003c\u2028"}`,
		`[]`, `"s"`, `{}`,
	} {
		f.Add([]byte(s))
	}
	k := traitKeys(f, "0123456789abcdef0123456789abcdef")
	tp := paths(f, "ssn", "health.*")
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed, err := k.SealTraits("acme", in, tp)
		if !json.Valid(in) {
			if err == nil && changed {
				t.Fatalf("invalid JSON sealed: %q", in)
			}
			_ = secret.OpenJSON("acme", in) // must not panic
			return
		}
		if err != nil {
			t.Fatalf("valid JSON refused: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("sealed output is not JSON: %q", out)
		}
		opened := secret.OpenJSON("acme", out)
		if !changed {
			return
		}
		var want bytes.Buffer
		_ = json.Compact(&want, in)
		var a, b any
		if json.Unmarshal(opened, &a) != nil || json.Unmarshal(want.Bytes(), &b) != nil {
			t.Fatalf("opened output is not JSON: %q", opened)
		}
		if !jsonEqual(a, b) {
			t.Fatalf("open(seal(x)) != x:\n got %s\nwant %s", opened, want.Bytes())
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// BenchmarkSealTraits measures what sensitive traits add to ingestion per
// event: sealing an identify with one sensitive trait, an event of a
// workspace whose sensitive traits it does not carry, and opening.
func BenchmarkSealTraits(b *testing.B) {
	k := traitKeys(b, "0123456789abcdef0123456789abcdef")
	tp := paths(b, "ssn", "health.*")
	identify := json.RawMessage(`{"type":"identify","userId":"u-1","messageId":"m-1","timestamp":"2026-12-03T10:00:00Z",` +
		`"traits":{"name":"Ada Lovelace","email":"ada@example.com","plan":"pro","ssn":"123-45-6789"},` +
		`"context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0","library":{"name":"analytics.js","version":"2.0"}}}`)
	track := json.RawMessage(`{"type":"track","userId":"u-1","event":"Order Completed","properties":{"total":42.5,"items":3},"context":{"ip":"203.0.113.9"}}`)
	sealed, _, _ := k.SealTraits("acme", identify, tp)
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = k.SealTraits("acme", identify, tp)
		}
	})
	b.Run("nothing_to_seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = k.SealTraits("acme", track, tp)
		}
	})
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = secret.OpenJSON("acme", sealed)
		}
	})
	b.Run("open_nothing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = secret.OpenJSON("acme", track)
		}
	})
}
