package loadgen

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkBuild measures the cost of making request bodies: the CPU the
// generator takes from a server on the same machine.
func BenchmarkBuild(b *testing.B) {
	for _, mode := range []string{"batch", "track"} {
		b.Run(mode, func(b *testing.B) {
			p, err := buildPool(rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				b.Fatal(err)
			}
			r := &runner{o: Options{Mode: mode, BatchSize: 100, DupRate: 0.01}}
			s := newSender(1, p, 0, 1, 100_000)
			var body []byte
			events, bytes := 0, 0
			for b.Loop() {
				rq := r.build(s, body[:0], time.Now())
				body = rq.body
				events += rq.events
				bytes += rq.eventBytes
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(bytes)/float64(events), "B/event")
		})
	}
}

// BenchmarkRunDiscard measures the most the generator sends, against a
// local server that reads and discards every body: b.N requests at
// concurrency 16.
func BenchmarkRunDiscard(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"success":true}`))
	}))
	defer srv.Close()
	for _, mode := range []string{"batch", "track"} {
		b.Run(mode, func(b *testing.B) {
			rep, err := Run(context.Background(), Options{URL: srv.URL, WriteKey: "k", Mode: mode, Requests: b.N})
			if err != nil || rep.Failed() {
				b.Fatalf("%v %+v", err, rep)
			}
			b.ReportMetric(rep.EventsPerSec, "events/s")
			b.ReportMetric(rep.RequestsPerSec, "req/s")
		})
	}
}
