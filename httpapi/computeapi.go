package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/trait"
)

// ComputeProcessor is what the admin API asks of the processor of a node
// that folds the log (process.Processor): previews of audiences that are
// not saved, and the progress of backfills.
type ComputeProcessor interface {
	// Preview evaluates an audience definition over the workspace's
	// profiles; process.ErrNotLeading when this node does not fold it.
	Preview(ctx context.Context, ws string, def audience.Definition, sample int) (compute.PreviewResult, error)
	// Backfill reports a backfill of new counters running on this node.
	Backfill(ws string) (position, end int64, running bool)
}

// computeRoutes registers the admin API of computed traits and audiences
// (docs/compute.md):
//
//	GET|PUT|DELETE /v1/workspaces/{workspace}/computed-traits[/{name}]
//	GET|PUT|DELETE /v1/workspaces/{workspace}/audiences[/{name}]
//	POST /v1/workspaces/{workspace}/audiences/preview
//	GET  /v1/workspaces/{workspace}/audiences/{name}/{members|history|sizes|lift}
//	GET  /v1/workspaces/{workspace}/audiences/overlap?a=&b=
//	GET  /v1/workspaces/{workspace}/outbox?after=
//
// Definitions are written with the admin scope and read with debug (or
// admin); members and insights need profiles:read (or admin). The
// processor picks changed definitions up by polling the store
// (process.Options.DefinitionsPoll).
func (s *Server) computeRoutes() {
	ws := "/v1/workspaces/{workspace}/"
	for _, k := range []struct{ path, kind string }{{"computed-traits", store.DefinitionTrait}, {"audiences", store.DefinitionAudience}} {
		route := "compute_definitions"
		s.handle("GET "+ws+k.path, route, s.scoped("debug", s.handleDefinitions(k.kind)))
		s.handle("GET "+ws+k.path+"/{name}", route, s.scoped("debug", s.handleDefinition(k.kind)))
		s.handle("PUT "+ws+k.path+"/{name}", route, s.scoped("admin", s.handlePutDefinition(k.kind)))
		s.handle("DELETE "+ws+k.path+"/{name}", route, s.scoped("admin", s.handleDeleteDefinition(k.kind, checkSet)))
	}
	s.handle("POST "+ws+"audiences/preview", "audience_preview", s.scoped("profiles:read", s.handlePreview))
	s.handle("GET "+ws+"audiences/overlap", "audience_insights", s.scoped("profiles:read", s.handleOverlap))
	s.handle("GET "+ws+"audiences/{name}/members", "audience_members", s.scoped("profiles:read", s.audience(s.handleMembers)))
	s.handle("GET "+ws+"audiences/{name}/history", "audience_insights", s.scoped("profiles:read", s.audience(s.handleAudienceHistory)))
	s.handle("GET "+ws+"audiences/{name}/sizes", "audience_insights", s.scoped("profiles:read", s.audience(s.handleSizes)))
	s.handle("GET "+ws+"audiences/{name}/lift", "audience_insights", s.scoped("profiles:read", s.audience(s.handleLift)))
	s.handle("GET "+ws+"outbox", "outbox", s.scoped("debug", s.handleOutbox))
}

