// Package portal is Kith's customer portal: the web pages where a person
// the company holds data on signs in with a one-time code sent to their
// email, sees what is held on them (traits, events, identifiers,
// audiences, every recipient), grants and withdraws consent per purpose
// (with a signed consent receipt for each change), sets their own terms,
// publishes intents that companies answer without learning who they are
// (intents.go), and downloads, corrects and deletes their data. See
// docs/portal.md.
//
// The pages are rendered on the server with html/template and need no
// JavaScript; the portal of workspace ws is served at /portal/{ws}/ when
// enabled for it (Options.Workspaces). Every decision the person makes is
// appended to the workspace's log as a privacy control event
// (privacy.Command), like the admin API's, so a replay applies it again.
package portal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

// AppendFunc appends a batch of events to the log durably and returns
// their positions.
type AppendFunc func(ctx context.Context, b *store.Batch) ([]store.Appended, error)

// CommitterAppend seals sensitive traits and appends through the server's
// group committer with each workspace's dedup window, as the HTTP API
// does.
func CommitterAppend(gc *store.GroupCommitter, reg *tenant.Registry) AppendFunc {
	return func(ctx context.Context, b *store.Batch) ([]store.Appended, error) {
		var window time.Duration
		if len(b.Events) > 0 {
			ws := b.Events[0].Workspace
			if w, ok := reg.Workspace(ws); ok {
				window = w.DedupWindow
			}
			// A correction carries trait values: sensitive ones are
			// sealed as the Tracking API seals them.
			if err := reg.SealBatch(ws, b); err != nil {
				return nil, err
			}
		}
		return gc.Append(ctx, b, window)
	}
}

// Options configure a Portal.
type Options struct {
	Store    store.Store
	Registry *tenant.Registry // workspaces, identity rules and the server secret
	Append   AppendFunc
	// Workspaces are the slugs of the workspaces whose portal is served;
	// "*" serves every workspace's. Empty serves none.
	Workspaces []string
	// Mailer sends the one-time codes; nil is development mode: each code
	// is written to the log (at INFO, "portal sign-in code").
	Mailer Mailer
	// Requests records and carries out the data-subject requests made in
	// the portal — erasure, rectification, access (the server's
	// *privacy.Requests, which sends deletions to destinations); nil
	// builds one that marks destination deletions unsupported.
	Requests Requests
	// SecureCookies marks the session cookie Secure (serve over TLS).
	SecureCookies bool
	// Controller names the company in consent receipts (default: the
	// workspace's slug); PolicyURL is its privacy policy; Jurisdiction
	// the law the receipts are under (default "EU").
	Controller   Controller
	PolicyURL    string
	Jurisdiction string
	Logger       *slog.Logger
	Now          func() time.Time
}

// Portal serves the customer portal.
type Portal struct {
	o         Options
	keys      *keys
	pages     map[string]*template.Template
	codes     codeBook
	ended     endedSessions
	published publishing // intents.go
	// csp is the Content-Security-Policy: no script, and only the
	// layout's own stylesheet (by its hash).
	csp string
	// Rate limits of sending codes (per email, per client address) and
	// of entering them (per client address).
	sendPerEmail, sendPerIP, tryPerIP *limiter
	mux                               *http.ServeMux
}

//go:embed templates/*.html
var templateFS embed.FS

// New builds a Portal.
func New(o Options) (*Portal, error) {
	if o.Store == nil || o.Registry == nil || o.Append == nil {
		return nil, errors.New("portal: Store, Registry and Append are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jurisdiction == "" {
		o.Jurisdiction = "EU"
	}
	k, err := newKeys(o.Registry.Hash(rootLabel))
	if err != nil {
		return nil, err
	}
	p := &Portal{
		o: o, keys: k, mux: http.NewServeMux(),
		sendPerEmail: newLimiter(2*time.Minute, 5), // 5 codes at once, then one every 2 minutes
		sendPerIP:    newLimiter(30*time.Second, 20),
		tryPerIP:     newLimiter(6*time.Second, 30),
	}
	if p.o.Requests == nil {
		p.o.Requests = privacy.NewRequests(privacy.RequestOptions{Store: o.Store, Hash: o.Registry.Hash, Now: o.Now, Logger: o.Logger,
			Seal: o.Registry.SealBatch,
			Rules: func(ws string) (*identity.Compiled, error) {
				w, ok := o.Registry.Workspace(ws)
				if !ok {
					return nil, fmt.Errorf("no workspace %q", ws)
				}
				return w.Identity, nil
			}})
	}
	if p.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if p.csp, err = contentSecurityPolicy(); err != nil {
		return nil, err
	}
	p.routes()
	return p, nil
}

// Mount serves the portal's paths (/portal/…) with portal and every
// other path with api (whose Options.Intents should be the portal, for the
// company's side of intentcasting).
func Mount(api http.Handler, portal *Portal) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/portal/", portal.Handler())
	mux.Handle("/", api)
	return mux
}

