package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
	"gopkg.in/yaml.v3"
)

// slugRE is the form of workspace and source slugs and token names.
var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

var knownScopes = []string{ScopeProfilesRead, ScopeDebug, ScopePrivacy, ScopeAdmin}

// maxBurst bounds a rate limit's burst (and so the bucket's memory of debt).
const maxBurst = 1_000_000_000

// parser walks the YAML node tree, building the Config and collecting every
// problem with its line and path.
type parser struct {
	file    string
	lookup  func(string) (string, bool)
	errs    []error
	secrets map[string]string // write key or token → path of its first use
	lines   []string          // the file's lines, to locate text inside scalars
}

// field is a known key of a mapping.
type field struct {
	name     string
	required bool
	parse    func(n *yaml.Node, path string)
}

func parse(data []byte, file string, lookup func(string) (string, bool)) (*Config, error) {
	p := &parser{file: file, lookup: lookup, secrets: map[string]string{}, lines: strings.Split(string(data), "\n")}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, p.yamlError(err)
		}
		return nil, &Error{File: file, Line: extra.Line, Msg: "more than one YAML document; write one"}
	}
	cfg := &Config{}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 && !isNull(doc.Content[0]) {
		p.fields(doc.Content[0], "", []field{
			{name: "trusted_proxies", parse: func(n *yaml.Node, path string) {
				cfg.TrustedProxies = p.proxies(n, path)
			}},
			{name: "workspaces", parse: func(n *yaml.Node, path string) {
				cfg.Workspaces = p.workspaces(n, path)
			}},
		})
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

// yamlError turns a syntax error of the YAML library ("yaml: line 3: ...")
// into an *Error.
func (p *parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: p.file, Msg: "invalid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, after, found := strings.Cut(rest, ": ")
		if n, convErr := strconv.Atoi(num); found && convErr == nil {
			e.Line, e.Msg = n, "invalid YAML: "+after
		}
	}
	return e
}

