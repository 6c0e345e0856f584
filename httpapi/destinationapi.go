package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/secret"
	"github.com/kithcdp/kith/store"
)

// DeliveryEngine is what the admin API asks of the delivery engine of a
// node that delivers (delivery.Engine).
type DeliveryEngine interface {
	// LastError returns the last send error of a destination running on
	// this node ("" if none, or if another node delivers to it).
	LastError(ws, name string) string
}

// destinationRoutes registers the admin API of destinations
// (docs/activate.md):
//
//	GET              /v1/workspaces/{workspace}/destinations
//	GET|PUT|DELETE   /v1/workspaces/{workspace}/destinations/{name}
//	POST             /v1/workspaces/{workspace}/destinations/{name}/{pause|resume}
//	GET              /v1/workspaces/{workspace}/destinations/{name}/dead-letters?next=&limit=
//	POST             /v1/workspaces/{workspace}/destinations/{name}/dead-letters/replay
//	GET|POST         /v1/workspaces/{workspace}/destinations/{name}/replays
//	GET              /v1/spaces/{workspace}/collections/{collection}/profiles/{id}/deliveries
//
// Changes need the admin scope; reading needs debug (or admin); a
// profile's deliveries need profiles:read. Secrets are never answered:
// each shows as "…" and a fingerprint (package secret). The delivery
// engine picks definition changes up by polling the store
// (delivery.Options.DefinitionsPoll), and pauses, resumes and replays from
// the destination's cursor row.
func (s *Server) destinationRoutes() {
	base := "/v1/workspaces/{workspace}/destinations"
	one := base + "/{name}"
	s.handle("GET "+base, "destinations", s.scoped("debug", s.handleDestinations))
	s.handle("GET "+one, "destinations", s.scoped("debug", s.destination(s.handleDestination)))
	s.handle("PUT "+one, "destinations", s.scoped("admin", s.handlePutDestination))
	s.handle("DELETE "+one, "destinations", s.scoped("admin", s.handleDeleteDefinition(store.DefinitionDestination, nil)))
	s.handle("POST "+one+"/pause", "destination_status", s.scoped("admin", s.destination(s.handleDestinationStatus(store.DestinationPaused))))
	s.handle("POST "+one+"/resume", "destination_status", s.scoped("admin", s.destination(s.handleDestinationStatus(store.DestinationActive))))
	s.handle("GET "+one+"/dead-letters", "dead_letters", s.scoped("debug", s.destination(s.handleDeadLetters)))
	s.handle("POST "+one+"/dead-letters/replay", "dead_letters", s.scoped("admin", s.destination(s.handleReplayDead)))
	s.handle("POST "+one+"/replays", "destination_replays", s.scoped("admin", s.destination(s.handleAddReplay)))
	s.handle("GET "+one+"/replays", "destination_replays", s.scoped("debug", s.destination(s.handleReplays)))
	s.handle("GET /v1/spaces/{workspace}/collections/{collection}/profiles/{id}/deliveries", "profile_deliveries",
		s.scoped("profiles:read", s.profile(s.handleProfileDeliveries)))
}

// Limits of the destination API.
const (
	maxReplayRange = 90 * 24 * time.Hour // the longest range replay
	maxReplayIDs   = 1000                // dead letters flagged by id in one request
	countCap       = 1000                // dead letters and outbox entries counted for a view
)

// destinationView is how the admin API shows a destination: its
// definition (secrets redacted) and where its delivery stands.
type destinationView struct {
	Name       string          `json:"name"`
	Definition json.RawMessage `json:"definition"`
	Origin     string          `json:"origin"`
	Version    int64           `json:"version"`
	UpdatedAt  time.Time       `json:"updated_at"`
	// Status is active, paused or disabled; Reason says why it is not
	// active.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Started is false until a node first took the destination's lease:
	// it then starts at the feeds' ends.
	Started bool          `json:"started"`
	Cursors *cursorsView  `json:"cursors,omitempty"`
	Lag     *lagView      `json:"lag,omitempty"`
	Lease   *leaseView    `json:"lease,omitempty"`
	Dead    deadCountView `json:"dead_letters"`
	// Replays is the number of range replays not done yet.
	Replays int `json:"replays"`
	// LastError is the last send error of the engine on the node that
	// answers, when it delivers to the destination.
	LastError string `json:"last_error,omitempty"`
}

