package identity

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
)

// Graph is the identity graph of one workspace: which profile holds which
// identifier, how often each profile was merged into, and the identifiers
// an admin blocked. It is not safe for concurrent use; the processor owns
// one per workspace it folds.
//
// Identifiers are interned: a held identifier costs about 55 bytes plus its
// value (80 bytes in all in BenchmarkLoad), in memory the garbage
// collector does not scan. Profile ids must
// stay below 2³² (ids from Load at or above it are not loaded).
type Graph struct {
	c       *Compiled
	in      interned
	types   []typeInfo
	typeIdx map[string]uint32
	// slots are indexed by profile id: ids are allocated in order, so the
	// slice is dense (16 bytes per id ever allocated, merged ones too).
	slots []profile
	next  store.ProfileID
	// blocked are identifiers an admin blocked (control events), ignored
	// are identifiers left out while a profile is rebuilt, reuse are ids
	// to allocate before new ones (a rebuilt profile keeps its id).
	blocked map[store.Identifier]bool
	ignored map[store.Identifier]bool
	reuse   []store.ProfileID

	// Scratch space of Resolve, kept to avoid allocating per event.
	cands   []cand
	owners  []uint32    // profiles holding the event's identifiers, oldest first
	refs    []int32     // how many of the event's identifiers each owner holds
	held    []heldCount // what each owner holds, per type
	counts  []typeCount // indexed like types
	touched []uint32    // types with counts
}

// typeInfo is an interned identifier type and its limit.
type typeInfo struct {
	name  string
	limit Limit
}

// profile is a profile's slot: its identifiers as a linked list in the
// order they were attached, and its merge count. A profile merged away or
// never allocated is all zero.
type profile struct {
	head, tail uint32
	n          int32
	merges     int32
}

// cand is an identifier of the event being resolved.
type cand struct {
	id   store.Identifier
	typ  uint32 // interned type
	idx  uint32 // interned identifier, 0 if never seen
	slot uint32 // holding profile, 0 if none
}

// typeCount counts one type's values while a change is checked: the
// event's new ones (add), those the owners hold (sum), and the most one
// owner holds (peak).
type typeCount struct {
	on                  bool // listed in Graph.touched
	add, cur, sum, peak int32
}

// heldCount is how many values of a type an owner holds (within the
// type's window).
type heldCount struct {
	slot, typ uint32
	n         int32
}

// Outcome is what resolving one event did to the graph.
type Outcome struct {
	// Profile is the profile the event belongs to; 0 if the event carries
	// no usable identifier.
	Profile store.ProfileID
	// Created reports that Profile was created by this event.
	Created bool
	// Added are identifiers newly attached to Profile, with the event's
	// position and receivedAt.
	Added []store.HeldIdentifier
	// Merges are the profiles merged into Profile (the older id is kept),
	// in the order they were merged.
	Merges []store.Merge
	// Decisions record identifiers the event carried but that were not
	// used: blocked or malformed values, and values dropped to respect a
	// limit or a cap. Each has Profile set to the event's profile.
	Decisions []store.Decision
}

