package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
)

// TestComputeLatency measures how long after an event was received the
// audience memberships it changed reached the outbox, on the data
// directory of a `kith serve` (embedded SQLite) loaded by `kith bench`.
// It runs only with KITH_BENCH_LATENCY_DATA set to that directory, with
// the server stopped (see docs/benchmarks.md, "Compute"):
//
//	KITH_BENCH_LATENCY=define  stores the audiences (before the load)
//	KITH_BENCH_LATENCY=report  prints the latencies (after it)
//
// The audiences are true for most profiles the load generator's traffic
// makes: "identified" (an identify call set the plan trait) and "buyers"
// (an Order Completed event, 10% of track calls). The latency of an entry
// is its At (when Evaluate decided, just before the batch's commit) minus
// the receivedAt of the event at its position (the event that last touched
// the profile in that batch). KITH_BENCH_LATENCY_WORKSPACE names the
// workspace (default "default").
func TestComputeLatency(t *testing.T) {
	dir := os.Getenv("KITH_BENCH_LATENCY_DATA")
	if dir == "" {
		t.Skip("set KITH_BENCH_LATENCY_DATA to a kith serve data directory (and KITH_BENCH_LATENCY=define or report) to run")
	}
	ws := os.Getenv("KITH_BENCH_LATENCY_WORKSPACE")
	if ws == "" {
		ws = "default"
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	switch mode := os.Getenv("KITH_BENCH_LATENCY"); mode {
	case "define":
		for _, a := range []audience.Definition{
			{Name: "identified", Condition: `traits.plan in ["free", "plus", "pro"]`},
			{Name: "buyers", Condition: `events.performed("Order Completed")`},
		} {
			body, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.PutDefinition(ctx, store.Definition{Workspace: ws, Kind: store.DefinitionAudience, Name: a.Name, Body: body, Origin: "api"}); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("audiences identified and buyers stored in workspace %s", ws)
	case "report":
		reportLatency(t, st, ws)
	default:
		t.Fatalf("KITH_BENCH_LATENCY=%q: want define or report", mode)
	}
}

func reportLatency(t *testing.T, st store.Store, ws string) {
	ctx := context.Background()
	var entries []store.OutboxEntry
	for after := int64(0); ; {
		page, err := st.ReadOutbox(ctx, ws, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Kind == store.OutboxAudienceEntered || e.Kind == store.OutboxAudienceExited {
				e.Payload = nil
				entries = append(entries, e)
			}
		}
		after = page[len(page)-1].ID
	}
	if len(entries) == 0 {
		t.Fatal("no audience entries in the outbox")
	}
	want := map[int64]time.Time{}
	for _, e := range entries {
		want[e.Position] = time.Time{}
	}
	var first, last time.Time
	var events int
	for after := int64(0); ; {
		page, err := st.Read(ctx, store.LogQuery{Workspace: ws, After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			ev := &page[i]
			if _, ok := want[ev.Position]; ok {
				want[ev.Position] = ev.ReceivedAt
			}
			if first.IsZero() || ev.ReceivedAt.Before(first) {
				first = ev.ReceivedAt
			}
			if ev.ReceivedAt.After(last) {
				last = ev.ReceivedAt
			}
			events++
		}
		after = page[len(page)-1].Position
	}
	// Latencies overall and by 10-second slice of the load, to show
	// whether folding kept up (a growing latency) or not.
	var all []time.Duration
	bySlice := map[int][]time.Duration{}
	for _, e := range entries {
		rx := want[e.Position]
		if rx.IsZero() {
			t.Fatalf("no event at position %d", e.Position)
		}
		d := e.At.Sub(rx)
		all = append(all, d)
		k := int(rx.Sub(first) / (10 * time.Second))
		bySlice[k] = append(bySlice[k], d)
	}
	fmt.Printf("%d events received over %s, %d audience entries/exits\n", events, last.Sub(first).Round(time.Millisecond), len(entries))
	fmt.Printf("all:        %s\n", percentiles(all))
	for k := 0; k <= int(last.Sub(first)/(10*time.Second)); k++ {
		if len(bySlice[k]) > 0 {
			fmt.Printf("%3d–%3d s: %s\n", k*10, k*10+10, percentiles(bySlice[k]))
		}
	}
}

func percentiles(ds []time.Duration) string {
	ds = slicesSorted(ds)
	at := func(q float64) time.Duration {
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(time.Millisecond)
	}
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", len(ds), at(0.5), at(0.9), at(0.99), ds[len(ds)-1].Round(time.Millisecond))
}

func slicesSorted(ds []time.Duration) []time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds
}
