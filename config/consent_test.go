package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kithcdp/kith/consent"
)

func consentDoc(block string) string {
	return "workspaces:\n  - slug: acme\n    consent:\n" + block
}

func TestConsentModel(t *testing.T) {
	t.Parallel()
	cfg, err := parse([]byte(consentDoc(`      deliver_without_consent: true
      store_requires: [Analytics, loyalty]
      purposes:
        - name: advertising
          categories: [Advertising, Targeting, C0004, Werbung]
        - name: loyalty
          description: Points and rewards.
          lawful_basis: contract
          categories: [Loyalty]
          tcf_purposes: [10]
          marketing: true
`)), "kith.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Workspaces[0]
	if !w.DeliverWithoutConsent || !slices.Equal(w.StoreRequires, []string{"analytics", "loyalty"}) {
		t.Errorf("DeliverWithoutConsent %v, StoreRequires %q", w.DeliverWithoutConsent, w.StoreRequires)
	}
	if p, ok := w.Purposes.Lookup("werbung"); !ok || p.Name != "advertising" || !p.GPC || len(p.TCF) != 5 {
		t.Errorf("advertising overridden: %+v, %v (its other fields stay the default's)", p, ok)
	}
	if _, ok := w.Purposes.Lookup("Ads"); ok {
		t.Error("the categories given did not replace the default's")
	}
	if p, ok := w.Purposes.Lookup("LOYALTY"); !ok || p.Basis != "contract" || !p.Marketing || p.TCF[0] != 10 {
		t.Errorf("loyalty: %+v, %v", p, ok)
	}
	if n := len(w.Purposes.Purposes()); n != 7 {
		t.Errorf("%d purposes, want the 6 default ones and loyalty", n)
	}
	// Without a consent model: the default catalogue, every event stored.
	cfg, err = parse([]byte(consentDoc("      deliver_without_consent: false\n")), "kith.yaml", lookup)
	if err != nil || cfg.Workspaces[0].Purposes != nil || cfg.Workspaces[0].StoreRequires != nil {
		t.Errorf("no consent model: %+v, %v", cfg, err)
	}
}

// TestConsentPurposeFields: each field of a purpose item sets its own
// field of the purpose, and leaves the others as they were.
func TestConsentPurposeFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, item string
		ok         func(p consent.Purpose) bool
	}{
		{"x", "{name: x, gpc_opt_out: true}", func(p consent.Purpose) bool { return p.GPC && !p.Marketing && !p.Profiling && !p.Necessary }},
		{"x", "{name: x, marketing: true}", func(p consent.Purpose) bool { return !p.GPC && p.Marketing && !p.Profiling && !p.Necessary }},
		{"x", "{name: x, profiling: true}", func(p consent.Purpose) bool { return !p.GPC && !p.Marketing && p.Profiling && !p.Necessary }},
		{"x", "{name: x, description: D, categories: [Zed]}", func(p consent.Purpose) bool {
			return p.Description == "D" && slices.Equal(p.Categories, []string{"Zed"}) && p.GCM == nil
		}},
		{"advertising", "{name: advertising, gcm_signals: [ad_storage], gpc_opt_out: false}", func(p consent.Purpose) bool {
			return slices.Equal(p.GCM, []string{"ad_storage"}) && len(p.Categories) == 5 && !p.GPC && p.Marketing && p.Profiling
		}},
	} {
		cfg, err := parse([]byte(consentDoc("      purposes:\n        - "+tc.item+"\n")), "kith.yaml", lookup)
		if err != nil {
			t.Errorf("%s: %v", tc.item, err)
			continue
		}
		if p, found := cfg.Workspaces[0].Purposes.Lookup(tc.name); !found || !tc.ok(p) {
			t.Errorf("%s: %+v, %v", tc.item, p, found)
		}
	}
}

func TestConsentModelErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, block, want string }{
		{"unknown purpose required", "      store_requires: [ads_free]\n",
			`kith.yaml:4: workspaces[0].consent.store_requires[0]: unknown purpose "ads_free" (known: necessary, analytics`},
		{"necessary required", "      store_requires: [necessary]\n", `store_requires[0]: "necessary" is strictly necessary`},
		{"required twice", "      store_requires: [analytics, Analytics]\n", `kith.yaml:4: workspaces[0].consent.store_requires[1]: purpose "analytics" is listed twice`},
		{"store_requires not a list", "      store_requires: analytics\n", "consent.store_requires: must be a list"},
		{"purposes not a list", "      purposes: {name: a}\n", "consent.purposes: must be a list"},
		{"purpose without a name", "      purposes:\n        - description: x\n", "kith.yaml:5: workspaces[0].consent.purposes[0].name: missing"},
		{"unknown purpose field", "      purposes:\n        - {name: a, colour: red}\n", `purposes[0]: unknown field "colour"`},
		{"bad basis", "      purposes:\n        - name: a\n          lawful_basis: because\n", `kith.yaml:6: workspaces[0].consent.purposes[0].lawful_basis: "because": want one of consent,`},
		{"bad tcf purpose", "      purposes:\n        - {name: a, tcf_purposes: [1, 12]}\n", `purposes[0].tcf_purposes[1]: "12": TCF v2.2 purposes are 1 to 11`},
		{"bad bool", "      purposes:\n        - {name: a, marketing: yes}\n", `purposes[0].marketing: "yes": write true or false`},
		{"purpose twice", "      purposes:\n        - {name: a}\n        - {name: a}\n", `kith.yaml:6: workspaces[0].consent.purposes[1].name: purpose "a" is already declared`},
		{"bad name, at its item", "      purposes:\n        - {name: analytics}\n        - {name: Ads}\n",
			`kith.yaml:6: workspaces[0].consent.purposes: name "Ads": use lower case letters`},
		{"a category taken", "      purposes:\n        - {name: loyalty, categories: [Targeting]}\n",
			`kith.yaml:5: workspaces[0].consent.purposes: purpose "loyalty": "Targeting" already stands for purpose "advertising"`},
		{"a second necessary purpose", "      purposes:\n        - {name: login, strictly_necessary: true}\n", "exactly one purpose must be strictly_necessary, not 2"},
		{"bad gcm signal", "      purposes:\n        - {name: a, gcm_signals: [ads]}\n", `gcm signal "ads"`},
		{"required purpose of a bad list", "      purposes:\n        - {name: Ads}\n      store_requires: [analytics]\n", `name "Ads"`},
	} {
		_, err := parse([]byte(consentDoc(tc.block)), "kith.yaml", lookup)
		var ce *Error
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v; want a config error with %q", tc.name, err, tc.want)
		}
	}
}

// FuzzConsentModel: any consent block parses into a model that keeps its
// promises, or fails with config errors — never a panic.
func FuzzConsentModel(f *testing.F) {
	f.Add("      store_requires: [analytics]\n      purposes:\n        - {name: loyalty, lawful_basis: contract, categories: [Loyalty], tcf_purposes: [10]}\n")
	f.Add("      purposes:\n        - {name: advertising, gpc_opt_out: false}\n")
	f.Add("      purposes: [{name: necessary, strictly_necessary: false}]\n")
	f.Fuzz(func(t *testing.T, block string) {
		cfg, err := parse([]byte(consentDoc(block)), "f.yaml", lookup)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *Error: %v", err, err)
			}
			return
		}
		for _, w := range cfg.Workspaces {
			for _, r := range w.StoreRequires {
				cat := w.Purposes
				if cat == nil {
					cat = consent.Default()
				}
				if p, ok := cat.Lookup(r); !ok || p.Necessary || p.Name != r {
					t.Fatalf("store_requires %q accepted: %+v", r, p)
				}
			}
		}
	})
}
