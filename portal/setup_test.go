package portal_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/httpapi"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/portal"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

const testConfig = `
trusted_proxies: [127.0.0.1]
workspaces:
  - slug: acme
    sources:
      - slug: web
        write_key: wk_web_1234567890
    tokens:
      - name: admin
        token: tok_admin_1234567890
        scopes: [admin]
  - slug: closed
    sources:
      - slug: web
        write_key: wk_closed_1234567890
`

const (
	webKey     = "wk_web_1234567890"
	adminToken = "tok_admin_1234567890"
)

// bundle is a real Kith server (SQLite store, HTTP API, processor) with the
// portal mounted for workspace acme, as `kith serve --portal acme` builds it.
type bundle struct {
	st    store.Store
	reg   *tenant.Registry
	gc    *store.GroupCommitter
	proc  *process.Processor
	srv   *httptest.Server
	codes *codeLog
	clock *clock
}

// clock is the portal's settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.Now()
	}
	return c.now
}

// advance moves the clock d past the real time (or its last setting).
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Now()
	}
	c.now = c.now.Add(d)
}

// codeLog is a slog handler that keeps every log record's text and the
// codes of "portal sign-in code" records.
type codeLog struct {
	mu    sync.Mutex
	codes []string
	text  strings.Builder
	// onCode, if set, is called with each code (the browser test writes
	// it to a file).
	onCode func(string)
}

func (l *codeLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *codeLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *codeLog) WithGroup(string) slog.Handler            { return l }
func (l *codeLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.text, "%s %s", r.Level, r.Message)
	var code string
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&l.text, " %s=%v", a.Key, a.Value)
		if r.Message == "portal sign-in code" && a.Key == "code" {
			code = a.Value.String()
		}
		return true
	})
	l.text.WriteString("\n")
	if code != "" {
		l.codes = append(l.codes, code)
		if l.onCode != nil {
			l.onCode(code)
		}
	}
	return nil
}

// latest returns the last code logged.
func (l *codeLog) latest(t testing.TB) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.codes) == 0 {
		t.Fatal("no code was logged")
	}
	return l.codes[len(l.codes)-1]
}

func (l *codeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// setupOptions adjust setup.
type setupOptions struct {
	background bool // fold the log in the background, as kith serve does
	onCode     func(string)
	mailer     portal.Mailer // nil: development mode, codes in the log
}

// setup starts the server; unless o.background, the log is folded only
// when the test calls fold.
func setup(t testing.TB, o setupOptions) *bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bundle{codes: &codeLog{onCode: o.onCode}, clock: &clock{}}
	var err error
	if b.st, err = sqlite.Open(ctx, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	if b.reg, _, err = tenant.Load(ctx, b.st, cfg); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(b.codes)
	b.gc = store.NewGroupCommitter(b.st, store.GroupCommitOptions{})
	b.proc = process.New(process.Options{
		Store: b.st, Owner: "portal-test", LeaseTTL: time.Minute, Wake: b.gc.Committed, Logger: logger,
		Coalesce: time.Millisecond, Poll: 50 * time.Millisecond,
		Rules: func(ws string) (*identity.Compiled, error) {
			w, ok := b.reg.Workspace(ws)
			if !ok {
				return nil, fmt.Errorf("no workspace %q", ws)
			}
			return w.Identity, nil
		},
	})
	p, err := portal.New(portal.Options{
		Store: b.st, Registry: b.reg, Append: portal.CommitterAppend(b.gc, b.reg), Workspaces: []string{"acme"},
		Mailer: o.mailer, Logger: logger, Now: b.clock.Now, Controller: portal.Controller{Name: "Acme Ltd", Email: "privacy@acme.example"},
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Options{Store: b.st, Registry: b.reg, Committer: b.gc, Limits: ingest.DefaultLimits(), Logger: logger,
		Compute: b.proc, Intents: p})
	b.srv = httptest.NewServer(portal.Mount(api.Handler(), p))
	var wg sync.WaitGroup
	if o.background {
		wg.Go(func() { b.proc.Run(ctx, []string{"acme"}) })
	}
	t.Cleanup(func() {
		b.srv.Close()
		_ = api.Close(context.Background())
		cancel()
		wg.Wait()
		b.gc.Close()
		b.st.Close()
	})
	return b
}

// fold folds acme's log up to its head.
func (b *bundle) fold(t testing.TB) {
	t.Helper()
	if err := b.proc.CatchUp(context.Background(), "acme", nil); err != nil {
		t.Fatal(err)
	}
}

// track sends one Tracking API call with the web source's write key and
// the header pairs given.
func (b *bundle) track(t testing.TB, call, body string, header ...string) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.srv.URL+"/v1/"+call, strings.NewReader(body))
	req.SetBasicAuth(webKey, "")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/%s: %d %s", call, resp.StatusCode, raw)
	}
}