// definitionView is how the admin API shows a stored definition.
type definitionView struct {
	Name       string          `json:"name"`
	Definition json.RawMessage `json:"definition"`
	Origin     string          `json:"origin"`
	Version    int64           `json:"version"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Members    *int64          `json:"members,omitempty"` // audiences
	Backfill   *backfillView   `json:"backfill,omitempty"`
}

// backfillView is the progress of a backfill of the workspace's new
// counters on this node (only on a node that folds).
type backfillView struct {
	Running  bool  `json:"running"`
	Position int64 `json:"position"`
	End      int64 `json:"end"`
}

func (s *Server) viewDefinition(ctx context.Context, d store.Definition) (definitionView, error) {
	v := definitionView{Name: d.Name, Definition: d.Body, Origin: d.Origin, Version: d.Version, UpdatedAt: d.UpdatedAt}
	if d.Kind == store.DefinitionAudience {
		n, err := s.st.MemberCount(ctx, d.Workspace, d.Name)
		if err != nil {
			return v, err
		}
		v.Members = &n
	}
	if s.compute != nil {
		pos, end, running := s.compute.Backfill(d.Workspace)
		v.Backfill = &backfillView{Running: running, Position: pos, End: end}
	}
	return v, nil
}

func (s *Server) handleDefinitions(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, next, ok := s.definitionPage(w, r, kind)
		if !ok {
			return
		}
		data := make([]definitionView, 0, len(page))
		for _, d := range page {
			v, err := s.viewDefinition(r.Context(), d)
			if err != nil {
				s.storeError(w, "read definitions", err)
				return
			}
			data = append(data, v)
		}
		writeJSON(w, http.StatusOK, page0(data, next))
	}
}

// page0 is a page of a list API: {"data": [...], "next": "..."}.
func page0[T any](data []T, next string) page[T] { return page[T]{Data: data, Next: next} }

// trimPage cuts items, read with a limit of limit+1, to limit and returns
// the next page's cursor: the key of the last item kept when more follow,
// else "".
func trimPage[T any](items []T, limit int, key func(T) int64) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, strconv.FormatInt(key(items[limit-1]), 10)
}

func (s *Server) handleDefinition(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.pathDefinition(w, r, kind)
		if !ok {
			return
		}
		v, err := s.viewDefinition(r.Context(), *d)
		if err != nil {
			s.storeError(w, "read definitions", err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// parseDefinition parses a body as a definition of kind and returns it as
// stored (compact, canonical JSON).
func parseDefinition(kind string, body []byte) (json.RawMessage, error) {
	if kind == store.DefinitionTrait {
		d, err := trait.Parse(body)
		if err != nil {
			return nil, err
		}
		return json.Marshal(d)
	}
	d, err := audience.Parse(body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(d)
}

// checkSet compiles the workspace's definitions with change applied (a
// definition put, or, with body nil, deleted) and answers 400 with the
// problems when they do not compile.
func checkSet(w http.ResponseWriter, defs []store.Definition, change store.Definition) bool {
	set := slices.DeleteFunc(slices.Clone(defs), func(d store.Definition) bool {
		return d.Kind == change.Kind && d.Name == change.Name
	})
	if change.Body != nil {
		if other := slices.IndexFunc(set, func(d store.Definition) bool { return d.Name == change.Name }); other >= 0 {
			invalidDefinition(w, "the name is taken", []config.DefinitionProblem{{Kind: change.Kind, Name: change.Name, Field: "name", Code: "duplicate",
				Message: fmt.Sprintf("%q is already the name of a %s: computed traits and audiences share one namespace", change.Name, kindNames[set[other].Kind])}})
			return false
		}
		set = append(set, change)
	}
	if _, err := compute.Compile(set); err != nil {
		msg := fmt.Sprintf("the workspace's computed traits and audiences would not compile with this change: %d problem(s)", len(config.DefinitionProblems(err)))
		invalidDefinition(w, msg, config.DefinitionProblems(err))
		return false
	}
	return true
}

func (s *Server) handlePutDefinition(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ws, name := r.PathValue("workspace"), r.PathValue("name")
		body, ok := readDefinition(w, r, name)
		if !ok {
			return
		}
		canonical, err := parseDefinition(kind, body)
		if err != nil {
			invalidDefinition(w, "the definition is not valid", config.DefinitionProblems(err))
			return
		}
		s.putDefinition(w, r, kind, func(defs []store.Definition, _ *store.Definition) (json.RawMessage, bool) {
			return canonical, checkSet(w, defs, store.Definition{Workspace: ws, Kind: kind, Name: name, Body: canonical, Origin: "api"})
		}, s.answerDefinition)
	}
}

// answerDefinition answers a computed trait's or audience's view with
// status.
func (s *Server) answerDefinition(w http.ResponseWriter, r *http.Request, status int, d store.Definition) {
	v, err := s.viewDefinition(r.Context(), d)
	if err != nil {
		s.storeError(w, "read the definition", err)
		return
	}
	writeJSON(w, status, v)
}

// memberView is a member of an audience (or a profile of a preview's
// sample): its Kith id and its first user_id, if any.
type memberView struct {
	KithID int64      `json:"kith_id"`
	UserID string     `json:"user_id,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
}

