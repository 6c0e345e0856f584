package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that any input either parses into a config that keeps
// the validation promises, or fails with *Error values — never a panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"workspaces: []\n",
		"trusted_proxies: [10.0.0.0/8, 127.0.0.1, \"::1\"]\n",
		source("        write_key: ${WEB_KEY}\n        allowed_origins: [\"https://a.example:8443\", \"*\"]\n        rate_limit: {events_per_second: 0.5}\n"),
		token("        token: tok_1234567890123\n        scopes: [profiles:read, admin]\n"),
		"workspaces:\n  - &w {slug: a}\n  - *w\n",
		"workspaces:\n  - slug: a\n    dedup_window: 30d\n    retention: 2160h\n",
		"a: 1\n---\nb: 2\n",
	} {
		f.Add([]byte(seed))
	}
	for _, doc := range docExamples(f) {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse(data, "f.yaml", lookup)
		if err != nil {
			if cfg != nil {
				t.Fatal("config and error both returned")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a *Error: %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		secrets := map[string]bool{}
		for _, w := range cfg.Workspaces {
			if !slugRE.MatchString(w.Slug) || w.DedupWindow <= 0 || w.Retention < 0 {
				t.Fatalf("invalid workspace accepted: %+v", w)
			}
			for _, s := range w.Sources {
				if !slugRE.MatchString(s.Slug) || checkSecret(s.WriteKey, MinWriteKeyLen) != "" || secrets[s.WriteKey] {
					t.Fatalf("invalid source accepted: %+v", s)
				}
				secrets[s.WriteKey] = true
				if (s.RateLimit.EventsPerSecond > 0) != (s.RateLimit.Burst > 0) {
					t.Fatalf("inconsistent rate limit accepted: %+v", s.RateLimit)
				}
				for _, o := range s.AllowedOrigins {
					if norm, problem := parseOrigin(o); problem != "" || norm != o {
						t.Fatalf("origin %q not in normal form (%q, %s)", o, norm, problem)
					}
				}
			}
			for _, tok := range w.Tokens {
				if !slugRE.MatchString(tok.Name) || checkSecret(tok.Token, MinTokenLen) != "" || secrets[tok.Token] || len(tok.Scopes) == 0 {
					t.Fatalf("invalid token accepted: %+v", tok)
				}
				secrets[tok.Token] = true
			}
		}
	})
}
