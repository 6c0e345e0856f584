package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// BenchmarkProfileLookupAtScale fills the derived state with
// KITH_BENCH_PROFILES profiles (3 identifiers, 5 traits and 10 timeline
// entries each, written straight into the state) and reads random
// profiles' traits over HTTP, reporting latency percentiles. It is skipped
// unless KITH_BENCH_PROFILES is set, e.g. to 1000000.
func BenchmarkProfileLookupAtScale(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("KITH_BENCH_PROFILES"))
	if n <= 0 {
		b.Skip("set KITH_BENCH_PROFILES (e.g. 1000000) to run")
	}
	bb := setup(b)
	ctx := context.Background()
	start := time.Now()
	const chunk = 5000
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	for lo := 1; lo <= n; lo += chunk {
		l, err := bb.st.AcquireLease(ctx, "acme", "bench", time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		c := &store.Changes{Workspace: "acme", Epoch: l.Epoch, From: l.Position, To: l.Position + 10*chunk, NextProfileID: store.ProfileID(lo + chunk)}
		for i := lo; i < lo+chunk && i <= n; i++ {
			p := store.ProfileID(i)
			pos := int64(i) * 10
			c.Profiles = append(c.Profiles, store.ProfileDelta{ID: p, Kind: store.KindUser, FirstSeen: t0, LastSeen: t0, Events: 10})
			for _, id := range []store.Identifier{{Type: "user_id", Value: fmt.Sprint("u", i)}, {Type: "anonymous_id", Value: fmt.Sprintf("a-%x", i*7919)}, {Type: "email", Value: fmt.Sprintf("p%d@example.com", i)}} {
				c.Identifiers = append(c.Identifiers, store.HeldIdentifier{Identifier: id, Profile: p, Position: pos, AddedAt: t0})
			}
			for k, v := range map[string]string{"name": fmt.Sprintf(`"Person %d"`, i), "email": fmt.Sprintf(`"p%d@example.com"`, i), "plan": `"pro"`, "city": `"Oslo"`, "ltv": fmt.Sprint(i % 997)} {
				c.Traits = append(c.Traits, store.TraitValue{Profile: p, Key: k, Value: json.RawMessage(v), Timestamp: t0, Source: "web", Position: pos})
			}
			for e := range int64(10) {
				c.Timeline = append(c.Timeline, store.TimelineEntry{Profile: p, Position: pos + e})
			}
		}
		if err := bb.st.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d profiles written in %s", n, time.Since(start).Round(time.Second))
	client := &http.Client{}
	var lat []time.Duration
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i = (i*7919 + 13) % n
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s%suser_id:u%d/traits", bb.srv.URL, users, i+1), nil)
		req.SetBasicAuth(readToken, "")
		t := time.Now()
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp.StatusCode)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
