package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/kithcdp/kith/secret"
	"github.com/kithcdp/kith/store"
)

// sealSensitive replaces, in the events and quarantined entries of b, the
// values of the workspace's sensitive traits by sealed envelopes
// (secret.TraitKeys.SealTraits; docs/security.md), before anything is
// stored. It answers the request and returns false if an event cannot be
// sealed: it is then stored nowhere rather than in the clear.
func (s *Server) sealSensitive(w http.ResponseWriter, ws string, b *store.Batch) bool {
	wsp, ok := s.reg.Workspace(ws)
	if !ok || wsp.Sensitive == nil {
		return true
	}
	keys := s.reg.Traits()
	seal := func(raw *json.RawMessage) bool {
		out, _, err := keys.SealTraits(ws, *raw, wsp.Sensitive)
		if err != nil {
			s.reject(w, http.StatusBadRequest, "unsealable_event", "an event could not be parsed to encrypt its sensitive traits; nothing was stored")
			return false
		}
		*raw = out
		return true
	}
	for i := range b.Events {
		if !seal(&b.Events[i].Raw) {
			return false
		}
	}
	for i := range b.Quarantine {
		if !seal(&b.Quarantine[i].Raw) {
			return false
		}
	}
	return true
}

// openTraits returns stored trait values with their sealed envelopes
// opened, for a reader allowed to see them.
func openTraits(ws string, traits []store.Trait) {
	for i := range traits {
		traits[i].Value = secret.OpenJSON(ws, traits[i].Value)
	}
}
