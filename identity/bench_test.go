package identity_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

// BenchmarkResolve resolves identify calls of 200,000 people, each with a
// user id, an anonymous id and an email, and reports events/s and the heap
// held per identifier.
func BenchmarkResolve(b *testing.B) {
	const people = 200000
	events := make([]*store.Event, people)
	for i := range events {
		events[i] = &store.Event{
			Type: "identify", UserID: fmt.Sprint("user-", i), AnonymousID: fmt.Sprintf("anon-%08x", i*7919),
			Position: int64(i + 1), ReceivedAt: t0.Add(time.Duration(i) * time.Millisecond),
			Raw: []byte(fmt.Sprintf(`{"type":"identify","userId":"user-%d","traits":{"email":"person%d@example.com","name":"Person"},"context":{"library":{"name":"analytics.js"},"page":{"url":"https://shop.example.com/"}}}`, i, i)),
		}
	}
	c, err := identity.DefaultRules().Compile()
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := identity.NewGraph(c, 1)
		for _, e := range events {
			g.Resolve(e)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(3*people), "B/identifier")
		runtime.KeepAlive(g)
	}
	b.ReportMetric(float64(people)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
