// Package compute maintains a workspace's computed traits and audience
// memberships while the processor folds its log.
//
// The Engine keeps in memory, per profile, the maintained state of every
// computed trait and audience event condition (package trait), the profile
// traits audiences read, the computed values and memberships as stored,
// and the links between users and accounts. The processor tells it what
// each folded event did (Observe, Trait, Merge, Link, Rebuild); at the end
// of each batch Evaluate re-evaluates only the profiles that changed, or
// whose windows moved with time, and returns the rows to write in the
// batch's transaction: states, values, membership changes and outbox
// entries ("Audience Entered" / "Audience Exited").
//
// Everything the engine holds is a function of the log and the
// definitions, so a replay rebuilds it; Load restores it from the store
// when a node takes a workspace's lease.
package compute

import (
	"bytes"
	"cmp"
	"container/heap"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/trait"
)

// Options configure an Engine.
type Options struct {
	Workspace string
	// TraitPriority returns a source's trait priority (as the processor
	// uses it); nil gives every source 0.
	TraitPriority func(source string) int
	// Identifiers returns the identifiers a profile holds (for the userId
	// and anonymousId of outbox events); nil leaves them out.
	Identifiers func(store.ProfileID) []store.HeldIdentifier
	// Sweep is how often every known profile is re-evaluated when an
	// audience reads now (default 1h). Windows of computed traits and
	// event conditions expire exactly, without a sweep.
	Sweep time.Duration
}

// Engine computes one workspace's traits and audiences. The one goroutine
// that folds the workspace calls its methods holding Lock (Pending and
// the read methods take it themselves), so that readers such as Preview
// see whole batches.
type Engine struct {
	mu   sync.RWMutex
	o    Options
	defs *Defs

	prof       map[store.ProfileID]*profile
	accountsOf map[store.ProfileID][]store.ProfileID // user → accounts
	usersOf    map[store.ProfileID][]store.ProfileID // account → users
	dirty      map[store.ProfileID]mark
	due        dueHeap
	lastSweep  time.Time
	out        store.ComputeChanges
	written    map[store.ProfileID]map[string]bool // states changed since the last Evaluate
	removed    []memberRef                         // memberships of deleted audiences, to end
	errors     int64                               // audience evaluations that failed
	scratch    audience.Profile                    // what audiences see of the profile being evaluated, reused
}

// profile is what the engine holds about one profile.
type profile struct {
	account bool
	states  map[string]*trait.State    // by trait Key
	traits  map[string]held            // the trait keys audiences read
	values  map[string]json.RawMessage // computed values as stored
	members map[string]bool            // audiences it is in
	due     time.Time                  // when its windows next move (zero: never)
	// excluded is set while the person's restriction or objection keeps
	// the profile out of audiences and computed traits (consent.go).
	excluded bool
}

// held is a profile trait's current value, decoded as audiences see it,
// with what decides which value wins (as in store.TraitValue).
type held struct {
	value    any
	priority int
	ts       time.Time
	position int64
}

func (h held) beats(o held) bool {
	if h.priority != o.priority {
		return h.priority > o.priority
	}
	if !h.ts.Equal(o.ts) {
		return h.ts.After(o.ts)
	}
	return h.position > o.position
}

// mark is why a profile is to be evaluated.
type mark struct {
	position int64 // the latest event that touched it (0: none)
	timed    bool  // time moved its windows (and no event touched it)
}

// New returns an empty engine for defs.
func New(defs *Defs, o Options) *Engine {
	if o.Sweep <= 0 {
		o.Sweep = time.Hour
	}
	return &Engine{
		o: o, defs: defs,
		prof:       map[store.ProfileID]*profile{},
		accountsOf: map[store.ProfileID][]store.ProfileID{},
		usersOf:    map[store.ProfileID][]store.ProfileID{},
		dirty:      map[store.ProfileID]mark{},
		written:    map[store.ProfileID]map[string]bool{},
	}
}

// Defs returns the definitions the engine computes.
func (e *Engine) Defs() *Defs { return e.defs }

