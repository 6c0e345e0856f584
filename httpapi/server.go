// Package httpapi is Kith's HTTP surface: the Segment-compatible Tracking
// API, the documents the browser libraries load at start (Segment's
// settings, RudderStack's source config) and optionally the browser
// library's files, the event log and quarantine APIs, the Profile API, the
// admin APIs of identity, of computed traits and audiences and of
// destinations, and the
// operational endpoints (/healthz, /readyz, /metrics).
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/kithcdp/kith/gate"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Server.
type Options struct {
	Store     store.Store
	Registry  *tenant.Registry
	Committer *store.GroupCommitter
	Limits    ingest.Limits
	Logger    *slog.Logger
	// Metrics receives Kith's collectors; nil uses a fresh registry.
	Metrics *prometheus.Registry
	// PublicURL, if set, is the base URL browsers use to reach Kith (for the
	// settings document); otherwise it is derived from each request.
	PublicURL string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// SDKDir, if set, is a directory holding @segment/analytics-next's
	// browser files (the npm package's dist/umd: standalone.js and the
	// *.bundle.*.js chunks), which Kith then serves at the paths of
	// Segment's CDN so that a snippet can load the library from Kith
	// (sdkfiles.go). Empty: those paths answer 404 sdk_not_hosted.
	SDKDir string
	// Compute, if set, previews audiences and reports backfills (the
	// processor of a node that folds the log); nil makes previews answer
	// 503 not_leading.
	Compute ComputeProcessor
	// Delivery, if set, is the delivery engine of a node that delivers:
	// the destination API shows its last send errors.
	Delivery DeliveryEngine
	// Intents, if set, records answers to the intents people publish
	// through the customer portal (intents.go); nil: every intent is
	// unknown.
	Intents IntentResponder
	// Requests, if set, carries out data-subject requests (regulations.go);
	// nil builds one that sends no destination deletions.
	Requests *privacy.Requests
}

// Server serves Kith's HTTP API.
type Server struct {
	st      store.Store
	reg     *tenant.Registry
	gc      *store.GroupCommitter
	limits  ingest.Limits
	log     *slog.Logger
	metrics *metrics
	promReg *prometheus.Registry
	public  string
	now     func() time.Time
	sdkDir  string
	compute ComputeProcessor
	// delivery is nil on a node that does not deliver.
	delivery DeliveryEngine
	audit    *auditor   // audit.go
	gate     *gate.Gate // the ingestion gate: suppression list and consent
	requests *privacy.Requests
	intents  IntentResponder
	mux      *http.ServeMux
	// patterns are the patterns registered with handle, in order (the
	// isolation test walks them all).
	patterns []string
}

