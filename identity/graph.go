package identity

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
)

// Graph is the identity graph of one workspace: which profile holds which
// identifier. It is not safe for concurrent use; the processor owns one per
// workspace it folds.
type Graph struct {
	c      *Compiled
	owner  map[store.Identifier]store.ProfileID
	held   map[store.ProfileID][]holding
	merges map[store.ProfileID]int
	types  map[string]string // interned identifier types
	next   store.ProfileID
	// blocked are identifiers an admin blocked (control events), ignored
	// are identifiers left out while a profile is rebuilt, reuse are ids
	// to allocate before new ones (a rebuilt profile keeps its id).
	blocked map[store.Identifier]bool
	ignored map[store.Identifier]bool
	reuse   []store.ProfileID
}

// holding is an identifier a profile holds, with when it was added.
type holding struct {
	id  store.Identifier
	pos int64
	at  int64 // receivedAt, Unix nanoseconds
}

// Outcome is what resolving one event did to the graph.
type Outcome struct {
	// Profile is the profile the event belongs to; 0 if the event carries
	// no usable identifier.
	Profile store.ProfileID
	// Created reports that Profile was created by this event.
	Created bool
	// Added are identifiers newly attached to Profile.
	Added []store.HeldIdentifier
	// Merges are the profiles merged into Profile (the older id is kept).
	Merges []store.Merge
	// Decisions record identifiers the event carried but that were not
	// used: blocked or malformed values, and values dropped to respect a
	// limit or a cap.
	Decisions []store.Decision
}

// NewGraph returns an empty graph that allocates profile ids from next on.
func NewGraph(c *Compiled, next store.ProfileID) *Graph {
	return &Graph{
		c:       c,
		owner:   map[store.Identifier]store.ProfileID{},
		held:    map[store.ProfileID][]holding{},
		merges:  map[store.ProfileID]int{},
		types:   map[string]string{},
		next:    max(next, 1),
		blocked: map[store.Identifier]bool{},
		ignored: map[store.Identifier]bool{},
	}
}

// Block makes the graph ignore an identifier from now on (an admin's
// correction).
func (g *Graph) Block(id store.Identifier) { g.blocked[id] = true }

// Unblock ends a Block: the identifier may link again.
func (g *Graph) Unblock(id store.Identifier) { delete(g.blocked, id) }

// Blocked reports whether an admin blocked an identifier.
func (g *Graph) Blocked(id store.Identifier) bool { return g.blocked[id] }

// Dissolve removes a profile and everything it holds from the graph so
// that its events can be resolved again (a rebuild after a correction).
// The profiles the rebuild creates get the dissolved profile's id first,
// then the ids in reuse (an undone merge gives the merged-away profile its
// id back).
func (g *Graph) Dissolve(p store.ProfileID, reuse ...store.ProfileID) {
	for _, h := range g.held[p] {
		delete(g.owner, h.id)
	}
	delete(g.held, p)
	delete(g.merges, p)
	g.reuse = append(append(g.reuse, p), reuse...)
}

// Ignore makes Resolve leave the given identifiers out until the next call
// (or EndRebuild); a rebuild uses it for the events it corrects.
func (g *Graph) Ignore(ids ...store.Identifier) {
	clear(g.ignored)
	for _, id := range ids {
		g.ignored[id] = true
	}
}

// EndRebuild ends a rebuild started by Dissolve.
func (g *Graph) EndRebuild() {
	clear(g.ignored)
	g.reuse = g.reuse[:0]
}

// Load adds an identifier held by a profile, as stored.
func (g *Graph) Load(h store.HeldIdentifier) {
	g.attach(h.Profile, h.Identifier, h.Position, h.AddedAt)
	if h.Profile >= g.next {
		g.next = h.Profile + 1
	}
}

// LoadMerges sets the number of merges into a profile, as stored.
func (g *Graph) LoadMerges(p store.ProfileID, n int) { g.merges[p] = n }

