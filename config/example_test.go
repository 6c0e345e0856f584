package config_test

import (
	"fmt"

	"github.com/kithcdp/kith/config"
)

func ExampleParse() {
	cfg, err := config.Parse([]byte(`
workspaces:
  - slug: acme
    retention: 90d
    sources:
      - slug: web
        write_key: wk_web_1234567890
        allowed_origins: ["HTTPS://Shop.Example.com:443"]
        rate_limit: {events_per_second: 100}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	w := cfg.Workspaces[0]
	fmt.Println(w.Slug, w.DedupWindow, w.Retention)
	fmt.Println(w.Sources[0].AllowedOrigins, w.Sources[0].RateLimit.Burst)
	// Output:
	// acme 168h0m0s 2160h0m0s
	// [https://shop.example.com] 100
}

func ExampleParse_errors() {
	_, err := config.Parse([]byte(`
workspaces:
  - slug: acme
    sources:
      - slug: web
        write_key: ""
    tokens:
      - name: desk
        token: tok_desk_1234567890
        scopes: [profile:read]
`))
	fmt.Println(err)
	// Output:
	// line 6: workspaces[0].sources[0].write_key: empty
	// line 10: workspaces[0].tokens[0].scopes[0]: unknown scope "profile:read" (known: profiles:read, debug, privacy, admin)
}
