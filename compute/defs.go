package compute

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/trait"
)

// Defs are a workspace's compiled definitions: its computed traits and its
// audiences with their implicit event conditions.
type Defs struct {
	traits    []*trait.Trait          // computed traits, by name
	set       *audience.Set           // audiences, in evaluation order
	observers []*trait.Trait          // every maintained counter: computed traits and conditions
	byKey     map[string]*trait.Trait // observers by Key
	traitKeys map[string]bool         // profile trait keys audiences read
	names     map[string]string       // computed value name → "trait" or "audience"
	accounts  bool                    // some trait or condition aggregates over an account's users
	related   bool                    // some audience reads related profiles
	now       bool                    // some audience reads now
	synced    map[string]bool         // computed traits a destination subscribes to (their changes go to the outbox)
	version   string                  // digest of every definition body
	evalKeys  map[string]bool         // markers that the current definitions were evaluated on every profile
}

// DefinitionError is a definition that does not compile, with the problems
// found (each a *trait.Error or *audience.Error).
type DefinitionError struct {
	Kind, Name string
	Err        error
}

func (e *DefinitionError) Error() string {
	return fmt.Sprintf("%s %q: %v", e.Kind, e.Name, e.Err)
}

func (e *DefinitionError) Unwrap() error { return e.Err }

// Compile parses and compiles a workspace's stored definitions. It reports
// every definition that does not compile (errors.Join of
// *DefinitionError); names must be unique across traits and audiences,
// since both become values on the profile.
func Compile(defs []store.Definition) (*Defs, error) {
	d := &Defs{byKey: map[string]*trait.Trait{}, traitKeys: map[string]bool{}, names: map[string]string{}, evalKeys: map[string]bool{}, synced: map[string]bool{}}
	var errs []error
	var auds []audience.Definition
	computed := map[string]string{}
	for _, def := range defs {
		if def.Kind == store.DefinitionIdentity {
			continue // the processor's
		}
		if def.Kind == store.DefinitionDestination {
			// Destinations are the delivery engine's; the engine only needs
			// to know which computed traits they receive changes of.
			var sub struct {
				Traits []string `json:"traits"`
			}
			_ = json.Unmarshal(def.Body, &sub) // validated when stored
			for _, name := range sub.Traits {
				d.synced[name] = true
			}
			continue
		}
		d.evalKeys["eval:"+def.Kind+":"+def.Name+"."+Digest([]store.Definition{def})] = true
		if def.Name == ConsentValue {
			errs = append(errs, &DefinitionError{def.Kind, def.Name,
				errors.New("the name is reserved: the profile's current consent is kept under it")})
			continue
		}
		if prev, dup := d.names[def.Name]; dup {
			errs = append(errs, &DefinitionError{def.Kind, def.Name,
				fmt.Errorf("the name is already used by a %s: computed traits and audiences share one namespace", prev)})
			continue
		}
		d.names[def.Name] = def.Kind
		switch def.Kind {
		case store.DefinitionTrait:
			td, err := trait.Parse(def.Body)
			if err == nil {
				var t *trait.Trait
				if t, err = trait.Compile(td); err == nil {
					d.traits = append(d.traits, t)
					computed[td.Name] = entityOf(td.Entity)
				}
			}
			if err != nil {
				errs = append(errs, &DefinitionError{def.Kind, def.Name, err})
			}
		case store.DefinitionAudience:
			ad, err := audience.Parse(def.Body)
			if err != nil {
				errs = append(errs, &DefinitionError{def.Kind, def.Name, err})
				continue
			}
			auds = append(auds, ad)
		default:
			errs = append(errs, &DefinitionError{def.Kind, def.Name, errors.New("unknown definition kind")})
		}
	}
	set, err := audience.Compile(auds, computed)
	if err != nil {
		errs = append(errs, &DefinitionError{store.DefinitionAudience, "", err})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	d.set = set
	d.version = Digest(defs)
	for _, t := range d.traits {
		d.observe(t)
		if entityOf(t.Definition().Entity) == store.KindAccount {
			d.accounts = true
		}
	}
	for _, t := range set.Conditions() {
		d.observe(t)
	}
	for _, k := range set.TraitKeys() {
		d.traitKeys[k] = true
	}
	for _, a := range set.Audiences() {
		r := a.Reads()
		d.related = d.related || r.Related
		d.now = d.now || r.Now
		if entityOf(a.Definition().Entity) == store.KindAccount && len(r.Conditions) > 0 {
			d.accounts = true
		}
	}
	return d, nil
}

func (d *Defs) observe(t *trait.Trait) {
	if _, ok := d.byKey[t.Key()]; !ok {
		d.byKey[t.Key()] = t
		d.observers = append(d.observers, t)
	}
}

// syncs reports whether a destination receives changes of a computed
// trait.
func (d *Defs) syncs(name string) bool { return d.synced["*"] || d.synced[name] }

// Version is a digest of the definitions: it changes when any does.
func (d *Defs) Version() string { return d.version }

// Digest is a short digest of stored definitions (kind, name and body), to
// tell cheaply whether they changed.
func Digest(defs []store.Definition) string {
	h := sha256.New()
	for _, def := range defs {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", def.Kind, def.Name, def.Body)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Empty reports whether there is nothing to compute.
func (d *Defs) Empty() bool { return len(d.traits) == 0 && len(d.set.Audiences()) == 0 }

// Keys returns the keys of every maintained counter, sorted.
func (d *Defs) Keys() []string {
	keys := make([]string, 0, len(d.byKey))
	for k := range d.byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TraitKeys returns the profile trait keys audiences read, sorted.
func (d *Defs) TraitKeys() []string {
	keys := make([]string, 0, len(d.traitKeys))
	for k := range d.traitKeys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// entityOf maps a definition's entity to a profile kind ("" means user).
func entityOf(entity string) string {
	if entity == store.KindAccount {
		return store.KindAccount
	}
	return store.KindUser
}
