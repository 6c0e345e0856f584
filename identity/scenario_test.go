package identity_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/scenario"
	"github.com/kithcdp/kith/store"
)

// scenarioEvents generates SDK-shaped calls of every scenario (package
// scenario) and decodes them as the Tracking API does, into log events
// with positions from 1 and receivedAt = timestamp.
func scenarioEvents(t testing.TB, seed uint64, groups int) []store.Event {
	t.Helper()
	var events []store.Event
	var body bytes.Buffer
	flush := func() {
		if body.Len() == 0 {
			return
		}
		body.WriteString(`]}`)
		out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: body.Bytes(), ReceivedAt: t0, KeepTimes: true}, ingest.DefaultLimits())
		if err != nil || len(out.Quarantine) > 0 {
			t.Fatalf("decode generated calls: %v %+v", err, out.Quarantine)
		}
		events = append(events, out.Events...)
		body.Reset()
	}
	n := 0
	for c := range scenario.Generate(scenario.Options{Seed: seed, Groups: groups}) {
		if body.Len() == 0 {
			body.WriteString(`{"batch":[`)
		} else {
			body.WriteByte(',')
		}
		body.Write(c.JSON)
		if n++; n%500 == 0 {
			flush()
		}
	}
	flush()
	for i := range events {
		events[i].Position = int64(i + 1)
		events[i].ReceivedAt = events[i].Timestamp
	}
	return events
}

func pointers(events []store.Event) []*store.Event {
	ps := make([]*store.Event, len(events))
	for i := range events {
		ps[i] = &events[i]
	}
	return ps
}

// TestScenarioOrderIndependence: the order-independence property on
// realistic traffic (every scenario, as the SDKs send it).
func TestScenarioOrderIndependence(t *testing.T) {
	t.Parallel()
	c := compile(t, unlimited)
	events := pointers(scenarioEvents(t, 11, 400))
	wantIDs, wantEvents := partitions(identity.NewGraph(c, 1), events)
	rng := rand.New(rand.NewPCG(11, 12))
	for range 3 {
		rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		if gotIDs, gotEvents := partitions(identity.NewGraph(c, 1), events); gotIDs != wantIDs || gotEvents != wantEvents {
			t.Fatal("the partition of scenario traffic depends on the order of events")
		}
	}
}

// TestScenarioReload: on realistic traffic with the default rules, a
// graph reloaded from what another holds decides as the original does.
func TestScenarioReload(t *testing.T) {
	t.Parallel()
	c := compile(t, nil)
	events := scenarioEvents(t, 5, 600)
	for _, cut := range []int{len(events) / 3, len(events) / 2, len(events) - 100} {
		t.Run(fmt.Sprint("cut at ", cut), func(t *testing.T) {
			t.Parallel()
			g := identity.NewGraph(c, 1)
			merges := map[store.ProfileID]int{}
			for i := range events[:cut] {
				for _, m := range g.Resolve(&events[i]).Merges {
					merges[m.Into] += merges[m.From] + 1
					delete(merges, m.From)
				}
			}
			loaded := identity.NewGraph(c, g.Next())
			for p := g.Next() - 1; p > 0; p-- { // reverse order
				for _, h := range g.Holdings(p) {
					loaded.Load(h)
				}
			}
			for p, n := range merges {
				loaded.LoadMerges(p, n)
			}
			for i := cut; i < len(events); i++ {
				if want, got := summary(g.Resolve(&events[i])), summary(loaded.Resolve(&events[i])); got != want {
					t.Fatalf("position %d: %s after a reload, %s without", events[i].Position, got, want)
				}
			}
		})
	}
}

// BenchmarkResolveScenarios resolves SDK-shaped traffic of every scenario
// (package scenario, decoded by ingest): calls with a full context, most
// of them matching a profile that exists.
func BenchmarkResolveScenarios(b *testing.B) {
	events := scenarioEvents(b, 1, 20_000)
	c := compile(b, nil)
	g, i := identity.NewGraph(c, 1), 0
	for b.Loop() {
		if i == len(events) {
			g, i = identity.NewGraph(c, 1), 0
		}
		g.Resolve(&events[i])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