// seedAda sends Ada's events: an anonymous page view, an identify with
// her email, traits and consent, and an order.
func (b *bundle) seedAda(t testing.TB) {
	t.Helper()
	b.track(t, "page", `{"anonymousId":"anon-ada","name":"Pricing"}`)
	b.track(t, "identify", `{"anonymousId":"anon-ada","userId":"u-ada","traits":{"email":"Ada@Example.com","name":"Ada Lovelace","plan":"pro","age":36},
		"context":{"consent":{"categoryPreferences":{"Advertising":true,"Analytics":true}}}}`)
	b.track(t, "track", `{"userId":"u-ada","event":"Order Completed","properties":{"total":20}}`)
}

// adaSignedIn sets up a portal holding Ada's events, folded, and a browser
// signed in as her; home is the page the sign-in landed on.
func adaSignedIn(t testing.TB) (b *bundle, br *browser, home page) {
	t.Helper()
	b = setup(t, setupOptions{})
	b.seedAda(t)
	b.fold(t)
	br = b.browser(t)
	return b, br, br.signIn("ada@example.com")
}

// lookupAda returns the profile holding Ada's email, or store.ErrNotFound.
func (b *bundle) lookupAda() (store.ProfileID, error) {
	return b.st.Lookup(context.Background(), "acme", store.Identifier{Type: "email", Value: "ada@example.com"})
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t    testing.TB
	b    *bundle
	c    *http.Client
	csrf string // from the last page
	// header is added to every request (X-Forwarded-For, as a proxy at
	// 127.0.0.1, a trusted one, would send it).
	header http.Header
	// serverErrors are the 5xx statuses the test expects; any other fails it.
	serverErrors []int
}

func (b *bundle) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, b: b, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// page is one answer.
type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (br *browser) do(req *http.Request) page {
	br.t.Helper()
	for k, vs := range br.header {
		req.Header[k] = vs
	}
	resp, err := br.c.Do(req)
	if err != nil {
		br.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	pg := page{status: resp.StatusCode, body: string(raw), location: resp.Header.Get("Location"), header: resp.Header}
	if m := csrfField.FindStringSubmatch(pg.body); m != nil {
		br.csrf = m[1]
	}
	if pg.status >= 500 && !slices.Contains(br.serverErrors, pg.status) {
		br.t.Fatalf("%s %s: %d %s", req.Method, req.URL, pg.status, pg.body)
	}
	return pg
}

func (br *browser) get(path string) page {
	br.t.Helper()
	req, _ := http.NewRequest("GET", br.b.srv.URL+path, nil)
	return br.do(req)
}

// post submits a form with the last page's CSRF token (unless form sets
// csrf).
func (br *browser) post(path string, form url.Values) page {
	br.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", br.csrf)
	}
	req, _ := http.NewRequest("POST", br.b.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return br.do(req)
}

// follow GETs a redirect's target.
func (br *browser) follow(pg page) page {
	br.t.Helper()
	if pg.status != http.StatusSeeOther {
		br.t.Fatalf("want a redirect, got %d: %s", pg.status, pg.body)
	}
	return br.get(pg.location)
}

// signIn signs in with email and the code from the log, and returns the
// home page.
func (br *browser) signIn(email string) page {
	br.t.Helper()
	br.get("/portal/acme/")
	br.follow(br.post("/portal/acme/signin", url.Values{"email": {email}}))
	return br.follow(br.post("/portal/acme/code", url.Values{"code": {br.b.codes.latest(br.t)}}))
}

// stepUp asks for and enters a step-up code before next.
func (br *browser) stepUp(next string) page {
	br.t.Helper()
	br.get("/portal/acme/" + next)
	br.follow(br.post("/portal/acme/step-up", url.Values{"next": {next}}))
	return br.follow(br.post("/portal/acme/code", url.Values{"code": {br.b.codes.latest(br.t)}}))
}

// mustContain fails unless pg's body holds every string of want.
func mustContain(t testing.TB, pg page, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(pg.body, w) {
			t.Fatalf("the page (status %d) does not say %q:\n%s", pg.status, w, pg.body)
		}
	}
}

// envOr returns the environment variable's value, or def.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
