package process

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/kithcdp/kith/store"
)

// IdentityCommand is the JSON of a store.TypeIdentity control event.
type IdentityCommand struct {
	Action     string           `json:"action"` // block, unblock, remove or unmerge
	Identifier store.Identifier `json:"identifier"`
	// From and Position, for unmerge, are the profile that was merged away
	// through Identifier and the event that merged it: the rebuild folds
	// that event without Identifier and gives From its id back.
	From     store.ProfileID `json:"from,omitempty"`
	Position int64           `json:"position,omitempty"`
	Actor    string          `json:"actor,omitempty"` // the token that asked
}

// Identity command actions.
const (
	ActionBlock   = "block"
	ActionUnblock = "unblock"
	ActionRemove  = "remove"
	ActionUnmerge = "unmerge"
)

// control applies an identity control event: it blocks or unblocks an
// identifier, and rebuilds the profile that held it by folding that
// profile's events again under the corrected graph.
func (f *folder) control(ctx context.Context, b *batch, ev *store.Event) error {
	b.c.To = ev.Position
	var cmd IdentityCommand
	if err := json.Unmarshal(ev.Raw, &cmd); err != nil || cmd.Identifier.Type == "" || cmd.Identifier.Value == "" {
		// Written by Kith's admin API, so this is a bug; skip rather than
		// stop folding the workspace for good.
		f.p.o.Logger.Error("malformed identity control event; skipped", "workspace", f.ws, "position", ev.Position)
		return nil
	}
	id := cmd.Identifier
	owner, held := f.g.Owner(id)
	b.c.Decisions = append(b.c.Decisions, store.Decision{Position: ev.Position, Profile: owner, Identifier: id,
		Code: "admin_" + cmd.Action, Reason: fmt.Sprintf("%s asked to %s %s", cmd.Actor, cmd.Action, id), At: ev.ReceivedAt})
	fix := correction{}
	switch cmd.Action {
	case ActionUnblock:
		f.g.Unblock(id)
		b.c.Unblock = append(b.c.Unblock, id)
		return nil
	case ActionBlock:
		f.g.Block(id)
		b.c.Block = append(b.c.Block, id)
	case ActionRemove:
		fix.ignore = id
	case ActionUnmerge:
		fix.ignore, fix.at = id, cmd.Position
		if cmd.From != 0 && cmd.From != owner {
			fix.reuse = []store.ProfileID{cmd.From}
		}
	default:
		f.p.o.Logger.Error("unknown identity control action; skipped", "workspace", f.ws, "position", ev.Position, "action", cmd.Action)
		return nil
	}
	if !held {
		return nil
	}
	return f.rebuild(ctx, b, owner, fix)
}

// correction is how a rebuild differs from the original folding: ignore is
// left out of every event (at == 0) or of the event at position at only,
// and reuse are ids to give back.
type correction struct {
	ignore store.Identifier
	at     int64
	reuse  []store.ProfileID
}

// rebuild dissolves profile p and folds its events again, in log order.
func (f *folder) rebuild(ctx context.Context, b *batch, p store.ProfileID, fix correction) error {
	var positions []int64
	for before := int64(0); ; {
		page, err := f.p.o.Store.Timeline(ctx, f.ws, p, before, 1000)
		if err != nil {
			return fmt.Errorf("rebuild profile %d: %w", p, err)
		}
		positions = append(positions, page...)
		if len(page) < 1000 {
			break
		}
		before = page[len(page)-1]
	}
	slices.Reverse(positions)
	f.g.Dissolve(p, fix.reuse...)
	defer f.g.EndRebuild()
	b.c.Rebuilt = append(b.c.Rebuilt, p)
	b.eng.Rebuild(p, b.c.To)
	b.rebuilding = true
	defer func() { b.rebuilding = false }()
	defer func() {
		// An id given back (undone merge) that the rebuild used loses its
		// redirect row; one it did not use keeps redirecting.
		for _, q := range fix.reuse {
			if len(f.g.Holdings(q)) > 0 {
				b.c.Rebuilt = append(b.c.Rebuilt, q) // it held nothing in the engine: it was merged away
			}
		}
	}()
	for len(positions) > 0 {
		n := min(len(positions), 1000)
		events, err := f.p.o.Store.Read(ctx, store.LogQuery{Workspace: f.ws, Positions: positions[:n], Limit: n})
		if err != nil {
			return fmt.Errorf("rebuild profile %d: %w", p, err)
		}
		for i := range events {
			if events[i].Type == store.TypePrivacy {
				// Consent, terms, restrictions and corrections on the
				// timeline apply again to whichever profile holds their
				// identifier now.
				if err := f.privacy(ctx, b, &events[i]); err != nil {
					return err
				}
				continue
			}
			switch {
			case fix.ignore.Type == "":
			case fix.at == 0 || events[i].Position == fix.at:
				f.g.Ignore(fix.ignore)
			default:
				f.g.Ignore()
			}
			b.fold(f.g, &events[i])
		}
		positions = positions[n:]
	}
	return nil
}
