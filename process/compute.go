package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/trait"
)

// loadEngine compiles the workspace's stored definitions (as the caller
// just read them) and loads the compute engine's state, backfills counters
// that are new since the state was written, and commits what that changed.
// Without definitions the engine holds nothing and costs next to nothing.
func (f *folder) loadEngine(ctx context.Context, stored []store.Definition) error {
	o := &f.p.o
	f.defsDigest = compute.Digest(stored)
	f.defsCheckAt = time.Now().Add(o.DefinitionsPoll) // real time: polling is not folding
	defs, err := compute.Compile(stored)
	if err != nil {
		// The admin API and the config loader compile definitions before
		// storing them, so this is a build that no longer accepts them.
		o.Logger.Error("stored definitions do not compile; computing none until they are fixed", "workspace", f.ws, "err", err)
		if defs, err = compute.Compile(nil); err != nil {
			return err
		}
	}
	if err := f.flush(); err != nil {
		return err
	}
	eng, backlog, err := compute.Load(ctx, o.Store, f.ws, defs, compute.Options{
		TraitPriority: func(source string) int {
			if o.TraitPriority == nil {
				return 0
			}
			return o.TraitPriority(f.ws, source)
		},
		Identifiers: f.g.Holdings,
		Sweep:       o.ComputeSweep,
	})
	if err != nil {
		return fmt.Errorf("load computed state of %s: %w", f.ws, err)
	}
	eng.Lock()
	defer eng.Unlock()
	if len(backlog.Counters) > 0 {
		if err := f.backfill(ctx, eng, backlog.Counters); err != nil {
			return err
		}
	}
	if backlog.EvaluateAll {
		f.g.Profiles(func(p store.ProfileID, account bool) bool {
			eng.Touch(p, account)
			return true
		})
	}
	if err := f.commitCompute(ctx, eng.Evaluate(o.Now(), f.pos)); err != nil {
		return err
	}
	f.setEngine(eng)
	return nil
}

// backfill folds the log up to the cursor into counters that are new:
// each past event goes to the profile that now holds its userId or, failing
// that, its anonymousId.
func (f *folder) backfill(ctx context.Context, eng *compute.Engine, counters []*trait.Trait) error {
	o := &f.p.o
	start, last := time.Now(), time.Now()
	o.Logger.Info("backfilling computed traits and audience conditions from the log",
		"workspace", f.ws, "counters", len(counters), "position", f.pos)
	f.p.mu.Lock()
	f.p.backfills[f.ws] = [2]int64{0, f.pos}
	f.p.mu.Unlock()
	defer func() {
		f.p.mu.Lock()
		delete(f.p.backfills, f.ws)
		f.p.mu.Unlock()
	}()
	for after := int64(0); after < f.pos; {
		page, err := o.Store.Read(ctx, store.LogQuery{Workspace: f.ws, After: after, Limit: 1000})
		if err != nil {
			return fmt.Errorf("backfill %s: %w", f.ws, err)
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			ev := &page[i]
			if ev.Position > f.pos {
				break
			}
			if p := owner(f.g, f.rules, ev); p != 0 {
				eng.Backfill(p, ev, counters)
			}
		}
		after = page[len(page)-1].Position
		f.p.m.backfill.WithLabelValues(f.ws).Set(float64(min(after, f.pos)))
		f.p.mu.Lock()
		f.p.backfills[f.ws] = [2]int64{min(after, f.pos), f.pos}
		f.p.mu.Unlock()
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			o.Logger.Info("backfilling", "workspace", f.ws, "position", after, "of", f.pos)
		}
	}
	eng.Backfilled(counters, f.pos)
	o.Logger.Info("backfill done", "workspace", f.ws, "events", f.pos, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// owner returns the profile that holds an event's userId, or else its
// anonymousId (0 if neither is held).
func owner(g *identity.Graph, rules *identity.Compiled, ev *store.Event) store.ProfileID {
	for _, id := range []store.Identifier{{Type: identity.UserID, Value: ev.UserID}, {Type: identity.AnonymousID, Value: ev.AnonymousID}} {
		if id.Value == "" {
			continue
		}
		if n, ok := rules.Normalize(id); ok {
			if p, held := g.Owner(n); held {
				return p
			}
		}
	}
	return 0
}

// tick runs between batches: it evaluates profiles whose windows moved
// with time and reloads the engine when the definitions changed.
func (f *folder) tick(ctx context.Context) error {
	o := &f.p.o
	if !time.Now().Before(f.defsCheckAt) {
		f.defsCheckAt = time.Now().Add(o.DefinitionsPoll)
		stored, err := o.Store.Definitions(ctx, f.ws)
		if err != nil {
			return fmt.Errorf("definitions of %s: %w", f.ws, err)
		}
		if compute.Digest(stored) != f.defsDigest {
			if rulesBody(stored) != f.rulesBody {
				return errReload
			}
			o.Logger.Info("definitions changed; reloading computed traits and audiences", "workspace", f.ws)
			return f.loadEngine(ctx, stored)
		}
	}
	now := o.Now()
	if !f.eng.Pending(now) {
		return nil
	}
	f.eng.Lock()
	cc := f.eng.Evaluate(now, f.pos)
	f.eng.Unlock()
	return f.commitCompute(ctx, cc)
}

// commitCompute commits compute changes that no event brought (the
// cursor does not move).
func (f *folder) commitCompute(ctx context.Context, cc store.ComputeChanges) error {
	if cc.Empty() {
		return nil
	}
	if err := f.flush(); err != nil {
		return err
	}
	c := &store.Changes{Workspace: f.ws, Epoch: f.lease.Epoch, From: f.pos, To: f.pos, NextProfileID: f.g.Next(), Compute: cc}
	if err := f.p.o.Store.Commit(ctx, c); err != nil {
		return fmt.Errorf("commit computed state of %s at %d: %w", f.ws, f.pos, err)
	}
	return nil
}

// setEngine makes eng the folder's engine and, while the folder leads,
// the one readers reach.
func (f *folder) setEngine(eng *compute.Engine) {
	f.eng = eng
	if f.lead {
		f.p.mu.Lock()
		f.p.leading[f.ws] = &leader{g: f.g, rules: f.rules, eng: eng}
		f.p.mu.Unlock()
	}
}

// errReload ends a folder's lead so that it starts again at once: the
// identity rules changed and the graph must be loaded under them.
var errReload = errors.New("identity rules changed")

// rulesBody returns the body of the identity rules set through the admin
// API ("" if none).
func rulesBody(defs []store.Definition) string {
	for _, d := range defs {
		if d.Kind == store.DefinitionIdentity && d.Name == IdentityRulesName {
			return string(d.Body)
		}
	}
	return ""
}

// IdentityRulesName is the name of the identity rules definition.
const IdentityRulesName = "rules"

// apiRules returns the identity rules set through the admin API among a
// workspace's stored definitions, compiled, and their body (nil and "" if
// none). Rules that no longer compile are logged and ignored: the config
// file's apply.
func (p *Processor) apiRules(ws string, defs []store.Definition) (*identity.Compiled, string) {
	body := rulesBody(defs)
	if body == "" {
		return nil, ""
	}
	var r identity.Rules
	c, err := func() (*identity.Compiled, error) {
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, err
		}
		return r.Compile()
	}()
	if err != nil {
		p.o.Logger.Error("identity rules set through the API do not compile; using the config file's", "workspace", ws, "err", err)
		return nil, body
	}
	return c, body
}

