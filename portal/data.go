package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// maxTraitValue is the longest corrected trait value accepted.
const maxTraitValue = 1000

// traitField is one trait on the correction form.
type traitField struct {
	Key, Value string
	Kind       string // string, number, boolean; other kinds (objects, lists) are shown, not edited
	Editable   bool
}

// correctView is the correction page's data.
type correctView struct {
	Found  bool
	Fields []traitField
}

// traitFields lists the person's current traits for the correction form.
func traitFields(rep *privacy.Report) []traitField {
	var out []traitField
	for _, t := range rep.Traits {
		f := traitField{Key: t.Key, Value: displayValue(t.Value), Editable: true}
		switch v := bytes.TrimSpace(t.Value); {
		case len(v) > 0 && v[0] == '"':
			f.Kind = "string"
		case string(v) == "true" || string(v) == "false":
			f.Kind = "boolean"
		case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')):
			f.Kind = "number"
		default:
			f.Kind, f.Editable = "other", false
		}
		out = append(out, f)
	}
	return out
}

// correctPage shows the person's traits in a form.
func (p *Portal) correctPage(w http.ResponseWriter, r *http.Request, v *visit) {
	rep, err := p.report(r.Context(), v)
	if err != nil {
		p.storeFailed(w, v, "read your data", err)
		return
	}
	cv := correctView{Found: rep != nil}
	if rep != nil {
		cv.Fields = traitFields(rep)
	}
	p.render(w, v, http.StatusOK, "correct", "Correct your data", cv, "", "")
}

// correct appends a correct control event with the traits changed on the
// form. An emptied field clears the trait.
func (p *Portal) correct(w http.ResponseWriter, r *http.Request, v *visit) {
	rep, err := p.report(r.Context(), v)
	if err != nil {
		p.storeFailed(w, v, "read your data", err)
		return
	}
	if rep == nil {
		p.render(w, v, http.StatusNotFound, "correct", "Correct your data", correctView{}, "", "We hold nothing about this email, so there is nothing to correct.")
		return
	}
	fields := traitFields(rep)
	byKey := map[string]traitField{}
	for _, f := range fields {
		byKey[f.Key] = f
	}
	fail := func(msg string) {
		p.render(w, v, http.StatusBadRequest, "correct", "Correct your data", correctView{Found: true, Fields: fields}, "", msg)
	}
	changed := map[string]json.RawMessage{}
	for name, vals := range r.PostForm {
		key, ok := strings.CutPrefix(name, "trait.")
		if !ok {
			continue
		}
		f, held := byKey[key]
		if !held || !f.Editable {
			fail(fmt.Sprintf("%q is not one of your traits that can be corrected here.", key))
			return
		}
		val := strings.TrimSpace(vals[0])
		if len(val) > maxTraitValue {
			fail(fmt.Sprintf("The value of %s is too long (at most %d characters).", key, maxTraitValue))
			return
		}
		if val == f.Value {
			continue
		}
		raw, err := traitValue(f.Kind, val)
		if err != nil {
			fail(fmt.Sprintf("%s: %v.", key, err))
			return
		}
		changed[key] = raw
	}
	if len(changed) == 0 {
		fail("Nothing was changed: edit a value, then save.")
		return
	}
	req, err := p.submit(r.Context(), v, privacy.Submission{Type: privacy.RequestRectification, Traits: changed})
	if err != nil {
		p.storeFailed(w, v, "record your corrections", err)
		return
	}
	p.redirect(w, r, v, p.requestPath(v.ws, req.ID))
}

// submit records a data-subject request of the signed-in person, made
// through the portal.
func (p *Portal) submit(ctx context.Context, v *visit, s privacy.Submission) (store.PrivacyRequest, error) {
	s.Workspace, s.Via, s.Actor = v.ws, privacy.ViaPortal, actorPortal
	s.Identifiers = []store.Identifier{p.emailIdentifier(v.ws, v.s.Email)}
	return p.o.Requests.Submit(ctx, s)
}

// requestPath is the address, below the workspace's portal, of a
// request's status page.
func (p *Portal) requestPath(ws, id string) string {
	return "requests/" + id + "?k=" + p.requestKey(ws, id)
}

// traitValue is the JSON of a corrected value of a trait of kind; empty
// clears the trait (null).
func traitValue(kind, val string) (json.RawMessage, error) {
	if val == "" {
		return json.RawMessage("null"), nil
	}
	switch kind {
	case "number":
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, errors.New("must be a number, like 42 or 3.5")
		}
		return json.Marshal(f)
	case "boolean":
		if val != "true" && val != "false" {
			return nil, errors.New("must be true or false")
		}
		return json.RawMessage(val), nil
	default:
		return json.Marshal(val)
	}
}

// stepUpView is the step-up page's data: what it will open.
type stepUpView struct{ Next string }

// steppedUp reports whether v's session entered a step-up code for action
// (download or delete) within stepUpTTL. When not, it has answered with
// the step-up page: to a GET as the page, to a POST refused (403).
func (p *Portal) steppedUp(w http.ResponseWriter, r *http.Request, v *visit, action string) bool {
	if v.s.steppedUp(action, v.now) {
		return true
	}
	status, msg := http.StatusOK, ""
	if r.Method == http.MethodPost {
		status, msg = http.StatusForbidden, "Enter a fresh code first: the last one was more than 5 minutes ago."
	}
	p.render(w, v, status, "stepup", "Confirm it is you", stepUpView{Next: action}, "", msg)
	return false
}

