package portal

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/kithcdp/kith/privacy"
)

// setConsent grants or withdraws consent to one purpose: one form, one
// click either way. It appends a consent control event and shows its
// receipt.
func (p *Portal) setConsent(w http.ResponseWriter, r *http.Request, v *visit) {
	purpose := r.PostFormValue("purpose")
	var granted bool
	switch r.PostFormValue("granted") {
	case "true":
		granted = true
	case "false":
	default:
		p.render(w, v, http.StatusBadRequest, "error", "Bad request", nil, "", "Choose to grant (granted=true) or withdraw (granted=false) consent.")
		return
	}
	found, _, err := p.statement(r.Context(), v)
	if err != nil {
		p.storeFailed(w, v, "read your consent", err)
		return
	}
	if !found {
		p.render(w, v, http.StatusNotFound, "error", "Not found", nil, "", "We hold nothing about this email, so there is no consent to change.")
		return
	}
	if pr, ok := p.purposes(v.ws).Lookup(purpose); !ok || pr.Name != purpose || pr.Necessary {
		p.render(w, v, http.StatusBadRequest, "error", "Bad request", nil, "", "There is no consent purpose named "+strconv.Quote(purpose)+" here.")
		return
	}
	p.record(w, r, v, privacy.Command{Action: privacy.ActionConsent, Consent: map[string]bool{purpose: granted}}, "record your choice", "receipts/")
}

// record appends cmd, made by the signed-in person in the portal, and
// opens the page of its signed record: path followed by its log position.
func (p *Portal) record(w http.ResponseWriter, r *http.Request, v *visit, cmd privacy.Command, doing, path string) {
	cmd.Identifier, cmd.Actor, cmd.Via = p.emailIdentifier(v.ws, v.s.Email), actorPortal, actorPortal
	ev, err := p.appendCommand(r.Context(), v, cmd)
	if err != nil {
		p.storeFailed(w, v, doing, err)
		return
	}
	p.redirect(w, r, v, path+strconv.FormatInt(ev.Position, 10))
}

// receiptView is the receipt page's data.
type receiptView struct {
	Receipt  Receipt
	JWS      string
	Position int64
}

// receipt shows, or with ?format=jwt or json downloads, the consent
// receipt of the consent control event at a log position. Receipts are
// rebuilt from the log, not stored: the same event always gives the same
// signed receipt. Only the person the event is about may read it.
func (p *Portal) receipt(w http.ResponseWriter, r *http.Request, v *visit) {
	ev, cmd, ok := p.ownCommand(w, r, v, privacy.ActionConsent, "consent receipt")
	if !ok {
		return
	}
	rc := p.receiptFor(v.ws, ev, cmd, p.policyURL(r, v.ws))
	jws := p.signReceipt(rc)
	if p.serveRecord(w, r, v, "consent-receipt-"+rc.ConsentReceiptID, rc, jws) {
		return
	}
	p.render(w, v, http.StatusOK, "receipt", "Your consent receipt", receiptView{Receipt: rc, JWS: jws, Position: ev.Position},
		"Your choice is recorded. It applies within seconds, everywhere we send your data.", "")
}

// serveRecord answers a signed record's download when the query asks for
// one (ownCommand checked it): ?format=jwt the signed record, ?format=json
// the record unsigned, each as file name.jwt or name.json. It reports
// whether it answered.
func (p *Portal) serveRecord(w http.ResponseWriter, r *http.Request, v *visit, name string, record any, jws string) bool {
	format := r.URL.Query().Get("format")
	if format != "jwt" && format != "json" {
		return false
	}
	p.saveSession(w, v)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.`+format+`"`)
	if format == "jwt" {
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(jws))
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(record)
	return true
}

// policyURL is the privacy policy named in receipts: Options.PolicyURL,
// or the portal's own page.
func (p *Portal) policyURL(r *http.Request, ws string) string {
	if p.o.PolicyURL != "" {
		return p.o.PolicyURL
	}
	scheme := "http"
	if r.TLS != nil || p.o.SecureCookies {
		scheme = "https"
	}
	return scheme + "://" + r.Host + cookiePath(ws)
}

// jwks publishes the public key receipts are signed with.
func (p *Portal) jwks(w http.ResponseWriter, r *http.Request, v *visit) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(p.keys.jwks())
}
