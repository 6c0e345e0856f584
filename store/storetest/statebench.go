package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// BenchCommit commits, b.N times, the Changes that folding 1,000 events of
// realistic traffic produces, and reports events/s. The traffic is the load
// generator's mix — 60% track, 25% page, 15% identify with 9 traits — from
// 50,000 people on two devices each: a device's first event makes a
// profile, a person's first identify adds user_id and email, and an identify
// on the person's other device merges the two profiles. The state grows as
// the benchmark runs, as it does in a replay. Building the Changes is not
// timed.
func BenchCommit(b *testing.B, st store.State) {
	const events = 1000
	ctx := context.Background()
	l, err := st.AcquireLease(ctx, "bench", "bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	g := &traffic{rng: rand.New(rand.NewPCG(1, 2)), people: 50000, next: l.NextProfileID,
		device: map[[2]int]store.ProfileID{}, main: map[int]store.ProfileID{}}
	pos := l.Position
	for b.Loop() {
		b.StopTimer()
		c := g.batch(pos, events)
		c.Workspace, c.Epoch = "bench", l.Epoch
		pos = c.To
		b.StartTimer()
		if err := st.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

// traffic generates Changes as the processor would fold them.
type traffic struct {
	rng    *rand.Rand
	people int
	next   store.ProfileID
	device map[[2]int]store.ProfileID // (person, device) → the profile it first made
	main   map[int]store.ProfileID    // person → identified profile
	merged map[store.ProfileID]store.ProfileID
}

var benchT0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// batch folds n events after position from.
func (g *traffic) batch(from int64, n int) *store.Changes {
	c := &store.Changes{From: from, To: from + int64(n)}
	g.merged = map[store.ProfileID]store.ProfileID{}
	deltas := map[store.ProfileID]*store.ProfileDelta{}
	for pos := from + 1; pos <= c.To; pos++ {
		person, dev := g.rng.IntN(g.people), g.rng.IntN(2)
		ts := benchT0.Add(time.Duration(pos) * time.Second)
		p := g.profile(c, person, dev, pos, ts)
		if g.rng.IntN(100) < 15 {
			p = g.identify(c, person, p, pos, ts)
		}
		d := deltas[p]
		if d == nil {
			d = &store.ProfileDelta{ID: p, Kind: store.KindUser, FirstSeen: ts}
			deltas[p] = d
		}
		d.LastSeen, d.Events = ts, d.Events+1
		c.Timeline = append(c.Timeline, store.TimelineEntry{Profile: p, Position: pos})
	}
	// As the processor does: every reference is to a profile after the
	// batch's merges, and each profile has one delta.
	final := map[store.ProfileID]*store.ProfileDelta{}
	for _, d := range deltas {
		id := g.find(d.ID)
		if f := final[id]; f != nil {
			f.FirstSeen, f.LastSeen, f.Events = minTime(f.FirstSeen, d.FirstSeen), maxTime(f.LastSeen, d.LastSeen), f.Events+d.Events
			continue
		}
		cp := *d
		cp.ID = id
		final[id] = &cp
	}
	for _, d := range final {
		c.Profiles = append(c.Profiles, *d)
	}
	slices.SortFunc(c.Profiles, func(a, b store.ProfileDelta) int { return int(a.ID - b.ID) })
	for i := range c.Identifiers {
		c.Identifiers[i].Profile = g.find(c.Identifiers[i].Profile)
	}
	for i := range c.Traits {
		c.Traits[i].Profile = g.find(c.Traits[i].Profile)
	}
	for i := range c.Timeline {
		c.Timeline[i].Profile = g.find(c.Timeline[i].Profile)
	}
	c.NextProfileID = g.next
	return c
}

// profile returns the profile of a person's device (after merges), making
// it on first use.
func (g *traffic) profile(c *store.Changes, person, dev int, pos int64, ts time.Time) store.ProfileID {
	k := [2]int{person, dev}
	p, ok := g.device[k]
	if !ok {
		p = g.next
		g.next++
		g.device[k] = p
		c.Identifiers = append(c.Identifiers, store.HeldIdentifier{Identifier: store.Identifier{Type: "anonymous_id",
			Value: fmt.Sprintf("anon-%d-%d", person, dev)}, Profile: p, Position: pos, AddedAt: ts})
	}
	return p
}

// identify links the device's profile p to the person's identified
// profile, merging the younger into the older, and sets 9 traits.
func (g *traffic) identify(c *store.Changes, person int, p store.ProfileID, pos int64, ts time.Time) store.ProfileID {
	switch m := g.main[person]; {
	case m == 0:
		g.main[person] = p
		for _, id := range []store.Identifier{{Type: "user_id", Value: fmt.Sprint("u-", person)},
			{Type: "email", Value: fmt.Sprintf("p%d@example.com", person)}} {
			c.Identifiers = append(c.Identifiers, store.HeldIdentifier{Identifier: id, Profile: p, Position: pos, AddedAt: ts})
		}
	case m != p:
		into, from := min(m, p), max(m, p)
		c.Merges = append(c.Merges, store.Merge{Into: into, From: from,
			Via: store.Identifier{Type: "user_id", Value: fmt.Sprint("u-", person)}, Position: pos, At: ts})
		g.merged[from] = into
		g.main[person] = into
		for dev := range 2 {
			if k := [2]int{person, dev}; g.device[k] != 0 {
				g.device[k] = into
			}
		}
		p = into
	}
	for _, kv := range [][2]string{
		{"name", fmt.Sprintf("Person %d Example", person)}, {"first_name", "Person"}, {"last_name", fmt.Sprint("Example", person)},
		{"email", fmt.Sprintf("p%d@example.com", person)}, {"company", fmt.Sprint("Company ", person%500)},
		{"plan", fmt.Sprint("plan-", g.rng.IntN(4))}, {"city", "Oslo"}, {"title", "Engineer"},
		{"logins", fmt.Sprint(g.rng.IntN(100))},
	} {
		v, _ := json.Marshal(kv[1])
		c.Traits = append(c.Traits, store.TraitValue{Profile: p, Key: kv[0], Value: v, Timestamp: ts, Source: "web", Position: pos})
	}
	return p
}

// find follows this batch's merges from p.
func (g *traffic) find(p store.ProfileID) store.ProfileID {
	for {
		into, ok := g.merged[p]
		if !ok {
			return p
		}
		p = into
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
