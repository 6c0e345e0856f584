package config

import (
	"strconv"

	"github.com/kithcdp/kith/identity"
	"gopkg.in/yaml.v3"
)

// identityRules parses a workspace's identity block. Fields not given keep
// identity.DefaultRules; a list or map given replaces the default one.
func (p *parser) identityRules(n *yaml.Node, path string) *identity.Rules {
	r := identity.DefaultRules()
	strs := func(n *yaml.Node, path string) []string {
		out := []string{}
		p.list(n, path, func(_ int, n *yaml.Node, path string) {
			if s, ok := p.scalar(n, path); ok {
				out = append(out, s)
			}
		})
		return out
	}
	before := len(p.errs)
	p.fields(n, path, []field{
		{name: "priority", parse: func(n *yaml.Node, path string) { r.Priority = strs(n, path) }},
		{name: "limits", parse: func(n *yaml.Node, path string) {
			r.Limits = map[string]identity.Limit{}
			p.mapping(n, path, func(key string, n *yaml.Node, path string) {
				r.Limits[key] = p.identityLimit(n, path)
			})
		}},
		{name: "default_limit", parse: func(n *yaml.Node, path string) { r.DefaultLimit = p.identityLimit(n, path) }},
		{name: "blocked", parse: func(n *yaml.Node, path string) { r.Blocked = strs(n, path) }},
		{name: "blocked_patterns", parse: func(n *yaml.Node, path string) { r.BlockedPatterns = strs(n, path) }},
		{name: "trait_identifiers", parse: func(n *yaml.Node, path string) {
			r.TraitIdentifiers = map[string]string{}
			p.mapping(n, path, func(key string, n *yaml.Node, path string) {
				if s, ok := p.scalar(n, path); ok {
					r.TraitIdentifiers[key] = s
				}
			})
		}},
		{name: "default_region", parse: func(n *yaml.Node, path string) { r.DefaultRegion, _ = p.scalar(n, path) }},
		{name: "max_identifiers", parse: func(n *yaml.Node, path string) { r.MaxIdentifiers = str(p, n, path, parseCount) }},
		{name: "max_merges", parse: func(n *yaml.Node, path string) { r.MaxMerges = str(p, n, path, parseCount) }},
	})
	if len(p.errs) == before {
		if _, err := r.Compile(); err != nil {
			p.errorf(n, path, "%v", err)
		}
	}
	return &r
}

func (p *parser) identityLimit(n *yaml.Node, path string) identity.Limit {
	var l identity.Limit
	p.fields(n, path, []field{
		{name: "max", required: true, parse: func(n *yaml.Node, path string) { l.Max = str(p, n, path, parseCount) }},
		{name: "window", parse: func(n *yaml.Node, path string) { l.Window = str(p, n, path, parseDuration) }},
	})
	return l
}

// mapping calls item for each key of a mapping, in file order.
func (p *parser) mapping(n *yaml.Node, path string, item func(key string, n *yaml.Node, path string)) {
	if isNull(n) || !p.is(n, path, yaml.MappingNode, "a mapping") {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if p.is(k, path, yaml.ScalarNode, "a plain key") {
			item(k.Value, n.Content[i+1], join(path, k.Value))
		}
	}
}

func parseCount(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1_000_000 {
		return 0, "must be a whole number from 1 to 1000000"
	}
	return n, ""
}
