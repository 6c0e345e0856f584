package portal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/portal"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

func TestSignInWithCode(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	br := b.browser(t)
	pg := br.get("/portal/acme/")
	mustContain(t, pg, `<html lang="en">`, `<label for="email">`, "Send me a code")
	if csp := pg.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'sha256-") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if c := pg.header.Get("Set-Cookie"); !strings.Contains(c, "Path=/portal/acme/") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
		t.Errorf("session cookie %q", c)
	}
	pg = br.follow(br.post("/portal/acme/signin", url.Values{"email": {"  Nobody@Example.com "}}))
	mustContain(t, pg, "nobody@example.com", `autocomplete="one-time-code"`)
	pg = br.post("/portal/acme/code", url.Values{"code": {"12345x"}})
	if pg.status != http.StatusBadRequest {
		t.Fatalf("malformed code: %d", pg.status)
	}
	mustContain(t, pg, "the 6 digits")
	code := b.codes.latest(t)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if pg = br.post("/portal/acme/code", url.Values{"code": {wrong}}); pg.status != http.StatusBadRequest {
		t.Fatalf("wrong code: %d", pg.status)
	}
	mustContain(t, pg, "not the code we sent")
	pg = br.follow(br.post("/portal/acme/code", url.Values{"code": {code[:3] + " " + code[3:]}}))
	mustContain(t, pg, "We hold nothing about this email.", "Signed in as nobody@example.com")

	// The log names the email only by its digest.
	if logs := b.codes.String(); strings.Contains(strings.ToLower(logs), "nobody@example.com") || !strings.Contains(logs, "email_digest=") {
		t.Errorf("the log:\n%s", logs)
	}

	// Signing out ends the session; its old cookie does not sign in again.
	old := br.cookies()
	pg = br.post("/portal/acme/signout", nil)
	mustContain(t, pg, "You are signed out.")
	br.restore(old)
	mustContain(t, br.get("/portal/acme/"), "Send me a code")
}

// TestSecureCookieOverTLS: a request that came over TLS gets a Secure
// cookie even without Options.SecureCookies.
func TestSecureCookieOverTLS(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	rec := httptest.NewRecorder()
	b.srv.Config.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "https://kith.example/portal/acme/", nil))
	if c := rec.Header().Get("Set-Cookie"); rec.Code != 200 || !strings.Contains(c, "; Secure") {
		t.Errorf("%d, cookie %q", rec.Code, c)
	}
	rec = httptest.NewRecorder()
	b.srv.Config.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "http://kith.example/portal/acme/", nil))
	if c := rec.Header().Get("Set-Cookie"); strings.Contains(c, "Secure") {
		t.Errorf("over plain HTTP, cookie %q", c)
	}
}

// cookies returns the browser's cookies of the portal.
func (br *browser) cookies() []*http.Cookie {
	u, _ := url.Parse(br.b.srv.URL + "/portal/acme/")
	return br.c.Jar.Cookies(u)
}

// restore puts back cookies read by cookies (a copy an attacker kept).
func (br *browser) restore(cs []*http.Cookie) {
	u, _ := url.Parse(br.b.srv.URL + "/portal/acme/")
	for _, c := range cs {
		c.Path = "/portal/acme/"
	}
	br.c.Jar.SetCookies(u, cs)
}

// mailbox is a Mailer that keeps the messages it is given.
type mailbox struct {
	mu   sync.Mutex
	sent []string // "to|subject|body"
	fail bool
}

func (m *mailbox) Send(_ context.Context, to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("smtp: 451 try later")
	}
	m.sent = append(m.sent, to+"|"+subject+"|"+body)
	return nil
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

