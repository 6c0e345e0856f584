//go:build unix

package compute_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/store"
)

// The benchmarks here build the engine's state through its own methods
// (Observe, Trait, Link), with the shapes of a web shop's profiles: one to
// five events each over the last 30 days (product views, cart adds,
// checkouts, orders, pages), a third of them identified with a plan and a
// newsletter flag, and one identified user in ten in a company account.
// KITH_BENCH_PROFILES sets how many profiles the scale benchmarks hold
// (default 100,000; the targets are stated at 1,000,000).

var benchNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// benchTraits are five computed traits of the kinds a shop defines.
var benchTraits = []struct{ name, body string }{
	{"orders_30d", `{"name":"orders_30d","kind":"count","events":["Order Completed"],"window_days":30}`},
	{"revenue", `{"name":"revenue","kind":"sum","events":["Order Completed"],"property":"properties.total"}`},
	{"last_product", `{"name":"last_product","kind":"last","events":["Product Viewed"],"property":"properties.name"}`},
	{"views_7d", `{"name":"views_7d","kind":"count","events":["Product Viewed"],"window_days":7}`},
	{"categories", `{"name":"categories","kind":"unique_list","events":["Product Viewed","Product Added"],"property":"properties.category","window_days":90}`},
}

// benchAudiences are ten audiences over those traits, profile traits,
// event conditions and each other.
var benchAudiences = []struct{ name, cond string }{
	{"buyers", `computed.orders_30d >= 1`},
	{"repeat_buyers", `computed.orders_30d >= 2`},
	{"big_spenders", `computed.revenue >= 200`},
	{"pro", `traits.plan == "pro"`},
	{"pro_buyers", `traits.plan == "pro" && "buyers" in audiences`},
	{"browsers", `events.count("Product Viewed", 7) >= 3`},
	{"cart_abandoners", `events.performed("Product Added", 7) && !events.performed("Order Completed", 7)`},
	{"newsletter_viewers", `traits.newsletter == true && computed.views_7d >= 1`},
	{"campers", `computed.categories.exists(c, c == "Camping")`},
	{"vip", `"big_spenders" in audiences && traits.plan != "free"`},
}

// oneAudience is the audience of the full-evaluation and preview
// benchmarks: an event condition and a profile trait.
var oneAudience = audience.Definition{Name: "pro_cart_abandoners",
	Condition: `events.performed("Product Added", 30) && !events.performed("Order Completed", 30) && traits.plan == "pro"`}

func storedDefs(tb testing.TB, traits bool, auds []audience.Definition) []store.Definition {
	tb.Helper()
	var defs []store.Definition
	if traits {
		for _, t := range benchTraits {
			defs = append(defs, store.Definition{Workspace: "bench", Kind: store.DefinitionTrait, Name: t.name, Body: json.RawMessage(t.body)})
		}
	}
	for _, a := range auds {
		body, err := json.Marshal(a)
		if err != nil {
			tb.Fatal(err)
		}
		defs = append(defs, store.Definition{Workspace: "bench", Kind: store.DefinitionAudience, Name: a.Name, Body: body})
	}
	return defs
}

func tenAudiences() []audience.Definition {
	var out []audience.Definition
	for _, a := range benchAudiences {
		out = append(out, audience.Definition{Name: a.name, Condition: a.cond})
	}
	return out
}

