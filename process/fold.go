package process

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

// batch collects what folding a run of events changes, coalesced per
// profile, and turns it into one store.Changes.
type batch struct {
	c        store.Changes
	merged   map[store.ProfileID]store.ProfileID // from → into, for this batch's merges
	profiles map[store.ProfileID]*store.ProfileDelta
	priority func(source string) int
	// eng computes traits and audiences from what is folded.
	eng *compute.Engine
	// rebuilding is set while a profile's past events are folded again:
	// they touch their accounts already.
	rebuilding bool
}

func newBatch(workspace string, epoch, from int64, priority func(string) int, eng *compute.Engine) *batch {
	return &batch{
		c:        store.Changes{Workspace: workspace, Epoch: epoch, From: from, To: from},
		merged:   map[store.ProfileID]store.ProfileID{},
		profiles: map[store.ProfileID]*store.ProfileDelta{},
		priority: priority,
		eng:      eng,
	}
}

// eventFields are the parts of an event's JSON that folding reads beyond
// what store.Event already holds.
type eventFields struct {
	Traits  json.RawMessage `json:"traits"`
	GroupID json.RawMessage `json:"groupId"`
	Context struct {
		Traits json.RawMessage `json:"traits"`
	} `json:"context"`
}

// fold applies one event to the graph and records what changed.
func (b *batch) fold(g *identity.Graph, ev *store.Event) {
	b.c.To = max(b.c.To, ev.Position)
	out := g.Resolve(ev)
	b.c.Merges = append(b.c.Merges, out.Merges...)
	for _, m := range out.Merges {
		b.merged[m.From] = m.Into
		b.eng.Merge(m.Into, m.From, ev.Position, ev.ReceivedAt)
	}
	b.c.Identifiers = append(b.c.Identifiers, out.Added...)
	b.c.Decisions = append(b.c.Decisions, out.Decisions...)

	var f eventFields
	if ev.Type == "identify" || ev.Type == "group" {
		// Ingest validated the JSON; a failure here leaves f empty.
		_ = json.Unmarshal(ev.Raw, &f)
	}
	if out.Profile != 0 {
		b.touch(out.Profile, store.KindUser, ev)
		b.eng.Observe(out.Profile, ev)
		if ev.Type == "identify" {
			traits := f.Traits
			if len(traits) == 0 || string(traits) == "null" {
				// RudderStack's SDKs send an identify's traits only here.
				traits = f.Context.Traits
			}
			b.traits(out.Profile, store.KindUser, traits, ev)
		}
	}
	if ev.Type != "group" {
		return
	}
	gid := groupID(f.GroupID)
	if gid == "" {
		return
	}
	acct, created := g.Account(gid, ev)
	if created {
		b.c.Identifiers = append(b.c.Identifiers, g.Holdings(acct)...)
	}
	if !b.rebuilding {
		b.touch(acct, store.KindAccount, ev)
		b.traits(acct, store.KindAccount, f.Traits, ev)
	}
	if out.Profile != 0 {
		b.c.Links = append(b.c.Links, store.Link{User: out.Profile, Account: acct, Position: ev.Position, At: ev.ReceivedAt})
		b.eng.Link(out.Profile, acct, ev.Position)
	}
}

// touch counts the event on a profile and puts it on its timeline.
func (b *batch) touch(p store.ProfileID, kind string, ev *store.Event) {
	d := b.profiles[p]
	if d == nil {
		d = &store.ProfileDelta{ID: p, Kind: kind, FirstSeen: ev.Timestamp, LastSeen: ev.Timestamp}
		b.profiles[p] = d
	}
	widen(d, ev.Timestamp, ev.Timestamp, 1)
	b.c.Timeline = append(b.c.Timeline, store.TimelineEntry{Profile: p, Position: ev.Position})
}

func widen(d *store.ProfileDelta, first, last time.Time, events int64) {
	if first.Before(d.FirstSeen) {
		d.FirstSeen = first
	}
	if last.After(d.LastSeen) {
		d.LastSeen = last
	}
	d.Events += events
}

// traits records every top-level trait of a traits object, in key order.
func (b *batch) traits(p store.ProfileID, kind string, raw json.RawMessage, ev *store.Event) {
	if len(raw) == 0 || raw[0] != '{' {
		return
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	b.setTraits(p, kind, m, ev)
}

// setTraits records traits m of profile p, set by ev, in key order.
func (b *batch) setTraits(p store.ProfileID, kind string, m map[string]json.RawMessage, ev *store.Event) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	prio := 0
	if b.priority != nil {
		prio = b.priority(ev.Source)
	}
	for _, k := range keys {
		tv := store.TraitValue{
			Profile: p, Key: k, Value: m[k], Timestamp: ev.Timestamp,
			Source: ev.Source, Priority: prio, Position: ev.Position,
		}
		b.c.Traits = append(b.c.Traits, tv)
		b.eng.Trait(tv, kind == store.KindAccount)
	}
}

// finish resolves every profile reference through the batch's merges and
// returns the changes to commit.
func (b *batch) finish(next store.ProfileID) *store.Changes {
	c := &b.c
	c.NextProfileID = next
	for i := range c.Identifiers {
		c.Identifiers[i].Profile = b.find(c.Identifiers[i].Profile)
	}
	for i := range c.Traits {
		c.Traits[i].Profile = b.find(c.Traits[i].Profile)
	}
	for i := range c.Timeline {
		c.Timeline[i].Profile = b.find(c.Timeline[i].Profile)
	}
	for i := range c.Decisions {
		if c.Decisions[i].Profile != 0 {
			c.Decisions[i].Profile = b.find(c.Decisions[i].Profile)
		}
	}
	byID := map[store.ProfileID]*store.ProfileDelta{}
	for _, d := range b.profiles {
		id := b.find(d.ID)
		if into := byID[id]; into != nil {
			widen(into, d.FirstSeen, d.LastSeen, d.Events)
			continue
		}
		cp := *d
		cp.ID = id
		byID[id] = &cp
	}
	for _, d := range byID {
		c.Profiles = append(c.Profiles, *d)
	}
	slices.SortFunc(c.Profiles, func(a, b store.ProfileDelta) int { return int(a.ID - b.ID) })
	links := c.Links[:0]
	seen := map[store.Link]bool{}
	for _, l := range c.Links {
		l.User = b.find(l.User)
		key := store.Link{User: l.User, Account: l.Account}
		if !seen[key] {
			seen[key] = true
			links = append(links, l)
		}
	}
	c.Links = links
	return c
}

// find follows this batch's merges from p to the profile that holds it now.
func (b *batch) find(p store.ProfileID) store.ProfileID {
	for {
		into, ok := b.merged[p]
		if !ok {
			return p
		}
		p = into
	}
}

// groupID reads a groupId given as a JSON string or number.
func groupID(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	}
	if _, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return string(raw)
	}
	return ""
}
