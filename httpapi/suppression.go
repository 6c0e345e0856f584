package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// The suppression list (docs/privacy.md): identifiers whose events are
// dropped at ingestion — answered 200 as if stored, stored nowhere — until
// they are unsuppressed. The store holds keyed digests only:
// HMAC-SHA-256(server secret, "type:value") of the normalized identifier.
//
//	POST   /v1/workspaces/{workspace}/privacy/suppressions  {"identifier":"email:ada@example.com","reason":"…"}
//	DELETE /v1/workspaces/{workspace}/privacy/suppressions  {"identifier":"email:ada@example.com"}
//
// Each change is also appended to the log as a privacy control event
// (privacy.ActionSuppress, ActionUnsuppress) naming the digest, so the log
// records when the list changed and by whom.
//
// Each node keeps each workspace's digests in memory, loaded on first use
// and reloaded every suppressRefresh so that changes made through other
// nodes arrive; a change made through this node applies at once.

// suppressRefresh is how old a workspace's in-memory set may get before
// the next request reloads it (in the background).
const suppressRefresh = 5 * time.Second

type suppressor struct {
	st      store.Store
	reg     *tenant.Registry
	onError func(ws string, err error)
	dropped *prometheus.CounterVec
	sets    sync.Map // workspace → *suppressSet
}

type suppressSet struct {
	load    sync.Mutex // serializes loads: the last one started installs last
	digests atomic.Pointer[map[string]struct{}]
	loaded  atomic.Int64 // unix nanos of the last load's start
	busy    atomic.Bool  // a background reload is running
}

func newSuppressor(st store.Store, reg *tenant.Registry, promReg *prometheus.Registry, onError func(string, error)) *suppressor {
	s := &suppressor{st: st, reg: reg, onError: onError,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_events_suppressed_total",
			Help: "Events dropped at ingestion because an identifier they carry is on the suppression list.",
		}, []string{"workspace"}),
	}
	promReg.MustRegister(s.dropped)
	return s
}

// reload reads ws's list from the store and installs it.
func (p *suppressor) reload(ctx context.Context, ws string, set *suppressSet) error {
	set.load.Lock()
	defer set.load.Unlock()
	start := time.Now()
	m := map[string]struct{}{}
	if err := p.st.ScanSuppressed(ctx, ws, func(e store.Suppression) error {
		m[string(e.Digest)] = struct{}{}
		return nil
	}); err != nil {
		return err
	}
	set.digests.Store(&m)
	set.loaded.Store(start.UnixNano())
	return nil
}

// current returns ws's digests: loaded synchronously on first use, and
// reloaded in the background once older than suppressRefresh.
func (p *suppressor) current(ctx context.Context, ws string) (map[string]struct{}, error) {
	v, ok := p.sets.Load(ws)
	if !ok {
		v, _ = p.sets.LoadOrStore(ws, &suppressSet{})
	}
	set := v.(*suppressSet)
	m := set.digests.Load()
	if m == nil {
		if err := p.reload(ctx, ws, set); err != nil {
			return nil, err
		}
		return *set.digests.Load(), nil
	}
	if time.Now().UnixNano()-set.loaded.Load() > int64(suppressRefresh) && set.busy.CompareAndSwap(false, true) {
		go func() {
			defer set.busy.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.reload(ctx, ws, set); err != nil {
				p.onError(ws, err) // the previous set stays in use
			}
		}()
	}
	return *m, nil
}

// digest is the list's key of a normalized identifier.
func (p *suppressor) digest(typ, value string) string {
	return string(privacy.Digest(p.reg.Hash, store.Identifier{Type: typ, Value: value}))
}

// filter removes from b the events (and quarantined entries) of ws that
// carry a suppressed identifier and returns how many events (quarantined
// entries not counted) it removed. An empty
// list costs one map lookup and no digest.
func (p *suppressor) filter(ctx context.Context, ws string, b *store.Batch) (int, error) {
	set, err := p.current(ctx, ws)
	if err != nil || len(set) == 0 {
		return 0, err
	}
	var rules *identity.Compiled
	if w, ok := p.reg.Workspace(ws); ok {
		rules = w.Identity
	}
	hit := func(typ, value string) bool {
		if value == "" {
			return false
		}
		if rules != nil {
			id, ok := rules.Normalize(store.Identifier{Type: typ, Value: value})
			if !ok {
				return false
			}
			value = id.Value
		}
		_, found := set[p.digest(typ, value)]
		return found
	}
	suppressed := func(userID, anonymousID string, raw json.RawMessage, identify bool) bool {
		if hit(identity.UserID, userID) || hit(identity.AnonymousID, anonymousID) {
			return true
		}
		// The raw JSON holds more only for an identify call (traits.email)
		// or a quarantined entry (no ids of its own): skip decoding the rest.
		if raw == nil || (!identify && (userID != "" || anonymousID != "")) {
			return false
		}
		var f struct {
			Type        string `json:"type"`
			UserID      any    `json:"userId"`
			AnonymousID any    `json:"anonymousId"`
			Traits      struct {
				Email any `json:"email"`
			} `json:"traits"`
		}
		if json.Unmarshal(raw, &f) != nil {
			return false
		}
		str := func(v any) string { s, _ := v.(string); return s }
		if userID == "" && anonymousID == "" && (hit(identity.UserID, str(f.UserID)) || hit(identity.AnonymousID, str(f.AnonymousID))) {
			return true // a quarantined entry: its ids are only in the raw JSON
		}
		return (identify || f.Type == "identify") && hit(identity.Email, str(f.Traits.Email))
	}
	n := 0
	kept := b.Events[:0]
	for _, e := range b.Events {
		if suppressed(e.UserID, e.AnonymousID, e.Raw, e.Type == "identify") {
			n++
			continue
		}
		kept = append(kept, e)
	}
	b.Events = kept
	events := n
	keptQ := b.Quarantine[:0]
	for _, q := range b.Quarantine {
		if suppressed("", "", q.Raw, false) {
			n++
			continue
		}
		keptQ = append(keptQ, q)
	}
	b.Quarantine = keptQ
	if n > 0 {
		p.dropped.WithLabelValues(ws).Add(float64(n))
	}
	return events, nil
}