func (e *Engine) get(p store.ProfileID, account bool) *profile {
	pr := e.prof[p]
	if pr == nil {
		pr = &profile{account: account}
		e.prof[p] = pr
	}
	if account {
		pr.account = true
	}
	return pr
}

func (e *Engine) touch(p store.ProfileID, position int64) {
	if m := e.dirty[p]; position >= m.position {
		e.dirty[p] = mark{position: position}
	}
}

// timed marks p for evaluation because time passed, unless something else
// did.
func (e *Engine) timed(p store.ProfileID) {
	if _, ok := e.dirty[p]; !ok {
		e.dirty[p] = mark{timed: true}
	}
}

// Observe folds an event a user profile performed into every maintained
// counter it matches.
func (e *Engine) Observe(p store.ProfileID, ev *store.Event) {
	if prefs := consent.MayHold(ev.Raw); prefs || ev.Signals.GPC {
		e.consent(p, ev, prefs)
	}
	if e.defs.Empty() {
		return
	}
	e.observe(p, ev, e.defs.observers)
	e.touch(p, ev.Position)
	if e.defs.accounts {
		for _, a := range e.accountsOf[p] {
			e.touch(a, ev.Position)
		}
	}
}

// observe folds ev into the given counters of p; it reports whether any
// changed.
func (e *Engine) observe(p store.ProfileID, ev *store.Event, counters []*trait.Trait) bool {
	if len(counters) == 0 {
		return false
	}
	te := trait.NewEvent(ev)
	var pr *profile
	changed := false
	for _, t := range counters {
		if pr == nil {
			pr = e.get(p, false)
		}
		s := pr.states[t.Key()]
		fresh := s == nil
		if fresh {
			s = &trait.State{}
		}
		if !t.Observe(s, te) {
			continue
		}
		if fresh {
			if pr.states == nil {
				pr.states = map[string]*trait.State{}
			}
			pr.states[t.Key()] = s
		}
		e.wrote(p, t.Key())
		changed = true
	}
	return changed
}

func (e *Engine) wrote(p store.ProfileID, key string) {
	w := e.written[p]
	if w == nil {
		w = map[string]bool{}
		e.written[p] = w
	}
	w[key] = true
}

// Trait records a profile trait set by an event, if an audience reads it.
func (e *Engine) Trait(tv store.TraitValue, account bool) {
	if e.defs.Empty() || !e.defs.traitKeys[tv.Key] {
		return
	}
	h := held{priority: tv.Priority, ts: tv.Timestamp, position: tv.Position}
	pr := e.get(tv.Profile, account)
	if cur, ok := pr.traits[tv.Key]; ok && !h.beats(cur) {
		return
	}
	h.value = decode(tv.Value)
	if pr.traits == nil {
		pr.traits = map[string]held{}
	}
	pr.traits[tv.Key] = h
	e.touch(tv.Profile, tv.Position)
	if e.defs.related {
		e.touchRelated(tv.Profile, tv.Position)
	}
}

func (e *Engine) touchRelated(p store.ProfileID, position int64) {
	for _, q := range e.accountsOf[p] {
		e.touch(q, position)
	}
	for _, q := range e.usersOf[p] {
		e.touch(q, position)
	}
}

// Link records that a user belongs to an account.
func (e *Engine) Link(user, account store.ProfileID, position int64) {
	if e.defs.Empty() || slices.Contains(e.accountsOf[user], account) {
		return
	}
	e.accountsOf[user] = append(e.accountsOf[user], account)
	e.usersOf[account] = append(e.usersOf[account], user)
	e.get(account, true)
	e.touch(user, position)
	e.touch(account, position)
}

