//go:build linux

package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kithcdp/kith/httpapi"
)

// browserDir holds the test pages (index.html for Segment's library,
// rudderstack.html for RudderStack's) and the npm project that brings the
// official libraries (`npm ci` there fills node_modules).
const browserDir = "testdata/browser"

// pageResult is what a test page POSTs to /result.
type pageResult struct {
	AnonymousID string   `json:"anonymousId"`
	UserID      string   `json:"userId"`
	MessageIDs  []string `json:"messageIds"` // not in snippet mode: the snippet's buffered calls return no Context
	Failed      []string `json:"failed"`     // delivery failures and load errors
	Problems    []string `json:"problems"`   // console errors and warnings, uncaught errors
}

// TestAnalyticsNextInChromium loads the unmodified @segment/analytics-next
// bundle in headless Chromium on one origin, points it at Kith on another
// (so settings and events cross origins and CORS is exercised for real),
// makes one call of each browser call type, and reads the events back from
// the log API. One case loads the library itself from Kith (Options.SDKDir).
func TestAnalyticsNextInChromium(t *testing.T) {
	t.Parallel()
	chrome := findChromium(t)
	lib := filepath.Join(browserDir, "node_modules", "@segment", "analytics-next")
	umd := filepath.Join(lib, "dist", "umd")
	var pkg struct{ Version string }
	raw, err := os.ReadFile(filepath.Join(lib, "package.json"))
	if err != nil {
		t.Skipf("skipping: @segment/analytics-next is not installed (run `npm ci` in httpapi/%s): %v", browserDir, err)
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, mode, delivery string
		fromKith             bool // Kith hosts the library (SDKDir = dist/umd); the page server serves only the page
	}{
		// dist/umd/index.js + AnalyticsBrowser.load({writeKey, cdnURL}): POST /v1/{i,t,p,g,a}, one per call.
		{"npm bundle", "npm", "standard", false},
		// The same with deliveryStrategy batching: one POST /v1/b.
		{"npm bundle batching", "npm", "batching", false},
		// Segment's snippet with analytics._cdn and dist/umd/standalone.js; calls made before load.
		{"snippet", "snippet", "standard", false},
		// The same snippet loading {kith}/analytics.js/v1/{writeKey}/analytics.min.js.
		{"snippet, library hosted by Kith", "snippet", "standard", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var reqs requestLog
			sdkDir, pageLib := "", umd
			if c.fromKith {
				if err := checkSDKDir(umd); err != nil {
					t.Skipf("skipping: %s cannot be hosted: %v", umd, err)
				}
				sdkDir, pageLib = umd, ""
			}
			b := setup(t, withOptions(func(_ *bundle, o *httpapi.Options) { o.SDKDir = sdkDir }), withHandler(reqs.wrap))
			page := newPageServer(t, "index.html", pageLib)
			q := url.Values{"mode": {c.mode}, "delivery": {c.delivery}}
			if c.fromKith {
				q.Set("from", "kith")
				// An ajs_ query parameter makes the library load one of its
				// lazy chunks (queryString.bundle.*.js) from Kith too.
				q.Set("ajs_aid", "anon-from-kith")
			}
			res, evs := runPage(t, chrome, b, page, q)
			checkBrowserEvents(t, evs, res, page.URL, browserLib{name: "analytics.js", version: "next-" + pkg.Version, messageIDPrefix: "ajs-next-", traits: "traits"})
			if !c.fromKith {
				return
			}
			got := reqs.list()
			if !slices.Contains(got, "GET /analytics.js/v1/"+webKey+"/analytics.min.js 200") {
				t.Errorf("the library was not loaded from Kith; Kith answered %q", got)
			}
			if !slices.ContainsFunc(got, func(r string) bool {
				return strings.HasPrefix(r, "GET /analytics-next/bundles/queryString.bundle.") && strings.HasSuffix(r, ".js 200")
			}) {
				t.Errorf("the library's queryString chunk was not loaded from Kith; Kith answered %q", got)
			}
			if res.AnonymousID != "anon-from-kith" {
				t.Errorf("anonymousId %q: the chunk did not run (want the page's ajs_aid)", res.AnonymousID)
			}
		})
	}
}