// Handler returns the portal's handler, for paths under /portal/.
func (p *Portal) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				p.o.Logger.Error("portal handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		h := w.Header()
		h.Set("Content-Security-Policy", p.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		p.mux.ServeHTTP(w, r)
	})
}

// actorPortal is the Actor and Via of the portal's control events.
const actorPortal = "portal"

// maxForm is the largest form body accepted.
const maxForm = 64 << 10

func (p *Portal) routes() {
	p.handle("GET /portal/{ws}/{$}", false, p.home)
	p.handle("POST /portal/{ws}/signin", false, p.signIn)
	p.handle("GET /portal/{ws}/code", false, p.codePage)
	p.handle("POST /portal/{ws}/code", false, p.enterCode)
	p.handle("POST /portal/{ws}/signout", true, p.signOut)
	p.handle("POST /portal/{ws}/consent", true, p.setConsent)
	p.handle("GET /portal/{ws}/receipts/{position}", true, p.receipt)
	p.handle("GET /portal/{ws}/terms", true, p.termsPage)
	p.handle("POST /portal/{ws}/terms", true, p.setTerms)
	p.handle("GET /portal/{ws}/terms/{position}", true, p.agreement)
	p.handle("GET /portal/{ws}/intents", true, p.intentsPage)
	p.handle("POST /portal/{ws}/intents", true, p.publishIntent)
	p.handle("POST /portal/{ws}/intents/accept", true, p.acceptResponse)
	p.handle("GET /portal/{ws}/correct", true, p.correctPage)
	p.handle("POST /portal/{ws}/correct", true, p.correct)
	p.handle("POST /portal/{ws}/step-up", true, p.stepUp)
	p.handle("GET /portal/{ws}/download", true, p.downloadPage)
	p.handle("POST /portal/{ws}/download", true, p.download)
	p.handle("GET /portal/{ws}/delete", true, p.deletePage)
	p.handle("POST /portal/{ws}/delete", true, p.deleteData)
	p.handle("GET /portal/{ws}/requests/{id}", false, p.requestStatus)
	p.handle("GET /portal/{ws}/.well-known/jwks.json", false, p.jwks)
	p.mux.HandleFunc("/portal/", func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, "", http.StatusNotFound, "There is no such page.")
	})
}

// visit is one request's workspace and session.
type visit struct {
	ws      string
	s       *session
	now     time.Time
	expired bool // a signed-in session timed out: say so on the sign-in page
	tls     bool // the request came over TLS
}

// handle registers h under pattern: it answers 404 for a workspace whose
// portal is not enabled, reads the session, and for a POST reads the form
// and checks its CSRF token. With signedIn, a visitor who is not signed in
// is sent to the sign-in page.
func (p *Portal) handle(pattern string, signedIn bool, h func(http.ResponseWriter, *http.Request, *visit)) {
	p.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		ws := r.PathValue("ws")
		if !p.enabled(ws) {
			p.renderError(w, "", http.StatusNotFound, "There is no customer portal here.")
			return
		}
		now := p.o.Now().UTC()
		s, expired := p.loadSession(r, ws, now)
		v := &visit{ws: ws, s: s, now: now, expired: expired, tls: r.TLS != nil}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				p.renderError(w, ws, http.StatusBadRequest, "The form could not be read (it may be too large).")
				return
			}
			if !p.validCSRF(r, ws, s) {
				p.saveSession(w, v)
				p.renderError(w, ws, http.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
				return
			}
		}
		if signedIn && !s.signedIn() {
			if r.Method == http.MethodGet {
				p.redirect(w, r, v, "")
				return
			}
			p.saveSession(w, v)
			p.renderError(w, ws, http.StatusUnauthorized, "Your session has ended. Sign in again.")
			return
		}
		h(w, r, v)
	})
}

// enabled reports whether ws's portal is served.
func (p *Portal) enabled(ws string) bool {
	if ws == "" {
		return false
	}
	if _, ok := p.o.Registry.Workspace(ws); !ok {
		return false
	}
	return slices.Contains(p.o.Workspaces, "*") || slices.Contains(p.o.Workspaces, ws)
}

// emailIdentifier is the identifier the person's email is held under in
// ws, normalized as the workspace's identity rules normalize it.
func (p *Portal) emailIdentifier(ws, email string) store.Identifier {
	id := store.Identifier{Type: identity.Email, Value: email}
	if w, ok := p.o.Registry.Workspace(ws); ok && w.Identity != nil {
		if norm, ok := w.Identity.Normalize(id); ok {
			return norm
		}
	}
	return id
}

