package export

import "testing"

// Golden normalization and hash vectors.
//
// "published" vectors are Meta's own examples (Conversions API customer
// information parameters, whose rules Custom Audiences share: "Input:
// John_Smith@gmail.com … Expected SHA256 output: 62a14e44…", "Input: US
// phone number (650)555-1212 … Normalized format: 16505551212 … Expected
// SHA256 output: e323ec62…").
//
// Google's Customer Match pages give the rules and example numbers
// (+12125650000, +442070313000) but no hashes, so the "computed" vectors'
// hashes were computed here independently of this package, with coreutils
// (printf '%s' VALUE | sha256sum) on the normalized value.
func TestNormalizeGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		platform, typ, in, region string
		norm, hash, source        string
	}{
		{PlatformMeta, TypeEmail, "John_Smith@gmail.com", "", "john_smith@gmail.com",
			"62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f", "published"},
		{PlatformMeta, TypePhone, "(650)555-1212", "US", "16505551212",
			"e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176", "published"},
		{PlatformMeta, TypePhone, "+1 650 555 1212", "", "16505551212",
			"e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176", "published hash, E.164 input"},
		{PlatformMeta, TypePhone, "+16505551212", "", "16505551212",
			"e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176", "published hash, E.164 as Kith stores it"},
		{PlatformMeta, TypeEmail, "  John_Smith@GMAIL.COM\t", "", "john_smith@gmail.com",
			"62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f", "published hash, untrimmed input"},
		{PlatformMeta, TypePhone, "+44 20 7031 3000", "", "442070313000",
			"6c91c4c640f6ef0162833260db4f13dec0df2b683092f4dba7e874bef1acea37", "computed"},
		{PlatformMeta, TypePhone, "0044 20 7031 3000", "", "442070313000",
			"6c91c4c640f6ef0162833260db4f13dec0df2b683092f4dba7e874bef1acea37", "computed: leading zeros dropped"},
		{PlatformGoogle, TypeEmail, " Customer@Example.com ", "", "customer@example.com",
			"e233d4a29013e9d87150c6237c6777bedf379ebf1acdc5d6126fec7e8bb74fb5", "computed"},
		{PlatformGoogle, TypeEmail, "John.Smith+news@GMAIL.com", "", "john.smith+news@gmail.com",
			"7d466b3c904fbeadd0adad30b84c397ba3f36cea7aa5e2d48a544e85cf28ab9b", "computed: gmail dots and +suffix kept (not required by Customer Match)"},
		{PlatformGoogle, TypePhone, "+1 212-565-0000", "", "+12125650000",
			"d360a79e746532a6a1e7b8164440b04cdd8797e23126f7a4de7a4b67fdcdba98", "computed, Google's example number"},
		{PlatformGoogle, TypePhone, "(212) 565-0000", "US", "+12125650000",
			"d360a79e746532a6a1e7b8164440b04cdd8797e23126f7a4de7a4b67fdcdba98", "computed, national input with region"},
		{PlatformGoogle, TypePhone, "+44 20 7031 3000", "", "+442070313000",
			"f3d7e96c73fb0de1b66acfce541d7af758fbd4f3fa3af0ea4e10110000d3625e", "computed, Google's example number"},
		{PlatformGoogle, TypePhone, "020 7031 3000", "GB", "+442070313000",
			"f3d7e96c73fb0de1b66acfce541d7af758fbd4f3fa3af0ea4e10110000d3625e", "computed, trunk zero dropped"},
	} {
		var norm string
		var ok bool
		if tc.typ == TypeEmail {
			norm, ok = NormalizeEmail(tc.platform, tc.in)
		} else {
			norm, ok = NormalizePhone(tc.platform, tc.in, tc.region)
		}
		if !ok || norm != tc.norm {
			t.Errorf("%s %s %q: normalized %q, %v; want %q (%s)", tc.platform, tc.typ, tc.in, norm, ok, tc.norm, tc.source)
			continue
		}
		if h := HashSHA256(norm); h != tc.hash {
			t.Errorf("%s %s %q: hash %s, want %s (%s)", tc.platform, tc.typ, tc.in, h, tc.hash, tc.source)
		}
	}
}

func TestNormalizeRefuses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "  ", "no-at-sign", "@example.com", "ada@", "a@b@c", "ada lovelace@example.com"} {
		for _, p := range []string{PlatformMeta, PlatformGoogle} {
			if v, ok := NormalizeEmail(p, in); ok {
				t.Errorf("NormalizeEmail(%s, %q) = %q, want refusal", p, in, v)
			}
		}
	}
	for _, tc := range []struct{ platform, in, region string }{
		{PlatformMeta, "", ""},
		{PlatformMeta, "12", ""},
		{PlatformMeta, "call me", ""},
		{PlatformGoogle, "12", ""},
		// No country code and no region: Google needs E.164.
		{PlatformGoogle, "6505551212", ""},
	} {
		if v, ok := NormalizePhone(tc.platform, tc.in, tc.region); ok {
			t.Errorf("NormalizePhone(%s, %q, %q) = %q, want refusal", tc.platform, tc.in, tc.region, v)
		}
	}
	// Meta's rule takes the digits as given (assumed to start with the
	// country code) when the number cannot be parsed.
	if v, ok := NormalizePhone(PlatformMeta, "16505551212", ""); !ok || v != "16505551212" {
		t.Errorf("NormalizePhone(meta, 16505551212) = %q, %v", v, ok)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"John_Smith@gmail.com", "(650)555-1212", "+44 20 7031 3000", "0044", "a@b", "+", "00"} {
		f.Add(s, "US")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, in, region string) {
		for _, p := range []string{PlatformMeta, PlatformGoogle} {
			if v, ok := NormalizeEmail(p, in); ok {
				if w, ok2 := NormalizeEmail(p, v); !ok2 || w != v {
					t.Fatalf("NormalizeEmail(%s) not idempotent: %q → %q → %q", p, in, v, w)
				}
			}
			if v, ok := NormalizePhone(p, in, region); ok {
				if v == "" || len(v) > 16 {
					t.Fatalf("NormalizePhone(%s, %q) = %q", p, in, v)
				}
				for i, r := range v {
					if !(r >= '0' && r <= '9' || r == '+' && i == 0 && p == PlatformGoogle) {
						t.Fatalf("NormalizePhone(%s, %q) = %q: not digits", p, in, v)
					}
				}
			}
		}
	})
}