// Merge moves everything profile from holds into profile into (the
// identity graph merged them at the event at position). from's rows are
// deleted; it leaves its audiences with reason "merged".
func (e *Engine) Merge(into, from store.ProfileID, position int64, at time.Time) {
	if f := e.prof[from]; f != nil {
		t := e.get(into, f.account)
		for key, s := range f.states {
			e.out.States = append(e.out.States, store.ComputeState{Profile: from, Key: key})
			tr := e.defs.byKey[key]
			if tr == nil {
				continue
			}
			if t.states == nil {
				t.states = map[string]*trait.State{}
			}
			if cur := t.states[key]; cur != nil {
				tr.Merge(cur, s)
			} else {
				t.states[key] = s
			}
			e.wrote(into, key)
		}
		for key, h := range f.traits {
			if cur, ok := t.traits[key]; !ok || h.beats(cur) {
				if t.traits == nil {
					t.traits = map[string]held{}
				}
				t.traits[key] = h
			}
		}
		if c, ok := f.values[ConsentValue]; ok {
			var from consentValue
			if json.Unmarshal(c, &from) == nil {
				if v := mergeConsent(t.values[ConsentValue], from); v != nil {
					e.setValue(into, t, ConsentValue, v, at, position)
					t.excluded = decodeConsent(v).excludes()
				}
			}
		}
		for name := range f.values {
			e.out.Values = append(e.out.Values, store.ComputedValue{Profile: from, Name: name, At: at, Position: position})
		}
		for _, name := range sortedKeys(f.members) {
			e.leave(from, f, name, "merged", position, at)
		}
		delete(e.prof, from)
	}
	delete(e.written, from)
	delete(e.dirty, from)
	for _, a := range e.accountsOf[from] {
		e.usersOf[a] = slices.DeleteFunc(e.usersOf[a], func(u store.ProfileID) bool { return u == from })
		e.Link(into, a, position)
	}
	delete(e.accountsOf, from)
	for _, u := range e.usersOf[from] { // accounts are not merged, but be safe
		e.Link(u, into, position)
	}
	delete(e.usersOf, from)
	e.touch(into, position)
}

// Rebuild forgets what profile p was computed from, before the processor
// folds its events again (an admin corrected its identity): its states,
// traits, values and links go (the store deletes their rows), its
// memberships stay and are re-evaluated.
func (e *Engine) Rebuild(p store.ProfileID, position int64) {
	if pr := e.prof[p]; pr != nil {
		pr.states, pr.traits, pr.values, pr.excluded = nil, nil, nil, false
	}
	delete(e.written, p)
	e.unlink(p, position)
	e.touch(p, position)
}

// Forget drops everything the engine holds about profile p, which is
// being erased: the store deletes its rows, so nothing is written for it
// (not even audience exits); the accounts it belonged to are evaluated
// again without it.
func (e *Engine) Forget(p store.ProfileID, position int64) {
	delete(e.prof, p)
	delete(e.written, p)
	delete(e.dirty, p)
	e.unlink(p, position)
}

// unlink removes p's links to accounts (or, for an account, to users) and
// marks the other sides for evaluation.
func (e *Engine) unlink(p store.ProfileID, position int64) {
	for _, a := range e.accountsOf[p] {
		e.usersOf[a] = slices.DeleteFunc(e.usersOf[a], func(u store.ProfileID) bool { return u == p })
		e.touch(a, position)
	}
	delete(e.accountsOf, p)
	for _, u := range e.usersOf[p] {
		e.accountsOf[u] = slices.DeleteFunc(e.accountsOf[u], func(a store.ProfileID) bool { return a == p })
		e.touch(u, position)
	}
	delete(e.usersOf, p)
}

