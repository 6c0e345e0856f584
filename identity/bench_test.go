package identity_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

// people returns the calls of n people as a website sends them: a few
// anonymous page views, an identify with userId and email, then tracks
// with both ids. Each person carries three identifiers.
func people(n int) []store.Event {
	var events []store.Event
	add := func(typ, user, anon, raw string) {
		events = append(events, store.Event{
			Type: typ, UserID: user, AnonymousID: anon, Position: int64(len(events) + 1),
			ReceivedAt: t0.Add(time.Duration(len(events)) * time.Millisecond), Raw: []byte(raw),
		})
	}
	const ctx = `"context":{"library":{"name":"analytics.js","version":"5.2.0"},"page":{"path":"/pricing","url":"https://shop.example.com/pricing"},"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)","locale":"en-US"}`
	for i := range n {
		anon := fmt.Sprintf("%08x-6c1e-4f2a-9d3b-%012x", i*7919, i)
		user := fmt.Sprint("user-", i)
		for range 3 {
			add("page", "", anon, `{"type":"page","anonymousId":"`+anon+`","name":"Pricing","properties":{"path":"/pricing"},`+ctx+`}`)
		}
		add("identify", user, anon, fmt.Sprintf(`{"type":"identify","userId":"%s","anonymousId":"%s","traits":{"email":"Person%d@Example.com","name":"Person %d","plan":"pro"},%s}`, user, anon, i, i, ctx))
		for range 4 {
			add("track", user, anon, `{"type":"track","event":"Product Viewed","userId":"`+user+`","anonymousId":"`+anon+`","properties":{"sku":"A-1","price":12.5},`+ctx+`}`)
		}
	}
	return events
}

// BenchmarkResolve reports ns per event and events/s through one graph.
// "new_people": every call is an identify of a new person (three new
// identifiers and a new profile per call, the worst case). "website": the
// calls of people() — the common case, where most calls match a profile.
func BenchmarkResolve(b *testing.B) {
	fresh := make([]store.Event, 300_000)
	for i := range fresh {
		anon := fmt.Sprintf("%08x-6c1e-4f2a-9d3b-%012x", i*7919, i)
		fresh[i] = store.Event{
			Type: "identify", UserID: fmt.Sprint("user-", i), AnonymousID: anon,
			Position: int64(i + 1), ReceivedAt: t0.Add(time.Duration(i) * time.Millisecond),
			Raw: []byte(fmt.Sprintf(`{"type":"identify","userId":"user-%d","anonymousId":"%s","traits":{"email":"person%d@example.com","name":"Person"},"context":{"library":{"name":"analytics.js"},"page":{"url":"https://shop.example.com/"}}}`, i, anon, i)),
		}
	}
	c, err := identity.DefaultRules().Compile()
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name   string
		events []store.Event
	}{{"new_people", fresh}, {"website", people(40_000)}} {
		b.Run(bm.name, func(b *testing.B) {
			g, i := identity.NewGraph(c, 1), 0
			for b.Loop() {
				if i == len(bm.events) {
					g, i = identity.NewGraph(c, 1), 0
				}
				g.Resolve(&bm.events[i])
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLoad loads a million held identifiers (a user id, a UUID
// anonymous id and an email for each of 333,334 profiles), as the
// processor does from the state store, and reports the heap the graph
// holds per identifier.
func BenchmarkLoad(b *testing.B) {
	const n = 1_000_000
	held := make([]store.HeldIdentifier, 0, n)
	for i := 0; len(held) < n; i++ {
		p := store.ProfileID(i + 1)
		at := t0.Add(time.Duration(i) * time.Second)
		for _, id := range []store.Identifier{
			{Type: identity.UserID, Value: fmt.Sprint("user-", i)},
			{Type: identity.AnonymousID, Value: fmt.Sprintf("%08x-6c1e-4f2a-9d3b-%012x", i*7919, i)},
			{Type: identity.Email, Value: fmt.Sprintf("person%d@example.com", i)},
		} {
			held = append(held, store.HeldIdentifier{Identifier: id, Profile: p, Position: int64(len(held) + 1), AddedAt: at})
		}
	}
	held = held[:n]
	c, err := identity.DefaultRules().Compile()
	if err != nil {
		b.Fatal(err)
	}
	var perID float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := identity.NewGraph(c, 1)
		for _, h := range held {
			g.Load(h)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perID = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(g)
	}
	b.ReportMetric(perID, "B/identifier")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "identifiers/s")
}
