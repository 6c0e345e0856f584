package compute

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/trait"
)

// Candidate is an audience definition being previewed (not stored),
// compiled together with the workspace's definitions.
type Candidate struct {
	aud *audience.Audience
	// Counters are the event conditions it reads that the engine does not
	// maintain: the caller scans the log into them (PreviewData.Observe).
	Counters []*trait.Trait
	// TraitKeys are the profile trait keys it reads that the engine does
	// not hold: the caller reads them from the store (PreviewData.Trait).
	TraitKeys []string
}

// Candidate compiles def with the stored definitions (a stored audience of
// the same name is replaced by def). Errors are as Compile's.
func (e *Engine) Candidate(stored []store.Definition, def audience.Definition) (*Candidate, error) {
	body, err := json.Marshal(def)
	if err != nil {
		return nil, err
	}
	defs := slices.DeleteFunc(slices.Clone(stored), func(d store.Definition) bool {
		return d.Kind == store.DefinitionAudience && d.Name == def.Name
	})
	defs = append(defs, store.Definition{Workspace: e.o.Workspace, Kind: store.DefinitionAudience, Name: def.Name, Body: body})
	d, err := Compile(defs)
	if err != nil {
		return nil, err
	}
	c := &Candidate{aud: d.set.Audience(def.Name)}
	e.mu.RLock()
	defer e.mu.RUnlock()
	r := c.aud.Reads()
	for _, key := range r.Conditions {
		if e.defs.byKey[key] == nil {
			c.Counters = append(c.Counters, d.byKey[key])
		}
	}
	for _, k := range r.Traits {
		if !e.defs.traitKeys[k] {
			c.TraitKeys = append(c.TraitKeys, k)
		}
	}
	for _, a := range r.Audiences {
		if e.defs.set.Audience(a) == nil && a != def.Name {
			return nil, fmt.Errorf("audience %q is not stored yet: save it before previewing audiences that read it", a)
		}
	}
	return c, nil
}

// PreviewData is what a preview needs that the engine does not hold: the
// states of new counters and the values of new trait keys, by profile.
type PreviewData struct {
	states map[store.ProfileID]map[string]*trait.State
	traits map[store.ProfileID]map[string]any
}

// Observe folds a past event of user profile p into the candidate's new
// counters.
func (d *PreviewData) Observe(c *Candidate, p store.ProfileID, ev *store.Event) {
	te := trait.NewEvent(ev)
	for _, t := range c.Counters {
		if d.states == nil {
			d.states = map[store.ProfileID]map[string]*trait.State{}
		}
		m := d.states[p]
		s := m[t.Key()]
		if s == nil {
			s = &trait.State{}
		}
		if t.Observe(s, te) && m[t.Key()] == nil {
			if m == nil {
				m = map[string]*trait.State{}
				d.states[p] = m
			}
			m[t.Key()] = s
		}
	}
}

// Trait records profile p's current value of a trait key.
func (d *PreviewData) Trait(p store.ProfileID, key string, value json.RawMessage) {
	if d.traits == nil {
		d.traits = map[store.ProfileID]map[string]any{}
	}
	if d.traits[p] == nil {
		d.traits[p] = map[string]any{}
	}
	d.traits[p][key] = decode(value)
}

// PreviewResult is what a preview found.
type PreviewResult struct {
	Members   int64             // profiles that would be members
	Evaluated int64             // profiles of the audience's entity
	Sample    []store.ProfileID // the first members by id
}

// Preview evaluates the candidate over every profile that each yields
// (the identity graph's), as the engine and data hold them at now. The
// profiles that hold nothing the audience reads all look alike, so one
// evaluation decides for all of them.
func (e *Engine) Preview(c *Candidate, data *PreviewData, each func(func(p store.ProfileID, account bool) bool), now time.Time, sample int) PreviewResult {
	e.mu.RLock()
	defer e.mu.RUnlock()
	account := entityOf(c.aud.Definition().Entity) == store.KindAccount
	related := c.aud.Reads().Related
	var res PreviewResult
	var blank *bool
	var view audience.Profile
	each(func(p store.ProfileID, isAccount bool) bool {
		if isAccount != account {
			return true
		}
		res.Evaluated++
		pr := e.prof[p]
		plain := pr == nil && data.states[p] == nil && data.traits[p] == nil &&
			!(related && (len(e.accountsOf[p]) > 0 || len(e.usersOf[p]) > 0))
		var in bool
		switch {
		case plain && blank != nil:
			in = *blank
		default:
			in = e.previewOne(&view, c, data, p, pr, now)
			if plain {
				blank = &in
			}
		}
		if in {
			res.Members++
			if len(res.Sample) < sample {
				res.Sample = append(res.Sample, p)
			}
		}
		return true
	})
	return res
}

func (e *Engine) previewOne(v *audience.Profile, c *Candidate, data *PreviewData, p store.ProfileID, pr *profile, now time.Time) bool {
	if pr == nil {
		pr = &profile{}
	}
	resetComputed(v)
	for name, raw := range pr.values {
		if e.defs.names[name] == store.DefinitionTrait {
			v.Computed[name] = decode(raw)
		}
	}
	e.view(v, p, pr, now, c.aud.Reads().Related)
	for k, val := range data.traits[p] {
		v.Traits[k] = val
	}
	for _, t := range c.Counters {
		s := data.states[p][t.Key()]
		if pr.account {
			s = nil
			for _, u := range e.usersOf[p] {
				if us := data.states[u][t.Key()]; us != nil {
					if s == nil {
						s = &trait.State{}
					}
					t.Merge(s, us)
				}
			}
		}
		if s != nil {
			if val := t.Value(s, now); val != nil {
				v.Conditions[t.Key()] = decode(val)
			}
		}
	}
	in, err := c.aud.Eval(v)
	return err == nil && in
}