// checkSDKDir reports whether dir holds what Options.SDKDir needs:
// analytics-next's standalone.js and its chunks.
func checkSDKDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "standalone.js")); err != nil {
		return err
	}
	chunks, err := filepath.Glob(filepath.Join(dir, "*.bundle.*.js"))
	if err == nil && len(chunks) == 0 {
		err = fmt.Errorf("no *.bundle.*.js in %s", dir)
	}
	return err
}

// runPage opens page in Chromium with q plus Kith's URL (kith) and the
// write key (key), waits until the log holds the page's five calls, and
// returns what the page reported and the log. It fails the test when the
// page reports failures or problems, when the library's user is not the
// page's, and when anything was quarantined; the page's console is logged
// if the test fails.
func runPage(t *testing.T, chrome string, b *bundle, page *pageServer, q url.Values) (pageResult, []map[string]any) {
	t.Helper()
	q.Set("kith", b.srv.URL)
	q.Set("key", webKey)
	res, stop := startChromium(t, chrome, page.URL+"/?"+q.Encode(), page.results)
	want := int64(5)
	if len(res.Failed) > 0 {
		want = 0 // the page gave up: look at what did arrive
	}
	evs := waitForEvents(t, b, want)
	chromeLog := stop()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("page result: %+v\nthe page's console:\n%s", res, consoleLines(chromeLog))
		}
	})
	if len(res.Failed) > 0 || len(res.Problems) > 0 {
		t.Errorf("the page reported failures %q and problems %q", res.Failed, res.Problems)
	}
	if res.AnonymousID == "" || res.UserID != "u-browser-1" {
		t.Errorf("the library's user: anonymousId %q, userId %q", res.AnonymousID, res.UserID)
	}
	if code, m := b.get(t, "/v1/workspaces/acme/quarantine", debugToken); code != 200 || len(m["data"].([]any)) != 0 {
		t.Errorf("quarantine: %d %v", code, m)
	}
	return res, evs
}

// requestLog records the requests a server answers, as "METHOD /path status".
type requestLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, sw.status))
	})
}

// list returns the requests recorded so far, in the order they ended.
func (l *requestLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// browserLib is what a browser library writes into each event it sends.
type browserLib struct {
	name, version   string // context.library
	messageIDPrefix string
	traits          string // where an identify call's traits go
}

// checkBrowserEvents asserts that evs are the five calls the page makes.
func checkBrowserEvents(t *testing.T, evs []map[string]any, res pageResult, origin string, lib browserLib) {
	t.Helper()
	want := map[string]struct {
		name  string // the log's event name
		field string // a field of the raw event...
		value string // ...and its value
	}{
		"identify": {"", lib.traits + ".email", "ada@example.com"},
		"track":    {"Browser Clicked", "properties.button", "buy"},
		"page":     {"Pricing", "category", "Docs"},
		"group":    {"", "groupId", "acct-7"},
		"alias":    {"", "previousId", "legacy-42"},
	}
	var ids []string
	for _, e := range evs {
		typ, _ := e["type"].(string)
		w, ok := want[typ]
		if !ok {
			t.Errorf("unexpected or repeated %q event: %v", typ, e)
			continue
		}
		delete(want, typ)
		raw, _ := e["raw"].(map[string]any)
		sig, _ := e["signals"].(map[string]any)
		mid, _ := e["messageId"].(string)
		ids = append(ids, mid)
		switch {
		case w.name != "" && e["event"] != w.name:
			t.Errorf("%s: event name %v, want %q", typ, e["event"], w.name)
		case lookup(raw, w.field) != w.value:
			t.Errorf("%s: %s = %v, want %q", typ, w.field, lookup(raw, w.field), w.value)
		case e["userId"] != "u-browser-1" || e["anonymousId"] != res.AnonymousID:
			t.Errorf("%s: userId %v anonymousId %v, want u-browser-1 and the page's %q", typ, e["userId"], e["anonymousId"], res.AnonymousID)
		case e["source"] != "web" || e["flags"] != nil:
			t.Errorf("%s: source %v flags %v", typ, e["source"], e["flags"])
		case mid == "" || !strings.HasPrefix(mid, lib.messageIDPrefix):
			t.Errorf("%s: messageId %q is not the library's", typ, mid)
		case lookup(raw, "context.library.name") != lib.name || lookup(raw, "context.library.version") != lib.version:
			t.Errorf("%s: context.library = %v, want %s %s", typ, lookup(raw, "context.library"), lib.name, lib.version)
		case sig["origin"] != origin:
			t.Errorf("%s: signals.origin = %v, want the page's origin %s", typ, sig["origin"], origin)
		case !strings.Contains(fmt.Sprint(sig["userAgent"]), "Chrome"):
			t.Errorf("%s: signals.userAgent = %v", typ, sig["userAgent"])
		}
	}
	if len(want) > 0 {
		t.Errorf("calls missing from the log: %v (log: %v)", want, evs)
	}
	if res.MessageIDs != nil {
		slices.Sort(ids)
		sent := slices.Sorted(slices.Values(res.MessageIDs))
		if !slices.Equal(ids, sent) {
			t.Errorf("logged messageIds %q, the library sent %q", ids, sent)
		}
	}
}

// waitForEvents polls the log until it holds n events: the snippet's calls
// and a batch are delivered after the page reports.
func waitForEvents(t *testing.T, b *bundle, n int64) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.head(t, "acme") < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return b.events(t, "acme")
}

