package portal

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Session lifetimes.
const (
	idleTimeout = 30 * time.Minute // a session unused this long is over
	maxLifetime = 12 * time.Hour   // and any session after this long
	stepUpTTL   = 5 * time.Minute  // a step-up code allows its download or delete this long
)

// cookieName is the portal's one cookie: the sealed session.
const cookieName = "kith_portal"

// session is the state of one browser, sealed (AES-256-GCM) into its
// cookie: the server keeps none of it. A browser that never signed in has
// a session too, without Email: it carries the CSRF token of the sign-in
// form and the pending one-time code's challenge.
type session struct {
	SID   string `json:"sid"`             // random; names the session for CSRF tokens and sign-out
	Email string `json:"email,omitempty"` // the proven email: signed in when set
	Start int64  `json:"start"`           // unix seconds
	Seen  int64  `json:"seen"`            // last request, unix seconds (idle expiry)
	// StepUp is until when (unix seconds) the action StepUpFor (download
	// or delete) is allowed: each needs its own fresh code.
	StepUp    int64      `json:"step_up,omitempty"`
	StepUpFor string     `json:"step_up_for,omitempty"`
	Challenge *challenge `json:"challenge,omitempty"` // the code sent last, if any
}

// signedIn reports whether the session proved an email.
func (s *session) signedIn() bool { return s.Email != "" }

// steppedUp reports whether a step-up code for action was entered within
// stepUpTTL.
func (s *session) steppedUp(action string, now time.Time) bool {
	return s.signedIn() && s.StepUpFor == action && now.Unix() < s.StepUp
}

// endedSessions are the sessions signed out (or whose data was deleted)
// on this node, kept until they would have expired anyway, so that a copy
// of their cookie does not sign in again. The set is per node: see
// docs/portal.md.
type endedSessions struct {
	mu sync.Mutex
	m  map[string]time.Time // sid → when it may be forgotten
}

func (e *endedSessions) end(sid string, until time.Time, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]time.Time{}
	}
	for k, t := range e.m {
		if now.After(t) {
			delete(e.m, k)
		}
	}
	e.m[sid] = until
}

func (e *endedSessions) ended(sid string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.m[sid]
	return ok
}

// cookiePath is the path the portal's cookie of workspace ws is sent to.
func cookiePath(ws string) string { return "/portal/" + ws + "/" }

// loadSession opens the session cookie of ws, or starts a new anonymous
// session when there is none or it is unreadable, idle too long, too old
// or ended. expired reports that a signed-in session timed out.
func (p *Portal) loadSession(r *http.Request, ws string, now time.Time) (s *session, expired bool) {
	fresh := func() *session {
		return &session{SID: randomID(), Start: now.Unix(), Seen: now.Unix()}
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return fresh(), false
	}
	plain, err := p.keys.openValue(c.Value, "session:"+ws)
	if err != nil {
		return fresh(), false
	}
	var old session
	if err := json.Unmarshal(plain, &old); err != nil || old.SID == "" {
		return fresh(), false
	}
	if now.Sub(time.Unix(old.Seen, 0)) > idleTimeout || now.Sub(time.Unix(old.Start, 0)) > maxLifetime || p.ended.ended(old.SID) {
		return fresh(), old.signedIn()
	}
	old.Seen = now.Unix()
	return &old, false
}

// saveSession writes v's session into the response's cookie: Secure when
// Options.SecureCookies says so or the request came over TLS.
func (p *Portal) saveSession(w http.ResponseWriter, v *visit) {
	plain, _ := json.Marshal(v.s) // plain data: cannot fail
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: p.keys.sealValue(plain, "session:"+v.ws), Path: cookiePath(v.ws),
		HttpOnly: true, Secure: p.o.SecureCookies || v.tls, SameSite: http.SameSiteLaxMode,
		MaxAge: int(maxLifetime / time.Second),
	})
}

// csrfToken is the token every form of session s carries: a keyed hash
// of the workspace and the session id, so it changes when the session
// does (signing in starts a new session id).
func (p *Portal) csrfToken(ws string, s *session) string {
	return base64.RawURLEncoding.EncodeToString(mac(p.keys.csrf, ws, s.SID)[:18])
}

// validCSRF reports whether the form's csrf field is session s's token.
func (p *Portal) validCSRF(r *http.Request, ws string, s *session) bool {
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(p.csrfToken(ws, s)))
}