// lookup returns the profile holding the session's email, or
// store.ErrNotFound.
func (p *Portal) lookup(ctx context.Context, v *visit) (store.ProfileID, error) {
	return p.o.Store.Lookup(ctx, v.ws, p.emailIdentifier(v.ws, v.s.Email))
}

// appendCommand appends cmd as a control event of v's workspace and
// returns the event as appended.
func (p *Portal) appendCommand(ctx context.Context, v *visit, cmd privacy.Command) (store.Event, error) {
	ev, err := cmd.Event(v.ws, v.now)
	if err != nil {
		return store.Event{}, err
	}
	res, err := p.o.Append(ctx, &store.Batch{Events: []store.Event{ev}})
	if err != nil {
		return store.Event{}, fmt.Errorf("append the %s command: %w", cmd.Action, err)
	}
	ev.Position = res[0].Position
	return ev, nil
}

// clientAddr is the request's client address: the peer, or when the peer
// is a trusted proxy the nearest untrusted address of X-Forwarded-For.
func (p *Portal) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	trusted := func(s string) bool {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		for _, pfx := range p.o.Registry.TrustedProxies() {
			if pfx.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	if !trusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		if h := strings.TrimSpace(hops[i]); h != "" && !trusted(h) {
			return h
		}
	}
	return host
}

// storeFailed logs a failed store or log call and answers 503.
func (p *Portal) storeFailed(w http.ResponseWriter, v *visit, doing string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	p.o.Logger.Error("portal: store call failed", "workspace", v.ws, "doing", doing, "err", err)
	p.saveSession(w, v)
	p.renderError(w, v.ws, http.StatusServiceUnavailable, "Something went wrong on our side while we tried to "+doing+". Please try again in a moment.")
}

// redirect answers 303 to the workspace's portal page path (relative to
// /portal/{ws}/), writing the session first.
func (p *Portal) redirect(w http.ResponseWriter, r *http.Request, v *visit, path string) {
	p.saveSession(w, v)
	http.Redirect(w, r, cookiePath(v.ws)+path, http.StatusSeeOther)
}

// view is what every page template receives.
type view struct {
	WS     string
	Title  string
	CSRF   string
	Email  string // the signed-in email, if any
	Notice string // a confirmation to show
	Error  string // what was wrong with the input
	Data   any    // the page's own data
}

// render writes page name with status, writing the session cookie first.
func (p *Portal) render(w http.ResponseWriter, v *visit, status int, name, title string, data any, notice, errMsg string) {
	vw := view{WS: v.ws, Title: title, Email: v.s.Email, CSRF: p.csrfToken(v.ws, v.s), Notice: notice, Error: errMsg, Data: data}
	p.saveSession(w, v)
	p.write(w, status, name, vw)
}

// renderError writes the error page (ws may be empty when the workspace is
// unknown).
func (p *Portal) renderError(w http.ResponseWriter, ws string, status int, msg string) {
	p.write(w, status, "error", view{WS: ws, Title: http.StatusText(status), Error: msg})
}

func (p *Portal) write(w http.ResponseWriter, status int, name string, vw view) {
	var buf bytes.Buffer
	if err := p.pages[name].ExecuteTemplate(&buf, "layout", vw); err != nil {
		p.o.Logger.Error("portal: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// contentSecurityPolicy allows the layout's inline stylesheet by its
// SHA-256 and nothing else to run or load but images from the portal.
func contentSecurityPolicy() (string, error) {
	layout, err := templateFS.ReadFile("templates/layout.html")
	if err != nil {
		return "", fmt.Errorf("portal: %w", err)
	}
	_, rest, ok1 := strings.Cut(string(layout), "<style>")
	css, _, ok2 := strings.Cut(rest, "</style>")
	if !ok1 || !ok2 || strings.Contains(css, "{{") {
		return "", errors.New("portal: the layout's stylesheet must be one static <style> element")
	}
	sum := sha256.Sum256([]byte(css))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'", nil
}

// pageNames are the templates in templates/, each rendered inside layout.html.
var pageNames = []string{"signin", "code", "home", "receipt", "terms", "agreement", "intents", "correct", "stepup", "download", "delete", "request", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"json": func(v json.RawMessage) string { return displayValue(v) },
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2 Jan 2006 15:04 UTC")
		},
		"unix": receiptTime,
	}
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("portal: parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// displayValue shows a JSON value to a person: a string as itself,
// anything else as JSON.
func displayValue(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}
