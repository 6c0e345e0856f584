package process

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// privacy applies a privacy control event (a privacy.Command) at its place
// in the log. The command's identifier is resolved to the profile that
// holds it now; a command about no profile changes nothing. Consent,
// terms, restrictions and objections change the profile's consent value
// (compute.ConsentValue); a correction sets traits, so the trait history
// keeps the old values; an erasure deletes the profile everywhere.
// Suppressions are kept by the suppression list itself: folding them
// changes nothing.
//
// The event goes on the profile's timeline, so the profile's history
// shows it and an erasure of the profile erases it too.
func (f *folder) privacy(ctx context.Context, b *batch, ev *store.Event) error {
	b.c.To = max(b.c.To, ev.Position)
	var cmd privacy.Command
	if err := json.Unmarshal(ev.Raw, &cmd); err != nil || cmd.Validate() != nil {
		// Written by Kith's own APIs, so this is a bug; skip rather than
		// stop folding the workspace for good.
		f.p.o.Logger.Error("malformed privacy control event; skipped", "workspace", f.ws, "position", ev.Position)
		return nil
	}
	if cmd.Action == privacy.ActionSuppress || cmd.Action == privacy.ActionUnsuppress {
		return nil
	}
	id, ok := f.rules.Normalize(cmd.Identifier)
	if !ok {
		return nil
	}
	p, held := f.g.Owner(id)
	if cmd.Action == privacy.ActionErase {
		// Even when no profile holds the identifier (any more), the
		// command itself names it, as may quarantined events: erase them.
		return f.erase(ctx, b, p, id, ev)
	}
	if !held {
		return nil
	}
	switch cmd.Action {
	case privacy.ActionCorrect:
		b.setTraits(p, store.KindUser, cmd.Traits, ev)
	default:
		b.eng.Control(p, &cmd, ev)
	}
	b.c.Timeline = append(b.c.Timeline, store.TimelineEntry{Profile: p, Position: ev.Position})
	return nil
}

// erase deletes profile p (0: no profile holds id) and everything it holds — its rows in every
// table, its events, quarantined events and dead letters naming its
// identifiers, and the control event that asked (ev) — and forgets it in
// memory. It runs in a batch of its own (step folds a control event
// alone, after the batches before it committed), and the store's erasure
// comes first: if the node dies before the batch commits, the next one
// loads a state without the profile and finds the control event gone.
func (f *folder) erase(ctx context.Context, b *batch, p store.ProfileID, id store.Identifier, ev *store.Event) error {
	e := store.Erasure{Workspace: f.ws, Identifiers: []store.Identifier{id}, Positions: []int64{ev.Position}}
	if p != 0 {
		e.Profiles = []store.ProfileID{p}
		e.Identifiers = e.Identifiers[:0]
		for _, h := range f.g.Holdings(p) {
			e.Identifiers = append(e.Identifiers, h.Identifier)
		}
	}
	rep, err := f.p.o.Store.Erase(ctx, e)
	if err != nil {
		return fmt.Errorf("erase profile %d of %s: %w", p, f.ws, err)
	}
	if p != 0 {
		f.g.Forget(p)
		b.eng.Forget(p, ev.Position)
	}
	f.p.o.Logger.Info("profile erased", "workspace", f.ws, "profile", p, "position", ev.Position,
		"events", rep.Events, "quarantined", rep.Quarantined, "state_rows", rep.State, "outbox", rep.Outbox,
		"dead_letters", rep.DeadLetters, "ledger", rep.Ledger)
	return nil
}