func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// is reports whether n is of kind, reporting an error if not. Aliases are
// refused: they would let a small file expand into a huge config.
func (p *parser) is(n *yaml.Node, path string, kind yaml.Kind, want string) bool {
	switch {
	case n.Kind == kind:
		return true
	case n.Kind == yaml.AliasNode:
		p.errorf(n, path, "YAML aliases (*%s) are not supported", n.Value)
	default:
		p.errorf(n, path, "must be %s, not %s", want, kindName(n))
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "empty"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// fields walks a mapping, calling the parser of each known key. Unknown,
// repeated and missing required keys are errors. A null mapping is empty.
func (p *parser) fields(n *yaml.Node, path string, known []field) {
	if isNull(n) {
		n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
	}
	if !p.is(n, path, yaml.MappingNode, "a mapping") {
		return
	}
	seen := make(map[string]bool, len(known))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.is(k, path, yaml.ScalarNode, "a plain key") {
			continue
		}
		at := slices.IndexFunc(known, func(f field) bool { return f.name == k.Value })
		if at < 0 {
			names := make([]string, len(known))
			for j, f := range known {
				names[j] = f.name
			}
			p.errorf(k, path, "unknown field %q (known: %s)", k.Value, strings.Join(names, ", "))
			continue
		}
		fpath := join(path, k.Value)
		if seen[k.Value] {
			p.errorf(k, fpath, "set twice")
			continue
		}
		seen[k.Value] = true
		known[at].parse(v, fpath)
	}
	for _, f := range known {
		if f.required && !seen[f.name] {
			p.errorf(n, join(path, f.name), "missing")
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// list walks a sequence; null is an empty list.
func (p *parser) list(n *yaml.Node, path string, item func(i int, n *yaml.Node, path string)) {
	if isNull(n) || !p.is(n, path, yaml.SequenceNode, "a list") {
		return
	}
	for i, c := range n.Content {
		item(i, c, fmt.Sprintf("%s[%d]", path, i))
	}
}

// scalar returns a scalar's value with environment variables expanded.
// Null is "". ok is false if an error was reported.
func (p *parser) scalar(n *yaml.Node, path string) (string, bool) {
	if isNull(n) {
		return "", true
	}
	if !p.is(n, path, yaml.ScalarNode, "a single value") {
		return "", false
	}
	v, err := expand(n.Value, p.lookup)
	if err != nil {
		p.errorf(n, path, "%v", err)
		return "", false
	}
	return v, true
}

// str parses a scalar with check, which returns the parsed value or a
// problem description.
func str[T any](p *parser, n *yaml.Node, path string, check func(string) (T, string)) T {
	var zero T
	s, ok := p.scalar(n, path)
	if !ok {
		return zero
	}
	v, problem := check(s)
	if problem != "" {
		p.errorf(n, path, "%s", problem)
		return zero
	}
	return v
}

func (p *parser) proxies(n *yaml.Node, path string) []netip.Prefix {
	var out []netip.Prefix
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		if pr := str(p, n, path, parseProxy); pr.IsValid() {
			out = append(out, pr)
		}
	})
	return out
}

func (p *parser) workspaces(n *yaml.Node, path string) []Workspace {
	var out []Workspace
	firstAt := map[string]string{}
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		w := Workspace{DedupWindow: DefaultDedupWindow}
		var defs []*definitionItem
		var dests []store.Definition
		var sensitive *yaml.Node // parsed after identity, whose trait identifiers it may not name
		before := len(p.errs)
		p.fields(n, path, []field{
			{name: "slug", required: true, parse: func(n *yaml.Node, path string) {
				w.Slug = p.unique(n, path, str(p, n, path, checkSlug), firstAt, "workspace slug")
			}},
			{name: "dedup_window", parse: func(n *yaml.Node, path string) {
				if d := str(p, n, path, parseWindow); d > 0 {
					w.DedupWindow = d
				}
			}},
			{name: "retention", parse: func(n *yaml.Node, path string) {
				w.Retention = str(p, n, path, parseDuration)
			}},
			{name: "sources", parse: func(n *yaml.Node, path string) {
				w.Sources = p.sources(n, path)
			}},
			{name: "tokens", parse: func(n *yaml.Node, path string) {
				w.Tokens = p.tokens(n, path)
			}},
			{name: "identity", parse: func(n *yaml.Node, path string) {
				w.Identity = p.identityRules(n, path)
			}},
			{name: "computed_traits", parse: func(n *yaml.Node, path string) {
				defs = append(defs, p.definitions(n, path, store.DefinitionTrait)...)
			}},
			{name: "audiences", parse: func(n *yaml.Node, path string) {
				defs = append(defs, p.definitions(n, path, store.DefinitionAudience)...)
			}},
			{name: "destinations", parse: func(n *yaml.Node, path string) {
				dests = p.destinations(n, path, "")
			}},
			{name: "consent", parse: func(n *yaml.Node, path string) {
				p.consent(n, path, &w)
			}},
			{name: "sensitive_traits", parse: func(n *yaml.Node, _ string) { sensitive = n }},
		})
		if sensitive != nil {
			w.SensitiveTraits = p.sensitiveTraits(sensitive, join(path, "sensitive_traits"), w.Identity)
		}
		if len(p.errs) == before {
			w.Definitions = p.checkDefinitions(defs)
			for i := range w.Definitions {
				w.Definitions[i].Workspace = w.Slug
			}
			w.Destinations = dests
			for i := range w.Destinations {
				w.Destinations[i].Workspace = w.Slug
			}
		}
		out = append(out, w)
	})
	return out
}

// unique reports a name already used in the same scope, and returns name.
func (p *parser) unique(n *yaml.Node, path, name string, firstAt map[string]string, what string) string {
	if name == "" {
		return ""
	}
	if prev, dup := firstAt[name]; dup {
		p.errorf(n, path, "%s %q is already used by %s", what, name, prev)
	} else {
		firstAt[name] = fmt.Sprintf("%s (line %d)", path, n.Line)
	}
	return name
}

