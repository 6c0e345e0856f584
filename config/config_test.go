package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/identity"
)

// env is the environment the tests' ${NAME} references see.
var env = map[string]string{
	"WEB_KEY": "wk_from_env_123",
	"EMPTY":   "",
	"DAYS":    "30d",
}

func lookup(name string) (string, bool) {
	v, ok := env[name]
	return v, ok
}

func parseTest(src string) (*Config, error) {
	return parse([]byte(strings.TrimLeft(src, "\n")), "kith.yaml", lookup)
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want *Config
	}{
		{"empty file", "", &Config{}},
		{"only comments", "# nothing yet\n", &Config{}},
		{"null document", "~\n", &Config{}},
		{"full", `
trusted_proxies: [10.1.2.3/8, 127.0.0.1, "::ffff:192.168.0.1", "::1", "fd00::/8", "::ffff:172.16.0.0/108"]
workspaces:
  - slug: acme
    dedup_window: 48h
    retention: 2160h
    sources:
      - slug: web
        write_key: wk_web_123
        allowed_origins: ["https://shop.example.com", "HTTPS://Www.Example.COM:443", "http://localhost:3000", "http://[::1]:8080", "http://a.example:80"]
        rate_limit: {events_per_second: 1000, burst: 5000}
      - slug: server
        write_key: wk_server_123
    tokens:
      - name: support-desk
        token: tok_support_12345
        scopes: [profiles:read]
      - name: ops
        token: tok_ops_123456789
        scopes: [debug, admin]
      - name: dpo
        token: tok_privacy_12345
        scopes: [privacy]
  - slug: other_2
`, &Config{
			TrustedProxies: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
				netip.MustParsePrefix("192.168.0.1/32"), netip.MustParsePrefix("::1/128"),
				netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("172.16.0.0/12"),
			},
			Workspaces: []Workspace{
				{
					Slug: "acme", DedupWindow: 48 * time.Hour, Retention: 90 * 24 * time.Hour,
					Sources: []Source{
						{
							Slug: "web", WriteKey: "wk_web_123",
							AllowedOrigins: []string{"https://shop.example.com", "https://www.example.com",
								"http://localhost:3000", "http://[::1]:8080", "http://a.example"},
							RateLimit: RateLimit{EventsPerSecond: 1000, Burst: 5000},
						},
						{Slug: "server", WriteKey: "wk_server_123"},
					},
					Tokens: []Token{
						{Name: "support-desk", Token: "tok_support_12345", Scopes: []string{"profiles:read"}},
						{Name: "ops", Token: "tok_ops_123456789", Scopes: []string{"debug", "admin"}},
						{Name: "dpo", Token: "tok_privacy_12345", Scopes: []string{"privacy"}},
					},
				},
				{Slug: "other_2", DedupWindow: DefaultDedupWindow},
			},
		}},
		{"defaults and nulls", `
trusted_proxies:
workspaces:
  - slug: a
    retention: 0
    sources:
      - slug: s
        write_key: wk_12345678
        allowed_origins:
        rate_limit: {events_per_second: 2.5}
    tokens:
`, &Config{Workspaces: []Workspace{{
			Slug: "a", DedupWindow: DefaultDedupWindow,
			Sources: []Source{{Slug: "s", WriteKey: "wk_12345678", RateLimit: RateLimit{EventsPerSecond: 2.5, Burst: 3}}},
		}}}},
		{"unlimited rate", `
workspaces:
  - slug: a
    sources:
      - {slug: s, write_key: wk_12345678, rate_limit: {events_per_second: 0}, allowed_origins: ["*"]}
`, &Config{Workspaces: []Workspace{{
			Slug: "a", DedupWindow: DefaultDedupWindow,
			Sources: []Source{{Slug: "s", WriteKey: "wk_12345678", AllowedOrigins: []string{"*"}}},
		}}}},
		{"environment and days", `
workspaces:
  - slug: a
    dedup_window: ${DAYS}
    retention: 1d
    sources:
      - slug: s
        write_key: ${WEB_KEY}
      - slug: t
        write_key: "pa$$word$1${EMPTY}"
`, &Config{Workspaces: []Workspace{{
			Slug: "a", DedupWindow: 30 * 24 * time.Hour, Retention: 24 * time.Hour,
			Sources: []Source{{Slug: "s", WriteKey: "wk_from_env_123"}, {Slug: "t", WriteKey: "pa$word$1"}},
		}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseTest(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// wrap builds a one-workspace file around a source or token entry.
func source(lines string) string {
	return "workspaces:\n  - slug: acme\n    sources:\n      - slug: web\n" + lines
}

func token(lines string) string {
	return "workspaces:\n  - slug: acme\n    tokens:\n      - name: desk\n" + lines
}

func ident(lines string) string {
	return "workspaces:\n  - slug: acme\n    identity:\n" + lines
}

func TestParseIdentity(t *testing.T) {
	t.Parallel()
	cfg, err := parseTest(ident(`      priority: [user_id, email, crm_id, anonymous_id]
      limits:
        user_id: {max: 1}
        anonymous_id: {max: 10, window: 7d}
      blocked: [guest]
      trait_identifiers: {email: email, crm: crm_id}
      default_region: de
      max_merges: 20
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Workspaces[0].Identity
	want := identity.DefaultRules()
	want.Priority = []string{"user_id", "email", "crm_id", "anonymous_id"}
	want.Limits = map[string]identity.Limit{"user_id": {Max: 1}, "anonymous_id": {Max: 10, Window: 7 * 24 * time.Hour}}
	want.Blocked = []string{"guest"}
	want.TraitIdentifiers = map[string]string{"email": "email", "crm": "crm_id"}
	want.DefaultRegion = "de"
	want.MaxMerges = 20
	if !reflect.DeepEqual(*r, want) {
		t.Errorf("got  %+v\nwant %+v", *r, want)
	}
	if cfg, err := parseTest("workspaces:\n  - slug: acme\n"); err != nil || cfg.Workspaces[0].Identity != nil {
		t.Errorf("no identity block: %v %+v", err, cfg)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string // the whole error text
	}{
		// Document shape.
		{"yaml syntax", "workspaces: [\n", "kith.yaml:1: invalid YAML: did not find expected node content"},
		{"two documents", "workspaces: []\n---\nworkspaces: []\n", "kith.yaml:2: more than one YAML document; write one"},
		{"top is a list", "- slug: a\n", "kith.yaml:1: must be a mapping, not a list"},
		{"top is a scalar", "hello\n", `kith.yaml:1: must be a mapping, not "hello"`},
		{"unknown top field", "workspace: []\n", `kith.yaml:1: unknown field "workspace" (known: trusted_proxies, workspaces)`},
		{"field twice", "workspaces: []\nworkspaces: []\n", "kith.yaml:2: workspaces: set twice"},
		{"workspaces not a list", "workspaces: acme\n", `kith.yaml:1: workspaces: must be a list, not "acme"`},
		{"workspace not a mapping", "workspaces: [acme]\n", `kith.yaml:1: workspaces[0]: must be a mapping, not "acme"`},
		{"complex key", "? [a]\n: 1\n", "kith.yaml:1: must be a plain key, not a list"},
		{"alias", "workspaces:\n  - &w {slug: a}\n  - *w\n", "kith.yaml:3: workspaces[1]: YAML aliases (*w) are not supported"},
		{"merge key", "workspaces:\n  - &w {slug: a}\n  - <<: *w\n", `kith.yaml:3: workspaces[1]: unknown field "<<" (known: slug, dedup_window, retention, sources, tokens, identity, computed_traits, audiences, destinations, consent, sensitive_traits)` + "\n" +
			"kith.yaml:3: workspaces[1].slug: missing"},

		// Identity rules.
		{"identity bad pattern", ident("      blocked_patterns: [\"(\"]\n"), "kith.yaml:4: workspaces[0].identity: blocked_patterns[0]: error parsing regexp: missing closing ): `(`"},
		{"identity limit without max", ident("      limits: {email: {window: 1d}}\n"), "kith.yaml:4: workspaces[0].identity.limits.email.max: missing"},
		{"identity limit zero", ident("      limits: {email: {max: 0}}\n"), "kith.yaml:4: workspaces[0].identity.limits.email.max: must be a whole number from 1 to 1000000"},
		{"identity bad region", ident("      default_region: XX\n"), `kith.yaml:4: workspaces[0].identity: default_region: "XX" is not an ISO 3166 region code`},
		{"identity bad type", ident("      priority: [User Id]\n"), `kith.yaml:4: workspaces[0].identity: priority[0]: "User Id" is not an identifier type (lower-case letters, digits, _ . : -)`},
		{"identity unknown field", ident("      limit: {}\n"), `kith.yaml:4: workspaces[0].identity: unknown field "limit" (known: priority, limits, default_limit, blocked, blocked_patterns, trait_identifiers, default_region, max_identifiers, max_merges)`},

		// Workspaces.
		{"workspace slug missing", "workspaces:\n  - retention: 1h\n", "kith.yaml:2: workspaces[0].slug: missing"},
		{"workspace slug empty", "workspaces:\n  - slug: \"\"\n", "kith.yaml:2: workspaces[0].slug: empty"},
		{"workspace slug null", "workspaces:\n  - slug:\n", "kith.yaml:2: workspaces[0].slug: empty"},
		{"workspace slug uppercase", "workspaces:\n  - slug: Acme\n", `kith.yaml:2: workspaces[0].slug: "Acme" is not a valid name: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit`},
		{"workspace slug starts with dash", "workspaces:\n  - slug: -a\n", `kith.yaml:2: workspaces[0].slug: "-a" is not a valid name: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit`},
		{"workspace slug too long", "workspaces:\n  - slug: " + strings.Repeat("a", 64) + "\n", `kith.yaml:2: workspaces[0].slug: "` + strings.Repeat("a", 64) + `" is not a valid name: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit`},
		{"workspace slug a list", "workspaces:\n  - slug: [a]\n", "kith.yaml:2: workspaces[0].slug: must be a single value, not a list"},
		{"workspace slug twice", "workspaces:\n  - slug: a\n  - slug: b\n  - slug: a\n", `kith.yaml:4: workspaces[2].slug: workspace slug "a" is already used by workspaces[0].slug (line 2)`},
		{"unknown workspace field", "workspaces:\n  - slug: a\n    sorces: []\n", `kith.yaml:3: workspaces[0]: unknown field "sorces" (known: slug, dedup_window, retention, sources, tokens, identity, computed_traits, audiences, destinations, consent, sensitive_traits)`},
		{"dedup window zero", "workspaces:\n  - slug: a\n    dedup_window: 0\n", "kith.yaml:3: workspaces[0].dedup_window: must be positive: it is how long messageIds are remembered"},
		{"dedup window garbage", "workspaces:\n  - slug: a\n    dedup_window: a week\n", `kith.yaml:3: workspaces[0].dedup_window: "a week" is not a duration; write a duration such as 168h, 90m or 30d`},
		{"dedup window empty", "workspaces:\n  - slug: a\n    dedup_window:\n", "kith.yaml:3: workspaces[0].dedup_window: empty; write a duration such as 168h, 90m or 30d"},
		{"retention negative", "workspaces:\n  - slug: a\n    retention: -1h\n", `kith.yaml:3: workspaces[0].retention: "-1h" is negative`},
		{"retention negative days", "workspaces:\n  - slug: a\n    retention: -1d\n", `kith.yaml:3: workspaces[0].retention: "-1d" is not a duration; write a duration such as 168h, 90m or 30d`},
		{"retention too many days", "workspaces:\n  - slug: a\n    retention: 99999d\n", `kith.yaml:3: workspaces[0].retention: "99999d" is not a duration; write a duration such as 168h, 90m or 30d`},
		{"retention forever", "workspaces:\n  - slug: a\n    retention: forever\n", `kith.yaml:3: workspaces[0].retention: "forever" is not a duration; write a duration such as 168h, 90m or 30d`},
		{"sources not a list", "workspaces:\n  - slug: a\n    sources: {slug: web}\n", "kith.yaml:3: workspaces[0].sources: must be a list, not a mapping"},

		// Sources.
		{"source slug missing", "workspaces:\n  - slug: a\n    sources:\n      - write_key: wk_12345678\n", "kith.yaml:4: workspaces[0].sources[0].slug: missing"},
		{"source slug invalid", "workspaces:\n  - slug: a\n    sources:\n      - {slug: \"web site\", write_key: wk_12345678}\n", `kith.yaml:4: workspaces[0].sources[0].slug: "web site" is not a valid name: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit`},
		{"source slug twice", source("        write_key: wk_12345678\n      - slug: web\n        write_key: wk_87654321\n"), `kith.yaml:6: workspaces[0].sources[1].slug: source slug "web" is already used by workspaces[0].sources[0].slug (line 4)`},
		{"write key missing", source(""), "kith.yaml:4: workspaces[0].sources[0].write_key: missing"},
		{"write key empty", source("        write_key: \"\"\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: empty"},
		{"write key too short", source("        write_key: wk_1234\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: too short: 7 characters, at least 8"},
		{"write key too long", source("        write_key: " + strings.Repeat("k", 257) + "\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: too long: 257 characters, at most 256"},
		{"write key with colon", source("        write_key: wk:12345678\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: may hold only printable ASCII characters other than ':' and space"},
		{"write key with space", source("        write_key: wk 12345678\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: may hold only printable ASCII characters other than ':' and space"},
		{"write key not ASCII", source("        write_key: wk_1234567é\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: may hold only printable ASCII characters other than ':' and space"},
		{"write key a number list", source("        write_key: [1]\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: must be a single value, not a list"},
		{"write key reused across workspaces", `
workspaces:
  - slug: a
    sources: [{slug: web, write_key: wk_shared_1}]
  - slug: b
    sources: [{slug: web, write_key: wk_shared_1}]
`, "kith.yaml:5: workspaces[1].sources[0].write_key: same secret as workspaces[0].sources[0].write_key (line 3); every write key and token must be different"},
		{"write key reused as token", `
workspaces:
  - slug: a
    sources: [{slug: web, write_key: shared_secret_1234}]
    tokens: [{name: t, token: shared_secret_1234, scopes: [debug]}]
`, "kith.yaml:4: workspaces[0].tokens[0].token: same secret as workspaces[0].sources[0].write_key (line 3); every write key and token must be different"},
		{"unknown source field", source("        write_key: wk_12345678\n        origins: []\n"), `kith.yaml:6: workspaces[0].sources[0]: unknown field "origins" (known: slug, write_key, allowed_origins, rate_limit, trait_priority)`},

		// Origins.
		{"origin with path", source("        write_key: wk_12345678\n        allowed_origins: [\"https://shop.example.com/\"]\n"), `kith.yaml:6: workspaces[0].sources[0].allowed_origins[0]: "https://shop.example.com/" is not an origin: write scheme://host[:port] with no path, e.g. https://shop.example.com, or "*" for any`},
		{"origin without scheme", source("        write_key: wk_12345678\n        allowed_origins: [shop.example.com]\n"), `kith.yaml:6: workspaces[0].sources[0].allowed_origins[0]: "shop.example.com" is not an origin: write scheme://host[:port] with no path, e.g. https://shop.example.com, or "*" for any`},
		{"origin with query", source("        write_key: wk_12345678\n        allowed_origins: [\"https://a.example?x\"]\n"), `kith.yaml:6: workspaces[0].sources[0].allowed_origins[0]: "https://a.example?x" is not an origin: write scheme://host[:port] with no path, e.g. https://shop.example.com, or "*" for any`},
		{"origin with user", source("        write_key: wk_12345678\n        allowed_origins: [\"https://u@a.example\"]\n"), `kith.yaml:6: workspaces[0].sources[0].allowed_origins[0]: "https://u@a.example" is not an origin: write scheme://host[:port] with no path, e.g. https://shop.example.com, or "*" for any`},
		{"origin bad port", source("        write_key: wk_12345678\n        allowed_origins: [\"https://a.example:99999\"]\n"), `kith.yaml:6: workspaces[0].sources[0].allowed_origins[0]: "https://a.example:99999" is not an origin: write scheme://host[:port] with no path, e.g. https://shop.example.com, or "*" for any`},
		{"origin wildcard host", source("        write_key: wk_12345678\n        allowed_origins: [\"https://*.example.com\"]\n"), `kith.yaml:6: workspaces[0].sources[0].allowed_origins[0]: "https://*.example.com": wildcards inside an origin are not supported; list each origin, or "*" alone for any`},
		{"origin not ASCII", source("        write_key: wk_12345678\n        allowed_origins: [\"https://bücher.example\"]\n"), `kith.yaml:6: workspaces[0].sources[0].allowed_origins[0]: "https://bücher.example" is not an origin: write scheme://host[:port] with no path, e.g. https://shop.example.com, or "*" for any (international host names go in their xn-- form)`},
		{"origins not a list", source("        write_key: wk_12345678\n        allowed_origins: https://a.example\n"), `kith.yaml:6: workspaces[0].sources[0].allowed_origins: must be a list, not "https://a.example"`},

		// Rate limits.
		{"trait priority not a number", source("        write_key: wk_12345678\n        trait_priority: high\n"), `kith.yaml:6: workspaces[0].sources[0].trait_priority: must be a whole number from -1000 to 1000`},
		{"trait priority too big", source("        write_key: wk_12345678\n        trait_priority: 5000\n"), `kith.yaml:6: workspaces[0].sources[0].trait_priority: must be a whole number from -1000 to 1000`},
		{"rate negative", source("        write_key: wk_12345678\n        rate_limit: {events_per_second: -1}\n"), `kith.yaml:6: workspaces[0].sources[0].rate_limit.events_per_second: "-1" is not a number of events per second (0 or more; 0 = unlimited)`},
		{"rate not a number", source("        write_key: wk_12345678\n        rate_limit: {events_per_second: fast}\n"), `kith.yaml:6: workspaces[0].sources[0].rate_limit.events_per_second: "fast" is not a number of events per second (0 or more; 0 = unlimited)`},
		{"rate infinite", source("        write_key: wk_12345678\n        rate_limit: {events_per_second: .inf}\n"), `kith.yaml:6: workspaces[0].sources[0].rate_limit.events_per_second: ".inf" is not a number of events per second (0 or more; 0 = unlimited)`},
		{"burst alone", source("        write_key: wk_12345678\n        rate_limit: {burst: 10}\n"), "kith.yaml:6: workspaces[0].sources[0].rate_limit.burst: set events_per_second too (a burst alone limits nothing)"},
		{"burst zero", source("        write_key: wk_12345678\n        rate_limit: {events_per_second: 10, burst: 0}\n"), `kith.yaml:6: workspaces[0].sources[0].rate_limit.burst: "0" is not a whole number of events from 1 to 1000000000`},
		{"burst fraction", source("        write_key: wk_12345678\n        rate_limit: {events_per_second: 10, burst: 1.5}\n"), `kith.yaml:6: workspaces[0].sources[0].rate_limit.burst: "1.5" is not a whole number of events from 1 to 1000000000`},
		{"unknown rate field", source("        write_key: wk_12345678\n        rate_limit: {rps: 10}\n"), `kith.yaml:6: workspaces[0].sources[0].rate_limit: unknown field "rps" (known: events_per_second, burst)`},
		{"rate limit a list", source("        write_key: wk_12345678\n        rate_limit: [10]\n"), "kith.yaml:6: workspaces[0].sources[0].rate_limit: must be a mapping, not a list"},

		// Tokens.
		{"token name missing", "workspaces:\n  - slug: a\n    tokens:\n      - {token: tok_1234567890123, scopes: [debug]}\n", "kith.yaml:4: workspaces[0].tokens[0].name: missing"},
		{"token name invalid", "workspaces:\n  - slug: a\n    tokens:\n      - {name: Desk, token: tok_1234567890123, scopes: [debug]}\n", `kith.yaml:4: workspaces[0].tokens[0].name: "Desk" is not a valid name: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit`},
		{"token name twice", token("        token: tok_1234567890123\n        scopes: [debug]\n      - name: desk\n        token: tok_1234567890124\n        scopes: [debug]\n"), `kith.yaml:7: workspaces[0].tokens[1].name: token name "desk" is already used by workspaces[0].tokens[0].name (line 4)`},
		{"token missing", token("        scopes: [debug]\n"), "kith.yaml:4: workspaces[0].tokens[0].token: missing"},
		{"token too short", token("        token: tok_support_123\n        scopes: [debug]\n"), "kith.yaml:5: workspaces[0].tokens[0].token: too short: 15 characters, at least 16"},
		{"token with space", token("        token: tok support 12345\n        scopes: [debug]\n"), "kith.yaml:5: workspaces[0].tokens[0].token: may hold only printable ASCII characters other than ':' and space"},
		{"token reused", `
workspaces:
  - slug: a
    tokens: [{name: t, token: tok_1234567890123, scopes: [debug]}]
  - slug: b
    tokens: [{name: t, token: tok_1234567890123, scopes: [debug]}]
`, "kith.yaml:5: workspaces[1].tokens[0].token: same secret as workspaces[0].tokens[0].token (line 3); every write key and token must be different"},
		{"scopes missing", token("        token: tok_1234567890123\n"), "kith.yaml:4: workspaces[0].tokens[0].scopes: missing"},
		{"scopes empty", token("        token: tok_1234567890123\n        scopes: []\n"), "kith.yaml:6: workspaces[0].tokens[0].scopes: list at least one scope (known: profiles:read, debug, privacy, admin)"},
		{"scopes null", token("        token: tok_1234567890123\n        scopes:\n"), "kith.yaml:6: workspaces[0].tokens[0].scopes: list at least one scope (known: profiles:read, debug, privacy, admin)"},
		{"scope unknown", token("        token: tok_1234567890123\n        scopes: [profile:read]\n"), `kith.yaml:6: workspaces[0].tokens[0].scopes[0]: unknown scope "profile:read" (known: profiles:read, debug, privacy, admin)`},
		{"scope twice", token("        token: tok_1234567890123\n        scopes: [debug, debug]\n"), `kith.yaml:6: workspaces[0].tokens[0].scopes[1]: scope "debug" is listed twice`},
		{"scopes a string", token("        token: tok_1234567890123\n        scopes: debug\n"), `kith.yaml:6: workspaces[0].tokens[0].scopes: must be a list, not "debug"`},
		{"unknown token field", token("        token: tok_1234567890123\n        scopes: [debug]\n        expires: 1h\n"), `kith.yaml:7: workspaces[0].tokens[0]: unknown field "expires" (known: name, token, scopes)`},

		// Trusted proxies.
		{"proxy bad CIDR", "trusted_proxies: [10.0.0.0/33]\n", `kith.yaml:1: trusted_proxies[0]: "10.0.0.0/33" is not a CIDR such as 10.0.0.0/8`},
		{"proxy bad address", "trusted_proxies: [localhost]\n", `kith.yaml:1: trusted_proxies[0]: "localhost" is not an IP address or a CIDR such as 10.0.0.0/8`},
		{"proxy with zone", "trusted_proxies: [\"fe80::1%eth0\"]\n", `kith.yaml:1: trusted_proxies[0]: "fe80::1%eth0" is not an IP address or a CIDR such as 10.0.0.0/8`},
		{"proxies a string", "trusted_proxies: 10.0.0.0/8\n", `kith.yaml:1: trusted_proxies: must be a list, not "10.0.0.0/8"`},

		// Environment variables.
		{"env missing", source("        write_key: ${ACME_WEB_KEY}\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: environment variable ACME_WEB_KEY is not set"},
		{"env set but empty", source("        write_key: ${EMPTY}\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: empty"},
		{"env bad name", source("        write_key: ${1KEY}\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: ${1KEY}: not an environment variable name (letters, digits and '_', not starting with a digit)"},
		{"env unterminated", source("        write_key: wk_${WEB_KEY\n"), "kith.yaml:5: workspaces[0].sources[0].write_key: unterminated ${ (write $$ for a literal dollar sign)"},

		// Several problems are all reported.
		{"several", `
workspaces:
  - slug: A
    sources:
      - slug: web
        write_key: short
    tokens:
      - name: t
        token: tok_1234567890123
        scopes: [read]
`, `kith.yaml:2: workspaces[0].slug: "A" is not a valid name: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit` + "\n" +
			"kith.yaml:5: workspaces[0].sources[0].write_key: too short: 5 characters, at least 8\n" +
			`kith.yaml:9: workspaces[0].tokens[0].scopes[0]: unknown scope "read" (known: profiles:read, debug, privacy, admin)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseTest(tt.src)
			if err == nil {
				t.Fatalf("no error; parsed %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("a config came back with the error")
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

// TestErrorsHideSecrets checks that no problem with a secret quotes it.
func TestErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	const secret = "wk_very_secret_value"
	for _, src := range []string{
		"workspaces:\n  - slug: a\n    sources:\n      - {slug: x, write_key: " + secret + "}\n      - {slug: y, write_key: " + secret + "}\n",
		"workspaces:\n  - slug: a\n    sources:\n      - {slug: x, write_key: \"" + secret + " \"}\n",
		"workspaces:\n  - slug: a\n    sources:\n      - {slug: x, write_key: \"" + secret + ":\"}\n",
	} {
		_, err := parseTest(src)
		if err == nil {
			t.Fatalf("no error for %q", src)
		}
		if strings.Contains(err.Error(), "very_secret") {
			t.Errorf("error quotes the secret: %v", err)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "kith.yaml")
	if err := os.WriteFile(path, []byte("workspaces:\n  - slug: a\n    retention: soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + `:3: workspaces[0].retention: "soon" is not a duration; write a duration such as 168h, 90m or 30d`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestParseReadsEnvironment(t *testing.T) {
	t.Setenv("KITH_TEST_CONFIG_KEY", "wk_1234567890")
	cfg, err := Parse([]byte("workspaces:\n  - slug: a\n    sources:\n      - {slug: s, write_key: \"${KITH_TEST_CONFIG_KEY}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Workspaces[0].Sources[0].WriteKey; got != "wk_1234567890" {
		t.Errorf("write key %q, want the environment's", got)
	}
	_, err = Parse([]byte("workspaces:\n  - slug: A\n"))
	if want := `line 2: workspaces[0].slug: "A" is not a valid name`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want an error starting %q", err, want)
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${WEB_KEY}", "wk_from_env_123", ""},
		{"a${EMPTY}b", "ab", ""},
		{"$$", "$", ""},
		{"$${WEB_KEY}", "${WEB_KEY}", ""},
		{"$$$", "$$", ""},
		{"cost: 5$", "cost: 5$", ""},
		{"$WEB_KEY", "$WEB_KEY", ""},
		{"${DAYS}${DAYS}", "30d30d", ""},
		{"${NOPE}", "", "environment variable NOPE is not set"},
		{"${}", "", "${}: not an environment variable name (letters, digits and '_', not starting with a digit)"},
		{"${A-B}", "", "${A-B}: not an environment variable name (letters, digits and '_', not starting with a digit)"},
		{"${OPEN", "", "unterminated ${ (write $$ for a literal dollar sign)"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, lookup)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("expand(%q): error %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
