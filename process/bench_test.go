package process_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kithcdp/kith/store/sqlite"
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

// BenchmarkReplayDataDir replays workspace KITH_BENCH_WORKSPACE (default
// "default") of the SQLite data directory KITH_BENCH_DATA, e.g. one that
// "kith serve --fold=false" filled from "kith bench", with the default
// identity rules, in batches of KITH_BENCH_BATCH events (default 5000);
// it is skipped without KITH_BENCH_DATA. The directory's state.db is
// rebuilt. It reports events folded per second:
//
//	KITH_BENCH_DATA=/tmp/data go test -run '^$' -bench ReplayDataDir -benchtime 1x -cpuprofile cpu.out ./process/
func BenchmarkReplayDataDir(b *testing.B) {
	dir := os.Getenv("KITH_BENCH_DATA")
	if dir == "" {
		b.Skip("KITH_BENCH_DATA is not set")
	}
	ws := os.Getenv("KITH_BENCH_WORKSPACE")
	if ws == "" {
		ws = "default"
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	head, err := st.Head(ctx, ws)
	if err != nil {
		b.Fatal(err)
	}
	batch := 5000
	if n, err := strconv.Atoi(os.Getenv("KITH_BENCH_BATCH")); err == nil && n > 0 {
		batch = n
	}
	p := newProcessor(st, batch)
	b.ResetTimer()
	for b.Loop() {
		if err := p.Replay(ctx, ws, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
