package httpapi

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
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
// The list is applied by the ingestion gate (package gate), which keeps
// each workspace's digests in memory and reloads them now and then so that
// changes made through other nodes arrive; a change made through this node
// applies at once (applySuppressions).

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
	if err := s.gate.Reload(ctx, ws); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("reload the suppression list", "workspace", ws, "err", err)
	}
}
