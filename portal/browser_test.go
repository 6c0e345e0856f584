//go:build linux

package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// browserDir is the npm project that brings playwright-core (`npm ci`
// there fills node_modules) and the script that drives Chromium.
const browserDir = "testdata/browser"

// TestPortalInChromium drives Debian's headless Chromium (JavaScript off)
// through the portal of a real Kith server with playwright-core: sign in
// with the code from the server log, withdraw a consent, set personal
// terms, publish an intent and accept the company's answer, download the
// export, delete the account. Each page is checked for accessibility
// basics and saved as a screenshot in $KITH_SCREENSHOTS (default: a
// temporary directory).
func TestPortalInChromium(t *testing.T) {
	chrome := findChromium(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipping: no node on PATH")
	}
	if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Skipf("skipping: playwright-core is not installed (run `npm ci` in portal/%s): %v", browserDir, err)
	}
	shots := envOr("KITH_SCREENSHOTS", t.TempDir())
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()

	codes := &codeList{added: make(chan struct{})}
	b := setup(t, setupOptions{background: true, onCode: codes.add})
	b.seedAda(t)
	ada := waitFor(t, "Ada's profile", func() (store.ProfileID, error) { return b.lookupAda() })

	ctl := httptest.NewServer(controlServer(t, b, codes, ada))
	defer ctl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "drive.mjs")
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "PORTAL="+b.srv.URL+"/portal/acme/", "CONTROL="+ctl.URL, "CHROMIUM="+chrome, "SHOTS="+shots, "DOWNLOADS="+downloads)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Run(); err != nil {
		t.Fatalf("the browser script failed (%v):\n%s", err, out.String())
	}
	t.Logf("screenshots in %s\n%s", shots, out.String())

	// The export names the profile.
	raw, err := os.ReadFile(filepath.Join(downloads, "export.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Format  string                 `json:"format"`
		Profile privacy.ProfileSummary `json:"profile"`
		Traits  []privacy.Trait        `json:"traits"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("the download is not JSON: %v", err)
	}
	if rep.Format != privacy.ReportFormat || rep.Profile.KithID != int64(ada) || !bytes.Contains(raw, []byte(`"Ada Lovelace"`)) {
		t.Errorf("the export names another profile: %.500s", raw)
	}
	if _, err := b.lookupAda(); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the deletion, Ada's profile: %v", err)
	}
}

// codeList keeps the codes the server logged, in order.
type codeList struct {
	mu    sync.Mutex
	codes []string
	added chan struct{} // closed and replaced when a code is added
}

func (c *codeList) add(code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.codes = append(c.codes, code)
	close(c.added)
	c.added = make(chan struct{})
}

// nth waits up to 30s for the n-th code (from 1).
func (c *codeList) nth(n int) (string, bool) {
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		if len(c.codes) >= n {
			code := c.codes[n-1]
			c.mu.Unlock()
			return code, true
		}
		added := c.added
		c.mu.Unlock()
		select {
		case <-added:
		case <-deadline:
			return "", false
		}
	}
}

// controlServer answers the browser script: GET /code/{n} is the n-th
// code logged; POST /check/{name} runs one of the test's checks.
func controlServer(t *testing.T, b *bundle, codes *codeList, ada store.ProfileID) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /code/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 1 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		code, ok := codes.nth(n)
		if !ok {
			http.Error(w, fmt.Sprintf("no code %d was logged", n), http.StatusNotFound)
			return
		}
		fmt.Fprint(w, code)
	})
	checks := map[string]func() error{
		// The withdrawal is a control event in the log, and folding it
		// changes the profile's consent value.
		"consent-withdrawn": func() error {
			evs, err := b.st.Read(context.Background(), store.LogQuery{Workspace: "acme", Type: store.TypePrivacy})
			if err != nil {
				return err
			}
			var cmd privacy.Command
			if len(evs) != 1 || json.Unmarshal(evs[0].Raw, &cmd) != nil || cmd.Action != privacy.ActionConsent || cmd.Via != "portal" || cmd.Consent["advertising"] {
				return fmt.Errorf("the log's control events: %v", evs)
			}
			_, err = waitUntil(func() (bool, error) {
				vals, err := b.st.ComputedValues(context.Background(), "acme", ada)
				for _, v := range vals {
					if v.Name == privacy.ConsentValue {
						var c struct {
							Prefs map[string]bool `json:"categoryPreferences"`
						}
						_ = json.Unmarshal(v.Value, &c)
						if granted, ok := c.Prefs["advertising"]; ok && !granted {
							return true, nil
						}
					}
				}
				return false, err
			})
			return err
		},
		"downloaded": func() error { return nil },
		// The intent is folded: the company answers it through the API.
		"intent-answered": func() error {
			var id string
			if _, err := waitUntil(func() (bool, error) {
				evs, err := b.st.Read(context.Background(), store.LogQuery{Workspace: "acme", Name: "Intent Published"})
				if err != nil || len(evs) == 0 {
					return false, err
				}
				id = evs[0].AnonymousID
				_, err = b.st.Lookup(context.Background(), "acme", store.Identifier{Type: "anonymous_id", Value: id})
				return err == nil, nil
			}); err != nil {
				return fmt.Errorf("the intent was not folded: %w", err)
			}
			req, _ := http.NewRequest("POST", b.srv.URL+"/v1/workspaces/acme/intents/"+id+"/responses",
				strings.NewReader(`{"from":"Velo Shop","message":"The Allez 56 at 750 EUR, delivered this week"}`))
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("the intent API answered %d", resp.StatusCode)
			}
			_, err = waitUntil(func() (bool, error) {
				evs, err := b.st.Read(context.Background(), store.LogQuery{Workspace: "acme", Name: "Intent Response"})
				if err != nil || len(evs) == 0 {
					return false, err
				}
				cursors, err := b.st.Cursors(context.Background())
				return cursors["acme"] >= evs[0].Position, err
			})
			return err
		},
		// Accepting linked the intent's pseudonym to Ada's profile.
		"intent-accepted": func() error {
			evs, err := b.st.Read(context.Background(), store.LogQuery{Workspace: "acme", Name: "Intent Published"})
			if err != nil || len(evs) != 1 {
				return fmt.Errorf("intents: %v %v", evs, err)
			}
			_, err = waitUntil(func() (bool, error) {
				p, err := b.st.Lookup(context.Background(), "acme", store.Identifier{Type: "anonymous_id", Value: evs[0].AnonymousID})
				return err == nil && p == ada, nil
			})
			return err
		},
		// The erasure folded: no profile holds Ada's email.
		"deleted": func() error {
			_, err := waitUntil(func() (bool, error) {
				_, err := b.lookupAda()
				if errors.Is(err, store.ErrNotFound) {
					return true, nil
				}
				return false, err
			})
			return err
		},
	}
	mux.HandleFunc("POST /check/{name}", func(w http.ResponseWriter, r *http.Request) {
		check, ok := checks[r.PathValue("name")]
		if !ok {
			http.Error(w, "no such check", http.StatusNotFound)
			return
		}
		if err := check(); err != nil {
			t.Errorf("check %s: %v", r.PathValue("name"), err)
			http.Error(w, err.Error(), http.StatusConflict)
		}
	})
	return mux
}

// waitUntil polls cond for up to 30s (folding runs in the background).
func waitUntil(cond func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if ok || err != nil {
			return ok, err
		}
		if time.Now().After(deadline) {
			return false, errors.New("not within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls get until it succeeds (up to 30s).
func waitFor[T any](t *testing.T, what string, get func() (T, error)) T {
	t.Helper()
	var v T
	_, err := waitUntil(func() (bool, error) {
		var err error
		v, err = get()
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
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