// NewGraph returns an empty graph that allocates profile ids from next on
// (at least 1).
func NewGraph(c *Compiled, next store.ProfileID) *Graph {
	return &Graph{
		c:       c,
		typeIdx: map[string]uint32{},
		slots:   make([]profile, 1, 1024),
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
	g.Forget(p)
	g.reuse = append(append(g.reuse, p), reuse...)
}

// Forget removes a profile and everything it holds from the graph (for
// good, an erasure, unless Dissolve gives its id back).
func (g *Graph) Forget(p store.ProfileID) {
	if s, ok := g.live(p); ok {
		for i := g.slots[s].head; i != 0; {
			r := g.in.rec(i)
			i, r.slot, r.next = r.next, 0, 0
		}
		g.slots[s] = profile{}
	}
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

// Load adds an identifier held by a profile, as stored. Loading is
// order-independent except for the order Holdings lists identifiers in.
func (g *Graph) Load(h store.HeldIdentifier) {
	s, ok := g.slot(h.Profile)
	if !ok {
		return
	}
	t := g.typeOf(h.Type)
	i := g.in.find(t, h.Value)
	if i == 0 {
		i = g.in.add(t, h.Value)
	} else if g.in.rec(i).slot != 0 {
		g.detach(i)
	}
	g.attach(s, i, h.Position, nanos(h.AddedAt))
	g.next = max(g.next, h.Profile+1)
}

// LoadMerges sets the number of merges into a profile, as stored.
func (g *Graph) LoadMerges(p store.ProfileID, n int) {
	s, ok := g.slot(p)
	if !ok {
		return
	}
	g.next = max(g.next, p+1)
	g.slots[s].merges = int32(min(n, math.MaxInt32))
}

// Next returns the next profile id the graph will allocate.
func (g *Graph) Next() store.ProfileID { return g.next }

// Owner returns the profile holding an identifier (given normalized, as
// Extract or Compiled.Normalize return it).
func (g *Graph) Owner(id store.Identifier) (store.ProfileID, bool) {
	i := g.find(id)
	if i == 0 || g.in.rec(i).slot == 0 {
		return 0, false
	}
	return store.ProfileID(g.in.rec(i).slot), true
}

// Profiles calls fn for every profile that holds identifiers, in id
// order, with whether it is an account (it holds a group_id), until fn
// returns false.
func (g *Graph) Profiles(fn func(p store.ProfileID, account bool) bool) {
	gt, groups := g.typeIdx[GroupID]
	for s := 1; s < len(g.slots); s++ {
		if g.slots[s].n == 0 {
			continue
		}
		if !fn(store.ProfileID(s), groups && g.in.rec(g.slots[s].head).typ == gt) {
			return
		}
	}
}

// Holdings returns the identifiers a profile holds, in the order they were
// attached (a merged profile's after the surviving profile's).
func (g *Graph) Holdings(p store.ProfileID) []store.HeldIdentifier {
	s, ok := g.live(p)
	if !ok {
		return nil
	}
	out := make([]store.HeldIdentifier, 0, g.slots[s].n)
	for i := g.slots[s].head; i != 0; i = g.in.rec(i).next {
		r := g.in.rec(i)
		out = append(out, store.HeldIdentifier{
			Identifier: store.Identifier{Type: g.types[r.typ].name, Value: string(g.in.value(i))},
			Profile:    p, Position: r.pos, AddedAt: fromNanos(r.at),
		})
	}
	return out
}

// Remove detaches an identifier from its profile (an admin's correction;
// the processor then rebuilds the profile). It returns the profile that
// held it. A later event may attach the identifier again.
func (g *Graph) Remove(id store.Identifier) (store.ProfileID, bool) {
	i := g.find(id)
	if i == 0 || g.in.rec(i).slot == 0 {
		return 0, false
	}
	p := store.ProfileID(g.in.rec(i).slot)
	g.detach(i)
	return p, true
}

// Account returns the account profile keyed by a group id (identifier type
// group_id, trimmed), creating it if needed. Accounts are never merged,
// and limits and caps do not apply to them. An empty group id gives 0.
func (g *Graph) Account(groupID string, ev *store.Event) (p store.ProfileID, created bool) {
	v := strings.TrimSpace(groupID)
	if v == "" {
		return 0, false
	}
	t := g.typeOf(GroupID)
	i := g.in.find(t, v)
	if i != 0 && g.in.rec(i).slot != 0 {
		return store.ProfileID(g.in.rec(i).slot), false
	}
	if i == 0 {
		i = g.in.add(t, v)
	}
	p = g.alloc()
	g.attach(uint32(p), i, ev.Position, nanos(ev.ReceivedAt))
	return p, true
}

// Resolve applies an event's identifiers to the graph and reports what
// changed. It finds the profiles holding any of the identifiers: none
// creates a profile; one takes the event and its new identifiers; several
// are merged into the oldest (smallest id). Unless that would break a
// rule: when attaching the new identifiers or merging the profiles would
// make a profile exceed a type's limit (counting the values added within
// the limit's window before the event's receivedAt, bounds included), hold
// more than MaxIdentifiers, or count more than MaxMerges merges, the
// event's lowest-priority identifier is dropped, the decision recorded,
// and matching starts again with the rest. A count already over its limit
// (the rules were tightened) only blocks changes that make it grow.
//
// An alias's previousId is taken as a user_id when a profile holds it as
// one, and as an anonymous_id otherwise (held or not): alias links a new
// userId to what the caller knew the person as before, which is an earlier
// userId or the anonymous id of the visit.
func (g *Graph) Resolve(ev *store.Event) Outcome {
	ids, prev, decisions := g.c.extract(ev)
	out := Outcome{Decisions: decisions}
	if prev >= 0 {
		if as := (store.Identifier{Type: UserID, Value: ids[prev].Value}); g.holds(as) {
			ids[prev] = as
		}
	}
	ids = g.c.order(ids)
	if len(g.blocked) > 0 || len(g.ignored) > 0 {
		ids = slices.DeleteFunc(ids, func(id store.Identifier) bool {
			if g.blocked[id] {
				out.Decisions = append(out.Decisions, store.Decision{Position: ev.Position, Identifier: id,
					Code: "blocked_by_admin", Reason: "an admin blocked this identifier", At: ev.ReceivedAt})
			}
			return g.blocked[id] || g.ignored[id]
		})
	}
	cands := g.cands[:0]
	for _, id := range ids {
		c := cand{id: id, typ: g.typeOf(id.Type)}
		if c.idx = g.in.find(c.typ, id.Value); c.idx != 0 {
			c.slot = g.in.rec(c.idx).slot
		}
		cands = append(cands, c)
	}
	g.cands = cands[:0]
	cands = g.settle(&out, cands, ev)
	if len(cands) > 0 {
		g.apply(&out, cands, ev)
	}
	for i := range out.Decisions {
		out.Decisions[i].Profile = out.Profile
	}
	return out
}

// settle drops cands from the end, recording each drop, until attaching
// the rest to the union of the profiles holding them breaks no rule; it
// returns the rest and leaves those profiles, oldest first, in g.owners.
//
// Dropping one identifier at a time and checking again is the rule; the
// counts the check needs are kept up to date as identifiers are dropped,
// so an event with many identifiers costs time linear in them, not
// quadratic.
func (g *Graph) settle(out *Outcome, cands []cand, ev *store.Event) []cand {
	// The owners, oldest first, and how many of cands each holds.
	g.owners, g.refs = g.owners[:0], g.refs[:0]
	for _, c := range cands {
		if c.slot != 0 && !slices.Contains(g.owners, c.slot) {
			g.owners = append(g.owners, c.slot)
		}
	}
	slices.Sort(g.owners)
	g.refs = append(g.refs, make([]int32, len(g.owners))...)
	fresh := 0
	touched := g.touched[:0]
	mark := func(t uint32) *typeCount {
		tc := &g.counts[t]
		if !tc.on {
			tc.on, touched = true, append(touched, t)
		}
		return tc
	}
	for _, c := range cands {
		if c.slot == 0 {
			fresh++
			mark(c.typ).add++
		} else {
			i, _ := slices.BinarySearch(g.owners, c.slot)
			g.refs[i]++
		}
	}
	// What each owner holds per type, counting only values within the
	// type's window.
	rx := nanos(ev.ReceivedAt)
	held := g.held[:0]
	for _, s := range g.owners {
		start := len(held)
		for i := g.slots[s].head; i != 0; {
			r := g.in.rec(i)
			i = r.next
			if w := g.types[r.typ].limit.Window; w > 0 && r.at < since(rx, w) {
				continue
			}
			tc := mark(r.typ)
			if tc.cur == 0 {
				held = append(held, heldCount{slot: s, typ: r.typ})
			}
			tc.cur++
		}
		for k := start; k < len(held); k++ {
			tc := &g.counts[held[k].typ]
			held[k].n = tc.cur
			tc.sum += tc.cur
			tc.peak = max(tc.peak, tc.cur)
			tc.cur = 0
		}
	}
	for len(cands) > 0 {
		code, reason := g.verdict(fresh, touched)
		if code == "" {
			break
		}
		last := cands[len(cands)-1]
		out.Decisions = append(out.Decisions, store.Decision{
			Position: ev.Position, Identifier: last.id, Code: code,
			Reason: fmt.Sprintf("%s was dropped: %s", last.id, reason), At: ev.ReceivedAt,
		})
		cands = cands[:len(cands)-1]
		if last.slot == 0 {
			fresh--
			g.counts[last.typ].add--
			continue
		}
		o, _ := slices.BinarySearch(g.owners, last.slot)
		if g.refs[o]--; g.refs[o] > 0 {
			continue
		}
		// The owner leaves: take its counts out.
		g.owners, g.refs = slices.Delete(g.owners, o, o+1), slices.Delete(g.refs, o, o+1)
		for k := range held {
			if h := held[k]; h.slot == last.slot {
				tc := &g.counts[h.typ]
				tc.sum -= h.n
				tc.peak = 0
				for _, other := range held {
					if other.typ == h.typ && other.slot != last.slot {
						tc.peak = max(tc.peak, other.n)
					}
				}
			}
		}
		held = slices.DeleteFunc(held, func(h heldCount) bool { return h.slot == last.slot })
	}
	for _, t := range touched {
		g.counts[t] = typeCount{}
	}
	g.touched, g.held = touched[:0], held[:0]
	return cands
}

// verdict reports why attaching fresh new identifiers, whose counts per
// type are in g.counts, to the union of g.owners would break a rule (""
// if it would not). A type breaks its limit if its count after the change
// exceeds the limit and what any one owner held: a count already over its
// limit (the rules were tightened) only blocks changes that make it grow.
func (g *Graph) verdict(fresh int, touched []uint32) (code, reason string) {
	owners := g.owners
	if len(owners) <= 1 && fresh == 0 {
		return "", "" // nothing changes
	}
	total, peak, merges := fresh, 0, len(owners)-1
	for _, s := range owners {
		total += int(g.slots[s].n)
		peak = max(peak, int(g.slots[s].n))
		merges += int(g.slots[s].merges)
	}
	if total > g.c.maxIDs && total > peak {
		return "cap_identifiers", fmt.Sprintf("the profile would hold %d identifiers (cap %d)", total, g.c.maxIDs)
	}
	if len(owners) > 1 && merges > g.c.maxMerges {
		return "cap_merges", fmt.Sprintf("the profile would have been merged %d times (cap %d)", merges, g.c.maxMerges)
	}
	var worst uint32
	found := false
	for _, t := range touched {
		tc := &g.counts[t]
		if n := tc.sum + tc.add; int(n) > g.types[t].limit.Max && n > tc.peak {
			if !found || g.c.compareTypes(g.types[t].name, g.types[worst].name) < 0 {
				worst, found = t, true
			}
		}
	}
	if !found {
		return "", ""
	}
	l, n, t := g.types[worst].limit, g.counts[worst].sum+g.counts[worst].add, g.types[worst].name
	in := "ever"
	if l.Window > 0 {
		in = "within " + l.Window.String()
	}
	if len(owners) > 1 {
		return "limit", fmt.Sprintf("merging profiles %v would give %d %s values %s (limit %d)", owners, n, t, in, l.Max)
	}
	return "limit", fmt.Sprintf("the profile would hold %d %s values %s (limit %d)", n, t, in, l.Max)
}

// apply merges g.owners and attaches the new identifiers of cands.
func (g *Graph) apply(out *Outcome, cands []cand, ev *store.Event) {
	var s uint32
	if len(g.owners) == 0 {
		s, out.Created = uint32(g.alloc()), true
	} else {
		s = g.owners[0]
	}
	p := store.ProfileID(s)
	out.Profile = p
	for _, from := range g.owners[min(1, len(g.owners)):] {
		m := store.Merge{Into: p, From: store.ProfileID(from), Position: ev.Position, At: ev.ReceivedAt}
		for _, c := range cands {
			if c.slot == from {
				m.Via = c.id
				break
			}
		}
		g.merge(s, from)
		out.Merges = append(out.Merges, m)
	}
	rx := nanos(ev.ReceivedAt)
	for _, c := range cands {
		if c.slot != 0 {
			continue
		}
		if out.Added == nil {
			out.Added = make([]store.HeldIdentifier, 0, len(cands))
		}
		i := c.idx
		if i == 0 {
			i = g.in.add(c.typ, c.id.Value)
		}
		g.attach(s, i, ev.Position, rx)
		out.Added = append(out.Added, store.HeldIdentifier{
			Identifier: store.Identifier{Type: g.types[c.typ].name, Value: c.id.Value},
			Profile:    p, Position: ev.Position, AddedAt: ev.ReceivedAt,
		})
	}
}

// merge moves everything slot from holds into slot into.
func (g *Graph) merge(into, from uint32) {
	f := g.slots[from]
	for i := f.head; i != 0; {
		r := g.in.rec(i)
		r.slot = into
		i = r.next
	}
	t := &g.slots[into]
	if f.head != 0 {
		if t.head == 0 {
			t.head = f.head
		} else {
			g.in.rec(t.tail).next = f.head
		}
		t.tail = f.tail
	}
	t.n += f.n
	t.merges += f.merges + 1
	g.slots[from] = profile{}
}

// find returns the interned index of an identifier, or 0.
func (g *Graph) find(id store.Identifier) uint32 {
	t, ok := g.typeIdx[id.Type]
	if !ok {
		return 0
	}
	return g.in.find(t, id.Value)
}

func (g *Graph) holds(id store.Identifier) bool {
	i := g.find(id)
	return i != 0 && g.in.rec(i).slot != 0
}

// typeOf interns an identifier type.
func (g *Graph) typeOf(name string) uint32 {
	if t, ok := g.typeIdx[name]; ok {
		return t
	}
	t := uint32(len(g.types))
	name = strings.Clone(name)
	g.types = append(g.types, typeInfo{name: name, limit: g.c.limit(name)})
	g.counts = append(g.counts, typeCount{})
	g.typeIdx[name] = t
	return t
}

// alloc allocates a profile id (a reused one first) and makes room for
// its slot.
func (g *Graph) alloc() store.ProfileID {
	var p store.ProfileID
	if len(g.reuse) > 0 {
		p, g.reuse = g.reuse[0], g.reuse[1:]
	} else {
		p = g.next
		g.next++
	}
	g.slot(p)
	return p
}

// live returns the slot of profile p if p holds identifiers.
func (g *Graph) live(p store.ProfileID) (uint32, bool) {
	if p <= 0 || p >= store.ProfileID(len(g.slots)) || g.slots[p].n == 0 {
		return 0, false
	}
	return uint32(p), true
}

// slot returns the slot of profile p, making room for it; false if p
// cannot be a profile id.
func (g *Graph) slot(p store.ProfileID) (uint32, bool) {
	if p <= 0 || p > math.MaxUint32 {
		return 0, false
	}
	if int(p) >= len(g.slots) {
		g.slots = slices.Grow(g.slots, int(p)+1-len(g.slots))[:p+1]
	}
	return uint32(p), true
}

// attach appends identifier i to slot s's list.
func (g *Graph) attach(s, i uint32, pos, at int64) {
	r := g.in.rec(i)
	r.slot, r.next, r.pos, r.at = s, 0, pos, at
	p := &g.slots[s]
	if p.head == 0 {
		p.head = i
	} else {
		g.in.rec(p.tail).next = i
	}
	p.tail = i
	p.n++
}

// detach takes identifier i off its profile's list.
func (g *Graph) detach(i uint32) {
	r := g.in.rec(i)
	s := r.slot
	p := &g.slots[s]
	var prev uint32
	for j := p.head; j != i; j = g.in.rec(j).next {
		prev = j
	}
	if prev == 0 {
		p.head = r.next
	} else {
		g.in.rec(prev).next = r.next
	}
	if p.tail == i {
		p.tail = prev
	}
	p.n--
	r.slot, r.next = 0, 0
}

// nanos converts a time for the graph's records; the zero time (unknown)
// counts as older than every window.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// since is the start of a window w that ends at rx.
func since(rx int64, w time.Duration) int64 {
	if rx < math.MinInt64+int64(w) {
		return math.MinInt64
	}
	return rx - int64(w)
}

func fromNanos(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