// Next returns the next profile id the graph will allocate.
func (g *Graph) Next() store.ProfileID { return g.next }

// Owner returns the profile holding an identifier.
func (g *Graph) Owner(id store.Identifier) (store.ProfileID, bool) {
	p, ok := g.owner[id]
	return p, ok
}

// Holdings returns the identifiers a profile holds, in the order added.
func (g *Graph) Holdings(p store.ProfileID) []store.HeldIdentifier {
	hs := g.held[p]
	out := make([]store.HeldIdentifier, len(hs))
	for i, h := range hs {
		out[i] = store.HeldIdentifier{Identifier: h.id, Profile: p, Position: h.pos, AddedAt: time.Unix(0, h.at).UTC()}
	}
	return out
}

// Remove detaches an identifier from its profile (an admin's correction).
// It returns the profile that held it.
func (g *Graph) Remove(id store.Identifier) (store.ProfileID, bool) {
	p, ok := g.owner[id]
	if !ok {
		return 0, false
	}
	delete(g.owner, id)
	g.held[p] = slices.DeleteFunc(g.held[p], func(h holding) bool { return h.id == id })
	if len(g.held[p]) == 0 {
		delete(g.held, p)
	}
	return p, true
}

// Account returns the account profile keyed by a group id, creating it if
// needed. Accounts are never merged.
func (g *Graph) Account(groupID string, ev *store.Event) (p store.ProfileID, created bool) {
	id := store.Identifier{Type: GroupID, Value: strings.TrimSpace(groupID)}
	if id.Value == "" {
		return 0, false
	}
	if p, ok := g.owner[id]; ok {
		return p, false
	}
	p = g.alloc()
	g.attach(p, id, ev.Position, ev.ReceivedAt)
	return p, true
}

// Resolve applies an event's identifiers to the graph: it finds the
// profiles holding any of them, merges those into the oldest, and attaches
// the new ones — unless that would break a limit or a cap, in which case
// the event's lowest-priority identifier is dropped (and the decision
// recorded) and matching starts again.
func (g *Graph) Resolve(ev *store.Event) Outcome {
	ids, decisions := g.c.Extract(ev)
	out := Outcome{Decisions: decisions}
	if len(g.blocked) > 0 || len(g.ignored) > 0 {
		ids = slices.DeleteFunc(ids, func(id store.Identifier) bool {
			if g.blocked[id] {
				out.Decisions = append(out.Decisions, store.Decision{Position: ev.Position, Identifier: id,
					Code: "blocked_by_admin", Reason: "an admin blocked this identifier", At: ev.ReceivedAt})
			}
			return g.blocked[id] || g.ignored[id]
		})
	}
	if ev.Type == "alias" {
		// previousId may be an earlier userId rather than an anonymousId.
		for i, id := range ids {
			if id.Type != AnonymousID {
				continue
			}
			if _, ok := g.owner[id]; ok {
				continue
			}
			if as := (store.Identifier{Type: UserID, Value: id.Value}); g.has(as) {
				ids[i] = as
			}
		}
		slices.SortFunc(ids, g.c.compare)
		ids = slices.Compact(ids)
	}
	var owners []store.ProfileID
	for len(ids) > 0 {
		owners = owners[:0]
		for _, id := range ids {
			if p, ok := g.owner[id]; ok && !slices.Contains(owners, p) {
				owners = append(owners, p)
			}
		}
		slices.Sort(owners)
		code, reason := g.check(ids, owners, ev)
		if code == "" {
			break
		}
		last := ids[len(ids)-1]
		out.Decisions = append(out.Decisions, store.Decision{
			Position: ev.Position, Identifier: last, Code: code,
			Reason: fmt.Sprintf("%s was dropped: %s", last, reason), At: ev.ReceivedAt,
		})
		ids = ids[:len(ids)-1]
	}
	if len(ids) == 0 {
		return out
	}
	if len(owners) == 0 {
		out.Profile, out.Created = g.alloc(), true
		owners = append(owners, out.Profile)
	}
	p := owners[0]
	out.Profile = p
	for _, from := range owners[1:] {
		m := store.Merge{Into: p, From: from, Position: ev.Position, At: ev.ReceivedAt}
		for _, id := range ids {
			if g.owner[id] == from {
				m.Via = id
				break
			}
		}
		for _, h := range g.held[from] {
			g.owner[h.id] = p
		}
		g.held[p] = append(g.held[p], g.held[from]...)
		delete(g.held, from)
		g.merges[p] += g.merges[from] + 1
		delete(g.merges, from)
		out.Merges = append(out.Merges, m)
	}
	for _, id := range ids {
		if _, ok := g.owner[id]; ok {
			continue
		}
		g.attach(p, id, ev.Position, ev.ReceivedAt)
		out.Added = append(out.Added, store.HeldIdentifier{Identifier: id, Profile: p, Position: ev.Position, AddedAt: ev.ReceivedAt})
	}
	return out
}

