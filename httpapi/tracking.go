package httpapi

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

// trackResponse is the body of a successful Tracking API call. Segment's
// SDKs only look at the status code; Kith adds what it did with each event.
type trackResponse struct {
	Success    bool               `json:"success"`
	Accepted   int                `json:"accepted"`
	Duplicates int                `json:"duplicates,omitempty"`
	Rejected   []ingest.Rejection `json:"rejected,omitempty"`
}

// handleBeacon serves POST /beacon/v1/batch?writeKey=…, where RudderStack's
// browser SDK sends batches with navigator.sendBeacon, which can set no
// header: the write key comes in the query string.
func (s *Server) handleBeacon(w http.ResponseWriter, r *http.Request) {
	if key := r.URL.Query().Get("writeKey"); key != "" {
		if _, _, ok := r.BasicAuth(); !ok {
			r.SetBasicAuth(key, "")
		}
	}
	r.SetPathValue("call", "batch")
	s.handleTrack(w, r)
}

// handleTrack serves POST /v1/{identify,track,page,screen,group,alias,batch,import}
// and analytics-next's short forms (/v1/t, /v1/i, ...).
func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	call, ok := ingest.CallForPath(r.PathValue("call"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
		return
	}
	// A write key in the Authorization header is checked before the body is read.
	var src *tenant.Source
	if key, _, hasBasic := r.BasicAuth(); hasBasic {
		if src, ok = s.reg.SourceForKey(key); !ok {
			s.reject(w, http.StatusUnauthorized, "invalid_write_key", "the write key is not valid")
			return
		}
	}
	body, apiErr := s.readBody(r)
	if apiErr != nil {
		s.reject(w, apiErr.Status, apiErr.Code, apiErr.Message)
		return
	}
	now := s.now().UTC()
	out, err := ingest.Decode(ingest.Input{
		Call:       call,
		Body:       body,
		ReceivedAt: now,
		Signals:    s.signals(r),
	}, s.limits)
	if err != nil {
		var ie *ingest.Error
		if errors.As(err, &ie) {
			s.reject(w, ie.Status, ie.Code, ie.Message)
			return
		}
		s.reject(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if src == nil {
		if out.WriteKey == "" {
			s.reject(w, http.StatusUnauthorized, "missing_write_key",
				"send the write key as the HTTP Basic user name or as writeKey in the body")
			return
		}
		if src, ok = s.reg.SourceForKey(out.WriteKey); !ok {
			s.reject(w, http.StatusUnauthorized, "invalid_write_key", "the write key is not valid")
			return
		}
	}
	if origin := r.Header.Get("Origin"); !src.OriginAllowed(origin) {
		s.reject(w, http.StatusForbidden, "origin_not_allowed", "this source does not accept events from origin "+origin)
		return
	}
	n := len(out.Events) + len(out.Quarantine)
	s.metrics.received.WithLabelValues(src.Workspace, src.Slug).Add(float64(n))
	if ok, retry := src.Allow(n); !ok {
		secs := int(retry.Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.reject(w, http.StatusTooManyRequests, "rate_limited", "this source's rate limit is exceeded; retry later")
		return
	}
	b := &store.Batch{Events: out.Events, Quarantine: out.Quarantine}
	for i := range b.Events {
		b.Events[i].Workspace, b.Events[i].Source = src.Workspace, src.Slug
	}
	for i := range b.Quarantine {
		b.Quarantine[i].Workspace, b.Quarantine[i].Source = src.Workspace, src.Slug
	}
	// The ingestion gate (package gate: the suppression list, then the
	// consent storage requires): dropped events are answered as accepted
	// and stored nowhere.
	dropped, err := s.gate.Filter(r.Context(), src.Workspace, b)
	if err != nil {
		s.log.Error("load the suppression list failed", "workspace", src.Workspace, "err", err)
		w.Header().Set("Retry-After", "1")
		s.reject(w, http.StatusServiceUnavailable, "store_unavailable", "the event log could not store the events; retry")
		return
	}
	if !s.sealSensitive(w, src.Workspace, b) { // sensitive.go: sensitive traits encrypted before they are stored
		return
	}
	var res []store.Appended
	if len(b.Events)+len(b.Quarantine) > 0 {
		res, err = s.gc.Append(r.Context(), b, s.dedupWindow(src.Workspace))
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return // the client went away; it will retry
		}
		s.log.Error("append to log failed", "workspace", src.Workspace, "source", src.Slug, "events", n, "err", err)
		w.Header().Set("Retry-After", "1")
		s.reject(w, http.StatusServiceUnavailable, "store_unavailable", "the event log could not store the events; retry")
		return
	}
	resp := trackResponse{Success: true, Rejected: out.Rejected, Accepted: dropped}
	for _, a := range res {
		if a.Duplicate {
			resp.Duplicates++
		} else {
			resp.Accepted++
		}
	}
	s.metrics.accepted.WithLabelValues(src.Workspace, src.Slug).Add(float64(resp.Accepted))
	if resp.Duplicates > 0 {
		s.metrics.duplicates.WithLabelValues(src.Workspace, src.Slug).Add(float64(resp.Duplicates))
	}
	for _, q := range b.Quarantine { // suppressed entries are not counted here
		s.metrics.quarantined.WithLabelValues(src.Workspace, src.Slug, q.Code).Inc()
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) reject(w http.ResponseWriter, status int, code, msg string) {
	s.metrics.rejected.WithLabelValues(code).Inc()
	writeError(w, status, code, msg)
}

// readBody reads the request body, inflating gzip, and refuses bodies larger
// than the batch limit (also after inflation, so a small gzip bomb is refused).
func (s *Server) readBody(r *http.Request) ([]byte, *ingest.Error) {
	limit := int64(s.limits.MaxBatchBytes)
	var rd io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		// The compressed body may not exceed the limit either.
		zr, err := gzip.NewReader(io.LimitReader(r.Body, limit+1))
		if err != nil {
			return nil, &ingest.Error{Status: http.StatusBadRequest, Code: "invalid_gzip", Message: "the body is not valid gzip: " + err.Error()}
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, &ingest.Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_encoding", Message: "Content-Encoding " + enc + " is not supported; use gzip or none"}
	}
	body, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &ingest.Error{Status: http.StatusBadRequest, Code: "invalid_gzip", Message: "the body is not valid gzip: " + err.Error()}
		}
		return nil, &ingest.Error{Status: http.StatusBadRequest, Code: "body_read_failed", Message: "the body could not be read: " + err.Error()}
	}
	if int64(len(body)) > limit {
		return nil, &ingest.Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: "the body exceeds " + strconv.Itoa(s.limits.MaxBatchBytes) + " bytes"}
	}
	return body, nil
}

// signals collects the request facts stored with each event.
func (s *Server) signals(r *http.Request) store.Signals {
	return store.Signals{
		IP:        clientIP(r, s.reg.TrustedProxies()),
		UserAgent: r.Header.Get("User-Agent"),
		Origin:    r.Header.Get("Origin"),
		GPC:       strings.TrimSpace(r.Header.Get("Sec-GPC")) == "1",
	}
}

// clientIP is the connection's address or, when the connection comes from a
// trusted proxy, the right-most untrusted address of X-Forwarded-For.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if !isTrusted(addr, trusted) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: stop at the last address we can trust
		}
		addr = hop.Unmap()
		if !isTrusted(addr, trusted) {
			break
		}
	}
	return addr.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// cors answers browsers on any origin; whether a source accepts an origin is
// decided per source once the write key is known.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
}

func (s *Server) handlePreflight(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Content-Encoding")
	}
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// dedupWindow is the messageId dedup window of a workspace.
func (s *Server) dedupWindow(workspace string) time.Duration {
	if ws, ok := s.reg.Workspace(workspace); ok {
		return ws.DedupWindow
	}
	return 0
}
