package compute

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/trait"
)

// A counter's backfill marker is a ComputeState of profile 0 under the
// counter's key: it records that the log up to a position was folded into
// the counter, so a counter added while events were already stored is
// backfilled once, also across a crash in the middle.
const markerProfile store.ProfileID = 0

// Backlog is what Load found left to do before folding on.
type Backlog struct {
	// Counters have no backfill marker: the caller folds the log up to its
	// cursor into them (Backfill), then calls Backfilled.
	Counters []*trait.Trait
	// EvaluateAll is set when a definition is new or changed since the
	// state was written: the caller touches every profile (Touch) so that
	// the next Evaluate evaluates them all.
	EvaluateAll bool
}

// Load restores a workspace's engine from the store. Rows of definitions
// that no longer exist are deleted by the first Evaluate, and members of
// deleted audiences leave them (reason "removed").
func Load(ctx context.Context, st store.ComputeStore, workspace string, defs *Defs, o Options) (*Engine, Backlog, error) {
	o.Workspace = workspace
	e := New(defs, o)
	accountNames := map[string]bool{}
	for _, t := range defs.traits {
		if entityOf(t.Definition().Entity) == store.KindAccount {
			accountNames[t.Definition().Name] = true
		}
	}
	for _, a := range defs.set.Audiences() {
		if entityOf(a.Definition().Entity) == store.KindAccount {
			accountNames[a.Definition().Name] = true
		}
	}
	marked := map[string]bool{}
	err := st.ScanComputeStates(ctx, workspace, func(cs store.ComputeState) error {
		t := defs.byKey[cs.Key]
		switch {
		case cs.Profile == markerProfile && defs.evalKeys[cs.Key]:
			marked[cs.Key] = true
		case t == nil:
			e.out.States = append(e.out.States, store.ComputeState{Profile: cs.Profile, Key: cs.Key})
		case cs.Profile == markerProfile:
			marked[cs.Key] = true
		default:
			s, err := t.Decode(cs.Data)
			if err != nil {
				return fmt.Errorf("state %s of profile %d: %w", cs.Key, cs.Profile, err)
			}
			pr := e.get(cs.Profile, false)
			if pr.states == nil {
				pr.states = map[string]*trait.State{}
			}
			pr.states[cs.Key] = s
		}
		return nil
	})
	if err != nil {
		return nil, Backlog{}, fmt.Errorf("load computed states: %w", err)
	}
	err = st.ScanComputedValues(ctx, workspace, func(v store.ComputedValue) error {
		if _, ok := defs.names[v.Name]; !ok && v.Name != ConsentValue {
			e.out.Values = append(e.out.Values, store.ComputedValue{Profile: v.Profile, Name: v.Name, At: v.At, Position: v.Position})
			return nil
		}
		pr := e.get(v.Profile, accountNames[v.Name])
		if pr.values == nil {
			pr.values = map[string]json.RawMessage{}
		}
		pr.values[v.Name] = v.Value
		if v.Name == ConsentValue {
			pr.excluded = decodeConsent(v.Value).excludes()
		}
		return nil
	})
	if err != nil {
		return nil, Backlog{}, fmt.Errorf("load computed values: %w", err)
	}
	if keys := defs.TraitKeys(); len(keys) > 0 {
		err = st.ScanTraits(ctx, workspace, keys, func(p store.ProfileID, t store.Trait) error {
			prio := 0
			if o.TraitPriority != nil {
				prio = o.TraitPriority(t.Source)
			}
			pr := e.get(p, false)
			if pr.traits == nil {
				pr.traits = map[string]held{}
			}
			pr.traits[t.Key] = held{value: decode(t.Value), priority: prio, ts: t.Timestamp, position: t.Position}
			return nil
		})
		if err != nil {
			return nil, Backlog{}, fmt.Errorf("load traits: %w", err)
		}
	}
	err = st.ScanLinks(ctx, workspace, func(l store.Link) error {
		e.accountsOf[l.User] = append(e.accountsOf[l.User], l.Account)
		e.usersOf[l.Account] = append(e.usersOf[l.Account], l.User)
		e.get(l.Account, true)
		return nil
	})
	if err != nil {
		return nil, Backlog{}, fmt.Errorf("load links: %w", err)
	}
	err = st.ScanMembers(ctx, workspace, func(name string, p store.ProfileID) error {
		if defs.set.Audience(name) == nil {
			e.removed = append(e.removed, memberRef{p, name})
		}
		pr := e.get(p, accountNames[name])
		if pr.members == nil {
			pr.members = map[string]bool{}
		}
		pr.members[name] = true
		return nil
	})
	if err != nil {
		return nil, Backlog{}, fmt.Errorf("load audience members: %w", err)
	}
	var backlog Backlog
	for _, t := range defs.observers {
		if !marked[t.Key()] {
			backlog.Counters = append(backlog.Counters, t)
		}
	}
	for _, key := range sortedKeys(defs.evalKeys) {
		if !marked[key] {
			backlog.EvaluateAll = true
			e.out.States = append(e.out.States, store.ComputeState{Profile: markerProfile, Key: key, Data: []byte("1")})
		}
	}
	// Windows: every loaded profile is due at once so that windows that
	// moved while no node folded are applied.
	for p, pr := range e.prof {
		if len(pr.states) > 0 {
			e.dirty[p] = mark{timed: true}
		}
	}
	return e, backlog, nil
}

// Backfill folds a past event of user profile p into the given counters
// (those Load returned).
func (e *Engine) Backfill(p store.ProfileID, ev *store.Event, counters []*trait.Trait) {
	if e.observe(p, ev, counters) {
		e.touch(p, ev.Position)
		if e.defs.accounts {
			for _, a := range e.accountsOf[p] {
				e.touch(a, ev.Position)
			}
		}
	}
}

// Backfilled records that the log up to position is folded into counters;
// the markers are written with the next Evaluate.
func (e *Engine) Backfilled(counters []*trait.Trait, position int64) {
	for _, t := range counters {
		e.out.States = append(e.out.States, store.ComputeState{
			Profile: markerProfile, Key: t.Key(), Data: strconv.AppendInt(nil, position, 10),
		})
	}
}

// Touch marks a profile for evaluation in the next Evaluate (after the
// definitions changed, every profile is). What changes then is recorded
// with reason "evaluated", even if time moved the profile's windows too:
// the definitions are the cause.
func (e *Engine) Touch(p store.ProfileID, account bool) {
	if account {
		e.get(p, true)
	}
	m := e.dirty[p]
	m.timed = false
	e.dirty[p] = m
}

// memberRef is a profile's membership of an audience.
type memberRef struct {
	p    store.ProfileID
	name string
}
