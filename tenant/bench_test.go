package tenant_test

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkSourceForKey measures the write-key lookup every Tracking API
// request makes, in a registry of 1,000 sources.
func BenchmarkSourceForKey(b *testing.B) {
	var cfg strings.Builder
	cfg.WriteString("workspaces:\n  - slug: bench\n    sources:\n")
	for i := range 1000 {
		fmt.Fprintf(&cfg, "      - {slug: s%d, write_key: wk_bench_%08d}\n", i, i)
	}
	reg, _ := setup(b).load(b, cfg.String())
	const hit, miss = "wk_bench_00000500", "wk_bench_99999999"

	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := reg.SourceForKey(hit); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := reg.SourceForKey(miss); ok {
				b.Fatal("hit")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := reg.SourceForKey(hit); !ok {
					b.Fatal("miss")
				}
			}
		})
	})
}

// BenchmarkAllow measures the rate-limit check of a limited source.
func BenchmarkAllow(b *testing.B) {
	reg, _ := setup(b).load(b, `
workspaces:
  - slug: bench
    sources:
      - {slug: s, write_key: wk_bench_12345678, rate_limit: {events_per_second: 1e9, burst: 1000000}}
`)
	src, _ := reg.SourceForKey("wk_bench_12345678")
	b.ReportAllocs()
	for b.Loop() {
		src.Allow(10)
	}
}