// check reports why attaching ids to the union of owners would break a
// rule ("" if it would not).
func (g *Graph) check(ids []store.Identifier, owners []store.ProfileID, ev *store.Event) (code, reason string) {
	var fresh []store.Identifier
	for _, id := range ids {
		if _, ok := g.owner[id]; !ok {
			fresh = append(fresh, id)
		}
	}
	if len(owners) <= 1 && len(fresh) == 0 {
		return "", "" // nothing changes
	}
	total, merges := len(fresh), len(owners)-1
	for _, p := range owners {
		total += len(g.held[p])
		merges += g.merges[p]
	}
	if total > g.c.maxIDs {
		return "cap_identifiers", fmt.Sprintf("the profile would hold %d identifiers (cap %d)", total, g.c.maxIDs)
	}
	if len(owners) > 1 && merges > g.c.maxMerges {
		return "cap_merges", fmt.Sprintf("the profile would have been merged %d times (cap %d)", merges, g.c.maxMerges)
	}
	// Types whose count can grow: those of fresh identifiers and, when
	// profiles merge, every type they hold.
	counts := map[string]int{}
	for _, id := range fresh {
		counts[id.Type]++
	}
	rx := ev.ReceivedAt.UnixNano()
	for _, p := range owners {
		for _, h := range g.held[p] {
			if _, grows := counts[h.id.Type]; !grows && len(owners) == 1 {
				continue
			}
			if w := g.c.limit(h.id.Type).Window; w > 0 && h.at < rx-int64(w) {
				continue
			}
			counts[h.id.Type]++
		}
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		l := g.c.limit(t)
		if counts[t] <= l.Max {
			continue
		}
		in := "ever"
		if l.Window > 0 {
			in = "within " + l.Window.String()
		}
		if len(owners) > 1 {
			return "limit", fmt.Sprintf("merging profiles %v would give %d %s values %s (limit %d)", owners, counts[t], t, in, l.Max)
		}
		return "limit", fmt.Sprintf("the profile would hold %d %s values %s (limit %d)", counts[t], t, in, l.Max)
	}
	return "", ""
}

func (g *Graph) has(id store.Identifier) bool {
	_, ok := g.owner[id]
	return ok
}

func (g *Graph) alloc() store.ProfileID {
	if len(g.reuse) > 0 {
		p := g.reuse[0]
		g.reuse = g.reuse[1:]
		return p
	}
	p := g.next
	g.next++
	return p
}

func (g *Graph) attach(p store.ProfileID, id store.Identifier, pos int64, at time.Time) {
	t, ok := g.types[id.Type]
	if !ok {
		t = strings.Clone(id.Type)
		g.types[t] = t
	}
	id.Type = t
	g.owner[id] = p
	g.held[p] = append(g.held[p], holding{id: id, pos: pos, at: at.UnixNano()})
}
