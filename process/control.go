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
	Action     string           `json:"action"` // block, unblock or remove
	Identifier store.Identifier `json:"identifier"`
	Actor      string           `json:"actor,omitempty"` // the token that asked
}

// Identity command actions.
const (
	ActionBlock   = "block"
	ActionUnblock = "unblock"
	ActionRemove  = "remove"
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
	var ignore []store.Identifier
	switch cmd.Action {
	case ActionUnblock:
		f.g.Unblock(id)
		b.c.Unblock = append(b.c.Unblock, id)
		return nil
	case ActionBlock:
		f.g.Block(id)
		b.c.Block = append(b.c.Block, id)
	case ActionRemove:
		ignore = []store.Identifier{id}
	default:
		f.p.o.Logger.Error("unknown identity control action; skipped", "workspace", f.ws, "position", ev.Position, "action", cmd.Action)
		return nil
	}
	if !held {
		return nil
	}
	return f.rebuild(ctx, b, owner, ignore)
}

// rebuild dissolves profile p and folds its events again, in log order.
func (f *folder) rebuild(ctx context.Context, b *batch, p store.ProfileID, ignore []store.Identifier) error {
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
	f.g.Dissolve(p, ignore)
	defer f.g.EndRebuild()
	b.c.Rebuilt = append(b.c.Rebuilt, p)
	b.rebuilding = true
	defer func() { b.rebuilding = false }()
	for len(positions) > 0 {
		n := min(len(positions), 1000)
		events, err := f.p.o.Store.Read(ctx, store.LogQuery{Workspace: f.ws, Positions: positions[:n], Limit: n})
		if err != nil {
			return fmt.Errorf("rebuild profile %d: %w", p, err)
		}
		for i := range events {
			b.fold(f.g, &events[i])
		}
		positions = positions[n:]
	}
	return nil
}
