package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// IntentResponder records a company's answers to the intents people
// publish through the customer portal (intentcasting; package portal).
type IntentResponder interface {
	// RespondIntent appends an answer to intent of workspace ws and returns
	// the answer's id; found is false when the workspace holds no such
	// intent (or serves no portal).
	RespondIntent(ctx context.Context, ws, intent, from, message string) (response string, found bool, err error)
}

// Limits of an answer to an intent, in characters.
const (
	maxIntentFrom    = 100
	maxIntentMessage = 1000
)

// intentRoutes registers the company's side of intentcasting:
//
//	POST /v1/workspaces/{workspace}/intents/{intent}/responses  {"from": "…", "message": "…"}
//
// answered 201 {"intent": id, "response": id}. The person sees the answer
// in the portal, and only accepting it reveals who they are.
func (s *Server) intentRoutes() {
	s.handle("POST /v1/workspaces/{workspace}/intents/{intent}/responses", "intent_response", s.scoped("admin", s.handleIntentResponse))
}

func (s *Server) handleIntentResponse(w http.ResponseWriter, r *http.Request) {
	ws, intent := r.PathValue("workspace"), r.PathValue("intent")
	body, apiErr := s.readBody(r)
	if apiErr != nil {
		writeError(w, apiErr.Status, apiErr.Code, apiErr.Message)
		return
	}
	var req struct {
		From    string `json:"from"`
		Message string `json:"message"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", `the body must be {"from": "who answers", "message": "the offer"}`)
		return
	}
	req.From, req.Message = strings.TrimSpace(req.From), strings.TrimSpace(req.Message)
	if req.From == "" || req.Message == "" || utf8.RuneCountInString(req.From) > maxIntentFrom || utf8.RuneCountInString(req.Message) > maxIntentMessage {
		writeError(w, http.StatusBadRequest, "invalid_response",
			fmt.Sprintf("from (at most %d characters) and message (at most %d) are required", maxIntentFrom, maxIntentMessage))
		return
	}
	var (
		id    string
		found bool
		err   error
	)
	if s.intents != nil {
		id, found, err = s.intents.RespondIntent(r.Context(), ws, intent, req.From, req.Message)
	}
	switch {
	case err != nil:
		s.storeError(w, "record the answer", err)
	case !found:
		writeError(w, http.StatusNotFound, "intent_not_found", "the workspace holds no intent "+fmt.Sprintf("%q", intent))
	default:
		writeJSON(w, http.StatusCreated, map[string]string{"intent": intent, "response": id})
	}
}