// ErrNotLeading is returned by Preview when this node does not fold the
// workspace (another node does, or it is starting).
var ErrNotLeading = errors.New("this node does not fold the workspace now")

// Preview evaluates an audience definition that is not stored over every
// profile of a workspace this node folds, and returns the number of
// members and a sample. Event conditions and trait keys that no stored
// definition maintains are computed for the preview: the first from the
// log (each event goes to the profile holding its userId, else its
// anonymousId), the second from the store. Errors from compiling the
// definition are as compute.Compile's.
func (p *Processor) Preview(ctx context.Context, ws string, def audience.Definition, sample int) (compute.PreviewResult, error) {
	p.mu.Lock()
	l := p.leading[ws]
	p.mu.Unlock()
	if l == nil {
		return compute.PreviewResult{}, ErrNotLeading
	}
	stored, err := p.o.Store.Definitions(ctx, ws)
	if err != nil {
		return compute.PreviewResult{}, fmt.Errorf("definitions of %s: %w", ws, err)
	}
	c, err := l.eng.Candidate(stored, def)
	if err != nil {
		return compute.PreviewResult{}, err
	}
	var data compute.PreviewData
	if len(c.TraitKeys) > 0 {
		err := p.o.Store.ScanTraits(ctx, ws, c.TraitKeys, func(id store.ProfileID, t store.Trait) error {
			data.Trait(id, t.Key, t.Value)
			return nil
		})
		if err != nil {
			return compute.PreviewResult{}, fmt.Errorf("read traits of %s: %w", ws, err)
		}
	}
	if len(c.Counters) > 0 {
		// Events are read without the engine's lock; owners are looked up
		// under it, a page at a time, so folding goes on meanwhile.
		for after := int64(0); ; {
			page, err := p.o.Store.Read(ctx, store.LogQuery{Workspace: ws, After: after, Limit: 1000})
			if err != nil {
				return compute.PreviewResult{}, fmt.Errorf("read log of %s: %w", ws, err)
			}
			if len(page) == 0 {
				break
			}
			l.eng.RLock()
			for i := range page {
				if id := owner(l.g, l.rules, &page[i]); id != 0 {
					data.Observe(c, id, &page[i])
				}
			}
			l.eng.RUnlock()
			after = page[len(page)-1].Position
		}
	}
	return l.eng.Preview(c, &data, l.g.Profiles, p.o.Now(), sample), nil
}

// Backfill reports the progress of a backfill of new computed traits or
// audience conditions running on this node for a workspace: the log
// position reached and the position it runs to.
func (p *Processor) Backfill(ws string) (position, end int64, running bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.backfills[ws]
	return b[0], b[1], ok
}
