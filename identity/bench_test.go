package identity_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
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

// BenchmarkLoad loads held identifiers as the processor does from the
// state store — for each profile a user id, a UUID anonymous id and an
// email — and reports the heap the graph holds per identifier.
// KITH_BENCH_IDENTIFIERS sets how many (default 1,000,000).
func BenchmarkLoad(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("KITH_BENCH_IDENTIFIERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 3 {
			b.Fatalf("KITH_BENCH_IDENTIFIERS=%q: want a whole number ≥ 3", v)
		}
	}
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
		var buf []byte
		for i := 0; i < n; i++ {
			p := i / 3
			h := store.HeldIdentifier{Profile: store.ProfileID(p + 1), Position: int64(i + 1), AddedAt: t0.Add(time.Duration(p) * time.Second)}
			switch i % 3 {
			case 0:
				h.Type, buf = identity.UserID, strconv.AppendInt(append(buf[:0], "user-"...), int64(p), 10)
			case 1:
				h.Type, buf = identity.AnonymousID, fmt.Appendf(buf[:0], "%08x-6c1e-4f2a-9d3b-%012x", p*7919, p)
			case 2:
				h.Type, buf = identity.Email, fmt.Appendf(buf[:0], "person%d@example.com", p)
			}
			h.Value = string(buf)
			g.Load(h)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perID = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
		runtime.KeepAlive(g)
	}
	b.ReportMetric(perID, "B/identifier")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "identifiers/s")
}