func TestSignInByEmail(t *testing.T) {
	t.Parallel()
	box := &mailbox{}
	b := setup(t, setupOptions{mailer: box})
	br := b.browser(t)
	br.get("/portal/acme/")
	br.follow(br.post("/portal/acme/signin", url.Values{"email": {"ada@example.com"}}))
	box.mu.Lock()
	if len(box.sent) != 1 || !strings.HasPrefix(box.sent[0], "ada@example.com|Your code: ") {
		t.Fatalf("sent %q", box.sent)
	}
	code := sixDigits.FindString(box.sent[0])
	box.mu.Unlock()
	mustContain(t, br.follow(br.post("/portal/acme/code", url.Values{"code": {code}})), "Signed in as ada@example.com")
	if logs := b.codes.String(); strings.Contains(logs, code) || strings.Contains(logs, "ada@example.com") || !strings.Contains(logs, "portal sign-in code sent") {
		t.Errorf("with a mailer, the log holds the code or the email:\n%s", logs)
	}
	// A mail server that fails: 503, and the browser may try again.
	box.mu.Lock()
	box.fail = true
	box.mu.Unlock()
	other := b.browser(t)
	other.serverErrors = []int{http.StatusServiceUnavailable}
	other.get("/portal/acme/")
	if pg := other.post("/portal/acme/signin", url.Values{"email": {"bob@example.com"}}); pg.status != http.StatusServiceUnavailable || !strings.Contains(pg.body, "could not send the email") {
		t.Errorf("mail failure: %d", pg.status)
	}
}

func TestCodeIsSingleUseAndLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	br := b.browser(t)
	br.get("/portal/acme/")
	br.follow(br.post("/portal/acme/signin", url.Values{"email": {"ada@example.com"}}))
	code := b.codes.latest(t)
	// Keep the cookie holding the challenge, sign in, then replay it.
	challengeCookie, csrf := br.cookies(), br.csrf
	br.follow(br.post("/portal/acme/code", url.Values{"code": {code}}))
	br.restore(challengeCookie)
	pg := br.post("/portal/acme/code", url.Values{"code": {code}, "csrf": {csrf}})
	if pg.status != http.StatusForbidden {
		t.Fatalf("replayed code: %d", pg.status)
	}
	mustContain(t, pg, "already used")

	// Five wrong codes void a code, even the right one after them.
	br2 := b.browser(t)
	br2.get("/portal/acme/")
	br2.follow(br2.post("/portal/acme/signin", url.Values{"email": {"bob@example.com"}}))
	code = b.codes.latest(t)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	var last page
	for range 5 {
		last = br2.post("/portal/acme/code", url.Values{"code": {wrong}})
	}
	mustContain(t, last, "too many wrong codes")
	if pg := br2.post("/portal/acme/code", url.Values{"code": {code}}); pg.status == http.StatusSeeOther {
		t.Fatal("the right code signed in after five wrong ones")
	}

	// A code expires after 10 minutes.
	br3 := b.browser(t)
	br3.get("/portal/acme/")
	br3.follow(br3.post("/portal/acme/signin", url.Values{"email": {"cy@example.com"}}))
	b.clock.advance(11 * time.Minute)
	pg = br3.post("/portal/acme/code", url.Values{"code": {b.codes.latest(t)}})
	mustContain(t, pg, "expired")
}

func TestSendRateLimitPerEmail(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	br := b.browser(t)
	br.get("/portal/acme/")
	var pg page
	for range 6 {
		pg = br.post("/portal/acme/signin", url.Values{"email": {"ada@example.com"}})
		if pg.status == http.StatusSeeOther {
			br.get("/portal/acme/code")
		}
	}
	if pg.status != http.StatusTooManyRequests {
		t.Fatalf("sixth code at once: %d", pg.status)
	}
	mustContain(t, pg, "Too many codes")
}

