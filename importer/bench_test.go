package importer_test

import (
	"testing"
	"time"

	"github.com/kithcdp/kith/importer"
)

// BenchmarkImport measures end-to-end import throughput into a fresh
// SQLite store — reading, validating, and appending in batches of 1,000
// events, each batch one fsynced transaction — in lines per second. The
// JSONL lines are track calls of about 270 bytes; the CSV rows have four
// columns.
func BenchmarkImport(b *testing.B) {
	for _, f := range []importer.Format{importer.JSONL, importer.CSV} {
		b.Run(string(f), func(b *testing.B) {
			bb := setup(b)
			in := generate(f, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			sum, err := importer.Run(bb.ctx, bb.st, bb.opts(f), in)
			if err != nil {
				b.Fatal(err)
			}
			secs := time.Since(start).Seconds()
			b.ReportMetric(float64(sum.Lines)/secs, "lines/s")
			b.ReportMetric(float64(sum.Bytes)/secs/1e6, "MB/s")
			if sum.Events != int64(b.N) {
				b.Fatalf("imported %d of %d", sum.Events, b.N)
			}
		})
	}
}