type cursorsView struct {
	Log    int64 `json:"log"`    // every log event up to this position is done
	Outbox int64 `json:"outbox"` // every outbox entry up to this id is done
}

// lagView is how far a destination is behind: log events after its log
// cursor (when it receives events), and outbox entries after its outbox
// cursor (when it receives trait or audience changes; counted up to
// countCap, OutboxAtLeast then true).
type lagView struct {
	Log           *int64 `json:"log,omitempty"`
	Outbox        *int64 `json:"outbox,omitempty"`
	OutboxAtLeast bool   `json:"outbox_at_least,omitempty"`
}

type leaseView struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// deadCountView counts a destination's dead letters (up to countCap:
// AtLeast is then true) and those flagged for replay.
type deadCountView struct {
	Count   int  `json:"count"`
	AtLeast bool `json:"at_least,omitempty"`
	Flagged int  `json:"flagged"`
}

// destinationRequest is a request about one defined destination.
type destinationRequest struct {
	ws   string
	def  store.Definition
	dest delivery.Definition // as stored (secrets sealed)
}

// destination resolves the path's destination (404 destination_not_found
// when the workspace defines none of that name).
func (s *Server) destination(h func(http.ResponseWriter, *http.Request, *destinationRequest)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.pathDefinition(w, r, store.DefinitionDestination)
		if !ok {
			return
		}
		dr := &destinationRequest{ws: r.PathValue("workspace"), def: *d}
		_ = json.Unmarshal(d.Body, &dr.dest) // stored by this API or the config loader, both checked
		h(w, r, dr)
	}
}

// viewDestination builds a destination's view; cur is its cursor row (nil
// when none was made yet) and head the log's head.
func (s *Server) viewDestination(ctx context.Context, d store.Definition, cur *store.DeliveryCursor, head int64) (destinationView, error) {
	v := destinationView{
		Name: d.Name, Definition: s.reg.RedactDestination(d.Body), Origin: d.Origin,
		Version: d.Version, UpdatedAt: d.UpdatedAt, Status: store.DestinationActive,
	}
	var def delivery.Definition
	_ = json.Unmarshal(d.Body, &def)
	if cur != nil {
		v.Status, v.Reason = cur.Status, cur.Reason
		v.Started = cur.Epoch > 0
		if cur.Owner != "" && !cur.Until.IsZero() {
			v.Lease = &leaseView{Owner: cur.Owner, Until: cur.Until}
		}
	}
	if v.Started {
		v.Cursors = &cursorsView{Log: cur.Log, Outbox: cur.Outbox}
		v.Lag = &lagView{}
		if def.Events != nil {
			n := max(head-cur.Log, 0)
			v.Lag.Log = &n
		}
		if len(def.Traits) > 0 || len(def.Audiences) > 0 {
			page, err := s.st.ReadOutbox(ctx, d.Workspace, cur.Outbox, countCap)
			if err != nil {
				return v, err
			}
			n := int64(len(page))
			v.Lag.Outbox, v.Lag.OutboxAtLeast = &n, n == countCap
		}
	}
	dead, err := s.st.DeadLetters(ctx, d.Workspace, d.Name, 0, countCap)
	if err != nil {
		return v, err
	}
	v.Dead.Count, v.Dead.AtLeast = len(dead), len(dead) == countCap
	for _, l := range dead {
		if l.Replay {
			v.Dead.Flagged++
		}
	}
	rs, err := s.st.Replays(ctx, d.Workspace, d.Name)
	if err != nil {
		return v, err
	}
	v.Replays = len(rs)
	if s.delivery != nil {
		v.LastError = s.delivery.LastError(d.Workspace, d.Name)
	}
	return v, nil
}

// cursorOf returns a destination's cursor row and the log's head.
func (s *Server) cursorOf(ctx context.Context, ws, name string) (*store.DeliveryCursor, int64, error) {
	curs, err := s.st.Deliveries(ctx, ws)
	if err != nil {
		return nil, 0, err
	}
	head, err := s.st.Head(ctx, ws)
	if err != nil {
		return nil, 0, err
	}
	if i := slices.IndexFunc(curs, func(c store.DeliveryCursor) bool { return c.Destination == name }); i >= 0 {
		return &curs[i], head, nil
	}
	return nil, head, nil
}

// consentView is the workspace's consent setting, shown with the list so
// that an admin sees whether deliveries without consent go out.
type consentView struct {
	DeliverWithoutConsent bool   `json:"deliver_without_consent"`
	Meaning               string `json:"meaning"`
}

