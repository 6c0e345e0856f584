package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/store"
)

// The admin APIs of stored definitions — computed traits and audiences
// (computeapi.go) and destinations (destinationapi.go) — list, get, put
// and delete them alike; this file holds what they share.

// maxDefinitionBytes bounds a definition's body (as package trait does).
const maxDefinitionBytes = 64 << 10

// definitionsMu serializes the check-then-store of definition changes on
// this node, so that two changes made at once are not each checked
// against a set without the other.
var definitionsMu sync.Mutex

// kindNames names the kinds in messages and codes.
var kindNames = map[string]string{
	store.DefinitionTrait:       "computed trait",
	store.DefinitionAudience:    "audience",
	store.DefinitionDestination: "destination",
}

// storeNoun is what a store error about definitions of kind says could
// not be read or written.
func storeNoun(kind string) string {
	if kind == store.DefinitionDestination {
		return "destination"
	}
	return "definition"
}

// findDefinition returns the stored definition of a kind and name among
// defs, or nil.
func findDefinition(defs []store.Definition, kind, name string) *store.Definition {
	i := slices.IndexFunc(defs, func(d store.Definition) bool { return d.Kind == kind && d.Name == name })
	if i < 0 {
		return nil
	}
	return &defs[i]
}

// notFound answers 404 computed_trait_not_found, audience_not_found or
// destination_not_found.
func notFound(w http.ResponseWriter, kind, name string) {
	code := strings.ReplaceAll(kindNames[kind], " ", "_") + "_not_found"
	writeError(w, http.StatusNotFound, code, fmt.Sprintf("no %s %q in this workspace", kindNames[kind], name))
}

func managedByConfig(w http.ResponseWriter, d *store.Definition) {
	writeError(w, http.StatusConflict, "managed_by_config", fmt.Sprintf("%s %q is declared in the config file: change it there (and restart)", kindNames[d.Kind], d.Name))
}

// invalidDefinition answers 400 invalid_definition with the problems.
func invalidDefinition(w http.ResponseWriter, msg string, problems []config.DefinitionProblem) {
	if problems == nil {
		problems = []config.DefinitionProblem{}
	}
	writeJSON(w, http.StatusBadRequest, struct {
		Error    apiError                   `json:"error"`
		Problems []config.DefinitionProblem `json:"problems"`
	}{apiError{Code: "invalid_definition", Message: msg}, problems})
}

// definitionPage reads the page of the workspace's definitions of kind
// that the query asks for (?limit=, 100 by default and at most 1000, and
// ?next=). It answers the request itself on a problem.
func (s *Server) definitionPage(w http.ResponseWriter, r *http.Request, kind string) (page []store.Definition, next string, ok bool) {
	limit, err := intParam(r.URL.Query().Get("limit"), 100, 1, 1000, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return nil, "", false
	}
	defs, err := s.st.Definitions(r.Context(), r.PathValue("workspace"))
	if err != nil {
		s.storeError(w, "read "+storeNoun(kind)+"s", err)
		return nil, "", false
	}
	defs = slices.DeleteFunc(defs, func(d store.Definition) bool { return d.Kind != kind })
	page, next, ok = pageAfter(defs, r.URL.Query().Get("next"), limit, func(d store.Definition) string { return d.Name })
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "next must be the next of an earlier page")
	}
	return page, next, ok
}

// pathDefinition returns the definition of kind that the path names
// ({workspace} and {name}). It answers the request itself (404 when the
// workspace has none of that name).
func (s *Server) pathDefinition(w http.ResponseWriter, r *http.Request, kind string) (*store.Definition, bool) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	defs, err := s.st.Definitions(r.Context(), ws)
	if err != nil {
		s.storeError(w, "read "+storeNoun(kind)+"s", err)
		return nil, false
	}
	d := findDefinition(defs, kind, name)
	if d == nil {
		notFound(w, kind, name)
		return nil, false
	}
	return d, true
}