// TestSendRateLimitPerClient: past 20 codes at once from one client
// address, the right-most untrusted one of X-Forwarded-For behind a
// trusted proxy, a 21st is refused, whatever the client puts to its left;
// another client is not.
func TestSendRateLimitPerClient(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	signIn := func(xff, email string) page {
		br := b.browser(t)
		br.header = http.Header{"X-Forwarded-For": {xff}}
		br.get("/portal/acme/")
		return br.post("/portal/acme/signin", url.Values{"email": {email}})
	}
	for i := range 20 {
		if pg := signIn("198.51.100.7", fmt.Sprintf("p%d@example.com", i)); pg.status != http.StatusSeeOther {
			t.Fatalf("code %d: %d", i+1, pg.status)
		}
	}
	if pg := signIn("203.0.113.9, 198.51.100.7", "q@example.com"); pg.status != http.StatusTooManyRequests {
		t.Errorf("a 21st code from the same client: %d", pg.status)
	}
	if pg := signIn("198.51.100.7, 203.0.113.9", "q@example.com"); pg.status != http.StatusSeeOther {
		t.Errorf("another client: %d", pg.status)
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	br := b.browser(t)
	br.signIn("ada@example.com")
	b.clock.advance(29 * time.Minute)
	mustContain(t, br.get("/portal/acme/"), "Signed in as ada@example.com")
	b.clock.advance(31 * time.Minute)
	mustContain(t, br.get("/portal/acme/"), "Your session ended after 30 minutes")
}

func TestWorkspaceNotEnabled(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	br := b.browser(t)
	for _, path := range []string{"/portal/closed/", "/portal/nope/", "/portal/", "/portal/acme/nothing"} {
		if pg := br.get(path); pg.status != http.StatusNotFound {
			t.Errorf("GET %s: %d", path, pg.status)
		}
	}
}

func TestHoldingsConsentAndReceipt(t *testing.T) {
	t.Parallel()
	b, br, pg := adaSignedIn(t)
	mustContain(t, pg, "Ada Lovelace", "Order Completed", "u-ada", "anon-ada", "advertising", "granted", "Withdraw consent to advertising", "Nobody: we have sent your data to no one.")

	pg = br.post("/portal/acme/consent", url.Values{"purpose": {"advertising"}, "granted": {"false"}})
	if pg.status != http.StatusSeeOther || !strings.Contains(pg.location, "/portal/acme/receipts/") {
		t.Fatalf("consent: %d %s", pg.status, pg.location)
	}
	receiptPath := pg.location
	pg = br.get(receiptPath)
	mustContain(t, pg, "Your consent receipt", "advertising: withdrawn", "Acme Ltd")

	// The control event is in the log, and folding it changes the consent.
	b.fold(t)
	evs, err := b.st.Read(t.Context(), store.LogQuery{Workspace: "acme", Type: store.TypePrivacy})
	if err != nil || len(evs) != 1 {
		t.Fatalf("control events: %v %v", evs, err)
	}
	var cmd privacy.Command
	if err := json.Unmarshal(evs[0].Raw, &cmd); err != nil || cmd.Action != privacy.ActionConsent || cmd.Consent["advertising"] || cmd.Actor != "portal" || cmd.Identifier.Value != "ada@example.com" {
		t.Fatalf("command %+v %v", cmd, err)
	}
	pg = br.get("/portal/acme/")
	mustContain(t, pg, "Grant consent to advertising")

	// The signed receipt verifies with the published key.
	jwt := br.get(receiptPath + "?format=jwt")
	if jwt.status != 200 || !strings.Contains(jwt.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("jwt: %d %v", jwt.status, jwt.header)
	}
	var set portal.JWKS
	if err := json.Unmarshal([]byte(br.get("/portal/acme/.well-known/jwks.json").body), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v %+v", err, set)
	}
	payload, err := portal.VerifyJWS(jwt.body, set)
	if err != nil {
		t.Fatal(err)
	}
	var rc portal.Receipt
	if err := json.Unmarshal(payload, &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Version != portal.ReceiptVersion || rc.PIIPrincipalID != "ada@example.com" || rc.ConsentReceiptID != evs[0].MessageID ||
		len(rc.Services) != 1 || len(rc.Services[0].Purposes) != 1 || rc.Services[0].Purposes[0].Purpose != "advertising" || rc.Services[0].Purposes[0].Granted ||
		rc.PIIControllers[0].PIIController != "Acme Ltd" || rc.Jurisdiction != "EU" || rc.PolicyURL == "" || rc.PublicKey != set.Keys[0].X {
		t.Errorf("receipt %+v", rc)
	}
	// ?format=json is the same receipt, unsigned.
	if js := br.get(receiptPath + "?format=json"); js.header.Get("Content-Type") != "application/json" || !jsonEqual(js.body, string(payload)) {
		t.Errorf("json receipt: %v %s", js.header, js.body)
	}
	// The same event always signs to the same receipt; a changed one does not verify.
	if again := br.get(receiptPath + "?format=jwt"); again.body != jwt.body {
		t.Error("the receipt changed between downloads")
	}
	tampered := strings.Replace(jwt.body, ".", ".x", 1)
	if _, err := portal.VerifyJWS(tampered, set); !errors.Is(err, portal.ErrBadSignature) {
		t.Errorf("tampered receipt: %v", err)
	}

	// Another person cannot read Ada's receipt.
	other := b.browser(t)
	other.signIn("eve@example.com")
	if pg := other.get(receiptPath); pg.status != http.StatusNotFound {
		t.Errorf("another person's receipt: %d", pg.status)
	}
}

func TestGlobalPrivacyControl(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	b.seedAda(t)
	b.track(t, "page", `{"userId":"u-ada","name":"Home"}`, "Sec-GPC", "1")
	b.fold(t)
	br := b.browser(t)
	mustContain(t, br.signIn("ada@example.com"), "Global Privacy Control: applied", "by your browser's Global Privacy Control signal")
}

func TestMyTerms(t *testing.T) {
	t.Parallel()
	b, br, _ := adaSignedIn(t)
	mustContain(t, br.get("/portal/acme/terms"), `value="no-third-party-sharing"`, "<legend>My terms</legend>")
	pg := br.post("/portal/acme/terms", url.Values{"term": {"no-third-party-sharing", "no-marketing"}})
	if pg.status != http.StatusSeeOther || !strings.Contains(pg.location, "/portal/acme/terms/") {
		t.Fatalf("terms: %d %s", pg.status, pg.location)
	}
	agreement := pg.location
	mustContain(t, br.get(agreement), "held by both sides", "no-third-party-sharing", "no-marketing", "Acme Ltd")
	var set portal.JWKS
	if err := json.Unmarshal([]byte(br.get("/portal/acme/.well-known/jwks.json").body), &set); err != nil {
		t.Fatal(err)
	}
	payload, err := portal.VerifyJWS(br.get(agreement+"?format=jwt").body, set)
	if err != nil {
		t.Fatal(err)
	}
	var a portal.Agreement
	if err := json.Unmarshal(payload, &a); err != nil || a.Format != portal.TermsFormat || a.Person != "ada@example.com" || len(a.Terms) != 2 {
		t.Fatalf("agreement %+v %v", a, err)
	}
	if js := br.get(agreement + "?format=json"); js.header.Get("Content-Type") != "application/json" || !jsonEqual(js.body, string(payload)) {
		t.Errorf("json agreement: %v %s", js.header, js.body)
	}
	b.fold(t)
	mustContain(t, br.get("/portal/acme/"), "Your terms apply too: no-marketing, no-third-party-sharing")
	mustContain(t, br.get("/portal/acme/terms"), `value="no-marketing" checked`)
	if pg := br.post("/portal/acme/terms", url.Values{"term": {"no-anything"}}); pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "no term named") {
		t.Errorf("unknown term: %d", pg.status)
	}
	if pg := br.get("/portal/acme/terms/abc"); pg.status != http.StatusBadRequest {
		t.Errorf("agreement abc: %d", pg.status)
	}
	// A consent receipt is not a terms agreement, nor the other way round.
	if pg := br.get(strings.Replace(agreement, "/terms/", "/receipts/", 1)); pg.status != http.StatusNotFound {
		t.Errorf("a terms event as a receipt: %d", pg.status)
	}
}

func TestEventPages(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	b.seedAda(t)
	var calls []string
	for i := range 55 {
		calls = append(calls, fmt.Sprintf(`{"type":"track","userId":"u-ada","event":"Viewed %02d"}`, i))
	}
	b.track(t, "batch", `{"batch":[`+strings.Join(calls, ",")+`]}`)
	b.fold(t)
	br := b.browser(t)
	pg := br.signIn("ada@example.com")
	mustContain(t, pg, "Viewed 54", "Viewed 05", "Older events")
	if strings.Contains(pg.body, "Viewed 04") || strings.Contains(pg.body, "Newest events") {
		t.Error("the first page holds more than the newest 50 events")
	}
	older := regexp.MustCompile(`href="(/portal/acme/\?before=\d+)"`).FindStringSubmatch(pg.body)
	if older == nil {
		t.Fatal("no link to older events")
	}
	pg = br.get(older[1])
	mustContain(t, pg, "Viewed 04", "Viewed 00", "Pricing", "Newest events")
	if strings.Contains(pg.body, "Viewed 05") || strings.Contains(pg.body, "Older events") {
		t.Error("the second page repeats the first or offers more")
	}
}

func TestCorrectTraits(t *testing.T) {
	t.Parallel()
	b, br, _ := adaSignedIn(t)
	pg := br.get("/portal/acme/correct")
	mustContain(t, pg, `name="trait.name"`, `value="Ada Lovelace"`)
	pg = br.post("/portal/acme/correct", url.Values{"trait.name": {"Ada King"}, "trait.age": {"37"}, "trait.plan": {"pro"}})
	if pg.status != http.StatusSeeOther {
		t.Fatalf("correct: %d %s", pg.status, pg.body)
	}
	b.fold(t)
	evs, err := b.st.Read(t.Context(), store.LogQuery{Workspace: "acme", Type: store.TypePrivacy})
	if err != nil || len(evs) != 1 {
		t.Fatalf("control events: %v %v", evs, err)
	}
	var cmd privacy.Command
	if err := json.Unmarshal(evs[0].Raw, &cmd); err != nil || cmd.Action != privacy.ActionCorrect || string(cmd.Traits["name"]) != `"Ada King"` || string(cmd.Traits["age"]) != `37` || cmd.Traits["plan"] != nil {
		t.Fatalf("command %+v %v", cmd, err)
	}
	// The correction is a tracked request: its status page says when it
	// is applied, and what we hold shows the new value.
	mustContain(t, br.get(pg.location), "Your rectification request", "Completed on", "your corrections are applied")
	mustContain(t, br.get("/portal/acme/"), "Ada King")
}

func TestStepUpDownloadAndDelete(t *testing.T) {
	t.Parallel()
	b, br, _ := adaSignedIn(t)

	// Without a fresh code: the step-up page, and POST is refused.
	mustContain(t, br.get("/portal/acme/download"), "Confirm it is you", `name="next" value="download"`)
	if pg := br.post("/portal/acme/download", nil); pg.status != http.StatusForbidden {
		t.Fatalf("download without step-up: %d", pg.status)
	}
	pg := br.stepUp("download")
	mustContain(t, pg, "Download my data (JSON)")
	// A code for the download does not allow the deletion.
	mustContain(t, br.get("/portal/acme/delete"), "Confirm it is you")
	pg = br.post("/portal/acme/download", nil)
	if pg.status != 200 || !strings.Contains(pg.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download: %d %v", pg.status, pg.header)
	}
	var rep struct {
		Format  string `json:"format"`
		Profile struct {
			KithID int64 `json:"kith_id"`
		} `json:"profile"`
		Traits []privacy.Trait `json:"traits"`
	}
	if err := json.Unmarshal([]byte(pg.body), &rep); err != nil || rep.Format != privacy.ReportFormat || !strings.Contains(pg.body, "Ada Lovelace") {
		t.Fatalf("export: %v %.300s", err, pg.body)
	}
	// The download is recorded as an access request, completed.
	reqs, err := b.st.PrivacyRequests(t.Context(), store.RequestQuery{Workspace: "acme"})
	if err != nil || len(reqs) != 1 || reqs[0].Type != privacy.RequestAccess || reqs[0].Status != store.RequestCompleted || reqs[0].Via != privacy.ViaPortal {
		t.Fatalf("requests after the download: %+v %v", reqs, err)
	}

	// The step-up lasts 5 minutes.
	b.clock.advance(4 * time.Minute)
	mustContain(t, br.get("/portal/acme/download"), "Download my data (JSON)")
	b.clock.advance(2 * time.Minute)
	mustContain(t, br.get("/portal/acme/download"), "Confirm it is you")
	if pg := br.post("/portal/acme/download", nil); pg.status != http.StatusForbidden {
		t.Errorf("download 6 minutes after the step-up: %d", pg.status)
	}
	mustContain(t, br.get("/portal/acme/delete"), "Confirm it is you")
	pg = br.stepUp("delete")
	mustContain(t, pg, "I want all my data deleted.")
	if pg := br.post("/portal/acme/delete", nil); pg.status != http.StatusBadRequest {
		t.Fatalf("delete unconfirmed: %d", pg.status)
	}
	pg = br.post("/portal/acme/delete", url.Values{"confirm": {"yes"}})
	if pg.status != http.StatusSeeOther || !strings.Contains(pg.location, "/portal/acme/requests/") {
		t.Fatalf("delete: %d %s", pg.status, pg.location)
	}
	status := pg.location
	pg = br.get(status)
	mustContain(t, pg, "Received", "In progress", "Completed", "at the latest", `aria-current="step"`)
	if strings.Contains(pg.body, "Completed ✓") {
		t.Error("the erasure shows as completed before the log is folded")
	}
	// The session ended with the request.
	mustContain(t, br.get("/portal/acme/"), "Send me a code")

	evs, err := b.st.Read(t.Context(), store.LogQuery{Workspace: "acme", Type: store.TypePrivacy})
	if err != nil || !slices.ContainsFunc(evs, func(e store.Event) bool { return strings.Contains(string(e.Raw), `"action":"erase"`) }) {
		t.Fatalf("erase command: %v %v", evs, err)
	}
	b.fold(t)
	if _, err := b.lookupAda(); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the erasure, the profile: %v", err)
	}
	mustContain(t, br.get(status), "we hold nothing about you any more", `class="done">Received ✓`, `aria-current="step" class="done">Completed ✓`)
	if pg := br.get(status + "x"); pg.status != http.StatusNotFound {
		t.Errorf("a status link with a wrong key: %d", pg.status)
	}
}