func (s *Server) consentOf(ws string) consentView {
	w, _ := s.reg.Workspace(ws)
	if w != nil && w.DeliverWithoutConsent {
		return consentView{true, "events and changes that carry no consent at all are delivered to destinations that need consent purposes (Segment's behaviour; opted into in the config file); a purpose denied by the event or the profile still stops delivery"}
	}
	return consentView{false, "a destination that needs consent purposes receives only what the event or the profile grants them; what carries no consent is not delivered (opt in with consent.deliver_without_consent in the config file)"}
}

func (s *Server) handleDestinations(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	pg, next, ok := s.definitionPage(w, r, store.DefinitionDestination)
	if !ok {
		return
	}
	curs, err := s.st.Deliveries(r.Context(), ws)
	if err != nil {
		s.storeError(w, "read delivery cursors", err)
		return
	}
	head, err := s.st.Head(r.Context(), ws)
	if err != nil {
		s.storeError(w, "read the log's head", err)
		return
	}
	data := make([]destinationView, 0, len(pg))
	for _, d := range pg {
		var cur *store.DeliveryCursor
		if i := slices.IndexFunc(curs, func(c store.DeliveryCursor) bool { return c.Destination == d.Name }); i >= 0 {
			cur = &curs[i]
		}
		v, err := s.viewDestination(r.Context(), d, cur, head)
		if err != nil {
			s.storeError(w, "read destinations", err)
			return
		}
		data = append(data, v)
	}
	writeJSON(w, http.StatusOK, struct {
		Data    []destinationView `json:"data"`
		Next    string            `json:"next,omitempty"`
		Consent consentView       `json:"consent"`
	}{data, next, s.consentOf(ws)})
}

// answerDestination answers a destination's view with status.
func (s *Server) answerDestination(w http.ResponseWriter, r *http.Request, status int, d store.Definition) {
	cur, head, err := s.cursorOf(r.Context(), d.Workspace, d.Name)
	if err != nil {
		s.storeError(w, "read the destination's cursor", err)
		return
	}
	v, err := s.viewDestination(r.Context(), d, cur, head)
	if err != nil {
		s.storeError(w, "read the destination", err)
		return
	}
	writeJSON(w, status, v)
}

func (s *Server) handleDestination(w http.ResponseWriter, r *http.Request, dr *destinationRequest) {
	s.answerDestination(w, r, http.StatusOK, dr.def)
}

// handlePutDestination creates or replaces a destination. The body is a
// delivery.Definition; a secret given as its redacted form ("…" and the
// fingerprint a GET showed) keeps the stored secret. The definition is
// checked with delivery.Parse and by making its sender once; its secrets
// are sealed before it is stored.
func (s *Server) handlePutDestination(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	body, ok := readDefinition(w, r, name)
	if !ok {
		return
	}
	s.putDefinition(w, r, store.DefinitionDestination, func(_ []store.Definition, old *store.Definition) (json.RawMessage, bool) {
		return s.sealDestination(w, ws, name, body, old)
	}, s.answerDestination)
}

// sealDestination checks a destination's definition and returns it with
// its secrets sealed, to be stored in place of old (nil when new). It
// answers the request itself when the definition is not valid.
func (s *Server) sealDestination(w http.ResponseWriter, ws, name string, body []byte, old *store.Definition) (json.RawMessage, bool) {
	badConfig := func(err error) {
		invalidDefinition(w, "the definition is not valid", []config.DefinitionProblem{{
			Kind: store.DefinitionDestination, Name: name, Field: "config", Code: "invalid_definition", Message: err.Error()}})
	}
	// Redacted secrets sent back stand for the stored ones.
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(body, &obj) // an object: readDefinition checked it
	if cfg, has := obj["config"]; has && !bytes.Equal(bytes.TrimSpace(cfg), []byte("null")) {
		var typ string
		_ = json.Unmarshal(obj["type"], &typ)
		var oldCfg json.RawMessage
		if old != nil {
			var od delivery.Definition
			if json.Unmarshal(old.Body, &od) == nil && od.Type == typ {
				oldCfg = od.Config
			}
		}
		plain, err := s.reg.Secrets().Resolve(secret.Scope(ws, name), typ, cfg, oldCfg)
		if err != nil {
			badConfig(err)
			return nil, false
		}
		obj["config"] = plain
		body, _ = json.Marshal(obj)
	}
	_, canonical, err := config.ParseDestination(body)
	if err != nil {
		invalidDefinition(w, "the definition is not valid", config.DestinationProblems(name, err))
		return nil, false
	}
	// The same definition and secrets put again change nothing.
	var sealed json.RawMessage
	if old != nil {
		sealed = s.reg.StoredIfSame(ws, canonical, old.Body)
	}
	if sealed == nil {
		if sealed, err = s.reg.SealDestination(ws, canonical); err != nil {
			badConfig(err)
			return nil, false
		}
	}
	return sealed, true
}

