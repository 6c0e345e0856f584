package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
)

// adminSource is the source recorded on control events written by the
// admin API.
const adminSource = "kith-admin"

// identityRoutes registers the admin corrections of the identity graph:
//
//	POST /v1/workspaces/{workspace}/identity/{block|unblock|remove}  {"identifier": "type:value"}
//	GET  /v1/workspaces/{workspace}/identity/decisions?next=
//
// A correction is written to the log as a control event (store.TypeIdentity)
// so a replay applies it again at the same point; the processor then
// rebuilds the affected profile from its events.
func (s *Server) identityRoutes() {
	s.handle("POST /v1/workspaces/{workspace}/identity/{action}", "identity_command", s.scoped("admin", s.handleIdentityCommand))
	s.handle("GET /v1/workspaces/{workspace}/identity/decisions", "identity_decisions", s.scoped("debug", s.handleDecisions))
	s.handle("GET /v1/workspaces/{workspace}/identity/rules", "identity_rules", s.scoped("debug", s.handleRules))
	s.handle("PUT /v1/workspaces/{workspace}/identity/rules", "identity_rules", s.scoped("admin", s.handlePutRules))
	s.handle("DELETE /v1/workspaces/{workspace}/identity/rules", "identity_rules", s.scoped("admin", s.handleDeleteRules))
}

