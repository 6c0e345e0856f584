package config

import (
	"fmt"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/secret"
	"gopkg.in/yaml.v3"
)

// sensitiveTraits parses a workspace's sensitive_traits: the trait paths
// whose values are encrypted at rest (secret.ParseTraitPath describes
// their form; docs/security.md the rest). A trait whose value is an
// identifier (identity.trait_identifiers; by default email and phone)
// cannot be sensitive: identity resolution must read it. rules are the
// workspace's identity rules, nil for the defaults.
func (p *parser) sensitiveTraits(n *yaml.Node, path string, rules *identity.Rules) []string {
	ids := identity.DefaultRules().TraitIdentifiers
	if rules != nil {
		ids = rules.TraitIdentifiers
	}
	return p.distinct(n, path, "", func(s string) (string, string) {
		segs, err := secret.ParseTraitPath(s)
		switch {
		case err != nil:
			return "", err.Error()
		case len(segs) == 1 && ids[s] != "":
			return "", fmt.Sprintf("%q is an identifier (identity.trait_identifiers): identity resolution reads it, so it cannot be sealed", s)
		}
		return s, ""
	})
}