func (s *Server) suppressionRoutes() {
	s.handle("POST /v1/workspaces/{workspace}/privacy/suppressions", "privacy_suppressions",
		s.scoped("privacy", s.handleSuppress))
	s.handle("DELETE /v1/workspaces/{workspace}/privacy/suppressions", "privacy_suppressions",
		s.scoped("privacy", s.handleUnsuppress))
}

type suppressionRequest struct {
	Identifier string `json:"identifier"`
	Reason     string `json:"reason"`
}

// suppressionInput reads the body and returns the identifier, normalized;
// it has answered the request when ok is false. The value is never
// logged or echoed.
func (s *Server) suppressionInput(w http.ResponseWriter, r *http.Request) (req suppressionRequest, id store.Identifier, ok bool) {
	if !decodeBody(w, r, &req, `{"identifier":"type:value","reason":"…"}`) {
		return req, id, false
	}
	typ, value, found := strings.Cut(req.Identifier, ":")
	if !found || !privacy.Suppressible(typ) || value == "" {
		writeError(w, http.StatusBadRequest, "invalid_identifier", `identifier: "type:value" with type user_id, anonymous_id or email`)
		return req, id, false
	}
	id = store.Identifier{Type: typ, Value: value}
	if wsc, exists := s.reg.Workspace(r.PathValue("workspace")); exists && wsc.Identity != nil {
		n, valid := wsc.Identity.Normalize(id)
		if !valid {
			writeError(w, http.StatusBadRequest, "invalid_identifier", "the value is not a valid "+typ+" under the workspace's identity rules")
			return req, id, false
		}
		id = n
	}
	return req, id, true
}

type suppressionView struct {
	Digest  string `json:"digest"`
	Type    string `json:"type"`
	Removed *int64 `json:"removed,omitempty"`
}

func (s *Server) handleSuppress(w http.ResponseWriter, r *http.Request) {
	req, id, ok := s.suppressionInput(w, r)
	if !ok {
		return
	}
	if len(req.Reason) > 200 {
		writeError(w, http.StatusBadRequest, "invalid_reason", "reason: at most 200 bytes, and no personal data")
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = "regulation " + privacy.RegulationSuppressOnly
	}
	ws := r.PathValue("workspace")
	actor, _ := principal(r)
	digest, err := s.requests.Suppress(r.Context(), ws, id, reason, actor)
	if err != nil {
		s.storeError(w, "store the suppression", err)
		return
	}
	s.applySuppressions(r.Context(), ws)
	writeJSON(w, http.StatusCreated, suppressionView{Digest: hex.EncodeToString(digest), Type: id.Type})
}

func (s *Server) handleUnsuppress(w http.ResponseWriter, r *http.Request) {
	_, id, ok := s.suppressionInput(w, r)
	if !ok {
		return
	}
	ws := r.PathValue("workspace")
	actor, _ := principal(r)
	n, err := s.requests.Unsuppress(r.Context(), ws, id, actor)
	if err != nil {
		s.storeError(w, "remove the suppression", err)
		return
	}
	s.applySuppressions(r.Context(), ws)
	writeJSON(w, http.StatusOK, suppressionView{Digest: hex.EncodeToString(privacy.Digest(s.reg.Hash, id)), Type: id.Type, Removed: &n})
}

// applySuppressions reloads ws's set so that this node applies a change
// at once; if the reload fails, the periodic one catches up.
func (s *Server) applySuppressions(ctx context.Context, ws string) {
	v, _ := s.suppress.sets.LoadOrStore(ws, &suppressSet{})
	if err := s.suppress.reload(ctx, ws, v.(*suppressSet)); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("reload the suppression list", "workspace", ws, "err", err)
	}
}
