package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// The consent API (docs/consent.md):
//
//	GET /v1/workspaces/{workspace}/privacy/purposes
//	GET /v1/workspaces/{workspace}/privacy/profiles/{id}/consent?history_before=&history_limit=
//	PUT /v1/workspaces/{workspace}/privacy/profiles/{id}/consent  {"purposes": {"analytics": false}}
//
// The first lists the workspace's purposes and the personal terms; the
// second where each purpose stands for a person and every change of their
// consent; the third records a change as a privacy control event
// (privacy.ActionConsent), folded into the profile at its place in the
// log. Tokens need the privacy scope (or admin); a token of another
// workspace gets 404, as for the access export.

// Limits of the consent API.
const (
	consentBodyLimit    = 64 << 10
	consentHistoryLimit = 100  // changes per page by default
	consentHistoryMax   = 1000 // at most
)

func (s *Server) consentRoutes() {
	s.handle("GET /v1/workspaces/{workspace}/privacy/purposes", "privacy_purposes",
		s.scoped(config.ScopePrivacy, s.handlePurposes))
	s.handle("GET /v1/workspaces/{workspace}/privacy/profiles/{id}/consent", "privacy_consent",
		s.privacyScoped(s.handleGetConsent))
	s.handle("PUT /v1/workspaces/{workspace}/privacy/profiles/{id}/consent", "privacy_consent",
		s.privacyScoped(s.handlePutConsent))
}

// termView is a personal term as the API shows it: which purposes it
// denies in this workspace.
type termView struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Denies      []string `json:"denies"`
}