func (s *Server) handleIdentityCommand(w http.ResponseWriter, r *http.Request) {
	ws, action := r.PathValue("workspace"), r.PathValue("action")
	switch action {
	case process.ActionBlock, process.ActionUnblock, process.ActionRemove, process.ActionUnmerge:
	default:
		writeError(w, http.StatusNotFound, "unknown_action", "the identity actions are block, unblock, remove and unmerge")
		return
	}
	body, apiErr := s.readBody(r)
	if apiErr != nil {
		writeError(w, apiErr.Status, apiErr.Code, apiErr.Message)
		return
	}
	cmd := process.IdentityCommand{Action: action}
	cmd.Actor, _ = principal(r)
	if action == process.ActionUnmerge {
		if !s.unmergeCommand(w, r, ws, body, &cmd) {
			return
		}
		s.appendCommand(w, r, ws, cmd)
		return
	}
	var req struct {
		Identifier string `json:"identifier"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", `the body must be {"identifier": "type:value"}`)
		return
	}
	id, err := s.parseIdentifier(ws, req.Identifier)
	if err != nil {
		var bad *badRequest
		if errors.As(err, &bad) {
			writeError(w, http.StatusBadRequest, bad.code, bad.msg)
		} else {
			writeError(w, http.StatusBadRequest, "invalid_identifier", "the value cannot be an identifier of its type")
		}
		return
	}
	if id.Type == kithIDType {
		writeError(w, http.StatusBadRequest, "invalid_identifier", "name an identifier the profile holds, not its kith_id")
		return
	}
	cmd.Identifier = id
	s.appendCommand(w, r, ws, cmd)
}

// unmergeCommand reads {"kith_id": N, "from": M} and finds the merge of M
// into N: undoing it detaches the identifier it happened through and
// rebuilds N, giving M its id back.
func (s *Server) unmergeCommand(w http.ResponseWriter, r *http.Request, ws string, body []byte, cmd *process.IdentityCommand) bool {
	var req struct {
		KithID int64 `json:"kith_id"`
		From   int64 `json:"from"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.KithID < 1 || req.From < 1 {
		writeError(w, http.StatusBadRequest, "invalid_json", `the body must be {"kith_id": N, "from": M}: undo the merge of profile M into N`)
		return false
	}
	merges, err := s.st.Merges(r.Context(), ws, store.ProfileID(req.KithID))
	if err != nil {
		s.storeError(w, "read merges", err)
		return false
	}
	for _, m := range merges {
		if m.From == store.ProfileID(req.From) && m.Via.Type != "" {
			cmd.Identifier, cmd.From, cmd.Position = m.Via, m.From, m.Position
			return true
		}
	}
	writeError(w, http.StatusNotFound, "merge_not_found", fmt.Sprintf("profile %d holds no merge of profile %d (see its metadata's merged_from)", req.KithID, req.From))
	return false
}

// appendCommand writes an identity control event and answers once it is
// durable.
func (s *Server) appendCommand(w http.ResponseWriter, r *http.Request, ws string, cmd process.IdentityCommand) {
	raw, _ := json.Marshal(cmd)
	action, id := cmd.Action, cmd.Identifier
	now := s.now().UTC()
	ev := store.Event{Workspace: ws, Source: adminSource, MessageID: uuid.NewString(), Type: store.TypeIdentity,
		Timestamp: now, ReceivedAt: now, Format: store.FormatVersion, Raw: raw}
	res, err := s.gc.Append(r.Context(), &store.Batch{Events: []store.Event{ev}}, s.dedupWindow(ws))
	if err != nil {
		s.storeError(w, "write the correction", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"action": action, "identifier": id.String(), "position": res[0].Position})
}

// rulesView is identity rules as the API reads and writes them (windows
// in seconds).
type rulesView struct {
	Priority         []string             `json:"priority"`
	Limits           map[string]limitView `json:"limits"`
	DefaultLimit     limitView            `json:"default_limit"`
	Blocked          []string             `json:"blocked"`
	BlockedPatterns  []string             `json:"blocked_patterns"`
	TraitIdentifiers map[string]string    `json:"trait_identifiers"`
	DefaultRegion    string               `json:"default_region"`
	MaxIdentifiers   int                  `json:"max_identifiers"`
	MaxMerges        int                  `json:"max_merges"`
}

type limitView struct {
	Max           int     `json:"max"`
	WindowSeconds float64 `json:"window_seconds,omitempty"`
}

func viewRules(rl identity.Rules) rulesView {
	view := func(l identity.Limit) limitView { return limitView{Max: l.Max, WindowSeconds: l.Window.Seconds()} }
	limits := map[string]limitView{}
	for t, l := range rl.Limits {
		limits[t] = view(l)
	}
	return rulesView{
		Priority: rl.Priority, Limits: limits, DefaultLimit: view(rl.DefaultLimit),
		Blocked: rl.Blocked, BlockedPatterns: rl.BlockedPatterns, TraitIdentifiers: rl.TraitIdentifiers,
		DefaultRegion: rl.DefaultRegion, MaxIdentifiers: rl.MaxIdentifiers, MaxMerges: rl.MaxMerges,
	}
}

func (v rulesView) rules() identity.Rules {
	limit := func(l limitView) identity.Limit {
		return identity.Limit{Max: l.Max, Window: time.Duration(l.WindowSeconds * float64(time.Second))}
	}
	limits := map[string]identity.Limit{}
	for t, l := range v.Limits {
		limits[t] = limit(l)
	}
	return identity.Rules{
		Priority: v.Priority, Limits: limits, DefaultLimit: limit(v.DefaultLimit),
		Blocked: v.Blocked, BlockedPatterns: v.BlockedPatterns, TraitIdentifiers: v.TraitIdentifiers,
		DefaultRegion: v.DefaultRegion, MaxIdentifiers: v.MaxIdentifiers, MaxMerges: v.MaxMerges,
	}
}

// apiRules returns the identity rules set through the API, if any.
func (s *Server) apiRules(r *http.Request, ws string) (identity.Rules, bool, error) {
	defs, err := s.st.Definitions(r.Context(), ws)
	if err != nil {
		return identity.Rules{}, false, err
	}
	for _, d := range defs {
		if d.Kind == store.DefinitionIdentity && d.Name == process.IdentityRulesName {
			var rl identity.Rules
			return rl, json.Unmarshal(d.Body, &rl) == nil, nil
		}
	}
	return identity.Rules{}, false, nil
}

// handleRules answers the workspace's identity rules in effect: those set
// through the API (origin "api"), else the config file's or the defaults
// (origin "config"); windows in seconds.
func (s *Server) handleRules(w http.ResponseWriter, r *http.Request) {
	wsName := r.PathValue("workspace")
	rl, ok, err := s.apiRules(r, wsName)
	if err != nil {
		s.storeError(w, "read identity rules", err)
		return
	}
	origin := "api"
	if !ok {
		ws, _ := s.reg.Workspace(wsName)
		rl, origin = ws.Rules, "config"
	}
	writeJSON(w, http.StatusOK, struct {
		rulesView
		Origin string `json:"origin"`
	}{viewRules(rl), origin})
}

// handlePutRules sets the workspace's identity rules (they take precedence
// over the config file's). The processor picks them up within seconds and
// applies them to the events it folds from then on; a replay (kith replay)
// applies them to the whole history.
func (s *Server) handlePutRules(w http.ResponseWriter, r *http.Request) {
	body, apiErr := s.readBody(r)
	if apiErr != nil {
		writeError(w, apiErr.Status, apiErr.Code, apiErr.Message)
		return
	}
	var v rulesView
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || dec.More() {
		msg := "the body must be one JSON object of identity rules, as GET answers them"
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, "invalid_json", msg)
		return
	}
	rl := v.rules()
	if _, err := rl.Compile(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_rules", err.Error())
		return
	}
	stored, _ := json.Marshal(rl) // plain values: cannot fail
	if _, err := s.st.PutDefinition(r.Context(), store.Definition{
		Workspace: r.PathValue("workspace"), Kind: store.DefinitionIdentity, Name: process.IdentityRulesName,
		Body: stored, Origin: "api",
	}); err != nil {
		s.storeError(w, "store identity rules", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		rulesView
		Origin  string `json:"origin"`
		Applies string `json:"applies"`
	}{viewRules(rl), "api", "to the events folded from now on; kith replay --workspace " + r.PathValue("workspace") + " applies them to the whole history"})
}

