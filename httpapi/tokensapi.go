package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

// The rotation API (docs/security.md): a token or a source's write key
// gets a new secret, returned once; the old one stays valid for a grace
// period so that clients can switch without downtime.
//
//	POST /v1/workspaces/{workspace}/tokens/{name}/rotate?grace=24h            (scope admin)
//	POST /v1/workspaces/{workspace}/sources/{source}/write-key/rotate?grace=24h (scope admin)
//
// grace is a Go duration from 0 (the old secret stops at once) to
// tenant.MaxGrace; DefaultGrace when absent. Only hashes are stored; the
// rotation is recorded in the audit log (token.rotate, write_key.rotate).

// DefaultGrace is how long a rotated-out secret stays valid when the
// request does not say.
const DefaultGrace = 24 * time.Hour

func (s *Server) tokenRoutes() {
	ws := "POST /v1/workspaces/{workspace}/"
	s.handle(ws+"tokens/{name}/rotate", "token_rotate", s.scoped(config.ScopeAdmin, s.handleRotate(false)))
	s.handle(ws+"sources/{source}/write-key/rotate", "write_key_rotate", s.scoped(config.ScopeAdmin, s.handleRotate(true)))
}

// rotation is the answer to a rotation.
type rotation struct {
	Workspace string `json:"workspace"`
	Token     string `json:"token,omitempty"`  // the token's name
	Source    string `json:"source,omitempty"` // the source's slug
	Secret    string `json:"secret"`           // the new token or write key, shown once
	Grace     string `json:"grace"`            // how long the old one stays valid
	// PreviousValidUntil is when the old secret stops working; absent when
	// it stopped at once.
	PreviousValidUntil *time.Time `json:"previous_valid_until,omitempty"`
}

func (s *Server) handleRotate(writeKey bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ws := r.PathValue("workspace")
		grace := DefaultGrace
		if g := r.URL.Query().Get("grace"); g != "" {
			d, err := time.ParseDuration(g)
			if err != nil || d < 0 || d > tenant.MaxGrace {
				writeError(w, http.StatusBadRequest, "invalid_grace",
					fmt.Sprintf("grace must be a duration from 0 to %s, such as 24h, 90m or 0 (revoke the old secret at once)", tenant.MaxGrace))
				return
			}
			grace = d
		}
		out := rotation{Workspace: ws, Grace: grace.String()}
		var rot tenant.Rotated
		var err error
		if writeKey {
			out.Source = r.PathValue("source")
			rot, err = s.reg.RotateWriteKey(r.Context(), ws, out.Source, grace)
		} else {
			out.Token = r.PathValue("name")
			rot, err = s.reg.RotateToken(r.Context(), ws, out.Token, grace)
		}
		switch {
		case errors.Is(err, store.ErrNotFound) && writeKey:
			writeError(w, http.StatusNotFound, "source_not_found", fmt.Sprintf("workspace %q has no source %q", ws, out.Source))
			return
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, "token_not_found", fmt.Sprintf("workspace %q has no token %q", ws, out.Token))
			return
		case err != nil:
			s.storeError(w, "rotate the secret", err)
			return
		}
		out.Secret = rot.Secret
		if !rot.PreviousValidUntil.IsZero() {
			out.PreviousValidUntil = &rot.PreviousValidUntil
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, out)
	}
}
