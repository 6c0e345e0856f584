package httpapi

import (
	"net/http"

	"github.com/kithcdp/kith/secret"
	"github.com/kithcdp/kith/store"
)

// sealSensitive encrypts the workspace's sensitive traits in b before
// anything is stored (tenant.Registry.SealBatch). It answers the request
// and returns false if an event cannot be sealed: it is then stored
// nowhere rather than in the clear.
func (s *Server) sealSensitive(w http.ResponseWriter, ws string, b *store.Batch) bool {
	if err := s.reg.SealBatch(ws, b); err != nil {
		s.reject(w, http.StatusBadRequest, "unsealable_event", "an event could not be parsed to encrypt its sensitive traits; nothing was stored")
		return false
	}
	return true
}

// openTraits opens the sealed envelopes in stored trait values, for a
// reader allowed to see them.
func openTraits(ws string, traits []store.Trait) {
	for i := range traits {
		traits[i].Value = secret.OpenJSON(ws, traits[i].Value)
	}
}