// secret checks a write key or token and that no other one in the file is
// the same. Problems never quote the secret.
func (p *parser) secret(n *yaml.Node, path string, minLen int) string {
	s := str(p, n, path, func(s string) (string, string) { return s, checkSecret(s, minLen) })
	if s == "" {
		return ""
	}
	if prev, dup := p.secrets[s]; dup {
		p.errorf(n, path, "same secret as %s; every write key and token must be different", prev)
		return s
	}
	p.secrets[s] = fmt.Sprintf("%s (line %d)", path, n.Line)
	return s
}

func (p *parser) sources(n *yaml.Node, path string) []Source {
	var out []Source
	firstAt := map[string]string{}
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		var s Source
		p.fields(n, path, []field{
			{name: "slug", required: true, parse: func(n *yaml.Node, path string) {
				s.Slug = p.unique(n, path, str(p, n, path, checkSlug), firstAt, "source slug")
			}},
			{name: "write_key", required: true, parse: func(n *yaml.Node, path string) {
				s.WriteKey = p.secret(n, path, MinWriteKeyLen)
			}},
			{name: "allowed_origins", parse: func(n *yaml.Node, path string) {
				p.list(n, path, func(_ int, n *yaml.Node, path string) {
					if o := str(p, n, path, parseOrigin); o != "" {
						s.AllowedOrigins = append(s.AllowedOrigins, o)
					}
				})
			}},
			{name: "rate_limit", parse: func(n *yaml.Node, path string) {
				s.RateLimit = p.rateLimit(n, path)
			}},
			{name: "trait_priority", parse: func(n *yaml.Node, path string) {
				s.TraitPriority = str(p, n, path, parsePriority)
			}},
		})
		out = append(out, s)
	})
	return out
}

func (p *parser) rateLimit(n *yaml.Node, path string) RateLimit {
	var r RateLimit
	p.fields(n, path, []field{
		{name: "events_per_second", parse: func(n *yaml.Node, path string) {
			r.EventsPerSecond = str(p, n, path, parseRate)
		}},
		{name: "burst", parse: func(n *yaml.Node, path string) {
			r.Burst = str(p, n, path, parseBurst)
		}},
	})
	switch {
	case r.EventsPerSecond == 0 && r.Burst > 0:
		p.errorf(n, join(path, "burst"), "set events_per_second too (a burst alone limits nothing)")
	case r.EventsPerSecond > 0 && r.Burst == 0:
		r.Burst = int(min(math.Ceil(r.EventsPerSecond), maxBurst))
	}
	return r
}

func (p *parser) tokens(n *yaml.Node, path string) []Token {
	var out []Token
	firstAt := map[string]string{}
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		var t Token
		p.fields(n, path, []field{
			{name: "name", required: true, parse: func(n *yaml.Node, path string) {
				t.Name = p.unique(n, path, str(p, n, path, checkSlug), firstAt, "token name")
			}},
			{name: "token", required: true, parse: func(n *yaml.Node, path string) {
				t.Token = p.secret(n, path, MinTokenLen)
			}},
			{name: "scopes", required: true, parse: func(n *yaml.Node, path string) {
				t.Scopes = p.scopes(n, path)
			}},
		})
		out = append(out, t)
	})
	return out
}

// distinct parses a list of strings, each checked as str checks it, and
// reports one listed twice; what names an item in that error ("scope ").
func (p *parser) distinct(n *yaml.Node, path, what string, check func(string) (string, string)) []string {
	var out []string
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		s := str(p, n, path, check)
		switch {
		case s == "":
		case slices.Contains(out, s):
			p.errorf(n, path, "%s%q is listed twice", what, s)
		default:
			out = append(out, s)
		}
	})
	return out
}

