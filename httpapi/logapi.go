package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/store"
)

// scoped wraps h so that it runs only for a token of the path's workspace
// holding scope. The token comes as "Authorization: Bearer <token>" or as
// the HTTP Basic user name (as in Segment's Profile API).
func (s *Server) scoped(scope string, h http.HandlerFunc) http.HandlerFunc {
	return s.scopedOr(scope, h, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "workspace_not_found", "no such workspace for this token")
	})
}

// scopedOr is scoped, with elsewhere answering a token of another
// workspace, or of a workspace that does not exist (a 404 that must be the
// same answer, byte for byte, for both: a token learns nothing about other
// workspaces).
func (s *Server) scopedOr(scope string, h, elsewhere http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := ""
		if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
			token = strings.TrimSpace(strings.TrimPrefix(auth, "Bearer "))
		} else if user, _, ok := r.BasicAuth(); ok {
			token = user
		}
		if token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kith"`)
			writeError(w, http.StatusUnauthorized, "missing_token", "send an access token as a Bearer token or as the HTTP Basic user name")
			return
		}
		p, ok := s.reg.Authenticate(token)
		if !ok {
			writeError(w, http.StatusUnauthorized, "invalid_token", "the access token is not valid")
			return
		}
		ws := r.PathValue("workspace")
		if _, exists := s.reg.Workspace(ws); !exists || p.Workspace != ws {
			elsewhere(w, r)
			return
		}
		if !p.Can(ws, scope) {
			writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("this token lacks the %q scope on workspace %q", scope, ws))
			return
		}
		setAuditActor(r, p.Name) // audit.go
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p.Name)))
	}
}

type principalKey struct{}

// principal returns the name of the token a scoped handler runs for.
func principal(r *http.Request) (string, bool) {
	name, ok := r.Context().Value(principalKey{}).(string)
	return name, ok
}

// eventView is how the log API shows a stored event.
type eventView struct {
	Position    int64           `json:"position"`
	MessageID   string          `json:"messageId"`
	Source      string          `json:"source"`
	Type        string          `json:"type"`
	Name        string          `json:"event,omitempty"`
	UserID      string          `json:"userId,omitempty"`
	AnonymousID string          `json:"anonymousId,omitempty"`
	Timestamp   time.Time       `json:"timestamp"`
	ReceivedAt  time.Time       `json:"receivedAt"`
	Flags       []string        `json:"flags,omitempty"`
	Format      int             `json:"format"`
	Signals     store.Signals   `json:"signals"`
	Raw         json.RawMessage `json:"raw"`
}

func viewEvent(e store.Event) eventView {
	v := eventView{
		Position: e.Position, MessageID: e.MessageID, Source: e.Source, Type: e.Type, Name: e.Name,
		UserID: e.UserID, AnonymousID: e.AnonymousID, Timestamp: e.Timestamp, ReceivedAt: e.ReceivedAt,
		Format: e.Format, Signals: e.Signals, Raw: e.Raw,
	}
	if e.Flags&store.FlagTimestampClamped != 0 {
		v.Flags = append(v.Flags, "timestamp_clamped")
	}
	if e.Flags&store.FlagMessageIDGenerated != 0 {
		v.Flags = append(v.Flags, "message_id_generated")
	}
	return v
}

// page is the shape of every list answer: data plus an opaque cursor for the
// next page (absent on the last page).
type page[T any] struct {
	Data []T    `json:"data"`
	Next string `json:"next,omitempty"`
}