// Evaluate re-evaluates every profile touched since the last call, and
// every profile whose windows moved by now, and returns what to write with
// the batch folded up to cursor.
func (e *Engine) Evaluate(now time.Time, cursor int64) store.ComputeChanges {
	for len(e.due) > 0 && !e.due[0].at.After(now) {
		d := heap.Pop(&e.due).(dueEntry)
		if pr := e.prof[d.p]; pr != nil && pr.due.Equal(d.at) {
			pr.due = time.Time{}
			e.timed(d.p)
			if e.defs.accounts {
				for _, a := range e.accountsOf[d.p] {
					e.timed(a)
				}
			}
		}
	}
	if e.defs.now && now.Sub(e.lastSweep) >= e.o.Sweep {
		e.lastSweep = now
		for p := range e.prof {
			e.timed(p)
		}
	}
	for _, r := range e.removed {
		if pr := e.prof[r.p]; pr != nil && pr.members[r.name] {
			e.leave(r.p, pr, r.name, "removed", cursor, now)
			e.store(r.p, pr)
		}
	}
	e.removed = nil
	// Users first, then accounts: an account's values combine its users',
	// and its audiences may read their memberships. A user audience that
	// reads an account's is re-evaluated in the next call.
	// The maps are replaced, not cleared: a cleared map keeps its size, and
	// after a full evaluation every later call would clone and walk a
	// million empty slots.
	var users, accounts []store.ProfileID
	marks := e.dirty
	e.dirty = map[store.ProfileID]mark{}
	for p := range marks {
		if e.isAccount(p) {
			accounts = append(accounts, p)
		} else {
			users = append(users, p)
		}
	}
	slices.Sort(users)
	for _, p := range users {
		m := marks[p]
		if e.evaluate(p, now, m, cursor) && e.defs.related {
			for _, a := range e.accountsOf[p] {
				if _, ok := marks[a]; !ok {
					accounts = append(accounts, a)
				}
				if am := marks[a]; m.position > am.position || am.timed && !m.timed {
					marks[a] = m
				}
			}
		}
	}
	slices.Sort(accounts)
	accounts = slices.Compact(accounts)
	for _, p := range accounts {
		m := marks[p]
		if e.evaluate(p, now, m, cursor) && e.defs.related {
			for _, u := range e.usersOf[p] {
				e.touch(u, m.position)
			}
		}
	}
	written := e.written
	e.written = map[store.ProfileID]map[string]bool{}
	for p, keys := range written {
		pr := e.prof[p]
		for key := range keys {
			var data []byte
			if pr != nil && pr.states[key] != nil {
				data = e.defs.byKey[key].Encode(pr.states[key])
			}
			e.out.States = append(e.out.States, store.ComputeState{Profile: p, Key: key, Data: data})
		}
	}
	slices.SortFunc(e.out.States, func(a, b store.ComputeState) int {
		return cmp.Or(cmp.Compare(a.Profile, b.Profile), cmp.Compare(a.Key, b.Key))
	})
	out := e.out
	e.out = store.ComputeChanges{}
	return out
}

func (e *Engine) isAccount(p store.ProfileID) bool {
	pr := e.prof[p]
	return pr != nil && pr.account
}