// New builds a Server; call Handler to serve it.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		st: o.Store, reg: o.Registry, gc: o.Committer, limits: o.Limits,
		log: o.Logger, promReg: o.Metrics, public: o.PublicURL, now: o.Now,
		sdkDir: o.SDKDir, compute: o.Compute, delivery: o.Delivery, requests: o.Requests, intents: o.Intents, mux: http.NewServeMux(),
	}
	s.metrics = newMetrics(o.Metrics, o.Store)
	s.audit = newAuditor(o.Store, o.Registry, o.Logger, o.Now, o.Metrics)
	s.gate = gate.New(gate.Options{Store: o.Store, Workspaces: o.Registry, Metrics: o.Metrics,
		OnError: func(ws string, err error) {
			o.Logger.Error("reload the suppression list", "workspace", ws, "err", err)
		}})
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	// Tracking API (Segment's paths plus analytics-next's short forms).
	s.handle("POST /v1/{call}", "track", s.handleTrack)
	s.handle("OPTIONS /v1/{call}", "preflight", s.handlePreflight)
	// RudderStack's browser SDK in beacon mode: the write key in the query.
	s.handle("POST /beacon/v1/batch", "track", s.handleBeacon)
	s.handle("OPTIONS /beacon/v1/batch", "preflight", s.handlePreflight)
	// Settings document loaded by analytics.js / analytics-next at start.
	s.handle("GET /v1/projects/{writeKey}/settings", "settings", s.handleSettings)
	s.handle("OPTIONS /v1/projects/{writeKey}/settings", "preflight", s.handlePreflight)
	// Source config loaded by RudderStack's JavaScript SDK at start (its
	// configUrl + /sourceConfig/?writeKey=…).
	for _, p := range []string{"/sourceConfig", "/sourceConfig/{$}"} {
		s.handle("GET "+p, "source_config", s.handleSourceConfig)
		s.handle("OPTIONS "+p, "preflight", s.handlePreflight)
	}
	// analytics-next's files at the paths of Segment's CDN (Options.SDKDir).
	s.handle("GET /analytics.js/v1/{writeKey}/analytics.min.js", "sdk_files", s.handleSnippetScript)
	s.handle("GET /analytics-next/bundles/{file}", "sdk_files", s.handleSDKBundle)

	// Event log (the debugger) and quarantine: need the debug scope.
	s.handle("GET /v1/workspaces/{workspace}/events", "events", s.scoped("debug", s.handleEvents))
	s.handle("GET /v1/workspaces/{workspace}/events/stream", "events_stream", s.scoped("debug", s.handleStream))
	s.handle("GET /v1/workspaces/{workspace}/quarantine", "quarantine", s.scoped("debug", s.handleQuarantineList))
	s.handle("GET /v1/workspaces/{workspace}/quarantine/{id}", "quarantine", s.scoped("debug", s.handleQuarantineGet))
	s.handle("POST /v1/workspaces/{workspace}/quarantine/{id}/replay", "quarantine", s.scoped("admin", s.handleQuarantineReplay))
	s.handle("DELETE /v1/workspaces/{workspace}/quarantine/{id}", "quarantine", s.scoped("admin", s.handleQuarantineDelete))

	// Profile API (Segment's paths) and profile search.
	s.profileRoutes()
	s.identityRoutes()
	// Computed traits and audiences: definitions, previews, insights, outbox.
	s.computeRoutes()
	// Destinations: definitions, status, dead letters, replays, ledger.
	s.destinationRoutes()
	// Data-subject requests: the access export (privacyapi.go).
	s.privacyRoutes()
	s.suppressionRoutes()
	s.consentRoutes()
	s.regulationRoutes() // data-subject requests and Segment's regulations
	s.intentRoutes()     // answers to the portal's intentcasting
	// The audit log (audit.go records every token's writes and reads of personal data).
	s.auditRoutes()
	// Rotation of tokens and write keys (tokensapi.go).
	s.tokenRoutes()

	// Operations.
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /readyz", s.handleReady)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.promReg, promhttp.HandlerOpts{}))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// handle registers h under pattern, timing it under the route label.
func (s *Server) handle(pattern, route string, h http.HandlerFunc) {
	s.patterns = append(s.patterns, pattern)
	obs := s.metrics.latency.MustCurryWith(prometheus.Labels{"route": route})
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		aw, r := s.audit.auditRequest(sw, r, route)
		h(aw, r)
		aw.finish()
		obs.WithLabelValues(statusClass(sw.status)).Observe(time.Since(start).Seconds())
	})
}

// Patterns returns the patterns of the routes the server registered
// through handle (every API route; not /healthz, /readyz, /metrics), in
// order.
func (s *Server) Patterns() []string { return slices.Clone(s.patterns) }

// Handler returns the root handler. It recovers from panics in handlers so
// that a bug answers 500 with a JSON error instead of dropping the connection.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		s.mux.ServeHTTP(w, r)
	})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the store is not reachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// errorBody is the JSON shape of every error Kith answers.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{apiError{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // answers are JSON for programs, not HTML: keep > and & as they are
	_ = enc.Encode(v)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func statusClass(code int) string {
	switch {
	case code >= 500:
		return "5xx"
	case code >= 400:
		return "4xx"
	case code >= 300:
		return "3xx"
	default:
		return "2xx"
	}
}