// userID returns the first user_id a profile holds ("" if none).
func (s *Server) userID(ctx context.Context, ws string, p store.ProfileID) (string, error) {
	ids, err := s.st.Identifiers(ctx, ws, p)
	if err != nil {
		return "", err
	}
	for _, h := range ids {
		if h.Type == "user_id" {
			return h.Value, nil
		}
	}
	return "", nil
}

func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	sample, err := intParam(r.URL.Query().Get("sample"), 10, 0, 100, "sample")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_sample", err.Error())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDefinitionBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("a definition is at most %d bytes", maxDefinitionBytes))
		return
	}
	def, err := audience.Parse(body)
	if err != nil {
		invalidDefinition(w, "the definition is not valid", config.DefinitionProblems(err))
		return
	}
	if def.Name == "" {
		def.Name = "preview"
	}
	defs, err := s.st.Definitions(r.Context(), ws)
	if err != nil {
		s.storeError(w, "read definitions", err)
		return
	}
	canonical, _ := json.Marshal(def)
	if !checkSet(w, defs, store.Definition{Workspace: ws, Kind: store.DefinitionAudience, Name: def.Name, Body: canonical}) {
		return
	}
	if s.compute == nil {
		writeError(w, http.StatusServiceUnavailable, "not_leading", "folding is off on this node (kith serve --fold=false): send previews to a node that folds the log")
		return
	}
	start := time.Now()
	res, err := s.compute.Preview(r.Context(), ws, def, sample)
	switch {
	case errors.Is(err, process.ErrNotLeading):
		writeError(w, http.StatusServiceUnavailable, "not_leading", fmt.Sprintf("this node does not fold workspace %q now: another node holds its lease (or this one is starting); send the preview to that node or retry", ws))
		return
	case err != nil:
		var de *compute.DefinitionError
		if errors.As(err, &de) {
			invalidDefinition(w, "the definition is not valid", config.DefinitionProblems(err))
			return
		}
		if strings.Contains(err.Error(), "not stored yet") {
			// An audience it reads was saved a moment ago: the processor
			// loads it within its poll.
			writeError(w, http.StatusConflict, "definitions_loading", err.Error()+"; retry in a few seconds")
			return
		}
		s.storeError(w, "preview the audience", err)
		return
	}
	out := struct {
		Members   int64        `json:"members"`
		Evaluated int64        `json:"evaluated"`
		Sample    []memberView `json:"sample"`
		TookMS    int64        `json:"took_ms"`
	}{Members: res.Members, Evaluated: res.Evaluated, Sample: []memberView{}}
	for _, p := range res.Sample {
		uid, err := s.userID(r.Context(), ws, p)
		if err != nil {
			s.storeError(w, "read identifiers", err)
			return
		}
		out.Sample = append(out.Sample, memberView{KithID: int64(p), UserID: uid})
	}
	out.TookMS = time.Since(start).Milliseconds()
	writeJSON(w, http.StatusOK, out)
}

// audienceRequest is a request about a stored audience.
type audienceRequest struct {
	ws  string
	def store.Definition
}

// entity returns the profile kind of the audience's members.
func (a *audienceRequest) entity() string {
	var d struct{ Entity string }
	_ = json.Unmarshal(a.def.Body, &d)
	if d.Entity == store.KindAccount {
		return store.KindAccount
	}
	return store.KindUser
}

// audience resolves the path's audience among the stored definitions.
func (s *Server) audience(h func(http.ResponseWriter, *http.Request, *audienceRequest)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.pathDefinition(w, r, store.DefinitionAudience)
		if !ok {
			return
		}
		h(w, r, &audienceRequest{ws: r.PathValue("workspace"), def: *d})
	}
}