// pageServer serves a test page and a library's files on an origin of its
// own, and receives the page's result.
type pageServer struct {
	*httptest.Server
	results chan pageResult
}

// newPageServer serves browserDir/page at / and the files of the directory
// lib under /lib/ (none if lib is empty: the page must load its library
// from elsewhere).
func newPageServer(t *testing.T, page, lib string) *pageServer {
	t.Helper()
	p := &pageServer{results: make(chan pageResult, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(browserDir, page))
	})
	if lib != "" {
		mux.Handle("GET /lib/", http.StripPrefix("/lib/", http.FileServer(http.Dir(lib))))
	}
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var res pageResult
		if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
			res.Failed = append(res.Failed, "undecodable result: "+err.Error())
		}
		select {
		case p.results <- res:
		default: // only the first result counts
		}
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

// findChromium returns the path of a Chromium or Chrome binary, or skips.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("skipping: no chromium on PATH (apt-get install chromium)")
	return ""
}

// consoleLines picks the page's console messages out of Chromium's log.
func consoleLines(log string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if strings.Contains(line, ":CONSOLE") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// startChromium opens pageURL in headless Chromium and waits until the page
// POSTs its result. The browser keeps running (the snippet's calls may
// still be in flight) until stop, which returns Chromium's log, including
// the page's console; stop also runs at cleanup.
func startChromium(t *testing.T, chrome, pageURL string, results <-chan pageResult) (res pageResult, stop func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, chrome,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-breakpad", "--disable-quic",
		// Nothing but the two test servers is reachable: a request to any
		// other host (a CDN, say) fails fast instead of hanging.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--enable-logging=stderr", "--v=0",
		"--user-data-dir="+t.TempDir(),
		pageURL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// SIGTERM lets Chromium close its child processes before it exits; if
	// the test binary dies first (a timeout, a kill), the kernel ends Chromium.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = sync.OnceValue(func() string {
		cancel()
		<-exited
		return out.String()
	})
	t.Cleanup(func() { stop() })
	select {
	case res = <-results:
		return res, stop
	case err := <-exited:
		exited <- err // for stop
		t.Fatalf("chromium exited before the page reported (%v); its log:\n%s", err, stop())
	case <-time.After(time.Minute):
		t.Fatalf("the page reported nothing within a minute; chromium log:\n%s", stop())
	}
	return res, stop
}
