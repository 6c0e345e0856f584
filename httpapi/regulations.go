package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// Data-subject requests (docs/privacy-requests.md), in two dialects:
//
//	POST /v1/workspaces/{workspace}/regulations           Segment's: {"regulationType","subjectType","subjectIds"}
//	GET  /v1/workspaces/{workspace}/regulations[/{id}]
//	POST /v1/workspaces/{workspace}/privacy/requests      Kith's: {"type","identifier","law",...}
//	GET  /v1/workspaces/{workspace}/privacy/requests[/{id}]
//	GET  /v1/workspaces/{workspace}/privacy/requests/{id}/export?format=json|csv   (an access request's download)
//
// Tokens need the privacy scope (or admin). Identifier values travel in
// bodies only, never in paths, so the audit log and access logs do not
// hold them; records name the person by keyed digests.
func (s *Server) regulationRoutes() {
	if s.requests == nil {
		s.requests = privacy.NewRequests(privacy.RequestOptions{Store: s.st, Hash: s.reg.Hash, Rules: s.identityRules,
			Now: s.now, Logger: s.log})
	}
	priv := func(h http.HandlerFunc) http.HandlerFunc { return s.scoped(config.ScopePrivacy, h) }
	s.handle("POST /v1/workspaces/{workspace}/regulations", "regulations", priv(s.handleRegulate))
	s.handle("GET /v1/workspaces/{workspace}/regulations", "regulations", priv(s.handleRegulations))
	s.handle("GET /v1/workspaces/{workspace}/regulations/{id}", "regulations", priv(s.handleRegulation))
	s.handle("POST /v1/workspaces/{workspace}/privacy/requests", "data_subject_requests", priv(s.handleRequestSubmit))
	s.handle("GET /v1/workspaces/{workspace}/privacy/requests", "data_subject_requests", priv(s.handleRequestList))
	s.handle("GET /v1/workspaces/{workspace}/privacy/requests/{id}", "data_subject_requests", priv(s.handleRequestGet))
	// A privacy_ route: its audit entry names the person, by digest (the
	// handler sets the path's id to the identifier the request names).
	s.handle("GET /v1/workspaces/{workspace}/privacy/requests/{id}/export", "privacy_request_export", priv(s.handleRequestExport))
}

// identityRules returns a workspace's identity rules (nil: the defaults).
func (s *Server) identityRules(ws string) (*identity.Compiled, error) {
	w, ok := s.reg.Workspace(ws)
	if !ok {
		return nil, fmt.Errorf("no workspace %q", ws)
	}
	return w.Identity, nil
}

// decodeBody reads a JSON body of at most 64 KiB into v, refusing unknown
// fields; it has answered the request when it returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is over 64 KiB")
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_json", "send "+shape)
		return false
	}
	return true
}

// submit submits a request and answers its errors; ok is false if it
// has answered.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, sub privacy.Submission) (store.PrivacyRequest, bool) {
	sub.Workspace, sub.Via = r.PathValue("workspace"), privacy.ViaAPI
	sub.Actor, _ = principal(r)
	req, err := s.requests.Submit(r.Context(), sub)
	var bad *privacy.InputError
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, bad.Code, bad.Message)
		return req, false
	case err != nil:
		s.storeError(w, "carry out the request", err)
		return req, false
	}
	if req.Regulation != "" { // it may have changed the suppression list: apply it on this node at once
		s.applySuppressions(r.Context(), sub.Workspace)
	}
	return req, true
}

// getRequest reads (and advances) the request named in the path; ok is
// false if it has answered.
func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) (store.PrivacyRequest, bool) {
	req, err := s.requests.Get(r.Context(), r.PathValue("workspace"), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "request_not_found", "no request "+r.PathValue("id")+" in this workspace")
		return req, false
	}
	if err != nil {
		s.storeError(w, "read the request", err)
		return req, false
	}
	return req, true
}

// listRequests reads a page of the workspace's requests (query: status,
// limit, and the cursor in the parameter named cursor); ok is false if it
// has answered.
func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, status, limitParam, cursorParam string) ([]store.PrivacyRequest, string, bool) {
	q := r.URL.Query()
	limit, err := intParam(q.Get(limitParam), 100, 1, 1000, limitParam)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return nil, "", false
	}
	after, ok := positionCursor(w, q.Get(cursorParam))
	if !ok {
		return nil, "", false
	}
	switch status {
	case "", store.RequestReceived, store.RequestInProgress, store.RequestCompleted, store.RequestFailed:
	default:
		writeError(w, http.StatusBadRequest, "invalid_status", "status: received, in_progress, completed or failed")
		return nil, "", false
	}
	rs, err := s.requests.List(r.Context(), store.RequestQuery{Workspace: r.PathValue("workspace"), Status: status,
		After: after, Limit: limit + 1})
	if err != nil {
		s.storeError(w, "list requests", err)
		return nil, "", false
	}
	rs, next := trimPage(rs, limit, func(r store.PrivacyRequest) int64 { return r.Seq })
	return rs, next, true
}

