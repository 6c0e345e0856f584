package portal

import (
	"context"
	"net/http"
	"strings"
)

// home is the sign-in page, or once signed in what the workspace holds.
func (p *Portal) home(w http.ResponseWriter, r *http.Request, v *visit) {
	if v.s.signedIn() {
		p.holdingsPage(w, r, v)
		return
	}
	notice := ""
	if v.expired {
		notice = "Your session ended after 30 minutes without activity. Sign in again."
	}
	p.render(w, v, http.StatusOK, "signin", "Sign in", nil, notice, "")
}

// signIn sends a sign-in code to the email entered.
func (p *Portal) signIn(w http.ResponseWriter, r *http.Request, v *visit) {
	email, err := validEmail(r.PostFormValue("email"))
	if err != nil {
		p.render(w, v, http.StatusBadRequest, "signin", "Sign in", nil, "", err.Error())
		return
	}
	p.sendCode(w, r, v, &challenge{Email: email, Purpose: purposeSignIn})
}

// stepUp sends a fresh code to the signed-in email before a download or a
// deletion.
func (p *Portal) stepUp(w http.ResponseWriter, r *http.Request, v *visit) {
	next := r.PostFormValue("next")
	if next != "download" && next != "delete" {
		p.render(w, v, http.StatusBadRequest, "error", "Bad request", nil, "", "A fresh code is asked for before a download or a deletion (next=download or next=delete).")
		return
	}
	p.sendCode(w, r, v, &challenge{Email: v.s.Email, Purpose: purposeStepUp, Next: next})
}

// sendCode sends the code of a new challenge c, rate-limited per email and
// per client address, keeps c in the session and opens the code page.
func (p *Portal) sendCode(w http.ResponseWriter, r *http.Request, v *visit, c *challenge) {
	digest := p.keys.emailDigest(v.ws, c.Email)
	if !p.sendPerIP.allow(p.clientAddr(r), v.now) || !p.sendPerEmail.allow(v.ws+"/"+digest, v.now) {
		p.o.Logger.Warn("portal: code requests rate-limited", "workspace", v.ws, "email_digest", digest)
		p.saveSession(w, v)
		p.renderError(w, v.ws, http.StatusTooManyRequests, "Too many codes were asked for. Wait a few minutes, then try again.")
		return
	}
	c.Nonce, c.Issued = randomID(), v.now.Unix()
	code := p.codeFor(v.ws, c)
	if err := p.deliverCode(r.Context(), v.ws, c, digest, code); err != nil {
		p.o.Logger.Error("portal: send code", "workspace", v.ws, "email_digest", digest, "err", err)
		p.saveSession(w, v)
		p.renderError(w, v.ws, http.StatusServiceUnavailable, "We could not send the email just now. Please try again in a moment.")
		return
	}
	v.s.Challenge = c
	p.redirect(w, r, v, "code")
}

// deliverCode emails the code, or in development mode (no Mailer) writes
// it to the log. The email itself is never logged: only its keyed digest.
func (p *Portal) deliverCode(ctx context.Context, ws string, c *challenge, digest, code string) error {
	if p.o.Mailer == nil {
		p.o.Logger.Info("portal sign-in code", "workspace", ws, "purpose", c.Purpose, "email_digest", digest, "code", code)
		return nil
	}
	what := "sign in to"
	if c.Purpose == purposeStepUp {
		what = "confirm the " + c.Next + " in"
	}
	body := "Your code to " + what + " the privacy portal of " + p.controller(ws).Name + " is:\n\n    " + code +
		"\n\nIt expires in 10 minutes and works once. If you did not ask for it, ignore this email.\n"
	if err := p.o.Mailer.Send(ctx, c.Email, "Your code: "+code, body); err != nil {
		return err
	}
	p.o.Logger.Info("portal sign-in code sent", "workspace", ws, "purpose", c.Purpose, "email_digest", digest)
	return nil
}

// codeView is the code page's data.
type codeView struct {
	Email   string // where the code went
	Purpose string
	Next    string
}

// codePage asks for the code sent last.
func (p *Portal) codePage(w http.ResponseWriter, r *http.Request, v *visit) {
	c := v.s.Challenge
	if c == nil {
		p.redirect(w, r, v, "")
		return
	}
	p.render(w, v, http.StatusOK, "code", "Enter your code", codeView{Email: c.Email, Purpose: c.Purpose, Next: c.Next}, "", "")
}

// enterCode checks the code entered: a sign-in code starts a new signed-in
// session; a step-up code allows download and delete for 5 minutes.
func (p *Portal) enterCode(w http.ResponseWriter, r *http.Request, v *visit) {
	c := v.s.Challenge
	if c == nil {
		p.render(w, v, http.StatusBadRequest, "signin", "Sign in", nil, "", errNoCode.Error())
		return
	}
	cv := codeView{Email: c.Email, Purpose: c.Purpose, Next: c.Next}
	if !p.tryPerIP.allow(p.clientAddr(r), v.now) {
		p.render(w, v, http.StatusTooManyRequests, "code", "Enter your code", cv, "", "Too many attempts. Wait a minute, then try again.")
		return
	}
	entered := strings.Join(strings.Fields(r.PostFormValue("code")), "")
	if _, err := p.checkCode(v.ws, v.s, c.Purpose, entered, v.now); err != nil {
		status := http.StatusBadRequest
		if err == errTooMany || err == errCodeUsed || err == errCodeExpired {
			v.s.Challenge = nil
			status = http.StatusForbidden
		}
		p.render(w, v, status, "code", "Enter your code", cv, "", err.Error())
		return
	}
	if c.Purpose == purposeSignIn {
		// A new session id: whatever knew the anonymous session's (and its
		// CSRF token) knows nothing of the signed-in one.
		v.s = &session{SID: randomID(), Email: c.Email, Start: v.now.Unix(), Seen: v.now.Unix()}
		p.redirect(w, r, v, "")
		return
	}
	v.s.Challenge = nil
	v.s.StepUp, v.s.StepUpFor = v.now.Add(stepUpTTL).Unix(), c.Next
	p.redirect(w, r, v, c.Next)
}

// signOut ends the session.
func (p *Portal) signOut(w http.ResponseWriter, r *http.Request, v *visit) {
	p.endSession(v)
	p.render(w, v, http.StatusOK, "signin", "Sign in", nil, "You are signed out.", "")
}

// endSession ends v's session on this node; the cookie written next holds
// a new anonymous session.
func (p *Portal) endSession(v *visit) {
	p.ended.end(v.s.SID, v.now.Add(maxLifetime), v.now)
	v.s = &session{SID: randomID(), Start: v.now.Unix(), Seen: v.now.Unix()}
}
