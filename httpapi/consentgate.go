package httpapi

import (
	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/tenant"
)

// The consent gate at ingestion — events whose own consent denies a
// purpose the workspace requires for storage are dropped — is part of the
// ingestion gate (package gate), which handleTrack applies. This file holds
// the workspace's consent model as the consent API (consentapi.go) reads
// it.

// consentModel is a workspace's consent model as the HTTP API applies it
// (tenant.Workspace's Purposes and StoreRequires).
type consentModel struct {
	// Purposes is the workspace's catalogue; nil means consent.Default().
	Purposes *consent.Catalogue
	// StoreRequires are the purposes an event's own consent must not deny
	// for it to be stored; empty stores every event.
	StoreRequires []string
}

// catalogue returns m's purposes.
func (m consentModel) catalogue() *consent.Catalogue {
	if m.Purposes == nil {
		return consent.Default()
	}
	return m.Purposes
}

// consentModels reads the workspaces' consent models from a registry.
type consentModels struct {
	reg *tenant.Registry
}

// model returns the consent model of workspace ws (the default one for a
// workspace the registry does not know).
func (c consentModels) model(ws string) consentModel {
	w, ok := c.reg.Workspace(ws)
	if !ok {
		return consentModel{}
	}
	return consentModel{Purposes: w.Purposes, StoreRequires: w.StoreRequires}
}