// Segment's regulations.

// segmentSubjects maps Segment's subject types to identifier types:
// USER_ID is Segment's; ANONYMOUS_ID and EMAIL are Kith's extensions.
var segmentSubjects = map[string]string{"USER_ID": identity.UserID, "ANONYMOUS_ID": identity.AnonymousID, "EMAIL": identity.Email}

type regulateBody struct {
	RegulationType string   `json:"regulationType"`
	SubjectType    string   `json:"subjectType"`
	SubjectIDs     []string `json:"subjectIds"`
}

func (s *Server) handleRegulate(w http.ResponseWriter, r *http.Request) {
	var b regulateBody
	if !decodeBody(w, r, &b, `{"regulationType":"SUPPRESS_WITH_DELETE","subjectType":"USER_ID","subjectIds":["…"]}`) {
		return
	}
	typ, ok := segmentSubjects[b.SubjectType]
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_subject_type", fmt.Sprintf("subjectType %q: use USER_ID, ANONYMOUS_ID or EMAIL", b.SubjectType))
		return
	}
	if b.RegulationType == "" {
		writeError(w, http.StatusBadRequest, "invalid_regulation", "regulationType is required")
		return
	}
	sub := privacy.Submission{Regulation: b.RegulationType}
	for _, v := range b.SubjectIDs {
		sub.Identifiers = append(sub.Identifiers, store.Identifier{Type: typ, Value: v})
	}
	req, ok := s.submit(w, r, sub)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]string{"regulateId": req.ID}})
}

// regulationView is a request as Segment's API shows a regulation.
type regulationView struct {
	ID                string              `json:"id"`
	WorkspaceID       string              `json:"workspaceId"`
	RegulationType    string              `json:"regulationType,omitempty"`
	OverallStatus     string              `json:"overallStatus"`
	CreatedAt         time.Time           `json:"createdAt"`
	FinishedAt        *time.Time          `json:"finishedAt,omitempty"`
	DestinationStatus []destinationStatus `json:"destinationStatus"`
}