// readDefinition reads a definition body of at most maxDefinitionBytes
// and sets its name to the path's when it has none. It answers the
// request itself when the body is not a JSON object or names another
// definition.
func readDefinition(w http.ResponseWriter, r *http.Request, name string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDefinitionBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("a definition is at most %d bytes", maxDefinitionBytes))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "invalid_body", "could not read the body")
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		msg := "the body must be a JSON object: the definition"
		if err != nil {
			msg += " (" + err.Error() + ")"
		}
		writeError(w, http.StatusBadRequest, "invalid_json", msg)
		return nil, false
	}
	raw, has := obj["name"]
	if !has {
		obj["name"], _ = json.Marshal(name)
		body, _ = json.Marshal(obj)
		return body, true
	}
	var got string
	if json.Unmarshal(raw, &got) != nil || got != name {
		writeError(w, http.StatusBadRequest, "name_mismatch", fmt.Sprintf("the body's name %s is not the name in the path, %q: leave it out or make them equal", raw, name))
		return nil, false
	}
	return body, true
}

// changeDefinition runs change under definitionsMu with the workspace's
// definitions and the path's definition of kind among them (nil when it
// has none). It answers the request itself, 409, when that definition is
// declared in the config file.
func (s *Server) changeDefinition(w http.ResponseWriter, r *http.Request, kind string, change func(defs []store.Definition, old *store.Definition)) {
	definitionsMu.Lock()
	defer definitionsMu.Unlock()
	defs, err := s.st.Definitions(r.Context(), r.PathValue("workspace"))
	if err != nil {
		s.storeError(w, "read "+storeNoun(kind)+"s", err)
		return
	}
	old := findDefinition(defs, kind, r.PathValue("name"))
	if old != nil && old.Origin == "config" {
		managedByConfig(w, old)
		return
	}
	change(defs, old)
}

// putDefinition stores the path's definition of kind with the body that
// prepare makes given the workspace's definitions and the one it replaces
// (nil when new); prepare answers the request itself when it returns
// false. answer then answers the stored definition, with 201 when it is
// new and 200 when it replaced one.
func (s *Server) putDefinition(w http.ResponseWriter, r *http.Request, kind string,
	prepare func(defs []store.Definition, old *store.Definition) (json.RawMessage, bool),
	answer func(w http.ResponseWriter, r *http.Request, status int, d store.Definition)) {
	s.changeDefinition(w, r, kind, func(defs []store.Definition, old *store.Definition) {
		body, ok := prepare(defs, old)
		if !ok {
			return
		}
		change := store.Definition{Workspace: r.PathValue("workspace"), Kind: kind, Name: r.PathValue("name"), Body: body, Origin: "api"}
		stored, err := s.st.PutDefinition(r.Context(), change)
		if err != nil {
			s.storeError(w, "store the "+storeNoun(kind), err)
			return
		}
		status := http.StatusOK
		if old == nil {
			status = http.StatusCreated
		}
		answer(w, r, status, stored)
	})
}

// handleDeleteDefinition deletes the path's definition of kind and
// answers 204. check, when not nil, may refuse the deletion given the
// workspace's definitions, answering the request itself.
func (s *Server) handleDeleteDefinition(kind string, check func(w http.ResponseWriter, defs []store.Definition, gone store.Definition) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ws, name := r.PathValue("workspace"), r.PathValue("name")
		s.changeDefinition(w, r, kind, func(defs []store.Definition, old *store.Definition) {
			if old == nil {
				notFound(w, kind, name)
				return
			}
			if check != nil && !check(w, defs, store.Definition{Workspace: ws, Kind: kind, Name: name}) {
				return
			}
			if err := s.st.DeleteDefinition(r.Context(), ws, kind, name); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					notFound(w, kind, name)
					return
				}
				s.storeError(w, "delete the "+storeNoun(kind), err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}
}