// handleDeleteRules removes the rules set through the API: the config
// file's (or the defaults) apply again.
func (s *Server) handleDeleteRules(w http.ResponseWriter, r *http.Request) {
	err := s.st.DeleteDefinition(r.Context(), r.PathValue("workspace"), store.DefinitionIdentity, process.IdentityRulesName)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no_api_rules", "no identity rules were set through the API")
		return
	}
	if err != nil {
		s.storeError(w, "delete identity rules", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type decisionView struct {
	Position   int64     `json:"position"`
	KithID     int64     `json:"kith_id,omitempty"`
	Identifier string    `json:"identifier"`
	Code       string    `json:"code"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// handleDecisions pages through the identity decisions, newest first: why
// an identifier was not used (blocked, limits, caps) and admin corrections.
func (s *Server) handleDecisions(w http.ResponseWriter, r *http.Request) {
	before, ok := positionCursor(w, r.URL.Query().Get("next"))
	if !ok {
		return
	}
	limit, err := intParam(r.URL.Query().Get("limit"), 100, 1, 1000, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return
	}
	ds, err := s.st.Decisions(r.Context(), r.PathValue("workspace"), before, limit)
	if err != nil {
		s.storeError(w, "read decisions", err)
		return
	}
	next := ""
	if len(ds) == limit {
		// The cursor is a position: a full page ends before the last
		// event's decisions, which the next page shows whole (unless one
		// event has more decisions than a page holds).
		last := ds[len(ds)-1].Position
		next = strconv.FormatInt(last, 10)
		if ds[0].Position != last {
			for len(ds) > 0 && ds[len(ds)-1].Position == last {
				ds = ds[:len(ds)-1]
			}
			next = strconv.FormatInt(last+1, 10)
		}
	}
	data := make([]decisionView, len(ds))
	for i, d := range ds {
		data[i] = decisionView{Position: d.Position, KithID: int64(d.Profile), Identifier: d.Identifier.String(), Code: d.Code, Reason: d.Reason, At: d.At}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "next": next})
}
