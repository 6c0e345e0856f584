package tenant_test

import (
	"context"
	"fmt"
	"os"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

func ExampleLoad() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "kith-example")
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	cfg, err := config.Parse([]byte(`
workspaces:
  - slug: acme
    sources:
      - slug: web
        write_key: wk_web_1234567890
        allowed_origins: ["https://shop.example.com"]
    tokens:
      - name: debugger
        token: tok_debug_1234567890
        scopes: [debug]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	reg, newKeys, err := tenant.Load(ctx, st, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("generated keys:", len(newKeys))

	// A Tracking API request: which source, and may this page send?
	src, ok := reg.SourceForKey("wk_web_1234567890")
	fmt.Println(ok, src.Workspace, src.Slug)
	fmt.Println(src.OriginAllowed("https://shop.example.com"), src.OriginAllowed("https://evil.example"))

	// A read API request: who, and may they?
	p, ok := reg.Authenticate("tok_debug_1234567890")
	fmt.Println(ok, p.Name, p.Can("acme", config.ScopeDebug), p.Can("acme", config.ScopeAdmin))
	// Output:
	// generated keys: 0
	// true acme web
	// true false
	// true debugger true false
}