func (p *parser) scopes(n *yaml.Node, path string) []string {
	errs := len(p.errs)
	out := p.distinct(n, path, "scope ", func(s string) (string, string) {
		if s == "ingest" {
			return "", `"ingest" is not a token scope: the Tracking API takes a source's write key (sources[].write_key), which is the ingest credential`
		}
		if !slices.Contains(knownScopes, s) {
			return "", fmt.Sprintf("unknown scope %q (known: %s)", s, strings.Join(knownScopes, ", "))
		}
		return s, ""
	})
	if len(out) == 0 && len(p.errs) == errs {
		p.errorf(n, path, "list at least one scope (known: %s)", strings.Join(knownScopes, ", "))
	}
	return out
}

func checkSlug(s string) (string, string) {
	if s == "" {
		return "", "empty"
	}
	if !slugRE.MatchString(s) {
		return "", fmt.Sprintf("%q is not a valid name: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit", s)
	}
	return s, ""
}

// checkSecret returns what is wrong with a write key or token, or "". The
// secret is sent as an HTTP Basic user name, hence no ':' and no spaces.
func checkSecret(s string, minLen int) string {
	switch {
	case s == "":
		return "empty"
	case len(s) < minLen:
		return fmt.Sprintf("too short: %d characters, at least %d", len(s), minLen)
	case len(s) > MaxSecretLen:
		return fmt.Sprintf("too long: %d characters, at most %d", len(s), MaxSecretLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return "may hold only printable ASCII characters other than ':' and space"
		}
	}
	return ""
}

// parseDuration parses a Go duration ("168h", "90m", "0") or whole days
// ("90d"). Negative durations are refused.
func parseDuration(s string) (time.Duration, string) {
	const hint = "write a duration such as 168h, 90m or 30d"
	if s == "" {
		return 0, "empty; " + hint
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, fmt.Sprintf("%q is not a duration; %s", s, hint)
		}
		return time.Duration(n) * 24 * time.Hour, ""
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Sprintf("%q is not a duration; %s", s, hint)
	}
	if d < 0 {
		return 0, fmt.Sprintf("%q is negative", s)
	}
	return d, ""
}

// parseWindow parses a dedup window, which must be positive.
func parseWindow(s string) (time.Duration, string) {
	d, problem := parseDuration(s)
	if problem == "" && d == 0 {
		problem = "must be positive: it is how long messageIds are remembered"
	}
	return d, problem
}

func parseRate(s string) (float64, string) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Sprintf("%q is not a number of events per second (0 or more; 0 = unlimited)", s)
	}
	return f, ""
}

func parsePriority(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < -1000 || n > 1000 {
		return 0, "must be a whole number from -1000 to 1000"
	}
	return n, ""
}

func parseBurst(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxBurst {
		return 0, fmt.Sprintf("%q is not a whole number of events from 1 to %d", s, maxBurst)
	}
	return n, ""
}

// parseProxy parses a CIDR ("10.0.0.0/8") or a single address, reading
// IPv4-mapped IPv6 as IPv4 (client addresses are compared unmapped).
func parseProxy(s string) (netip.Prefix, string) {
	var pr netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if pr, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Sprintf("%q is not a CIDR such as 10.0.0.0/8", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Sprintf("%q is not an IP address or a CIDR such as 10.0.0.0/8", s)
		}
		pr = netip.PrefixFrom(a, a.BitLen())
	}
	pr = pr.Masked()
	if a := pr.Addr(); a.Is4In6() && pr.Bits() >= 96 {
		pr = netip.PrefixFrom(a.Unmap(), pr.Bits()-96)
	}
	return pr, ""
}

// parseOrigin checks a browser origin and returns it as browsers send it:
// lowercase scheme and host, without the scheme's default port.
func parseOrigin(s string) (string, string) {
	if s == "*" {
		return s, ""
	}
	bad := fmt.Sprintf("%q is not an origin: write scheme://host[:port] with no path, e.g. https://shop.example.com, or \"*\" for any", s)
	if strings.Contains(s, "*") {
		return "", fmt.Sprintf("%q: wildcards inside an origin are not supported; list each origin, or \"*\" alone for any", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return "", bad + " (international host names go in their xn-- form)"
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.User != nil || u.Path != "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Hostname() == "" {
		return "", bad
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", bad
		}
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, ""
}
