package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// This file writes the audit log (store.AuditLog, docs/audit.md): one entry
// for every request a token makes that changes something, and one for every
// read of personal data.
//
//   - A write (any method but GET and HEAD) is audited synchronously, just
//     before its status line is sent: the client learns of the change only
//     after its entry is stored. If the entry cannot be stored the request
//     is still answered as its handler decided — the change is committed by
//     then and cannot be taken back, and answering an error for a change
//     that was made would invite a retry of it — and the failure is logged
//     at ERROR and counted in kith_audit_failures_total{kind="write"}.
//   - A read of personal data (the Profile API, the event log and the
//     quarantine, audience members and history, the outbox, dead letters,
//     identity decisions, and any route not listed in configReads) is
//     audited as "token.use" through a buffer flushed every 100 ms or 100
//     entries and on Close; a failed flush is logged and counted in
//     kith_audit_failures_total{kind="read"}.
//   - Reads of configuration (configReads), the audit log itself included,
//     are not audited, nor are requests a token was refused for (401, 403):
//     those never reach a handler with a known actor.
//
// Nothing in an entry is raw personal data: a path's {type}:{value}
// identifiers and its query values are replaced by keyed digests (HMAC with
// the server secret, via tenant.Registry.Hash), and bodies are not kept.

const (
	auditFlushEvery = 100 * time.Millisecond // the longest a read's entry waits in the buffer
	auditFlushSize  = 100                    // entries that make the buffer flush at once
	auditBufferMax  = 10_000                 // beyond this (the store is failing), reads' entries are dropped and counted
	auditWriteWait  = 5 * time.Second        // the longest a write waits for its entry
)

// configReads are the routes whose GETs read configuration, not personal
// data, and are not audited.
var configReads = map[string]bool{
	"compute_definitions": true,
	"destinations":        true,
	"destination_replays": true,
	"identity_rules":      true,
	"audit":               true,
}

// auditor stores the audit entries of a Server's requests.
type auditor struct {
	st       store.AuditLog
	reg      *tenant.Registry
	log      *slog.Logger
	now      func() time.Time
	failures *prometheus.CounterVec
	entries  prometheus.Counter

	mu     sync.Mutex
	buf    []store.AuditEntry
	closed bool

	wake    chan struct{} // the buffer got its first entry
	full    chan struct{} // the buffer holds auditFlushSize entries
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newAuditor(st store.AuditLog, reg *tenant.Registry, log *slog.Logger, now func() time.Time, promReg *prometheus.Registry) *auditor {
	a := &auditor{
		st: st, reg: reg, log: log, now: now,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_audit_failures_total",
			Help: "Audit entries that could not be stored, by kind (write: of a change, stored synchronously; read: of a read of personal data, buffered).",
		}, []string{"kind"}),
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kith_audit_entries_total",
			Help: "Audit entries stored.",
		}),
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1),
		closing: make(chan struct{}), done: make(chan struct{}),
	}
	promReg.MustRegister(a.failures, a.entries)
	go a.run()
	return a
}

// run flushes the buffer auditFlushEvery after its first entry, or as soon
// as it holds auditFlushSize, and a last time when the auditor closes.
func (a *auditor) run() {
	defer close(a.done)
	for {
		select {
		case <-a.wake:
		case <-a.closing:
			a.flush()
			return
		}
		t := time.NewTimer(auditFlushEvery)
		select {
		case <-t.C:
		case <-a.full:
		case <-a.closing:
		}
		t.Stop()
		a.flush()
	}
}

func (a *auditor) flush() {
	a.mu.Lock()
	es := a.buf
	a.buf = nil
	a.mu.Unlock()
	if len(es) == 0 || a.st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditWriteWait)
	defer cancel()
	if err := a.st.AppendAudit(ctx, es...); err != nil {
		a.failures.WithLabelValues("read").Add(float64(len(es)))
		a.log.Error("audit entries not stored", "kind", "read", "entries", len(es), "err", err)
		return
	}
	a.entries.Add(float64(len(es)))
}

// enqueue buffers a read's entry. After Close it stores it at once.
func (a *auditor) enqueue(e store.AuditEntry) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		a.write(context.Background(), e, "read")
		return
	}
	if len(a.buf) >= auditBufferMax {
		a.mu.Unlock()
		a.failures.WithLabelValues("read").Inc()
		a.log.Error("audit entry dropped: the buffer is full", "kind", "read", "action", e.Action, "actor", e.Actor)
		return
	}
	a.buf = append(a.buf, e)
	n := len(a.buf)
	a.mu.Unlock()
	signal := a.wake
	if n >= auditFlushSize {
		signal = a.full
	} else if n > 1 {
		return
	}
	select {
	case signal <- struct{}{}:
	default:
	}
}

