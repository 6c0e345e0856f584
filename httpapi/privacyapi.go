package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// The privacy API answers data-subject requests (docs/privacy.md):
//
//	GET /v1/workspaces/{workspace}/privacy/profiles/{id}/export?format=json|csv
//
// exports everything the workspace holds on one person — the right of
// access and portability — as one JSON document or as a ZIP of CSV files.
// The person is named as in the Profile API ("user_id:u-42",
// "email:ada@example.com", "kith_id:17", or the bare kith id "17"). Tokens
// need the privacy scope (or admin).
func (s *Server) privacyRoutes() {
	s.handle("GET /v1/workspaces/{workspace}/privacy/profiles/{id}/export", "privacy_export",
		s.privacyScoped(s.handlePrivacyExport))
}

// privacyScoped is scoped(privacy) except that a token of another
// workspace, or a workspace that does not exist, gets the answer an
// unknown person gets (404): a token learns nothing about whom another
// workspace holds, or that the workspace exists. A token of this
// workspace without the scope gets 403.
func (s *Server) privacyScoped(h http.HandlerFunc) http.HandlerFunc {
	return s.scopedOr(config.ScopePrivacy, h, func(w http.ResponseWriter, r *http.Request) {
		notFoundPerson(w, r.PathValue("id"))
	})
}

func notFoundPerson(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "profile_not_found", "no profile holds "+id)
}

// person resolves the {id} of a privacy path — any identifier the person
// left, or a Kith id (a bare number is one) — answering 400 or 404 itself
// when it cannot.
func (s *Server) person(w http.ResponseWriter, r *http.Request) (store.ProfileID, bool) {
	ref := r.PathValue("id")
	if n, err := strconv.ParseInt(ref, 10, 64); err == nil && n > 0 {
		ref = kithIDType + ":" + ref
	}
	id, err := s.profileID(r.Context(), r.PathValue("workspace"), ref)
	if err != nil {
		s.personError(w, r, err)
		return 0, false
	}
	return id, true
}

// personError answers the error of looking up the person of a privacy
// path.
func (s *Server) personError(w http.ResponseWriter, r *http.Request, err error) {
	var bad *badRequest
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFoundPerson(w, r.PathValue("id"))
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, bad.code, bad.msg)
	default:
		s.storeError(w, "look up the profile", err)
	}
}

// exportFormats are the formats of the access export: the content type
// and file extension of each.
var exportFormats = map[string][2]string{
	"json": {"application/json; charset=utf-8", "json"},
	"csv":  {"application/zip", "zip"},
}

func (s *Server) handlePrivacyExport(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	ft, ok := exportFormats[format]
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_format", fmt.Sprintf("format %q: use json or csv (a ZIP of CSV files)", format))
		return
	}
	id, ok := s.person(w, r)
	if !ok {
		return
	}
	var opts []privacy.Option
	if wsc, ok := s.reg.Workspace(ws); ok {
		opts = append(opts, privacy.WithRetention(wsc.Retention))
	}
	now := s.now().UTC()
	rep, err := privacy.Export(r.Context(), s.st, ws, id, now, opts...)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			notFoundPerson(w, r.PathValue("id"))
			return
		}
		s.storeError(w, "export the profile", err)
		return
	}
	name := fmt.Sprintf("kith-export-%s-%d-%s.%s", ws, rep.Profile.KithID, now.Format("20060102T150405Z"), ft[1])
	h := w.Header()
	h.Set("Content-Type", ft[0])
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store") // personal data: no cache keeps a copy
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// The report streams: events and trait history are read a page at a
	// time while the body is written.
	write := rep.WriteJSON
	if format == "csv" {
		write = rep.WriteCSV
	}
	if err := write(w); err != nil {
		// The status is sent: cut the connection so that the client sees
		// a broken download, not a complete-looking truncated file.
		if r.Context().Err() == nil {
			s.log.Error("privacy export failed while streaming", "workspace", ws, "format", format, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
}