func compile(tb testing.TB, defs []store.Definition) *compute.Defs {
	tb.Helper()
	d, err := compute.Compile(defs)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// benchEvent is a template of one event kind.
type benchEvent struct {
	typ, name string
	raw       json.RawMessage
}

var benchEvents = func() []benchEvent {
	products := []struct {
		name, category string
		price          float64
	}{
		{"Merino Wool Sweater", "Apparel", 89}, {"Trail Running Shoes", "Footwear", 129.95},
		{"Insulated Water Bottle", "Accessories", 24.5}, {"Down Sleeping Bag", "Camping", 249},
	}
	var out []benchEvent
	for _, p := range products {
		for _, name := range []string{"Product Viewed", "Product Added", "Checkout Started", "Order Completed"} {
			props := fmt.Sprintf(`{"product_id":"sku-1","name":%q,"category":%q,"price":%v,"quantity":1,"currency":"EUR"}`, p.name, p.category, p.price)
			if name == "Order Completed" || name == "Checkout Started" {
				props = fmt.Sprintf(`{"order_id":"ord-1","total":%v,"shipping":4.95,"coupon":"WINTER10","currency":"EUR"}`, p.price)
			}
			raw := fmt.Sprintf(`{"type":"track","event":%q,"properties":%s,"context":{"library":{"name":"analytics.js","version":"5.2.0"},"locale":"en-GB","page":{"path":"/products/sku-1","url":"https://shop.example.com/products/sku-1"}}}`, name, props)
			out = append(out, benchEvent{"track", name, json.RawMessage(raw)})
		}
		raw := fmt.Sprintf(`{"type":"page","name":%q,"properties":{"path":"/products/sku-1","title":%q}}`, p.name, p.name)
		out = append(out, benchEvent{"page", p.name, json.RawMessage(raw)})
	}
	return out
}()

// pickEvent draws an event kind with the load generator's weights.
func pickEvent(rng *rand.Rand) benchEvent {
	product := rng.IntN(4) * 5
	r := rng.Float64()
	switch {
	case r < 0.25:
		return benchEvents[product+4] // page
	case r < 0.25+0.75*0.45:
		return benchEvents[product]
	case r < 0.25+0.75*0.70:
		return benchEvents[product+1]
	case r < 0.25+0.75*0.85:
		return benchEvents[product+2]
	default:
		return benchEvents[product+3]
	}
}

// world feeds n profiles' events, traits and links to an engine.
type world struct {
	n        int
	position int64
}

func (w *world) event(rng *rand.Rand) *store.Event {
	t := pickEvent(rng)
	w.position++
	return &store.Event{
		Position: w.position, Workspace: "bench", Type: t.typ, Name: t.name,
		Timestamp:  benchNow.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))),
		ReceivedAt: benchNow, Raw: t.raw,
	}
}

// fill gives every profile 1..n its events and traits; profiles above n
// are the accounts.
func (w *world) fill(e *compute.Engine) {
	rng := rand.New(rand.NewPCG(1, 2))
	plans := []string{`"free"`, `"plus"`, `"pro"`}
	for i := 1; i <= w.n; i++ {
		p := store.ProfileID(i)
		for range 1 + rng.IntN(5) {
			e.Observe(p, w.event(rng))
		}
		if rng.IntN(3) == 0 {
			w.position++
			e.Trait(store.TraitValue{Profile: p, Key: "plan", Value: json.RawMessage(plans[rng.IntN(3)]), Timestamp: benchNow, Position: w.position}, false)
			e.Trait(store.TraitValue{Profile: p, Key: "newsletter", Value: json.RawMessage(strconv.FormatBool(rng.IntN(2) == 0)), Timestamp: benchNow, Position: w.position}, false)
			if rng.IntN(10) == 0 {
				e.Link(p, store.ProfileID(w.n+1+i/20), w.position)
			}
		}
	}
}

func benchProfiles(b *testing.B) int {
	n := 100_000
	if v := os.Getenv("KITH_BENCH_PROFILES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("KITH_BENCH_PROFILES=%q: want a whole number ≥ 1", v)
		}
	}
	return n
}

// cpuTime is the CPU time the process used so far (user and system, all
// threads, the GC's included): on a shared machine it varies less than
// the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkRealtime is the real-time path: one event for one profile
// (Observe), then Evaluate of that profile over 5 computed traits and 10
// audiences, in an engine that holds 10,000 or KITH_BENCH_PROFILES other
// profiles (all evaluated once before, as after a load). It reports the
// time per profile per audience.
func BenchmarkRealtime(b *testing.B) {
	defs := compile(b, storedDefs(b, true, tenAudiences()))
	for _, n := range []int{10_000, benchProfiles(b)} {
		b.Run(fmt.Sprintf("held=%d", n), func(b *testing.B) {
			e := compute.New(defs, compute.Options{Workspace: "bench"})
			w := &world{n: n}
			w.fill(e)
			e.Evaluate(benchNow, w.position)
			rng := rand.New(rand.NewPCG(3, 4))
			events := make([]*store.Event, 4096)
			for i := range events {
				events[i] = w.event(rng)
			}
			b.ReportAllocs()
			i := 0
			cpu := cpuTime()
			for b.Loop() {
				ev := events[i%len(events)]
				p := store.ProfileID(1 + i*7919%n)
				e.Observe(p, ev)
				e.Evaluate(benchNow, ev.Position)
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(benchAudiences))/1000, "µs/profile/audience")
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N)/float64(len(benchAudiences))/1000, "cpu-µs/profile/audience")
		})
	}
}