// write stores one entry now.
func (a *auditor) write(ctx context.Context, e store.AuditEntry, kind string) {
	if a.st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteWait)
	defer cancel()
	if err := a.st.AppendAudit(ctx, e); err != nil {
		a.failures.WithLabelValues(kind).Inc()
		a.log.Error("audit entry not stored", "kind", kind, "workspace", e.Workspace, "actor", e.Actor,
			"action", e.Action, "target", e.Target, "status", e.Status, "err", err)
		return
	}
	a.entries.Inc()
}

// close flushes the buffer and stops the flusher; later entries are
// stored one by one.
func (a *auditor) close(ctx context.Context) error {
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		close(a.closing)
	})
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stores the audit entries still buffered (of reads of personal
// data; writes' entries are stored before they are answered). Call it
// after the HTTP server has shut down; requests served later are audited
// one by one.
func (s *Server) Close(ctx context.Context) error {
	return s.audit.close(ctx)
}

// auditSlot is where scoped notes the token a request runs for.
type auditSlot struct{ actor string }

type auditSlotKey struct{}

// setAuditActor tells the request's audit that it runs for the named
// token (scoped calls it once the token is checked).
func setAuditActor(r *http.Request, name string) {
	if slot, ok := r.Context().Value(auditSlotKey{}).(*auditSlot); ok {
		slot.actor = name
	}
}

// auditWriter records the request's audit entry when the handler first
// sends its status, before it goes out.
type auditWriter struct {
	http.ResponseWriter
	a     *auditor
	route string
	r     *http.Request
	slot  *auditSlot
	done  bool
}

// auditRequest prepares the audit of one request: the handler gets the
// returned writer and request; finish must run after the handler.
func (a *auditor) auditRequest(w http.ResponseWriter, r *http.Request, route string) (*auditWriter, *http.Request) {
	slot := &auditSlot{}
	r = r.WithContext(context.WithValue(r.Context(), auditSlotKey{}, slot))
	return &auditWriter{ResponseWriter: w, a: a, route: route, r: r, slot: slot}, r
}

func (w *auditWriter) WriteHeader(code int) {
	if code >= 200 {
		w.record(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	w.record(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush).
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish records the entry of a handler that sent nothing (status 200).
func (w *auditWriter) finish() { w.record(http.StatusOK) }

func (w *auditWriter) record(status int) {
	if w.done {
		return
	}
	w.done = true
	if w.slot.actor == "" {
		return // no token was checked: not audited
	}
	r := w.r
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if read && configReads[w.route] {
		return
	}
	e := store.AuditEntry{
		At: w.a.now(), Workspace: r.PathValue("workspace"), Actor: w.slot.actor,
		Target: w.a.target(w.route, r), Method: r.Method, Path: w.a.redactURL(r.URL), Status: status,
	}
	e.Details, _ = json.Marshal(struct {
		Route string `json:"route"`
	}{w.route})
	if read {
		e.Action = store.AuditActionTokenUse
		w.a.enqueue(e)
		return
	}
	e.Action = auditAction(w.route, r)
	w.a.write(r.Context(), e, "write")
}

// auditAction names what a write did: the route's subject and a verb.
func auditAction(route string, r *http.Request) string {
	verb := strings.ToLower(r.Method)
	switch route {
	case "compute_definitions":
		return "definition." + verb
	case "destinations":
		return "destination." + verb
	case "destination_status":
		return "destination." + path.Base(r.URL.Path) // pause, resume
	case "dead_letters":
		return "destination.dead_letters_replay"
	case "destination_replays":
		return "destination.replay"
	case "identity_command":
		return "identity." + word(r.PathValue("action"))
	case "identity_rules":
		return "identity_rules." + verb
	case "quarantine":
		if r.Method == http.MethodPost {
			return "quarantine.replay"
		}
		return "quarantine." + verb
	case "audience_preview":
		return "audience.preview"
	case "token_rotate":
		return "token.rotate"
	case "write_key_rotate":
		return "write_key.rotate"
	}
	return route + "." + verb
}

// word returns s if it is a short lower-case word (a verb from a path), or
// "invalid": an action name must not carry what a client made up.
func word(s string) string {
	if s == "" || len(s) > 32 {
		return "invalid"
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return "invalid"
		}
	}
	return s
}

// target names what a request acted on, e.g. "audience:vip" or
// "profile:email:hmac-…".
func (a *auditor) target(route string, r *http.Request) string {
	name := clip(r.PathValue("name"), 200)
	switch {
	case (strings.HasPrefix(route, "profile_") || strings.HasPrefix(route, "privacy_")) && r.PathValue("id") != "":
		return "profile:" + a.redactID(r.PathValue("id"))
	case route == "compute_definitions" && name != "":
		if strings.Contains(r.URL.Path, "/computed-traits/") {
			return "computed_trait:" + name
		}
		return "audience:" + name
	case route == "audience_members" || route == "audience_insights":
		if name != "" {
			return "audience:" + name
		}
	case route == "destinations" || route == "destination_status" || route == "dead_letters" || route == "destination_replays":
		if name != "" {
			return "destination:" + name
		}
	case route == "quarantine" && r.PathValue("id") != "":
		return "quarantine:" + clip(r.PathValue("id"), 40)
	case route == "identity_rules":
		return "identity_rules"
	case route == "token_rotate":
		return "token:" + name
	case route == "write_key_rotate":
		return "source:" + clip(r.PathValue("source"), 200)
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// digest is the keyed digest that stands for a personal value in the
// audit log: equal values give equal digests (so entries about one person
// can be found, by computing the digest of their identifier with the same
// server), and without the server secret the value cannot be guessed.
func (a *auditor) digest(v string) string {
	h := a.reg.Hash("kith audit\x00" + v) // domain-separated from token and key hashes
	return "hmac-" + hex.EncodeToString(h[:12])
}

// redactID replaces the value of a "type:value" identifier by its digest.
func (a *auditor) redactID(id string) string {
	typ, val, ok := strings.Cut(id, ":")
	if !ok {
		return a.digest(id)
	}
	return clip(typ, 64) + ":" + a.digest(val)
}

// safeQueryKey reports whether a query parameter's name can be kept as is.
func safeQueryKey(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// redactURL is the path and query to store: every path segment of the form
// type:value has its value replaced by a digest, and so has every query
// value but a numeric limit (query names that are not plain words, too).
func (a *auditor) redactURL(u *url.URL) string {
	segs := strings.Split(u.EscapedPath(), "/")
	for i, seg := range segs {
		raw, err := url.PathUnescape(seg)
		if err != nil {
			raw = seg
		}
		if strings.Contains(raw, ":") {
			typ, val, _ := strings.Cut(raw, ":")
			segs[i] = url.PathEscape(clip(typ, 64)) + ":" + a.digest(val)
		} else if len(raw) > 200 {
			segs[i] = a.digest(raw)
		}
	}
	p := strings.Join(segs, "/")
	if u.RawQuery == "" {
		return p
	}
	q, _ := url.ParseQuery(u.RawQuery) // what parses; a bad pair is dropped
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		name := k
		if !safeQueryKey(k) {
			name = a.digest(k)
		}
		for _, v := range q[k] {
			if v != "" && !(k == "limit" && isDigits(v)) {
				v = a.digest(v)
			}
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(name) + "=" + url.QueryEscape(v))
		}
	}
	return p + "?" + b.String()
}

func isDigits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	_, err := strconv.Atoi(s)
	return err == nil && !strings.ContainsAny(s, "+-")
}

// auditRoutes registers the audit log's API:
//
//	GET /v1/workspaces/{workspace}/audit?next=&limit=   (scope admin)
func (s *Server) auditRoutes() {
	s.handle("GET /v1/workspaces/{workspace}/audit", "audit", s.scoped("admin", s.handleAudit))
}

// auditView is how the API shows an audit entry.
type auditView struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Target  string          `json:"target,omitempty"`
	Method  string          `json:"method,omitempty"`
	Path    string          `json:"path,omitempty"`
	Status  int             `json:"status,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
}

// handleAudit pages through a workspace's audit log, oldest first.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	limit, err := intParam(v.Get("limit"), 100, 1, 1000, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	var after int64
	if c := v.Get("next"); c != "" {
		if after, err = strconv.ParseInt(c, 10, 64); err != nil || after < 0 {
			writeError(w, http.StatusBadRequest, "invalid_query", "next is not a cursor returned by this API")
			return
		}
	}
	es, err := s.st.Audit(r.Context(), r.PathValue("workspace"), after, limit)
	if err != nil {
		s.storeError(w, "read the audit log", err)
		return
	}
	out := page[auditView]{Data: make([]auditView, 0, len(es))}
	for _, e := range es {
		out.Data = append(out.Data, auditView{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target,
			Method: e.Method, Path: e.Path, Status: e.Status, Details: e.Details})
	}
	if len(es) == limit {
		out.Next = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}