// TestBadInput: every form answers bad input with 4xx and a message, never
// 5xx (the browser helper fails on 5xx).
func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	b.seedAda(t)
	b.fold(t)
	br := b.browser(t)
	anon := b.browser(t)
	anon.get("/portal/acme/")
	nobody := b.browser(t)
	nobody.signIn("nobody@example.com")
	br.signIn("ada@example.com")
	cases := []struct {
		name   string
		who    *browser
		method string
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"empty email", anon, "POST", "/portal/acme/signin", url.Values{"email": {""}}, 400, "enter an email address"},
		{"not an email", anon, "POST", "/portal/acme/signin", url.Values{"email": {"ada at example"}}, 400, "enter an email address"},
		{"email with a header", anon, "POST", "/portal/acme/signin", url.Values{"email": {"a@example.com\r\nBcc: x@y.z"}}, 400, "enter an email address"},
		{"long email", anon, "POST", "/portal/acme/signin", url.Values{"email": {strings.Repeat("a", 250) + "@example.com"}}, 400, "enter an email address"},
		{"code without a challenge", anon, "POST", "/portal/acme/code", url.Values{"code": {"123456"}}, 400, "no code was sent"},
		{"no csrf", anon, "POST", "/portal/acme/signin", url.Values{"email": {"a@example.com"}, "csrf": {""}}, 403, "did not come from this site"},
		{"wrong csrf", br, "POST", "/portal/acme/consent", url.Values{"purpose": {"advertising"}, "granted": {"false"}, "csrf": {"forged"}}, 403, "did not come from this site"},
		{"consent signed out", anon, "POST", "/portal/acme/consent", url.Values{"purpose": {"advertising"}, "granted": {"false"}}, 401, "Sign in again"},
		{"consent without a choice", br, "POST", "/portal/acme/consent", url.Values{"purpose": {"advertising"}}, 400, "grant"},
		{"consent to an unknown purpose", br, "POST", "/portal/acme/consent", url.Values{"purpose": {"mind_reading"}, "granted": {"true"}}, 400, "no consent purpose named"},
		{"consent to a purpose by another spelling", br, "POST", "/portal/acme/consent", url.Values{"purpose": {"Advertising"}, "granted": {"true"}}, 400, "no consent purpose named"},
		{"consent to the necessary purpose", br, "POST", "/portal/acme/consent", url.Values{"purpose": {"necessary"}, "granted": {"false"}}, 400, "no consent purpose named"},
		{"receipt not a number", br, "GET", "/portal/acme/receipts/abc", nil, 400, "positive number"},
		{"receipt of no consent", br, "GET", "/portal/acme/receipts/1", nil, 404, "no consent receipt of yours"},
		{"receipt format", br, "GET", "/portal/acme/receipts/1?format=xml", nil, 400, "jwt"},
		{"events page", br, "GET", "/portal/acme/?before=-3", nil, 400, "before must be"},
		{"correct unknown trait", br, "POST", "/portal/acme/correct", url.Values{"trait.salary": {"1"}}, 400, "not one of your traits"},
		{"correct a number with text", br, "POST", "/portal/acme/correct", url.Values{"trait.age": {"old"}}, 400, "must be a number"},
		{"correct too long", br, "POST", "/portal/acme/correct", url.Values{"trait.name": {strings.Repeat("x", 1001)}}, 400, "too long"},
		{"correct nothing", br, "POST", "/portal/acme/correct", url.Values{"trait.name": {"Ada Lovelace"}}, 400, "Nothing was changed"},
		{"step-up to nowhere", br, "POST", "/portal/acme/step-up", url.Values{"next": {"elsewhere"}}, 400, "next=download or next=delete"},
		{"delete without step-up", br, "POST", "/portal/acme/delete", url.Values{"confirm": {"yes"}}, 403, "fresh code"},
		{"request of another key", anon, "GET", "/portal/acme/requests/r1?k=00", nil, 404, "no request at this address"},
		{"consent, nothing held", nobody, "POST", "/portal/acme/consent", url.Values{"purpose": {"advertising"}, "granted": {"false"}}, 404, "We hold nothing about this email"},
		{"correct, nothing held", nobody, "POST", "/portal/acme/correct", url.Values{"trait.name": {"x"}}, 404, "We hold nothing about this email"},
		{"terms, nothing held", nobody, "POST", "/portal/acme/terms", url.Values{"term": {"no-marketing"}}, 404, "We hold nothing about this email"},
		{"big form", anon, "POST", "/portal/acme/signin", url.Values{"email": {strings.Repeat("a", 70<<10)}}, 400, "could not be read"},
	}
	for _, c := range cases {
		var pg page
		if c.method == "GET" {
			pg = c.who.get(c.path)
		} else {
			pg = c.who.post(c.path, c.form)
		}
		if pg.status != c.status || !strings.Contains(pg.body, c.says) {
			t.Errorf("%s: %d, want %d saying %q:\n%.2000s", c.name, pg.status, c.status, c.says, pg.body)
		}
	}
	// Download and delete with a fresh code, but nothing held.
	nobody.stepUp("download")
	if pg := nobody.post("/portal/acme/download", nil); pg.status != http.StatusNotFound || !strings.Contains(pg.body, "nothing to download") {
		t.Errorf("download, nothing held: %d", pg.status)
	}
	nobody.stepUp("delete")
	if pg := nobody.post("/portal/acme/delete", url.Values{"confirm": {"yes"}}); pg.status != http.StatusNotFound || !strings.Contains(pg.body, "nothing to delete") {
		t.Errorf("delete, nothing held: %d", pg.status)
	}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