// handleDestinationStatus pauses a destination, or resumes it (which also
// ends a disabled state and clears its reason). Config destinations may
// be paused and resumed too: that is operation, not configuration.
func (s *Server) handleDestinationStatus(status string) func(http.ResponseWriter, *http.Request, *destinationRequest) {
	return func(w http.ResponseWriter, r *http.Request, dr *destinationRequest) {
		reason := ""
		if status == store.DestinationPaused {
			reason = "paused through the admin API"
			if who, ok := principal(r); ok {
				reason += " (token " + who + ")"
			}
		}
		if err := s.st.SetDeliveryStatus(r.Context(), dr.ws, dr.def.Name, status, reason); err != nil {
			s.storeError(w, "set the destination's status", err)
			return
		}
		s.answerDestination(w, r, http.StatusOK, dr.def)
	}
}

// deadLetterView is how the admin API shows a dead letter.
type deadLetterView struct {
	ID       int64           `json:"id"`
	Key      string          `json:"key"`
	Kind     string          `json:"kind"`
	Position int64           `json:"position"`
	KithID   int64           `json:"kith_id,omitempty"`
	Payload  json.RawMessage `json:"payload"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	FirstAt  time.Time       `json:"first_at"`
	LastAt   time.Time       `json:"last_at"`
	Replay   bool            `json:"replay"` // flagged to be sent again
}

func (s *Server) handleDeadLetters(w http.ResponseWriter, r *http.Request, dr *destinationRequest) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100, 1, 1000, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return
	}
	var after int64
	if c := q.Get("next"); c != "" {
		if after, err = strconv.ParseInt(c, 10, 64); err != nil || after < 0 {
			writeError(w, http.StatusBadRequest, "invalid_cursor", "next must be the next of an earlier page")
			return
		}
	}
	dead, err := s.st.DeadLetters(r.Context(), dr.ws, dr.def.Name, after, limit)
	if err != nil {
		s.storeError(w, "read dead letters", err)
		return
	}
	out := page[deadLetterView]{Data: make([]deadLetterView, 0, len(dead))}
	for _, l := range dead {
		out.Data = append(out.Data, deadLetterView{
			ID: l.ID, Key: l.Key, Kind: l.Kind, Position: l.Position, KithID: int64(l.Profile), Payload: l.Payload,
			Error: l.Error, Attempts: l.Attempts, FirstAt: l.FirstAt, LastAt: l.LastAt, Replay: l.Replay,
		})
	}
	if len(dead) == limit {
		out.Next = strconv.FormatInt(dead[len(dead)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// readSmallJSON decodes an optional JSON body of at most 64 KiB into v,
// unknown fields refused; an empty body leaves v as it is. It answers the
// request itself on a problem.
func readSmallJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is at most 64 KiB")
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		msg := "the body must be one JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, "invalid_json", msg)
		return false
	}
	return true
}

// handleReplayDead flags dead letters to be sent again: {"ids": [...]}, or
// {} (or no body) for all of the destination's. It answers {"flagged": n}.
func (s *Server) handleReplayDead(w http.ResponseWriter, r *http.Request, dr *destinationRequest) {
	var req struct {
		IDs []int64 `json:"ids"`
	}
	if !readSmallJSON(w, r, &req) {
		return
	}
	if len(req.IDs) > maxReplayIDs {
		writeError(w, http.StatusBadRequest, "too_many_ids", fmt.Sprintf("at most %d ids at once; send {} to replay all", maxReplayIDs))
		return
	}
	if req.IDs != nil && len(req.IDs) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_ids", "ids is empty: list dead letter ids, or send {} to replay all")
		return
	}
	for _, id := range req.IDs {
		if id < 1 {
			writeError(w, http.StatusBadRequest, "invalid_ids", "ids are positive whole numbers (the dead letters' id)")
			return
		}
	}
	n, err := s.st.MarkReplay(r.Context(), dr.ws, dr.def.Name, req.IDs)
	if err != nil {
		s.storeError(w, "flag dead letters", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"flagged": n})
}

// replayView is how the admin API shows a range replay.
type replayView struct {
	ID           int64     `json:"id"`
	Since        time.Time `json:"since"`
	Until        time.Time `json:"until"`
	Cursor       int64     `json:"cursor"`        // log position reached
	OutboxCursor int64     `json:"outbox_cursor"` // outbox id reached
	Done         bool      `json:"done"`
	CreatedAt    time.Time `json:"created_at"`
}

func viewReplay(r store.Replay) replayView {
	return replayView{ID: r.ID, Since: r.Since, Until: r.Until, Cursor: r.Cursor, OutboxCursor: r.OutboxCursor, Done: r.Done, CreatedAt: r.CreatedAt}
}

// handleAddReplay asks for the log events received, and outbox entries
// made, in [since, until) to be sent to the destination again.
func (s *Server) handleAddReplay(w http.ResponseWriter, r *http.Request, dr *destinationRequest) {
	var req struct {
		Since string `json:"since"`
		Until string `json:"until"`
	}
	if !readSmallJSON(w, r, &req) {
		return
	}
	since, err1 := time.Parse(time.RFC3339Nano, req.Since)
	until, err2 := time.Parse(time.RFC3339Nano, req.Until)
	switch {
	case req.Since == "" || req.Until == "":
		writeError(w, http.StatusBadRequest, "invalid_range", `give since and until, as RFC 3339 times: {"since":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z"}`)
		return
	case err1 != nil || err2 != nil:
		writeError(w, http.StatusBadRequest, "invalid_range", "since and until must be RFC 3339 times, e.g. 2026-01-01T00:00:00Z")
		return
	case !until.After(since):
		writeError(w, http.StatusBadRequest, "invalid_range", "until must be after since")
		return
	case until.Sub(since) > maxReplayRange:
		writeError(w, http.StatusBadRequest, "invalid_range", "a replay covers at most 90 days; ask for several")
		return
	}
	rep, err := s.st.AddReplay(r.Context(), store.Replay{Workspace: dr.ws, Destination: dr.def.Name, Since: since.UTC(), Until: until.UTC()})
	if err != nil {
		s.storeError(w, "record the replay", err)
		return
	}
	writeJSON(w, http.StatusCreated, viewReplay(rep))
}