type destinationStatus struct {
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	ErrString  string     `json:"errString,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// Segment's statuses of a regulation and of its deletion at a destination.
var (
	segmentStatus = map[string]string{store.RequestReceived: "INITIALIZED", store.RequestInProgress: "RUNNING",
		store.RequestCompleted: "FINISHED", store.RequestFailed: "FAILED"}
	segmentDeletion = map[string]string{store.DeletionPending: "RUNNING", store.DeletionSent: "FINISHED",
		store.DeletionFailed: "FAILED", store.DeletionUnsupported: "NOT_SUPPORTED"}
)

func newRegulationView(r store.PrivacyRequest) regulationView {
	v := regulationView{ID: r.ID, WorkspaceID: r.Workspace, RegulationType: r.Regulation, OverallStatus: segmentStatus[r.Status],
		CreatedAt: r.ReceivedAt, FinishedAt: timeOrNil(r.CompletedAt), DestinationStatus: []destinationStatus{}}
	for _, d := range r.Destinations {
		ds := destinationStatus{Name: d.Destination, Status: segmentDeletion[d.Status], ErrString: d.Detail}
		if d.Status != store.DeletionPending {
			ds.FinishedAt = timeOrNil(d.At)
		}
		v.DestinationStatus = append(v.DestinationStatus, ds)
	}
	return v
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) handleRegulation(w http.ResponseWriter, r *http.Request) {
	req, ok := s.getRequest(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"regulation": newRegulationView(req)}})
}

// handleRegulations pages through the workspace's regulations (the
// requests that are one of Segment's regulation types), Segment's way:
// ?pagination.count=&pagination.cursor=.
func (s *Server) handleRegulations(w http.ResponseWriter, r *http.Request) {
	rs, next, ok := s.listRequests(w, r, "", "pagination.count", "pagination.cursor")
	if !ok {
		return
	}
	views := []regulationView{}
	for _, req := range rs {
		if req.Regulation != "" {
			views = append(views, newRegulationView(req))
		}
	}
	pg := map[string]any{"current": r.URL.Query().Get("pagination.cursor")}
	if next != "" {
		pg["next"] = next
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"regulations": views, "pagination": pg}})
}

// Kith's data-subject requests.

type requestBody struct {
	Type       string                     `json:"type"`
	Regulation string                     `json:"regulation"`
	Identifier string                     `json:"identifier"`
	Law        string                     `json:"law"`
	Traits     map[string]json.RawMessage `json:"traits"`
	Scope      string                     `json:"scope"`
	Consent    map[string]bool            `json:"consent"`
	Reason     string                     `json:"reason"`
}

// requestView is a request as Kith's API shows it.
type requestView struct {
	ID           string                      `json:"id"`
	Workspace    string                      `json:"workspace"`
	Type         string                      `json:"type"`
	Regulation   string                      `json:"regulation,omitempty"`
	Law          string                      `json:"law"`
	Status       string                      `json:"status"`
	Subjects     []store.RequestSubject      `json:"subjects"`
	ReceivedAt   time.Time                   `json:"received_at"`
	Deadline     time.Time                   `json:"deadline"`
	CompletedAt  *time.Time                  `json:"completed_at,omitempty"`
	Via          string                      `json:"via"`
	Actor        string                      `json:"actor"`
	Position     int64                       `json:"position,omitempty"`
	Destinations []store.DestinationDeletion `json:"destinations"`
	Details      json.RawMessage             `json:"details,omitempty"`
	Error        string                      `json:"error,omitempty"`
}

func newRequestView(r store.PrivacyRequest) requestView {
	return requestView{ID: r.ID, Workspace: r.Workspace, Type: r.Type, Regulation: r.Regulation, Law: r.Law, Status: r.Status,
		Subjects: r.Subjects, ReceivedAt: r.ReceivedAt, Deadline: r.Deadline, CompletedAt: timeOrNil(r.CompletedAt),
		Via: r.Via, Actor: r.Actor, Position: r.Position, Destinations: r.Destinations, Details: r.Details, Error: r.Error}
}

func (s *Server) handleRequestSubmit(w http.ResponseWriter, r *http.Request) {
	var b requestBody
	if !decodeBody(w, r, &b, `{"type":"erasure","identifier":"type:value","law":"gdpr"}`) {
		return
	}
	typ, value, found := strings.Cut(b.Identifier, ":")
	if !found || typ == "" || value == "" {
		writeError(w, http.StatusBadRequest, "invalid_identifier", `identifier: "type:value", e.g. "email:ada@example.com"`)
		return
	}
	req, ok := s.submit(w, r, privacy.Submission{Type: b.Type, Regulation: b.Regulation, Law: b.Law,
		Identifiers: []store.Identifier{{Type: typ, Value: value}}, Traits: b.Traits, Scope: b.Scope, Consent: b.Consent, Reason: b.Reason})
	if !ok {
		return
	}
	writeJSON(w, http.StatusCreated, newRequestView(req))
}

func (s *Server) handleRequestGet(w http.ResponseWriter, r *http.Request) {
	if req, ok := s.getRequest(w, r); ok {
		writeJSON(w, http.StatusOK, newRequestView(req))
	}
}

// handleRequestList pages through the workspace's requests:
// ?status=&limit=&next=.
func (s *Server) handleRequestList(w http.ResponseWriter, r *http.Request) {
	rs, next, ok := s.listRequests(w, r, r.URL.Query().Get("status"), "limit", "next")
	if !ok {
		return
	}
	views := make([]requestView, len(rs))
	for i, req := range rs {
		views[i] = newRequestView(req)
	}
	writeJSON(w, http.StatusOK, page0(views, next))
}

// handleRequestExport answers an access request: the person's data, as
// the access export (privacyapi.go) sends it, after which the request is
// completed.
func (s *Server) handleRequestExport(w http.ResponseWriter, r *http.Request) {
	req, id, err := s.requests.AccessIdentifier(r.Context(), r.PathValue("workspace"), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "request_not_found", "no request "+r.PathValue("id")+" in this workspace")
		return
	case errors.Is(err, privacy.ErrNotAccess):
		writeError(w, http.StatusConflict, "not_downloadable", fmt.Sprintf("request %s is a %s request, %s: only an access request in progress has a download", req.ID, req.Type, req.Status))
		return
	case err != nil:
		s.storeError(w, "read the request", err)
		return
	}
	r.SetPathValue("id", id.String())
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.handlePrivacyExport(sw, r)
	if sw.status != http.StatusOK {
		return
	}
	if _, err := s.requests.Accessed(r.Context(), req); err != nil {
		s.log.Error("privacy request: record the download", "request", req.ID, "err", err)
	}
}