// BenchmarkFullEvaluation evaluates every profile (as after an audience is
// defined: Touch each, then Evaluate) with one audience and no computed
// traits; "held" profiles hold events and traits, "empty" ones hold
// nothing. "first" is the evaluation that decides every membership for the
// first time (members enter, with outbox entries; the events were
// folded without an Evaluate), "again" one that changes nothing.
func BenchmarkFullEvaluation(b *testing.B) {
	n := benchProfiles(b)
	defs := compile(b, storedDefs(b, false, []audience.Definition{oneAudience}))
	for _, held := range []bool{true, false} {
		name := "empty"
		if held {
			name = "held"
		}
		var e *compute.Engine
		var position int64
		build := func() {
			e = compute.New(defs, compute.Options{Workspace: "bench"})
			w := &world{n: n}
			if held {
				w.fill(e)
			}
			position = w.position
		}
		touchAll := func() {
			for i := 1; i <= n; i++ {
				e.Touch(store.ProfileID(i), false)
			}
		}
		b.Run(name+"/first", func(b *testing.B) {
			var entered int
			for b.Loop() {
				b.StopTimer()
				build()
				b.StartTimer()
				touchAll()
				entered = len(e.Evaluate(benchNow.Add(time.Minute), position).Outbox)
			}
			b.ReportMetric(float64(n), "profiles")
			b.ReportMetric(float64(entered), "entered")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/evaluation")
		})
		b.Run(name+"/again", func(b *testing.B) {
			if e == nil { // "first" did not run
				build()
				e.Evaluate(benchNow, position)
			}
			cpu := cpuTime()
			for b.Loop() {
				touchAll()
				if out := e.Evaluate(benchNow.Add(time.Minute), position); len(out.Outbox) > 0 {
					b.Fatalf("%d membership changes on a re-evaluation", len(out.Outbox))
				}
			}
			b.ReportMetric(float64(n), "profiles")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/evaluation")
			b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/evaluation")
		})
	}
}

// BenchmarkPreview counts the members of an audience that is not stored
// over every profile (Engine.Preview, as process.Processor.Preview calls
// it when the engine maintains what the audience reads): "held" profiles
// hold events and traits, "empty" ones hold nothing.
func BenchmarkPreview(b *testing.B) {
	n := benchProfiles(b)
	// The stored definitions maintain what the candidate reads: the
	// candidate is a variant of a stored audience.
	stored := storedDefs(b, false, []audience.Definition{oneAudience})
	defs := compile(b, stored)
	candidate := audience.Definition{Name: "candidate", Condition: oneAudience.Condition}
	each := func(yield func(store.ProfileID, bool) bool) {
		for i := 1; i <= n; i++ {
			if !yield(store.ProfileID(i), false) {
				return
			}
		}
	}
	for _, held := range []bool{true, false} {
		name := "empty"
		if held {
			name = "held"
		}
		b.Run(name, func(b *testing.B) {
			e := compute.New(defs, compute.Options{Workspace: "bench"})
			w := &world{n: n}
			if held {
				w.fill(e)
			}
			e.Evaluate(benchNow, w.position)
			c, err := e.Candidate(stored, candidate)
			if err != nil {
				b.Fatal(err)
			}
			if len(c.Counters) > 0 || len(c.TraitKeys) > 0 {
				b.Fatalf("the candidate reads what the engine does not maintain: %v %v", c.Counters, c.TraitKeys)
			}
			var res compute.PreviewResult
			cpu := cpuTime()
			for b.Loop() {
				res = e.Preview(c, &compute.PreviewData{}, each, benchNow, 10)
			}
			b.ReportMetric(float64(res.Evaluated), "profiles")
			b.ReportMetric(float64(res.Members), "members")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/preview")
			b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/preview")
		})
	}
}

// BenchmarkMemory reports the engine's heap per profile once it holds
// KITH_BENCH_PROFILES profiles with 5 computed traits and 10 audiences
// (the states of 5 traits and 4 event conditions, 2 profile traits for a
// third of them, values and memberships), measured after an Evaluate.
func BenchmarkMemory(b *testing.B) {
	n := benchProfiles(b)
	defs := compile(b, storedDefs(b, true, tenAudiences()))
	for b.Loop() {
		before := heapInUse()
		e := compute.New(defs, compute.Options{Workspace: "bench"})
		w := &world{n: n}
		w.fill(e)
		e.Evaluate(benchNow, w.position)
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(n), "B/profile")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB")
		runtime.KeepAlive(e)
	}
}
