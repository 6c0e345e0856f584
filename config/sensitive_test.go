package config

import (
	"slices"
	"testing"
)

func TestParseSensitiveTraits(t *testing.T) {
	t.Parallel()
	noEnv := func(string) (string, bool) { return "", false }
	ws := func(rest string) string { return "workspaces:\n  - slug: acme\n" + rest }

	cfg, err := parse([]byte(ws("    sensitive_traits: [ssn, date_of_birth, health.*, address.street]\n")), "kith.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Workspaces[0].SensitiveTraits; !slices.Equal(got, []string{"ssn", "date_of_birth", "health.*", "address.street"}) {
		t.Errorf("SensitiveTraits = %q", got)
	}
	// A trait identifier made so by the identity rules is refused even when
	// the rules come after the list; one they no longer name is accepted.
	cfg, err = parse([]byte(ws("    sensitive_traits: [email]\n    identity: {trait_identifiers: {work_email: email}}\n")), "kith.yaml", noEnv)
	if err != nil || !slices.Equal(cfg.Workspaces[0].SensitiveTraits, []string{"email"}) {
		t.Errorf("email without being an identifier: %v", err)
	}

	tests := []struct{ name, src, want string }{
		{"identifier", ws("    sensitive_traits: [ssn, email]\n"),
			`kith.yaml:3: workspaces[0].sensitive_traits[1]: "email" is an identifier (identity.trait_identifiers): identity resolution reads it, so it cannot be sealed`},
		{"configured identifier", ws("    identity: {trait_identifiers: {crm_id: user_id}}\n    sensitive_traits: [crm_id]\n"),
			`kith.yaml:4: workspaces[0].sensitive_traits[0]: "crm_id" is an identifier (identity.trait_identifiers): identity resolution reads it, so it cannot be sealed`},
		{"twice", ws("    sensitive_traits: [ssn, ssn]\n"), `kith.yaml:3: workspaces[0].sensitive_traits[1]: "ssn" is listed twice`},
		{"every trait", ws("    sensitive_traits: ['*']\n"), `kith.yaml:3: workspaces[0].sensitive_traits[0]: "*" would seal every trait; name the sensitive ones`},
		{"empty segment", ws("    sensitive_traits: [a..b]\n"), `kith.yaml:3: workspaces[0].sensitive_traits[0]: "a..b" has an empty segment: write trait keys separated by single dots, e.g. address.street`},
		{"partial wildcard", ws("    sensitive_traits: [health.x*]\n"), `kith.yaml:3: workspaces[0].sensitive_traits[0]: "health.x*": * stands for a whole segment (health.*), not part of one`},
		{"empty", ws("    sensitive_traits: ['']\n"), `kith.yaml:3: workspaces[0].sensitive_traits[0]: empty`},
		{"not a list", ws("    sensitive_traits: ssn\n"), `kith.yaml:3: workspaces[0].sensitive_traits: must be a list, not "ssn"`},
		{"ingest scope", ws("    tokens: [{name: t, token: tok_1234567890123, scopes: [ingest]}]\n"),
			`kith.yaml:3: workspaces[0].tokens[0].scopes[0]: "ingest" is not a token scope: the Tracking API takes a source's write key (sources[].write_key), which is the ingest credential`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse([]byte(tt.src), "kith.yaml", noEnv)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}
