package httpapi

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
)

// Kith can host the files of @segment/analytics-next that Segment's CDN
// serves, so that a site using Segment's snippet needs no request to any
// host but Kith. The snippet loads
//
//	{cdn}/analytics.js/v1/{writeKey}/analytics.min.js
//
// (the library's standalone build), which then loads its lazy chunks from
//
//	{cdn}/analytics-next/bundles/{name}.bundle.{hash}.js
//
// and its settings from {cdn}/v1/projects/{writeKey}/settings (settings.go).
// Options.SDKDir names a directory holding the files of the npm package's
// dist/umd directory (standalone.js and the *.bundle.*.js chunks, with their
// .gz twins if present); without it, these paths answer 404 sdk_not_hosted.

// sdkFile opens name in the SDK directory: a regular file, seekable for
// http.ServeContent. os.DirFS refuses names that leave the directory.
func (s *Server) sdkFile(name string) (io.ReadSeekCloser, fs.FileInfo, error) {
	f, err := os.DirFS(s.sdkDir).Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	rsc, seekable := f.(io.ReadSeekCloser)
	if err != nil || !fi.Mode().IsRegular() || !seekable {
		f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return rsc, fi, nil
}

// serveSDKFile serves name from the SDK directory, or its .gz twin when the
// client accepts gzip and the twin exists.
func (s *Server) serveSDKFile(w http.ResponseWriter, r *http.Request, name, cacheControl string) {
	if s.sdkDir == "" {
		writeError(w, http.StatusNotFound, "sdk_not_hosted",
			"this Kith hosts no browser library files (see \"Hosting the browser library\" in docs/tracking-api.md)")
		return
	}
	h := w.Header()
	h.Set("Vary", "Accept-Encoding")
	f, fi, err := io.ReadSeekCloser(nil), fs.FileInfo(nil), fs.ErrNotExist
	if acceptsGzip(r) {
		if f, fi, err = s.sdkFile(name + ".gz"); err == nil {
			h.Set("Content-Encoding", "gzip")
		}
	}
	if err != nil {
		if f, fi, err = s.sdkFile(name); err != nil {
			writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path)
			return
		}
	}
	defer f.Close()
	h.Set("Content-Type", contentTypeOf(name))
	h.Set("Cache-Control", cacheControl)
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// acceptsGzip reports whether the request's Accept-Encoding names gzip
// with a weight above zero ("gzip;q=0" refuses it).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			enc, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
				continue
			}
			name, q, _ := strings.Cut(strings.ReplaceAll(params, " ", ""), "=")
			if !strings.EqualFold(name, "q") {
				return true
			}
			w, err := strconv.ParseFloat(q, 64)
			return err == nil && w > 0
		}
	}
	return false
}

func contentTypeOf(name string) string {
	if strings.HasSuffix(name, ".map") {
		return "application/json"
	}
	return "text/javascript; charset=utf-8"
}

// handleSnippetScript serves GET /analytics.js/v1/{writeKey}/analytics.min.js,
// the script Segment's snippet loads: analytics-next's standalone build. The
// write key must name a source, as on Segment's CDN.
func (s *Server) handleSnippetScript(w http.ResponseWriter, r *http.Request) {
	if s.sdkDir == "" {
		s.serveSDKFile(w, r, "", "")
		return
	}
	if _, ok := s.reg.SourceForKey(r.PathValue("writeKey")); !ok {
		s.reject(w, http.StatusNotFound, "invalid_write_key", "no source has this write key")
		return
	}
	// Short-lived: an upgrade of the directory reaches browsers soon.
	s.serveSDKFile(w, r, "standalone.js", "public, max-age=300")
}

// handleSDKBundle serves GET /analytics-next/bundles/{file}: one of the
// library's lazy chunks (or its source map). Chunk names carry a content
// hash, so they may be cached for good.
func (s *Server) handleSDKBundle(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if !validBundleName(name) {
		writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path)
		return
	}
	s.serveSDKFile(w, r, name, "public, max-age=31536000, immutable")
}

// validBundleName accepts the chunk names analytics-next's build makes
// ({name}.bundle.{hash}.js and .js.map): one path element, no dot file.
func validBundleName(name string) bool {
	if name == "" || name != path.Base(name) || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `\/`) {
		return false
	}
	return strings.Contains(name, ".bundle.") && (strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".js.map"))
}