func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request, a *audienceRequest) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100, 1, 200, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return
	}
	after, ok := positionCursor(w, q.Get("next"))
	if !ok {
		return
	}
	ids, err := s.st.Members(r.Context(), a.ws, a.def.Name, store.ProfileID(after), limit+1)
	if err != nil {
		s.storeError(w, "read members", err)
		return
	}
	ids, next := trimPage(ids, limit, func(p store.ProfileID) int64 { return int64(p) })
	data := make([]memberView, 0, len(ids))
	for _, p := range ids {
		m := memberView{KithID: int64(p)}
		if m.UserID, err = s.userID(r.Context(), a.ws, p); err != nil {
			s.storeError(w, "read members", err)
			return
		}
		// The latest change of a member is the entry that made it one.
		hist, err := s.st.AudienceHistory(r.Context(), a.ws, a.def.Name, p, 0, 1)
		if err != nil {
			s.storeError(w, "read members", err)
			return
		}
		if len(hist) == 1 && hist[0].Entered {
			m.Since = &hist[0].At
		}
		data = append(data, m)
	}
	writeJSON(w, http.StatusOK, page0(data, next))
}

type audienceChangeView struct {
	Seq      int64     `json:"seq"`
	KithID   int64     `json:"kith_id"`
	Entered  bool      `json:"entered"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	Position int64     `json:"position"`
}

func (s *Server) handleAudienceHistory(w http.ResponseWriter, r *http.Request, a *audienceRequest) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100, 1, 500, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return
	}
	before, ok := positionCursor(w, q.Get("next"))
	if !ok {
		return
	}
	var p store.ProfileID
	if ref := q.Get("profile"); ref != "" {
		p, err = s.profileID(r.Context(), a.ws, ref)
		if err != nil {
			var bad *badRequest
			switch {
			case errors.As(err, &bad):
				writeError(w, http.StatusBadRequest, bad.code, bad.msg)
			case errors.Is(err, store.ErrNotFound):
				writeError(w, http.StatusNotFound, "profile_not_found", "no profile holds "+ref)
			default:
				s.storeError(w, "look up the profile", err)
			}
			return
		}
	}
	hist, err := s.st.AudienceHistory(r.Context(), a.ws, a.def.Name, p, before, limit+1)
	if err != nil {
		s.storeError(w, "read audience history", err)
		return
	}
	hist, next := trimPage(hist, limit, func(h store.AudienceChangeEntry) int64 { return h.Seq })
	data := make([]audienceChangeView, len(hist))
	for i, h := range hist {
		data[i] = audienceChangeView{Seq: h.Seq, KithID: int64(h.Profile), Entered: h.Entered, Reason: h.Reason, At: h.At, Position: h.Position}
	}
	writeJSON(w, http.StatusOK, page0(data, next))
}

func (s *Server) handleSizes(w http.ResponseWriter, r *http.Request, a *audienceRequest) {
	days, err := intParam(r.URL.Query().Get("days"), 30, 1, 366, "days")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_days", err.Error())
		return
	}
	sizes, err := s.st.AudienceSizes(r.Context(), a.ws, a.def.Name, days, s.now())
	if err != nil {
		s.storeError(w, "read audience sizes", err)
		return
	}
	type size struct {
		Day     string `json:"day"`
		Members int64  `json:"members"`
	}
	data := make([]size, len(sizes))
	for i, sz := range sizes {
		data[i] = size{Day: sz.Day.UTC().Format(time.DateOnly), Members: sz.Members}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func (s *Server) handleOverlap(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	q := r.URL.Query()
	a, b := q.Get("a"), q.Get("b")
	if a == "" || b == "" {
		writeError(w, http.StatusBadRequest, "invalid_query", "give two audiences: ?a=NAME&b=NAME")
		return
	}
	defs, err := s.st.Definitions(r.Context(), ws)
	if err != nil {
		s.storeError(w, "read definitions", err)
		return
	}
	for _, name := range []string{a, b} {
		if findDefinition(defs, store.DefinitionAudience, name) == nil {
			notFound(w, store.DefinitionAudience, name)
			return
		}
	}
	na, err := s.st.MemberCount(r.Context(), ws, a)
	if err != nil {
		s.storeError(w, "count members", err)
		return
	}
	nb, err := s.st.MemberCount(r.Context(), ws, b)
	if err != nil {
		s.storeError(w, "count members", err)
		return
	}
	both, err := s.st.AudienceOverlap(r.Context(), ws, a, b)
	if err != nil {
		s.storeError(w, "count the overlap", err)
		return
	}
	jaccard := 0.0
	if union := na + nb - both; union > 0 {
		jaccard = float64(both) / float64(union)
	}
	writeJSON(w, http.StatusOK, map[string]any{"a": na, "b": nb, "both": both, "a_only": na - both, "b_only": nb - both, "jaccard": jaccard})
}

func (s *Server) handleLift(w http.ResponseWriter, r *http.Request, a *audienceRequest) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 20, 1, 1000, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return
	}
	minMembers, err := intParam(q.Get("min_members"), 5, 1, 1_000_000_000, "min_members")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_min_members", err.Error())
		return
	}
	members, err := s.st.MemberCount(r.Context(), a.ws, a.def.Name)
	if err != nil {
		s.storeError(w, "count members", err)
		return
	}
	profiles, err := s.st.ProfileCount(r.Context(), a.ws, a.entity())
	if err != nil {
		s.storeError(w, "count profiles", err)
		return
	}
	lifts, err := s.st.TraitLift(r.Context(), a.ws, a.def.Name, a.entity(), minMembers, limit)
	if err != nil {
		s.storeError(w, "compute trait lift", err)
		return
	}
	type liftView struct {
		Key             string          `json:"key"`
		Value           json.RawMessage `json:"value"`
		MembersWith     int64           `json:"members_with"`
		ShareInAudience float64         `json:"share_in_audience"`
		ShareOverall    float64         `json:"share_overall"`
		Lift            float64         `json:"lift"`
	}
	data := make([]liftView, 0, len(lifts))
	for _, l := range lifts {
		v := liftView{Key: l.Key, Value: l.Value, MembersWith: l.Members}
		if members > 0 {
			v.ShareInAudience = float64(l.Members) / float64(members)
		}
		if profiles > 0 {
			v.ShareOverall = float64(l.Overall) / float64(profiles)
		}
		if v.ShareOverall > 0 {
			v.Lift = v.ShareInAudience / v.ShareOverall
		}
		data = append(data, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": members, "profiles": profiles, "data": data})
}

type outboxView struct {
	ID       int64           `json:"id"`
	Kind     string          `json:"kind"`
	KithID   int64           `json:"kith_id"`
	Position int64           `json:"position"`
	Key      string          `json:"key"`
	Payload  json.RawMessage `json:"payload"`
	At       time.Time       `json:"at"`
}

// handleOutbox pages through the workspace's outbox by id: what
// destinations will be sent (audience entered and exited events).
func (s *Server) handleOutbox(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100, 1, 500, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return
	}
	var after int64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			writeError(w, http.StatusBadRequest, "invalid_cursor", "after must be the id of an outbox entry (or the next of an earlier page)")
			return
		}
	}
	entries, err := s.st.ReadOutbox(r.Context(), r.PathValue("workspace"), after, limit+1)
	if err != nil {
		s.storeError(w, "read the outbox", err)
		return
	}
	entries, next := trimPage(entries, limit, func(e store.OutboxEntry) int64 { return e.ID })
	data := make([]outboxView, len(entries))
	for i, e := range entries {
		data[i] = outboxView{ID: e.ID, Kind: e.Kind, KithID: int64(e.Profile), Position: e.Position, Key: e.Key, Payload: e.Payload, At: e.At}
	}
	writeJSON(w, http.StatusOK, page0(data, next))
}