// evaluate computes p's values and memberships and records what changed;
// it reports whether any value or membership did.
func (e *Engine) evaluate(p store.ProfileID, now time.Time, m mark, cursor int64) bool {
	position, reason := m.position, "evaluated"
	if m.timed {
		reason = "expired"
	}
	pr := e.prof[p]
	if pr == nil {
		pr = &profile{}
	}
	if pr.excluded {
		reason = "restricted"
	}
	if position == 0 {
		position = cursor
	}
	before := len(e.out.Values) + len(e.out.Audiences)
	kind := store.KindUser
	if pr.account {
		kind = store.KindAccount
	}
	// Windows: drop what left them, and schedule the next move.
	var next time.Time
	for key, s := range pr.states {
		t := e.defs.byKey[key]
		if t == nil || t.WindowDays() == 0 {
			continue
		}
		at := t.Expire(s, now)
		if reason == "expired" {
			e.wrote(p, key) // buckets left the window: keep the stored state small
		}
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	if !next.Equal(pr.due) {
		pr.due = next
		if !next.IsZero() {
			heap.Push(&e.due, dueEntry{at: next, p: p})
		}
	}

	ap := &e.scratch
	resetComputed(ap)
	for _, t := range e.defs.traits {
		def := t.Definition()
		if entityOf(def.Entity) != kind {
			continue
		}
		s := e.state(p, pr, t)
		var v json.RawMessage
		if s != nil && !pr.excluded {
			v = t.Value(s, now)
		}
		e.setValue(p, pr, def.Name, v, now, position)
		if v != nil {
			ap.Computed[def.Name] = decode(v)
		}
	}
	if len(e.defs.set.Audiences()) == 0 {
		e.store(p, pr)
		return len(e.out.Values)+len(e.out.Audiences) > before
	}
	e.view(ap, p, pr, now, e.defs.related)
	for _, a := range e.defs.set.Audiences() {
		def := a.Definition()
		if entityOf(def.Entity) != kind {
			continue
		}
		in, err := a.Eval(ap)
		if err != nil {
			e.errors++
			in = false
		}
		in = in && !pr.excluded
		ap.Audiences[def.Name] = in
		switch was := pr.members[def.Name]; {
		case in && !was:
			e.enter(p, pr, def.Name, reason, position, now)
		case !in && was:
			e.leave(p, pr, def.Name, reason, position, now)
		}
	}
	e.store(p, pr)
	return len(e.out.Values)+len(e.out.Audiences) > before
}

// store keeps pr in memory only while it holds something.
func (e *Engine) store(p store.ProfileID, pr *profile) {
	if len(pr.states) == 0 && len(pr.traits) == 0 && len(pr.values) == 0 && len(pr.members) == 0 && len(e.usersOf[p]) == 0 {
		delete(e.prof, p)
		return
	}
	e.prof[p] = pr
}

// state returns t's state for p: its own for a user, its users' combined
// for an account.
func (e *Engine) state(p store.ProfileID, pr *profile, t *trait.Trait) *trait.State {
	if !pr.account {
		return pr.states[t.Key()]
	}
	var sum *trait.State
	for _, u := range e.usersOf[p] {
		if up := e.prof[u]; up != nil && up.states[t.Key()] != nil {
			if sum == nil {
				sum = &trait.State{}
			}
			t.Merge(sum, up.states[t.Key()])
		}
	}
	return sum
}

// resetComputed empties ap.Computed for the next profile.
func resetComputed(ap *audience.Profile) {
	if ap.Computed == nil {
		ap.Computed = map[string]any{}
	}
	clear(ap.Computed)
}

// view fills ap with what audiences see of p, but for the computed values
// (the caller's): ap's maps are reused from profile to profile, since an
// evaluation keeps nothing of them.
func (e *Engine) view(ap *audience.Profile, p store.ProfileID, pr *profile, now time.Time, related bool) {
	if ap.Traits == nil {
		ap.Traits, ap.Audiences, ap.Conditions = map[string]any{}, map[string]bool{}, map[string]any{}
	}
	clear(ap.Traits)
	clear(ap.Audiences)
	clear(ap.Conditions)
	clear(ap.Related)
	ap.Related = ap.Related[:0]
	ap.Now = now
	for k, h := range pr.traits {
		ap.Traits[k] = h.value
	}
	for name, in := range pr.members {
		ap.Audiences[name] = in
	}
	for _, t := range e.defs.set.Conditions() {
		if s := e.state(p, pr, t); s != nil {
			if v := t.Value(s, now); v != nil {
				ap.Conditions[t.Key()] = decode(v)
			}
		}
	}
	if related {
		rel := e.accountsOf[p]
		if pr.account {
			rel = e.usersOf[p]
		}
		for _, q := range rel {
			ap.Related = append(ap.Related, e.relatedView(q))
		}
	}
}

// relatedView is what an audience sees of a user's account or an
// account's user: traits, computed values and memberships as they stand.
func (e *Engine) relatedView(q store.ProfileID) *audience.Profile {
	v := &audience.Profile{Traits: map[string]any{}, Computed: map[string]any{}, Audiences: map[string]bool{}}
	qp := e.prof[q]
	if qp == nil {
		return v
	}
	for k, h := range qp.traits {
		v.Traits[k] = h.value
	}
	for name, raw := range qp.values {
		if e.defs.names[name] == store.DefinitionTrait {
			v.Computed[name] = decode(raw)
		}
	}
	for name, in := range qp.members {
		v.Audiences[name] = in
	}
	return v
}

// setValue records a computed value if it changed (nil deletes it).
func (e *Engine) setValue(p store.ProfileID, pr *profile, name string, v json.RawMessage, now time.Time, position int64) {
	cur, ok := pr.values[name]
	if (v == nil && !ok) || (v != nil && ok && bytes.Equal(cur, v)) {
		return
	}
	if v == nil {
		delete(pr.values, name)
	} else {
		if pr.values == nil {
			pr.values = map[string]json.RawMessage{}
		}
		pr.values[name] = v
	}
	e.out.Values = append(e.out.Values, store.ComputedValue{Profile: p, Name: name, Value: v, At: now, Position: position})
	if e.defs.names[name] == store.DefinitionTrait && e.defs.syncs(name) {
		e.out.Outbox = append(e.out.Outbox, e.traitEntry(p, name, v, position, now))
	}
}

func (e *Engine) enter(p store.ProfileID, pr *profile, name, reason string, position int64, at time.Time) {
	if pr.members == nil {
		pr.members = map[string]bool{}
	}
	pr.members[name] = true
	e.setValue(p, pr, name, json.RawMessage("true"), at, position)
	e.change(p, name, true, reason, position, at)
}

func (e *Engine) leave(p store.ProfileID, pr *profile, name, reason string, position int64, at time.Time) {
	delete(pr.members, name)
	if reason == "merged" || reason == "removed" {
		if _, ok := pr.values[name]; ok {
			delete(pr.values, name)
			e.out.Values = append(e.out.Values, store.ComputedValue{Profile: p, Name: name, At: at, Position: position})
		}
	} else {
		e.setValue(p, pr, name, json.RawMessage("false"), at, position)
	}
	e.change(p, name, false, reason, position, at)
}

func (e *Engine) change(p store.ProfileID, name string, entered bool, reason string, position int64, at time.Time) {
	e.out.Audiences = append(e.out.Audiences, store.AudienceChange{
		Audience: name, Profile: p, Entered: entered, Reason: reason, At: at, Position: position,
	})
	e.out.Outbox = append(e.out.Outbox, e.outboxEntry(p, name, entered, reason, position, at))
}

// Pending reports whether Evaluate has work: touched profiles, windows due
// by now, a sweep due, or rows waiting to be written.
func (e *Engine) Pending(now time.Time) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.dirty) > 0 || len(e.written) > 0 || !e.out.Empty() ||
		(len(e.due) > 0 && !e.due[0].at.After(now)) ||
		(e.defs.now && now.Sub(e.lastSweep) >= e.o.Sweep)
}

