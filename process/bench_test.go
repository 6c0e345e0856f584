package process_test

import (
	"context"
	"testing"
	"time"
)

// BenchmarkReplay folds a log of realistic calls from scratch and reports
// events folded per second (SQLite, state in its own file).
func BenchmarkReplay(b *testing.B) {
	const n = 50000
	st := backends(b)["sqlite"](b)
	calls := syntheticCalls(n, 3)
	rx := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += 1000 {
		appendEvents(b, st, "bench", rx, calls[i:i+1000]...)
	}
	p := newProcessor(st, 5000)
	b.ResetTimer()
	for b.Loop() {
		if err := p.Replay(context.Background(), "bench", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
