//go:build linux

package httpapi_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRudderStackJSInChromium loads the unmodified @rudderstack/analytics-js
// v3 in headless Chromium on one origin with both its configUrl and its
// data plane URL pointed at Kith on another: the SDK fetches its source
// config from GET /sourceConfig, then sends one call of each browser call
// type, which are read back from the log API.
//
// The page loads the SDK's "bundled" build (dist/npm/modern/bundled/umd),
// which carries its plugins (the XHR and beacon queues among them); the
// default build would fetch them from RudderStack's CDN, which Chromium
// cannot reach here (every host but 127.0.0.1 fails to resolve), and Kith's
// source config names no destination, so no integration is fetched either.
func TestRudderStackJSInChromium(t *testing.T) {
	t.Parallel()
	chrome := findChromium(t)
	lib := filepath.Join(browserDir, "node_modules", "@rudderstack", "analytics-js")
	var pkg struct{ Version string }
	raw, err := os.ReadFile(filepath.Join(lib, "package.json"))
	if err != nil {
		t.Skipf("skipping: @rudderstack/analytics-js is not installed (run `npm ci` in httpapi/%s): %v", browserDir, err)
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatal(err)
	}
	bundled := filepath.Join(lib, "dist", "npm", "modern", "bundled", "umd")
	if _, err := os.Stat(filepath.Join(bundled, "index.js")); err != nil {
		t.Fatalf("@rudderstack/analytics-js %s has no bundled browser build: %v", pkg.Version, err)
	}
	cases := []struct {
		transport string
		delivery  []string // the requests that carry the events, as Kith answered them
	}{
		// The default: one XHR per call, with the write key as HTTP Basic user.
		{"xhr", []string{"POST /v1/identify 200", "POST /v1/track 200", "POST /v1/page 200", "POST /v1/group 200", "POST /v1/alias 200"}},
		// queueOptions.batch: one XHR to /v1/batch.
		{"batch", []string{"POST /v1/batch 200"}},
		// useBeacon: navigator.sendBeacon, the write key in the query string.
		{"beacon", []string{"POST /beacon/v1/batch 200"}},
	}
	for _, c := range cases {
		t.Run(c.transport, func(t *testing.T) {
			var reqs requestLog
			b := setup(t, withHandler(reqs.wrap))
			page := newPageServer(t, "rudderstack.html", bundled)
			res, evs := runPage(t, chrome, b, page, url.Values{"transport": {c.transport}})
			checkBrowserEvents(t, evs, res, page.URL, browserLib{name: "RudderLabs JavaScript SDK", version: pkg.Version, traits: "context.traits"})
			for _, e := range evs {
				if raw, _ := e["raw"].(map[string]any); raw["channel"] != "web" {
					t.Errorf("%v: channel %v, want web", e["type"], raw["channel"])
				}
			}

			// What the SDK asked of Kith: its source config once, then the
			// events, and nothing else (no metrics, no errors reported).
			// An event is in the log a moment before its request is logged.
			want := slices.Sorted(slices.Values(c.delivery))
			var got []string
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				got = nil
				for _, r := range reqs.list() {
					if !strings.HasPrefix(r, "OPTIONS ") && !strings.HasPrefix(r, "GET /v1/workspaces/acme/") {
						got = append(got, r) // not a CORS preflight nor the test reading the log
					}
				}
				slices.Sort(got)
				if len(got) >= len(want)+1 || time.Now().After(deadline) {
					break
				}
			}
			if !slices.Equal(got, slices.Concat([]string{"GET /sourceConfig/ 200"}, want)) {
				t.Errorf("Kith answered %q; want GET /sourceConfig/ once and then %q", reqs.list(), want)
			}
		})
	}
}
