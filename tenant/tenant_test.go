package tenant_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

// bundle is one test's fixture: a real SQLite store in a temporary directory.
type bundle struct {
	ctx context.Context
	st  store.Store
}

func setup(t testing.TB) *bundle {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &bundle{ctx: ctx, st: st}
}

// load parses src (if not empty) and loads it into the bundle's store.
func (b *bundle) load(t testing.TB, src string) (*tenant.Registry, []tenant.NewKey) {
	t.Helper()
	var cfg *config.Config
	if src != "" {
		var err error
		if cfg, err = config.Parse([]byte(src)); err != nil {
			t.Fatal(err)
		}
	}
	reg, keys, err := tenant.Load(b.ctx, b.st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, keys
}

const acmeConfig = `
trusted_proxies: [10.0.0.0/8, 127.0.0.1]
workspaces:
  - slug: acme
    dedup_window: 48h
    retention: 2160h
    sources:
      - slug: web
        write_key: wk_web_1234567890
        allowed_origins: ["https://shop.example.com", "http://localhost:3000"]
      - slug: app
        write_key: wk_app_1234567890
        rate_limit: {events_per_second: 0.001, burst: 3}
      - slug: anywhere
        write_key: wk_any_1234567890
        allowed_origins: ["*"]
    tokens:
      - name: desk
        token: tok_desk_1234567890
        scopes: [profiles:read]
      - name: ops
        token: tok_ops_1234567890
        scopes: [debug]
      - name: root
        token: tok_root_1234567890
        scopes: [admin]
  - slug: beta
    sources:
      - slug: server
        write_key: wk_beta_1234567890
    tokens:
      - name: ops
        token: tok_beta_1234567890
        scopes: [debug]
`

func TestFirstStartGeneratesKeyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg, keys := b.load(t, "")
	if len(keys) != 1 {
		t.Fatalf("first start: %d new keys, want 1", len(keys))
	}
	k := keys[0]
	if k.Workspace != "default" || k.Source != "default" || !strings.HasPrefix(k.Key, "wk_") || len(k.Key) < 3+32 {
		t.Fatalf("new key %+v: want default/default and wk_ with 32+ characters", k)
	}
	src, ok := reg.SourceForKey(k.Key)
	if !ok || src.Workspace != "default" || src.Slug != "default" {
		t.Fatalf("SourceForKey(new key) = %+v, %v", src, ok)
	}
	if ws, ok := reg.Workspace("default"); !ok || ws.DedupWindow != config.DefaultDedupWindow || ws.Retention != 0 {
		t.Errorf("default workspace = %+v, %v", ws, ok)
	}

	// Only the hash is stored.
	srcs, err := b.st.Sources(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || !hmac.Equal(srcs[0].KeyHash, reg.Hash(k.Key)) || strings.Contains(string(srcs[0].KeyHash), k.Key) {
		t.Fatalf("stored sources %+v: want one holding the key's hash", srcs)
	}

	// A second start prints nothing and the key still works.
	reg2, keys2 := b.load(t, "")
	if len(keys2) != 0 {
		t.Errorf("second start: new keys %+v, want none", keys2)
	}
	if _, ok := reg2.SourceForKey(k.Key); !ok {
		t.Error("second start: the first key no longer authenticates")
	}
	fromStore, err := tenant.FromStore(b.ctx, b.st)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fromStore.SourceForKey(k.Key); !ok {
		t.Error("FromStore: the key does not authenticate")
	}

	// Two generated keys differ.
	_, other := setup(t).load(t, "")
	if other[0].Key == k.Key {
		t.Error("two stores generated the same key")
	}
}

func TestConfigSync(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, defaultKeys := b.load(t, "") // a first start without config

	reg, keys := b.load(t, acmeConfig)
	if len(keys) != 0 {
		t.Errorf("config start generated keys %+v", keys)
	}
	for key, want := range map[string]string{
		"wk_web_1234567890":  "acme/web",
		"wk_app_1234567890":  "acme/app",
		"wk_beta_1234567890": "beta/server",
	} {
		if src, ok := reg.SourceForKey(key); !ok || src.Workspace+"/"+src.Slug != want {
			t.Errorf("SourceForKey(%s) = %+v, %v; want %s", key, src, ok, want)
		}
	}
	if _, ok := reg.SourceForKey(defaultKeys[0].Key); ok {
		t.Error("the generated default key still works under a config that does not declare it")
	}
	if p, ok := reg.Authenticate("tok_beta_1234567890"); !ok || p.Workspace != "beta" || p.Name != "ops" || !slices.Equal(p.Scopes, []string{"debug"}) {
		t.Errorf("Authenticate(beta token) = %+v, %v", p, ok)
	}
	ws, ok := reg.Workspace("acme")
	if !ok || ws.DedupWindow != 48*time.Hour || ws.Retention != 90*24*time.Hour {
		t.Errorf("Workspace(acme) = %+v, %v", ws, ok)
	}
	if got, want := reg.TrustedProxies(), []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}; !slices.Equal(got, want) {
		t.Errorf("TrustedProxies() = %v, want %v", got, want)
	}

	// The config changes: a key is rotated, a source and a token are
	// removed, a token's scopes change, workspace beta is dropped and gamma
	// added.
	reg, _ = b.load(t, `
workspaces:
  - slug: acme
    sources:
      - slug: web
        write_key: wk_web_rotated_1234
    tokens:
      - name: desk
        token: tok_desk_1234567890
        scopes: [profiles:read, debug]
  - slug: gamma
    retention: 24h
    sources:
      - slug: web
        write_key: wk_gamma_1234567890
`)
	for key, want := range map[string]string{
		"wk_web_1234567890":   "",
		"wk_app_1234567890":   "",
		"wk_beta_1234567890":  "",
		"wk_web_rotated_1234": "acme/web",
		"wk_gamma_1234567890": "gamma/web",
	} {
		src, ok := reg.SourceForKey(key)
		got := ""
		if ok {
			got = src.Workspace + "/" + src.Slug
		}
		if got != want {
			t.Errorf("after the change, SourceForKey(%s) = %q, want %q", key, got, want)
		}
	}
	for token, want := range map[string]bool{"tok_desk_1234567890": true, "tok_ops_1234567890": false, "tok_beta_1234567890": false} {
		if _, ok := reg.Authenticate(token); ok != want {
			t.Errorf("after the change, Authenticate(%s) = %v, want %v", token, ok, want)
		}
	}
	if p, _ := reg.Authenticate("tok_desk_1234567890"); !p.Can("acme", "debug") {
		t.Error("the desk token did not gain the debug scope")
	}
	var slugs []string
	for _, w := range reg.Workspaces() {
		slugs = append(slugs, w.Slug)
	}
	if want := []string{"acme", "beta", "default", "gamma"}; !slices.Equal(slugs, want) {
		t.Errorf("Workspaces() = %v, want %v (workspaces are kept, only their credentials go)", slugs, want)
	}
	if ws, _ := reg.Workspace("acme"); ws.DedupWindow != config.DefaultDedupWindow || ws.Retention != 0 {
		t.Errorf("acme settings not reset to defaults: %+v", ws)
	}
	srcs, err := b.st.Sources(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 {
		t.Errorf("store holds %d sources, want the 2 declared", len(srcs))
	}

	// A node without the config file sees the same registry.
	other, err := tenant.FromStore(b.ctx, b.st)
	if err != nil {
		t.Fatal(err)
	}
	if src, ok := other.SourceForKey("wk_gamma_1234567890"); !ok || src.Slug != "web" {
		t.Errorf("FromStore: SourceForKey(gamma) = %+v, %v", src, ok)
	}
	if ws, _ := other.Workspace("gamma"); ws.Retention != 24*time.Hour {
		t.Errorf("FromStore: gamma = %+v", ws)
	}
	if len(other.TrustedProxies()) != 0 {
		t.Errorf("FromStore trusts proxies %v", other.TrustedProxies())
	}
}

func TestConfigWithoutWorkspacesKeepsDefault(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg, keys := b.load(t, "trusted_proxies: [192.168.0.0/16]\n")
	if len(keys) != 1 {
		t.Fatalf("%d new keys, want the default source's", len(keys))
	}
	if _, ok := reg.SourceForKey(keys[0].Key); !ok {
		t.Error("the default key does not authenticate")
	}
	if len(reg.TrustedProxies()) != 1 {
		t.Errorf("TrustedProxies() = %v", reg.TrustedProxies())
	}
}

func TestWrongCredentialsRejected(t *testing.T) {
	t.Parallel()
	reg, _ := setup(t).load(t, acmeConfig)
	for _, key := range []string{
		"", "wk_web_123456789", "wk_web_12345678901", "WK_WEB_1234567890", " wk_web_1234567890",
		"tok_ops_1234567890", // a token is not a write key
		strings.Repeat("x", 10000),
	} {
		if src, ok := reg.SourceForKey(key); ok {
			t.Errorf("SourceForKey(%.20q) = %+v, want rejection", key, src)
		}
	}
	for _, token := range []string{
		"", "tok_ops_123456789", "TOK_OPS_1234567890",
		"wk_web_1234567890", // a write key is not a token
		strings.Repeat("x", 10000),
	} {
		if p, ok := reg.Authenticate(token); ok {
			t.Errorf("Authenticate(%.20q) = %+v, want rejection", token, p)
		}
	}
	if _, ok := reg.Workspace("nope"); ok {
		t.Error(`Workspace("nope") found`)
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	reg, _ := setup(t).load(t, acmeConfig)
	tests := []struct {
		token, workspace, scope string
		want                    bool
	}{
		{"tok_desk_1234567890", "acme", "profiles:read", true},
		{"tok_desk_1234567890", "acme", "debug", false},
		{"tok_desk_1234567890", "acme", "admin", false},
		{"tok_ops_1234567890", "acme", "debug", true},
		{"tok_ops_1234567890", "acme", "profiles:read", false},
		{"tok_ops_1234567890", "beta", "debug", false}, // another workspace
		{"tok_root_1234567890", "acme", "debug", true}, // admin implies every scope
		{"tok_root_1234567890", "acme", "profiles:read", true},
		{"tok_root_1234567890", "acme", "admin", true},
		{"tok_root_1234567890", "beta", "debug", false}, // but only in its workspace
		{"tok_root_1234567890", "", "debug", false},
		{"tok_beta_1234567890", "beta", "debug", true},
		{"tok_beta_1234567890", "acme", "debug", false},
	}
	for _, tt := range tests {
		p, ok := reg.Authenticate(tt.token)
		if !ok {
			t.Fatalf("Authenticate(%s) failed", tt.token)
		}
		if got := p.Can(tt.workspace, tt.scope); got != tt.want {
			t.Errorf("%s.Can(%q, %q) = %v, want %v", p.Name, tt.workspace, tt.scope, got, tt.want)
		}
	}
	var none *tenant.Principal
	if none.Can("acme", "debug") {
		t.Error("a nil principal can act")
	}
}

func TestOrigins(t *testing.T) {
	t.Parallel()
	reg, _ := setup(t).load(t, acmeConfig)
	tests := []struct {
		key, origin string
		want        bool
	}{
		{"wk_web_1234567890", "", true}, // server SDKs send no Origin
		{"wk_web_1234567890", "https://shop.example.com", true},
		{"wk_web_1234567890", "http://localhost:3000", true},
		{"wk_web_1234567890", "http://shop.example.com", false},
		{"wk_web_1234567890", "https://shop.example.com:8443", false},
		{"wk_web_1234567890", "https://evil.example", false},
		{"wk_web_1234567890", "null", false},
		{"wk_any_1234567890", "https://evil.example", true}, // "*"
		{"wk_any_1234567890", "null", true},
		{"wk_app_1234567890", "https://anything.example", true}, // none listed: any
	}
	for _, tt := range tests {
		src, ok := reg.SourceForKey(tt.key)
		if !ok {
			t.Fatalf("SourceForKey(%s) failed", tt.key)
		}
		if got := src.OriginAllowed(tt.origin); got != tt.want {
			t.Errorf("%s.OriginAllowed(%q) = %v, want %v", src.Slug, tt.origin, got, tt.want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		requests []int  // events per request, in order
		want     []bool // whether each is allowed
	}{
		// The app source allows 1 event per 1000 s with a burst of 3, so
		// no tokens come back during the test.
		{"within burst", []int{1, 2}, []bool{true, true}},
		{"over burst", []int{3, 1}, []bool{true, false}},
		{"one request larger than the burst", []int{5, 1}, []bool{true, false}},
		{"refused request costs nothing", []int{2, 2, 1}, []bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg, _ := setup(t).load(t, acmeConfig)
			src, _ := reg.SourceForKey("wk_app_1234567890")
			if src.RateLimit != (config.RateLimit{EventsPerSecond: 0.001, Burst: 3}) {
				t.Fatalf("RateLimit = %+v", src.RateLimit)
			}
			for i, n := range tt.requests {
				ok, retry := src.Allow(n)
				if ok != tt.want[i] {
					t.Fatalf("request %d (%d events): allowed %v, want %v", i, n, ok, tt.want[i])
				}
				if ok && retry != 0 || !ok && retry <= 0 {
					t.Errorf("request %d: retryAfter %v with allowed %v", i, retry, ok)
				}
			}
		})
	}

	reg, _ := setup(t).load(t, acmeConfig)
	unlimited, _ := reg.SourceForKey("wk_web_1234567890")
	for range 3 {
		if ok, retry := unlimited.Allow(1_000_000); !ok || retry != 0 {
			t.Fatalf("unlimited source refused: %v, %v", ok, retry)
		}
	}
}

func TestSecretFromEnvironment(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte("wk_web_1234567890"))
	want := mac.Sum(nil)
	cfg, err := config.Parse([]byte(acmeConfig))
	if err != nil {
		t.Fatal(err)
	}

	for _, encoded := range []string{
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
		base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
	} {
		t.Setenv("KITH_SECRET", encoded)
		b := setup(t)
		reg, _, err := tenant.Load(b.ctx, b.st, cfg)
		if err != nil {
			t.Fatalf("KITH_SECRET=%s: %v", encoded, err)
		}
		if got := reg.Hash("wk_web_1234567890"); !hmac.Equal(got, want) {
			t.Errorf("KITH_SECRET=%s: hash %x, want %x", encoded, got, want)
		}
		if _, ok := reg.SourceForKey("wk_web_1234567890"); !ok {
			t.Errorf("KITH_SECRET=%s: key does not authenticate", encoded)
		}
		if _, err := b.st.Meta(b.ctx, "hmac_secret"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("KITH_SECRET=%s: a secret was stored too (err %v)", encoded, err)
		}
	}

	for _, bad := range []string{"tooshort", hex.EncodeToString(raw[:31]), "not hex nor base64 !!"} {
		t.Setenv("KITH_SECRET", bad)
		b := setup(t)
		_, _, err := tenant.Load(b.ctx, b.st, cfg)
		if err == nil || !strings.Contains(err.Error(), "KITH_SECRET") || strings.Contains(err.Error(), bad) {
			t.Errorf("KITH_SECRET=%q: error %v, want one naming the variable but not its value", bad, err)
		}
	}
}

func TestStoredSecretIsShared(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg1, _ := b.load(t, acmeConfig)
	reg2, err := tenant.FromStore(b.ctx, b.st)
	if err != nil {
		t.Fatal(err)
	}
	if !hmac.Equal(reg1.Hash("x"), reg2.Hash("x")) {
		t.Error("two registries on one store hash differently")
	}
	secret, err := b.st.Meta(b.ctx, "hmac_secret")
	if err != nil || len(secret) != 32 {
		t.Errorf("stored secret: %d bytes, %v; want 32", len(secret), err)
	}
	if hmac.Equal(reg1.Hash("x"), setup(t).mustFromStore(t).Hash("x")) {
		t.Error("two stores share a secret")
	}
}

func (b *bundle) mustFromStore(t *testing.T) *tenant.Registry {
	t.Helper()
	reg, err := tenant.FromStore(b.ctx, b.st)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestFromStoreRejectsBadData(t *testing.T) {
	t.Parallel()
	hash := make([]byte, 32)
	tests := []struct {
		name string
		put  func(ctx context.Context, st store.Store) error
		want string
	}{
		{"bad workspace settings", func(ctx context.Context, st store.Store) error {
			return st.PutWorkspace(ctx, store.Workspace{Slug: "a", Settings: []byte(`{"dedup_window":"soon"}`)})
		}, `load workspace a: settings: dedup_window "soon" is not a duration`},
		{"workspace settings not JSON", func(ctx context.Context, st store.Store) error {
			return st.PutWorkspace(ctx, store.Workspace{Slug: "a", Settings: []byte(`{`)})
		}, "load workspace a: settings: unexpected end of JSON input"},
		{"source without workspace", func(ctx context.Context, st store.Store) error {
			return st.PutSource(ctx, store.Source{Workspace: "nope", Slug: "s", KeyHash: hash})
		}, "load source nope/s: its workspace does not exist"},
		{"short hash", func(ctx context.Context, st store.Store) error {
			if err := st.PutWorkspace(ctx, store.Workspace{Slug: "a"}); err != nil {
				return err
			}
			return st.PutToken(ctx, store.Token{Workspace: "a", Name: "t", Hash: hash[:8], Scopes: []string{"debug"}})
		}, "load token a/t: stored hash has 8 bytes, want 32"},
		{"shared hash", func(ctx context.Context, st store.Store) error {
			if err := st.PutWorkspace(ctx, store.Workspace{Slug: "a"}); err != nil {
				return err
			}
			if err := st.PutSource(ctx, store.Source{Workspace: "a", Slug: "s", KeyHash: hash}); err != nil {
				return err
			}
			return st.PutToken(ctx, store.Token{Workspace: "a", Name: "t", Hash: hash, Scopes: []string{"debug"}})
		}, "load token a/t: it has the same secret as source a/s; give each write key and token its own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if err := tt.put(b.ctx, b.st); err != nil {
				t.Fatal(err)
			}
			_, err := tenant.FromStore(b.ctx, b.st)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestFromStoreDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, w := range []store.Workspace{{Slug: "a"}, {Slug: "b", Settings: []byte("null")}, {Slug: "c", Settings: []byte(`{"future":1}`)}} {
		if err := b.st.PutWorkspace(b.ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.st.PutSource(b.ctx, store.Source{Workspace: "a", Slug: "s", KeyHash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	reg := b.mustFromStore(t)
	ws := reg.Workspaces()
	if len(ws) != 3 {
		t.Fatalf("Workspaces() = %v", ws)
	}
	for _, w := range ws {
		if w.DedupWindow != config.DefaultDedupWindow || w.Retention != 0 {
			t.Errorf("workspace %+v: want default settings", w)
		}
	}
	ws[0] = nil // the caller's copy
	if reg.Workspaces()[0] == nil {
		t.Error("Workspaces() returned the registry's own slice")
	}
}

// TestFirstStartOnTwoNodesAtOnce: nodes starting together on one empty
// store print one write key between them, and it works on every node.
func TestFirstStartOnTwoNodesAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	regs := make([]*tenant.Registry, 4)
	keys := make([][]tenant.NewKey, 4)
	var wg sync.WaitGroup
	for i := range regs {
		wg.Go(func() {
			var err error
			regs[i], keys[i], err = tenant.Load(b.ctx, b.st, nil)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var printed []tenant.NewKey
	for _, k := range keys {
		printed = append(printed, k...)
	}
	if len(printed) != 1 {
		t.Fatalf("%d nodes printed a write key, want exactly 1: %+v", len(printed), printed)
	}
	for i, r := range regs {
		if _, ok := r.SourceForKey(printed[0].Key); !ok {
			t.Errorf("node %d does not accept the printed write key", i)
		}
	}
}