// Lock takes the engine for folding a batch into it and evaluating.
func (e *Engine) Lock() { e.mu.Lock() }

// Unlock ends Lock.
func (e *Engine) Unlock() { e.mu.Unlock() }

// RLock takes the engine for reading (the identity graph of its workspace
// too: the processor changes both under Lock).
func (e *Engine) RLock() { e.mu.RLock() }

// RUnlock ends RLock.
func (e *Engine) RUnlock() { e.mu.RUnlock() }

// decode returns a JSON value as encoding/json decodes it into an any (nil
// if it is not JSON). Numbers, booleans, null and strings of printable
// ASCII without escapes, which are what counters and most traits hold,
// are decoded without encoding/json, to the same values.
func decode(raw json.RawMessage) any {
	if v, ok := decodeScalar(raw); ok {
		return v
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return v
}

func decodeScalar(raw []byte) (any, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	switch c := raw[0]; {
	case c == '"':
		if len(raw) < 2 || raw[len(raw)-1] != '"' {
			return nil, false
		}
		s := raw[1 : len(raw)-1]
		for _, b := range s {
			if b < 0x20 || b >= 0x80 || b == '"' || b == '\\' {
				return nil, false
			}
		}
		return string(s), true
	case c == '-' || '0' <= c && c <= '9':
		if !jsonNumber(raw) {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, false
		}
		return f, true
	}
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	case "null":
		return nil, true
	}
	return nil, false
}

// jsonNumber reports whether b is a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dueEntry is a profile whose windows move at a time.
type dueEntry struct {
	at time.Time
	p  store.ProfileID
}

type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