// logQuery reads the log filters from the query string.
func logQuery(r *http.Request) (store.LogQuery, error) {
	q := r.URL.Query()
	lq := store.LogQuery{
		Workspace:   r.PathValue("workspace"),
		Source:      q.Get("source"),
		Type:        q.Get("type"),
		Name:        q.Get("event"),
		UserID:      q.Get("user_id"),
		AnonymousID: q.Get("anonymous_id"),
		Descending:  q.Get("order") == "desc",
	}
	if o := q.Get("order"); o != "" && o != "asc" && o != "desc" {
		return lq, fmt.Errorf("order must be asc or desc, not %q", o)
	}
	var err error
	if lq.Limit, err = intParam(q.Get("limit"), 100, 1, 1000, "limit"); err != nil {
		return lq, err
	}
	if c := q.Get("next"); c != "" {
		pos, err := strconv.ParseInt(c, 10, 64)
		if err != nil || pos < 0 {
			return lq, fmt.Errorf("next is not a cursor returned by this API")
		}
		if lq.Descending {
			lq.Before = pos
		} else {
			lq.After = pos
		}
	}
	for name, dst := range map[string]*time.Time{"since": &lq.Since, "until": &lq.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return lq, fmt.Errorf("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
			}
			*dst = t
		}
	}
	return lq, nil
}

func intParam(v string, def, lo, hi int, name string) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// handleEvents pages through a workspace's log:
// GET /v1/workspaces/{workspace}/events?source=&type=&event=&user_id=&anonymous_id=&since=&until=&order=&limit=&next=
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q, err := logQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	events, err := s.st.Read(r.Context(), q)
	if err != nil {
		s.storeError(w, "read the log", err)
		return
	}
	out := page[eventView]{Data: make([]eventView, 0, len(events))}
	for _, e := range events {
		out.Data = append(out.Data, viewEvent(e))
	}
	if len(events) == q.Limit {
		out.Next = strconv.FormatInt(events[len(events)-1].Position, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleStream is the live debugger: Server-Sent Events of the workspace's
// log as events are committed, with the same filters as handleEvents. It
// starts at the head (or after ?next= / Last-Event-ID) and sends one
// `event: kith.event` per stored event, its position as the SSE id.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	q, err := logQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	if q.Descending {
		writeError(w, http.StatusBadRequest, "invalid_query", "a stream is always in log order")
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if q.After, err = strconv.ParseInt(id, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_query", "Last-Event-ID is not a position")
			return
		}
	} else if r.URL.Query().Get("next") == "" {
		if q.After, err = s.st.Head(r.Context(), q.Workspace); err != nil {
			s.storeError(w, "read the log head", err)
			return
		}
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": kith live log\n\n")
	_ = rc.Flush()

	ctx := r.Context()
	// Other nodes' commits are not announced in-process: poll as a fallback.
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		wake := s.gc.Committed()
		if err := s.streamBatch(ctx, w, &q); err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("live stream stopped", "workspace", q.Workspace, "err", err)
			}
			return
		}
		_ = rc.Flush()
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			_ = rc.Flush()
		}
	}
}

// streamBatch writes every event after q.After and advances it.
func (s *Server) streamBatch(ctx context.Context, w http.ResponseWriter, q *store.LogQuery) error {
	for {
		events, err := s.st.Read(ctx, *q)
		if err != nil {
			return err
		}
		for _, e := range events {
			b, err := json.Marshal(viewEvent(e))
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: kith.event\ndata: %s\n\n", e.Position, b); err != nil {
				return err
			}
			q.After = e.Position
		}
		if len(events) < q.Limit {
			return nil
		}
	}
}

// quarantineView is how the API shows a quarantined event.
type quarantineView struct {
	ID         int64           `json:"id"`
	Source     string          `json:"source"`
	MessageID  string          `json:"messageId,omitempty"`
	ReceivedAt time.Time       `json:"receivedAt"`
	Code       string          `json:"code"`
	Reason     string          `json:"reason"`
	Signals    store.Signals   `json:"signals"`
	Raw        json.RawMessage `json:"raw"`
}

func viewQuarantined(q store.Quarantined) quarantineView {
	return quarantineView{ID: q.ID, Source: q.Source, MessageID: q.MessageID, ReceivedAt: q.ReceivedAt,
		Code: q.Code, Reason: q.Reason, Signals: q.Signals, Raw: q.Raw}
}

