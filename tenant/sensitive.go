package tenant

import (
	"encoding/json"
	"fmt"

	"github.com/kithcdp/kith/store"
)

// SealBatch replaces, in the events and quarantined entries of b (all of
// workspace ws), the values of the workspace's sensitive traits by sealed
// envelopes (secret.TraitKeys.SealTraits; docs/security.md). Every path
// that appends what clients sent calls it before the append. It fails only
// on raw JSON it cannot parse; the caller then stores nothing.
func (r *Registry) SealBatch(ws string, b *store.Batch) error {
	w, ok := r.workspaces[ws]
	if !ok || w.Sensitive == nil {
		return nil
	}
	seal := func(raw *json.RawMessage) error {
		out, _, err := r.traits.SealTraits(ws, *raw, w.Sensitive)
		if err != nil {
			return fmt.Errorf("encrypt sensitive traits: %w", err)
		}
		*raw = out
		return nil
	}
	for i := range b.Events {
		if err := seal(&b.Events[i].Raw); err != nil {
			return err
		}
	}
	for i := range b.Quarantine {
		if err := seal(&b.Quarantine[i].Raw); err != nil {
			return err
		}
	}
	return nil
}
