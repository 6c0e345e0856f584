package httpapi

import (
	"github.com/kithcdp/kith/consent"
)

// The consent gate at ingestion — events whose own consent denies a
// purpose the workspace requires for storage are dropped — is part of the
// ingestion gate (package gate), which handleTrack applies. This file holds
// the workspace's consent model as the consent API (consentapi.go) reads
// it.

// consentModel returns workspace ws's purpose catalogue and the purposes
// an event's own consent must not deny for it to be stored
// (tenant.Workspace's Purposes and StoreRequires); consent.Default() and
// none for a workspace the registry does not know.
func (s *Server) consentModel(ws string) (*consent.Catalogue, []string) {
	if w, ok := s.reg.Workspace(ws); ok && w.Purposes != nil {
		return w.Purposes, w.StoreRequires
	}
	return consent.Default(), nil
}