// handleQuarantineList: GET /v1/workspaces/{workspace}/quarantine?code=&limit=&next=
func (s *Server) handleQuarantineList(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	qq := store.QuarantineQuery{Workspace: r.PathValue("workspace"), Code: v.Get("code")}
	var err error
	if qq.Limit, err = intParam(v.Get("limit"), 100, 1, 1000, "limit"); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	if c := v.Get("next"); c != "" {
		if qq.After, err = strconv.ParseInt(c, 10, 64); err != nil || qq.After < 0 {
			writeError(w, http.StatusBadRequest, "invalid_query", "next is not a cursor returned by this API")
			return
		}
	}
	items, err := s.st.ListQuarantine(r.Context(), qq)
	if err != nil {
		s.storeError(w, "list the quarantine", err)
		return
	}
	out := page[quarantineView]{Data: make([]quarantineView, 0, len(items))}
	for _, q := range items {
		out.Data = append(out.Data, viewQuarantined(q))
	}
	if len(items) == qq.Limit {
		out.Next = strconv.FormatInt(items[len(items)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func quarantineID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "invalid_id", "the quarantine id must be a positive whole number")
		return 0, false
	}
	return id, true
}

func (s *Server) handleQuarantineGet(w http.ResponseWriter, r *http.Request) {
	id, ok := quarantineID(w, r)
	if !ok {
		return
	}
	q, err := s.st.GetQuarantined(r.Context(), r.PathValue("workspace"), id)
	if err != nil {
		s.storeError(w, "read the quarantine", err)
		return
	}
	writeJSON(w, http.StatusOK, viewQuarantined(q))
}

// handleQuarantineReplay validates a quarantined event again — as stored, or
// as corrected in the request body — and, if it now passes, appends it to the
// log and removes it from the quarantine in one transaction.
func (s *Server) handleQuarantineReplay(w http.ResponseWriter, r *http.Request) {
	id, ok := quarantineID(w, r)
	if !ok {
		return
	}
	ws := r.PathValue("workspace")
	q, err := s.st.GetQuarantined(r.Context(), ws, id)
	if err != nil {
		s.storeError(w, "read the quarantine", err)
		return
	}
	body, apiErr := s.readBody(r)
	if apiErr != nil {
		writeError(w, apiErr.Status, apiErr.Code, apiErr.Message)
		return
	}
	raw := []byte(q.Raw)
	if len(strings.TrimSpace(string(body))) > 0 {
		raw = body // a corrected event
	}
	call, ok := ingest.CallForPath(typeOf(raw))
	if !ok || call == ingest.CallBatch {
		writeError(w, http.StatusBadRequest, "unknown_type", "the event's type must be identify, track, page, screen, group or alias")
		return
	}
	out, err := ingest.Decode(ingest.Input{Call: call, Body: raw, ReceivedAt: q.ReceivedAt, Signals: q.Signals}, s.limits)
	if err != nil {
		var ie *ingest.Error
		if errors.As(err, &ie) {
			writeError(w, http.StatusUnprocessableEntity, ie.Code, "the event still fails validation: "+ie.Message)
			return
		}
		writeError(w, http.StatusUnprocessableEntity, "invalid_event", err.Error())
		return
	}
	for i := range out.Events {
		out.Events[i].Workspace, out.Events[i].Source = ws, q.Source
	}
	res, err := s.st.ReplayQuarantined(r.Context(), ws, id, &store.Batch{Events: out.Events}, s.dedupWindow(ws))
	if err != nil {
		s.storeError(w, "replay the quarantined event", err)
		return
	}
	resp := trackResponse{Success: true}
	for _, a := range res {
		if a.Duplicate {
			resp.Duplicates++
		} else {
			resp.Accepted++
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// typeOf reads the "type" member of a JSON object, or "" if there is none.
func typeOf(raw []byte) string {
	var v struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(raw, &v)
	return v.Type
}

func (s *Server) handleQuarantineDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := quarantineID(w, r)
	if !ok {
		return
	}
	if err := s.st.DeleteQuarantined(r.Context(), r.PathValue("workspace"), id); err != nil {
		s.storeError(w, "delete the quarantined event", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// storeError answers a store failure: 404 for ErrNotFound, else 503.
func (s *Server) storeError(w http.ResponseWriter, doing string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such item")
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error("store call failed", "doing", doing, "err", err)
	writeError(w, http.StatusServiceUnavailable, "store_unavailable", "could not "+doing+"; retry")
}
