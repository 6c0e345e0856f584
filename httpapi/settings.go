package httpapi

import (
	"net/http"
	"strings"
)

// handleSettings serves the settings document that analytics.js and
// @segment/analytics-next fetch at start from
// {cdnURL}/v1/projects/{writeKey}/settings. It points the library's
// Segment.io integration back at this server, so a page needs only
// `cdnURL: "https://kith.example.com"` to send its events to Kith.
func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	key := r.PathValue("writeKey")
	src, ok := s.reg.SourceForKey(key)
	if !ok {
		s.reject(w, http.StatusNotFound, "invalid_write_key", "no source has this write key")
		return
	}
	if origin := r.Header.Get("Origin"); !src.OriginAllowed(origin) {
		s.reject(w, http.StatusForbidden, "origin_not_allowed", "this source does not accept events from origin "+origin)
		return
	}
	protocol, host := s.publicBase(r)
	segmentio := map[string]any{
		"apiKey":                key,
		"apiHost":               host + "/v1",
		"protocol":              protocol,
		"unbundledIntegrations": []string{},
		"addBundledMetadata":    true,
		"maybeBundledConfigIds": map[string]any{},
	}
	doc := map[string]any{
		"integrations":              map[string]any{"Segment.io": segmentio},
		"plan":                      map[string]any{"track": map[string]any{"__default": map[string]any{"enabled": true, "integrations": map[string]any{}}}, "identify": map[string]any{"__default": map[string]any{"enabled": true}}, "group": map[string]any{"__default": map[string]any{"enabled": true}}},
		"edgeFunction":              map[string]any{},
		"analyticsNextEnabled":      true,
		"middlewareSettings":        map[string]any{},
		"enabledMiddleware":         map[string]any{},
		"metrics":                   map[string]any{"sampleRate": 0},
		"legacyVideoPluginsEnabled": false,
		"remotePlugins":             []any{},
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, doc)
}

// publicBase returns the scheme and host[:port] browsers use to reach Kith.
func (s *Server) publicBase(r *http.Request) (protocol, host string) {
	if s.public != "" {
		protocol, host, ok := strings.Cut(s.public, "://")
		if ok {
			return protocol, strings.TrimRight(host, "/")
		}
	}
	protocol = "http"
	if r.TLS != nil {
		protocol = "https"
	}
	return protocol, r.Host
}
