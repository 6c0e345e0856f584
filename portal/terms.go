package portal

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// TermsFormat names the layout of a signed terms agreement.
const TermsFormat = "kith.personal-terms/v1"

// Agreement is the record of the personal terms a person set ("My terms",
// IEEE 7012 in spirit: the person proffers the terms, the company
// agrees). Both sides hold it: the company in its log (the terms control
// event), the person as this record signed by the company (a JWS with the
// key of the receipts).
type Agreement struct {
	Format      string         `json:"format"`      // TermsFormat
	AgreementID string         `json:"agreementID"` // the control event's messageId
	Person      string         `json:"person"`      // the person's email
	Company     PIIController  `json:"company"`
	Terms       []consent.Term `json:"terms"`    // empty: the person withdrew their terms
	AgreedAt    int64          `json:"agreedAt"` // unix seconds
	Effect      string         `json:"effect"`
	LogPosition int64          `json:"kithLogPosition"`
}

// termsView is the terms page's data.
type termsView struct {
	Found bool
	Terms []termRow
}

type termRow struct {
	consent.Term
	Chosen bool
}

// termsPage lists the catalogue of personal terms with the person's choice.
func (p *Portal) termsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	found, st, err := p.statement(r.Context(), v)
	if err != nil {
		p.storeFailed(w, v, "read your terms", err)
		return
	}
	p.render(w, v, http.StatusOK, "terms", "Your terms", termsOf(found, st.Terms), "", "")
}

func termsOf(found bool, chosen []string) termsView {
	tv := termsView{Found: found}
	for _, t := range consent.Terms {
		tv.Terms = append(tv.Terms, termRow{Term: t, Chosen: slices.Contains(chosen, t.Name)})
	}
	return tv
}

// setTerms records the terms ticked on the form (none withdraws them) as a
// terms control event and shows the signed agreement.
func (p *Portal) setTerms(w http.ResponseWriter, r *http.Request, v *visit) {
	found, st, err := p.statement(r.Context(), v)
	if err != nil {
		p.storeFailed(w, v, "read your terms", err)
		return
	}
	if !found {
		p.render(w, v, http.StatusNotFound, "terms", "Your terms", termsOf(false, nil), "", "We hold nothing about this email, so there is nothing your terms could apply to.")
		return
	}
	var chosen []string
	for _, name := range r.PostForm["term"] {
		if _, ok := consent.LookupTerm(name); !ok {
			p.render(w, v, http.StatusBadRequest, "terms", "Your terms", termsOf(true, st.Terms), "", "There is no term named "+strconv.Quote(name)+".")
			return
		}
		if !slices.Contains(chosen, name) {
			chosen = append(chosen, name)
		}
	}
	p.record(w, r, v, privacy.Command{Action: privacy.ActionTerms, Terms: chosen}, "record your terms", "terms/")
}

// agreementView is the agreement page's data.
type agreementView struct {
	Agreement Agreement
	JWS       string
	Position  int64
}

// agreement shows, or with ?format=jwt or json downloads, the signed record of the
// terms control event at a log position.
func (p *Portal) agreement(w http.ResponseWriter, r *http.Request, v *visit) {
	ev, cmd, ok := p.ownCommand(w, r, v, privacy.ActionTerms, "terms agreement")
	if !ok {
		return
	}
	a := Agreement{Format: TermsFormat, AgreementID: ev.MessageID, Person: cmd.Identifier.Value,
		Company: p.controller(v.ws).pii(),
		Terms:   []consent.Term{}, AgreedAt: ev.Timestamp.Unix(), LogPosition: ev.Position,
		Effect: "The company applies these terms to all processing of the person's data: each term denies the purposes it covers, whatever consent says, until the person changes them.",
	}
	for _, name := range cmd.Terms {
		if t, ok := consent.LookupTerm(name); ok {
			a.Terms = append(a.Terms, t)
		}
	}
	payload, _ := json.Marshal(a) // plain data: cannot fail
	jws := p.keys.signJWS("JWT", payload)
	if p.serveRecord(w, r, v, "terms-agreement-"+a.AgreementID, a, jws) {
		return
	}
	p.render(w, v, http.StatusOK, "agreement", "Your terms agreement", agreementView{Agreement: a, JWS: jws, Position: ev.Position},
		"Your terms are recorded. They apply within seconds, everywhere we send your data.", "")
}

// ownCommand reads the control event of action at the path's position and
// checks it is about the signed-in person; it has answered when ok is
// false.
func (p *Portal) ownCommand(w http.ResponseWriter, r *http.Request, v *visit, action, what string) (store.Event, privacy.Command, bool) {
	pos, err := strconv.ParseInt(r.PathValue("position"), 10, 64)
	if err != nil || pos < 1 {
		p.render(w, v, http.StatusBadRequest, "error", "Bad request", nil, "", "A "+what+" is named by a positive number.")
		return store.Event{}, privacy.Command{}, false
	}
	if f := r.URL.Query().Get("format"); f != "" && f != "jwt" && f != "json" {
		p.render(w, v, http.StatusBadRequest, "error", "Bad request", nil, "", "The format is jwt (signed) or json.")
		return store.Event{}, privacy.Command{}, false
	}
	evs, err := p.o.Store.Read(r.Context(), store.LogQuery{Workspace: v.ws, Positions: []int64{pos}, Limit: 1})
	if err != nil {
		p.storeFailed(w, v, "read the "+what, err)
		return store.Event{}, privacy.Command{}, false
	}
	var cmd privacy.Command
	if len(evs) != 1 || evs[0].Type != store.TypePrivacy || json.Unmarshal(evs[0].Raw, &cmd) != nil ||
		cmd.Action != action || cmd.Identifier != p.emailIdentifier(v.ws, v.s.Email) {
		p.render(w, v, http.StatusNotFound, "error", "Not found", nil, "", "There is no "+what+" of yours with this number.")
		return store.Event{}, privacy.Command{}, false
	}
	return evs[0], cmd, true
}