func (s *Server) handlePurposes(w http.ResponseWriter, r *http.Request) {
	cat, requires := s.consentModel(r.PathValue("workspace"))
	purposes := cat.Purposes() // a deep copy: taken once
	terms := make([]termView, len(consent.Terms))
	for i, t := range consent.Terms {
		terms[i] = termView{Name: t.Name, Description: t.Description, Denies: []string{}}
		for _, p := range purposes {
			if t.Covers(p) {
				terms[i].Denies = append(terms[i].Denies, p.Name)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"purposes": purposes, "terms": terms, "store_requires": nonNil(requires)})
}

// personConsentView is a person's consent as the API shows it.
type personConsentView struct {
	KithID          int64 `json:"kith_id"`
	RequestedKithID int64 `json:"requested_kith_id,omitempty"`
	// Purposes: each purpose's status (granted, denied, not_recorded —
	// denied by default), whether it may be used, and what decided.
	Purposes []consent.PurposeState `json:"purposes"`
	// ConsentMode are the Google Consent Mode v2 signals that follow.
	ConsentMode map[string]string `json:"consent_mode"`
	GPC         bool              `json:"gpc"`
	TCString    string            `json:"tc_string,omitempty"`
	// GivenAt is when the categoryPreferences and TC string held were
	// said (the latest event, or control event, that said any).
	GivenAt    *time.Time `json:"given_at,omitempty"`
	Terms      []string   `json:"terms"`
	Restricted []string   `json:"restricted"`
	Objected   []string   `json:"objected"`
	// History is every change, newest first, a page at a time;
	// HistoryNext is the next page's path ("" on the last page).
	History     []privacy.ConsentChange `json:"history"`
	HistoryNext string                  `json:"history_next"`
}

func (s *Server) handleGetConsent(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	q := r.URL.Query()
	before, limit := int64(0), consentHistoryLimit
	if v := q.Get("history_before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "invalid_history_before", "history_before is a log position: a positive whole number")
			return
		}
		before = n
	}
	if v := q.Get("history_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > consentHistoryMax {
			writeError(w, http.StatusBadRequest, "invalid_history_limit", fmt.Sprintf("history_limit is a whole number from 1 to %d", consentHistoryMax))
			return
		}
		limit = n
	}
	prof, asked, ok := s.consentProfile(w, r)
	if !ok {
		return
	}
	vals, err := s.st.ComputedValues(r.Context(), ws, prof.ID)
	if err != nil {
		s.storeError(w, "read the profile's consent", err)
		return
	}
	var stmt consent.Statement
	for _, v := range vals {
		if v.Name == privacy.ConsentValue {
			// Written by the compute engine: a value it cannot read is
			// reported as no consent (denied by default) rather than 500.
			if stmt, err = consent.ValueStatement(v.Value); err != nil {
				s.log.Error("unreadable consent value", "workspace", ws, "profile", prof.ID, "err", err)
			}
		}
	}
	cat, _ := s.consentModel(ws)
	v := personConsentView{KithID: int64(prof.ID), GPC: stmt.GPC, TCString: stmt.TCString,
		Terms: nonNil(stmt.Terms), Restricted: nonNil(stmt.Restricted), Objected: nonNil(stmt.Objected), History: []privacy.ConsentChange{}}
	if asked != prof.ID {
		v.RequestedKithID = int64(asked)
	}
	if !stmt.Timestamp.IsZero() {
		at := stmt.Timestamp.UTC()
		v.GivenAt = &at
	}
	v.Purposes, v.ConsentMode = cat.State(cat.Resolve(stmt))
	more, err := privacy.ConsentHistory(r.Context(), s.st, ws, prof.ID, before, func(c privacy.ConsentChange) bool {
		if len(v.History) == limit {
			return false
		}
		v.History = append(v.History, c)
		return true
	})
	if err != nil {
		s.storeError(w, "read the consent history", err)
		return
	}
	if more {
		next := r.URL.Query()
		next.Set("history_before", strconv.FormatInt(v.History[len(v.History)-1].Position, 10))
		next.Set("history_limit", strconv.Itoa(limit))
		v.HistoryNext = r.URL.Path + "?" + next.Encode()
	}
	w.Header().Set("Cache-Control", "no-store") // personal data
	writeJSON(w, http.StatusOK, v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// consentRequest is the body of PUT …/consent.
type consentRequest struct {
	Purposes map[string]bool `json:"purposes"`
}

func (s *Server) handlePutConsent(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	var req consentRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, consentBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body exceeds %d bytes", consentBodyLimit))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_body", `the body must be one JSON object: {"purposes": {"<purpose>": true|false}}`)
		return
	}
	if len(req.Purposes) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_consent", "purposes: name at least one purpose and whether it is granted")
		return
	}
	cat, _ := s.consentModel(ws)
	set := make(map[string]bool, len(req.Purposes))
	for name, granted := range req.Purposes {
		p, ok := cat.Lookup(name)
		switch {
		case !ok:
			writeError(w, http.StatusBadRequest, "unknown_purpose", fmt.Sprintf("purpose %q is not one of the workspace's (GET /v1/workspaces/%s/privacy/purposes)", name, ws))
			return
		case p.Necessary:
			writeError(w, http.StatusBadRequest, "invalid_consent", fmt.Sprintf("purpose %q is strictly necessary: it needs no consent and cannot be refused", name))
			return
		}
		if prev, dup := set[p.Name]; dup && prev != granted {
			writeError(w, http.StatusBadRequest, "invalid_consent", fmt.Sprintf("purpose %q is both granted and denied (under two of its names)", p.Name))
			return
		}
		set[p.Name] = granted
	}
	prof, _, ok := s.consentProfile(w, r)
	if !ok {
		return
	}
	id, err := s.commandIdentifier(r, ws, prof.ID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			notFoundPerson(w, r.PathValue("id"))
			return
		}
		s.storeError(w, "read the profile's identifiers", err)
		return
	}
	actor, _ := principal(r)
	cmd := privacy.Command{Action: privacy.ActionConsent, Identifier: id, Consent: set, Actor: "token:" + actor, Via: "api"}
	ev, err := cmd.Event(ws, s.now())
	if err != nil {
		s.storeError(w, "record the consent", err) // the command was checked above: a bug
		return
	}
	res, err := s.gc.Append(r.Context(), &store.Batch{Events: []store.Event{ev}}, s.dedupWindow(ws))
	if err != nil {
		s.storeError(w, "record the consent", err)
		return
	}
	// Accepted: durable in the log, applied to the profile when the
	// processor folds it.
	writeJSON(w, http.StatusAccepted, map[string]any{"kith_id": prof.ID, "purposes": set, "position": res[0].Position})
}

// consentProfile resolves the {id} of a privacy path to the profile that
// holds it now (following merges), answering 400 or 404 itself when it
// cannot. asked is the id the path named.
func (s *Server) consentProfile(w http.ResponseWriter, r *http.Request) (prof store.Profile, asked store.ProfileID, ok bool) {
	if asked, ok = s.person(w, r); !ok {
		return store.Profile{}, 0, false
	}
	prof, err := privacy.CurrentProfile(r.Context(), s.st, r.PathValue("workspace"), asked)
	if err != nil {
		s.personError(w, r, err)
		return store.Profile{}, 0, false
	}
	return prof, asked, true
}

// commandIdentifier is the identifier a control event names profile p by
// (commands are resolved when folded): the one the path named, if it is
// not a kith id, else the profile's user id, email or anonymous id, in
// that order of preference.
func (s *Server) commandIdentifier(r *http.Request, ws string, p store.ProfileID) (store.Identifier, error) {
	if id, err := s.parseIdentifier(ws, r.PathValue("id")); err == nil && id.Type != kithIDType {
		return id, nil
	}
	held, err := s.st.Identifiers(r.Context(), ws, p)
	if err != nil {
		return store.Identifier{}, err
	}
	for _, typ := range []string{identity.UserID, identity.Email, identity.AnonymousID} {
		for _, h := range held {
			if h.Type == typ {
				return h.Identifier, nil
			}
		}
	}
	if len(held) > 0 {
		return held[0].Identifier, nil
	}
	return store.Identifier{}, store.ErrNotFound
}
