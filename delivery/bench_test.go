package delivery_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
)

// BenchmarkDeliver measures delivery on its own: the log is filled first
// (KITH_BENCH_EVENTS events of ~1 KB, default 100,000, from 10,000 users,
// folded into profiles so that the gate and the ledger see real profiles),
// then each operation runs the engine with a new webhook destination whose
// cursor starts at the log's beginning, until its cursor reaches the head.
// The receiver is a local HTTP server that reads each body and counts its
// events. It reports events/s delivered and recorded (cursor moved, ledger
// written).
//
//	go test -run '^$' -bench Deliver -benchtime 3x ./delivery/
func BenchmarkDeliver(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("KITH_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			st := openStore(b, backend)
			fillLog(b, st, n)
			for _, bc := range []struct {
				name     string
				batch    int
				purposes bool // a consent gate with purposes (else strictly necessary)
			}{
				{"batch=100/consent", 100, true},
				{"batch=500/consent", 500, true},
				{"batch=500/strictly_necessary", 500, false},
			} {
				b.Run(bc.name, func(b *testing.B) { benchDeliver(b, st, n, bc.batch, bc.purposes) })
			}
		})
	}
}

const benchWS = "bench"

// benchEvent is a ~1 KB track call as a browser library sends it, with
// consent granting analytics.
func benchEvent(i int) string {
	return fmt.Sprintf(`{"type":"track","event":"Product Viewed","userId":"user-%d","anonymousId":"anon-%08d-4c1f-9a7e-2b7d5e0c%04d",`+
		`"messageId":"bench-%d-7f3e1c2a-5b8d-4e6f-a1c3-9d2b4e6f8a0c","timestamp":"2026-11-24T10:%02d:%02d.000Z",`+
		`"properties":{"product_id":"sku-%d","name":"Merino Wool Crew Sweater","category":"Apparel/Knitwear","brand":"Kith Outfitters","price":89.5,"currency":"EUR","quantity":1,"position":%d,"url":"https://shop.example.com/p/merino-wool-crew-sweater-%d","image_url":"https://cdn.example.com/img/sku-%d.jpg"},`+
		`"context":{"consent":{"categoryPreferences":{"Analytics":true,"Advertising":false,"Functional":true}},`+
		`"ip":"203.0.113.%d","locale":"de-DE","library":{"name":"analytics.js","version":"next-1.84.3"},`+
		`"page":{"path":"/p/merino-wool-crew-sweater","referrer":"https://www.google.com/","title":"Merino Wool Crew Sweater – Kith Outfitters","url":"https://shop.example.com/p/merino-wool-crew-sweater"},`+
		`"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}}`,
		i%10000, i%10000, i%10000, i, (i/60)%60, i%60, i%500, i%24, i%500, i%500, i%250)
}

// fillLog appends n events in batches of 500 and folds them.
func fillLog(b *testing.B, st store.Store, n int) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < n; i += 500 {
		calls := make([]string, 0, 500)
		for j := i; j < min(i+500, n); j++ {
			calls = append(calls, benchEvent(j))
		}
		out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: []byte(`{"batch":[` + strings.Join(calls, ",") + `]}`), ReceivedAt: time.Now()}, ingest.DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		for k := range out.Events {
			out.Events[k].Workspace, out.Events[k].Source = benchWS, "web"
		}
		if _, err := st.Append(ctx, &store.Batch{Events: out.Events}, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	appended := time.Since(start)
	rules, _ := identity.DefaultRules().Compile()
	p := process.New(process.Options{Store: st, Owner: "folder", LeaseTTL: time.Minute,
		Rules: func(string) (*identity.Compiled, error) { return rules, nil }})
	if err := p.CatchUp(ctx, benchWS, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("log filled with %d events (~%d bytes each) in %v, folded in %v", n, len(benchEvent(n/2)),
		appended.Round(time.Millisecond), (time.Since(start) - appended).Round(time.Millisecond))
}

var benchDest atomic.Int64

func benchDeliver(b *testing.B, st store.Store, n, batch int, purposes bool) {
	ctx := context.Background()
	head, err := st.Head(ctx, benchWS)
	if err != nil {
		b.Fatal(err)
	}
	var events atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		_, _ = io.Copy(&buf, r.Body)
		events.Add(int64(bytes.Count(buf.Bytes(), []byte(`"messageId"`))))
	}))
	defer srv.Close()
	gate := `"strictly_necessary":true`
	if purposes {
		gate = `"purposes":["analytics"]`
	}
	for b.Loop() {
		b.StopTimer()
		name := fmt.Sprintf("bench-%d", benchDest.Add(1))
		def := fmt.Sprintf(`{"name":%q,"type":"webhook","events":{},%s,"config":{"url":%q,"allow_http":true,"secrets":[%q],"batch":%d}}`,
			name, gate, srv.URL, secret, batch)
		defineWebhook(b, st, benchWS, name, def, true) // start at the log's beginning
		events.Store(0)
		eng := webhookEngine(b, st, 10*time.Second, delivery.Options{Owner: "bench", DefinitionsPoll: time.Hour})
		b.StartTimer()
		stop := run(eng, benchWS)
		for {
			time.Sleep(5 * time.Millisecond)
			cs, err := st.Deliveries(ctx, benchWS)
			if err != nil {
				b.Fatal(err)
			}
			if cursorOf(cs, name) >= head {
				break
			}
		}
		b.StopTimer()
		stop()
		if got := events.Load(); got != int64(n) {
			b.Fatalf("the receiver got %d events, want %d", got, n)
		}
		if err := st.DeleteDefinition(ctx, benchWS, store.DefinitionDestination, name); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func cursorOf(cs []store.DeliveryCursor, name string) int64 {
	for _, c := range cs {
		if c.Destination == name {
			return c.Log
		}
	}
	return -1
}
