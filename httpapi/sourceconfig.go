package httpapi

import (
	"net/http"
)

// handleSourceConfig serves GET /sourceConfig/?writeKey=…, the control-plane
// document that RudderStack's JavaScript SDK (@rudderstack/analytics-js v3,
// and rudder-sdk-js before it) fetches at load from its configUrl. A page
// that loads the SDK with `configUrl` and the data plane URL both set to
// Kith gets a source with no destinations: the SDK then sends every event
// to its data plane (Kith) and loads no device-mode integration.
//
// The SDK sends the write key twice, as HTTP Basic user name and as the
// writeKey query parameter; the header wins when both are present. The SDK
// accepts the document when source.id is set, source.config is an object
// and source.destinations is an array; source.enabled false would stop it.
// Error and metrics reporting (source.config.statsCollection) stay off, so
// the SDK posts nothing to /rsaMetrics.
func (s *Server) handleSourceConfig(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	key, _, ok := r.BasicAuth()
	if !ok || key == "" {
		key = r.URL.Query().Get("writeKey")
	}
	if key == "" {
		s.reject(w, http.StatusUnauthorized, "missing_write_key",
			"send the write key as the HTTP Basic user name or as the writeKey query parameter")
		return
	}
	src, ok := s.reg.SourceForKey(key)
	if !ok {
		s.reject(w, http.StatusUnauthorized, "invalid_write_key", "the write key is not valid")
		return
	}
	if origin := r.Header.Get("Origin"); !src.OriginAllowed(origin) {
		s.reject(w, http.StatusForbidden, "origin_not_allowed", "this source does not accept events from origin "+origin)
		return
	}
	off := map[string]any{"enabled": false}
	doc := map[string]any{
		"isHosted": false,
		"source": map[string]any{
			"id":          src.Workspace + "/" + src.Slug,
			"name":        src.Slug,
			"workspaceId": src.Workspace,
			"enabled":     true,
			"config": map[string]any{
				"statsCollection": map[string]any{"errors": off, "metrics": off},
			},
			"destinations": []any{},
		},
	}
	// The document names no secret, but it is per key: no shared caches.
	w.Header().Set("Cache-Control", "private, max-age=60")
	writeJSON(w, http.StatusOK, doc)
}