// downloadPage asks for a fresh code, then offers the download.
func (p *Portal) downloadPage(w http.ResponseWriter, r *http.Request, v *visit) {
	if !p.steppedUp(w, r, v, "download") {
		return
	}
	p.render(w, v, http.StatusOK, "download", "Download your data", nil, "", "")
}

// download sends the access export as JSON (after a step-up code).
func (p *Portal) download(w http.ResponseWriter, r *http.Request, v *visit) {
	if !p.steppedUp(w, r, v, "download") {
		return
	}
	id, err := p.lookup(r.Context(), v)
	var rep *privacy.Report
	var req store.PrivacyRequest
	if err == nil {
		// The download is an access request, recorded with its deadline and
		// completed once the export is written.
		req, err = p.submit(r.Context(), v, privacy.Submission{Type: privacy.RequestAccess})
	}
	if err == nil {
		rep, err = privacy.Export(r.Context(), p.o.Store, v.ws, id, v.now, p.exportOptions(v.ws)...)
	}
	if errors.Is(err, store.ErrNotFound) {
		p.render(w, v, http.StatusNotFound, "download", "Download your data", nil, "", "We hold nothing about this email, so there is nothing to download.")
		return
	}
	if err != nil {
		p.storeFailed(w, v, "export your data", err)
		return
	}
	p.saveSession(w, v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="kith-export-%s-%d-%s.json"`, v.ws, rep.Profile.KithID, v.now.Format("20060102T150405Z")))
	if err := rep.WriteJSON(w); err != nil {
		// The body is partly written: cut the connection so the download
		// fails instead of looking complete.
		p.o.Logger.Error("portal: write the export", "workspace", v.ws, "err", err)
		panic(http.ErrAbortHandler)
	}
	if _, err := p.o.Requests.Accessed(r.Context(), req); err != nil {
		p.o.Logger.Error("portal: complete the access request", "workspace", v.ws, "request", req.ID, "err", err)
	}
}

// deletePage asks for a fresh code, then for confirmation.
func (p *Portal) deletePage(w http.ResponseWriter, r *http.Request, v *visit) {
	if !p.steppedUp(w, r, v, "delete") {
		return
	}
	p.render(w, v, http.StatusOK, "delete", "Delete your data", nil, "", "")
}

// deleteData submits an erasure request (after a step-up code and a
// confirmation), ends the session and shows the request's status page.
func (p *Portal) deleteData(w http.ResponseWriter, r *http.Request, v *visit) {
	if !p.steppedUp(w, r, v, "delete") {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		p.render(w, v, http.StatusBadRequest, "delete", "Delete your data", nil, "", "Tick the box to confirm that you want all your data deleted.")
		return
	}
	if _, err := p.lookup(r.Context(), v); errors.Is(err, store.ErrNotFound) {
		p.render(w, v, http.StatusNotFound, "delete", "Delete your data", nil, "", "We hold nothing about this email, so there is nothing to delete.")
		return
	} else if err != nil {
		p.storeFailed(w, v, "find your data", err)
		return
	}
	req, err := p.submit(r.Context(), v, privacy.Submission{Type: privacy.RequestErasure})
	if err != nil {
		p.storeFailed(w, v, "submit your request", err)
		return
	}
	p.endSession(v)
	p.redirect(w, r, v, p.requestPath(v.ws, req.ID))
}

// requestKey is the capability in a request status link: whoever holds the
// link (the person, after their session ended) may see the status.
func (p *Portal) requestKey(ws, id string) string {
	return fmt.Sprintf("%x", mac(p.keys.link, ws, id)[:16])
}

// requestView is the status page's data.
type requestView struct {
	Request store.PrivacyRequest
	Steps   []requestStep
	Link    string
}

// requestStep is one step of a request's progress.
type requestStep struct {
	Name          string
	Done, Current bool
}

// requestStatus shows a request's progress: received → in progress →
// completed (or failed), with the deadline.
func (p *Portal) requestStatus(w http.ResponseWriter, r *http.Request, v *visit) {
	id := r.PathValue("id")
	if len(id) > 100 || r.URL.Query().Get("k") != p.requestKey(v.ws, id) {
		p.render(w, v, http.StatusNotFound, "error", "Not found", nil, "", "There is no request at this address. Check the link.")
		return
	}
	req, err := p.o.Requests.Get(r.Context(), v.ws, id)
	if errors.Is(err, store.ErrNotFound) {
		p.render(w, v, http.StatusNotFound, "error", "Not found", nil, "", "There is no request at this address. Check the link.")
		return
	}
	if err != nil {
		p.storeFailed(w, v, "read your request", err)
		return
	}
	steps := []requestStep{{Name: "Received"}, {Name: "In progress"}, {Name: "Completed"}}
	cur := 2 // completed or failed
	switch req.Status {
	case store.RequestReceived:
		cur = 0
	case store.RequestInProgress:
		cur = 1
	case store.RequestFailed:
		steps[2].Name = "Failed"
	}
	for i := range steps {
		steps[i].Done, steps[i].Current = i < cur || req.Status == store.RequestCompleted, i == cur
	}
	p.render(w, v, http.StatusOK, "request", "Your request", requestView{Request: req, Steps: steps, Link: r.URL.RequestURI()}, "", "")
}