// handleReplays lists the destination's range replays that are not done.
func (s *Server) handleReplays(w http.ResponseWriter, r *http.Request, dr *destinationRequest) {
	rs, err := s.st.Replays(r.Context(), dr.ws, dr.def.Name)
	if err != nil {
		s.storeError(w, "read replays", err)
		return
	}
	out := page[replayView]{Data: make([]replayView, 0, len(rs))}
	for _, rep := range rs {
		out.Data = append(out.Data, viewReplay(rep))
	}
	writeJSON(w, http.StatusOK, out)
}

// ledgerView is what one destination received about a profile on one
// day (UTC).
type ledgerView struct {
	Destination string    `json:"destination"`
	Day         string    `json:"day"` // YYYY-MM-DD
	Deliveries  int64     `json:"deliveries"`
	Kinds       []string  `json:"kinds"`
	Last        time.Time `json:"last"`
}

// handleProfileDeliveries answers the delivery ledger of a profile: which
// destination received what kinds of its data, on which days.
func (s *Server) handleProfileDeliveries(w http.ResponseWriter, r *http.Request, pr *profileRequest) {
	entries, err := s.st.Ledger(r.Context(), pr.ws, pr.profile.ID)
	if err != nil {
		s.storeError(w, "read the delivery ledger", err)
		return
	}
	key := func(e store.LedgerEntry) string { return e.Destination + "/" + e.Day.UTC().Format(time.DateOnly) }
	pg, next, ok := pageAfter(entries, pr.next, pr.limit, key)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "next must be the cursor.next of an earlier page")
		return
	}
	data := make([]ledgerView, 0, len(pg))
	for _, e := range pg {
		kinds := e.Kinds
		if kinds == nil {
			kinds = []string{}
		}
		data = append(data, ledgerView{Destination: e.Destination, Day: e.Day.UTC().Format(time.DateOnly), Deliveries: e.Deliveries, Kinds: kinds, Last: e.Last})
	}
	writeJSON(w, http.StatusOK, map[string]any{"kith_id": pr.profile.ID, "data": data, "cursor": pageCursor(r, next)})
}
