package ingest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchEvents returns n events of about 1 KB in the shape analytics-next
// sends them (identify with traits, track with properties, page, group,
// alias, each with context.page, library and userAgent), with distinct
// messageIds.
func benchEvents(b *testing.B, n int) []json.RawMessage {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "analytics-next-batch.json"))
	if err != nil {
		b.Fatal(err)
	}
	var v struct{ Batch []json.RawMessage }
	if err := json.Unmarshal(raw, &v); err != nil {
		b.Fatal(err)
	}
	out := make([]json.RawMessage, n)
	for i := range out {
		e := string(v.Batch[i%len(v.Batch)])
		e = strings.Replace(e, `"messageId":"ajs-next-`, fmt.Sprintf(`"messageId":"ajs-next-%d-`, i), 1)
		out[i] = json.RawMessage(e)
	}
	return out
}

func benchBatch(b *testing.B, body []byte, events int) {
	b.Helper()
	lim := DefaultLimits()
	in := Input{Call: CallBatch, Body: body, ReceivedAt: time.Now()}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		out, err := Decode(in, lim)
		if err != nil || len(out.Events) != events {
			b.Fatalf("%v: %d events", err, len(out.Events))
		}
	}
	reportRates(b, b.N*events, processCPU()-cpu)
}

// reportRates reports events/s of wall time and, where the process's CPU
// time is known, events per CPU-second (garbage collection included): the
// per-core figure, which a busy machine does not distort.
func reportRates(b *testing.B, events int, cpu time.Duration) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	}
}

// BenchmarkDecodeBatch decodes a batch of 100 events of about 1 KB.
func BenchmarkDecodeBatch(b *testing.B) {
	evs := benchEvents(b, 100)
	join := func(evs []json.RawMessage) string {
		s := make([]string, len(evs))
		for i, e := range evs {
			s[i] = string(e)
		}
		return strings.Join(s, ",")
	}
	// As analytics-next posts to /v1/b: a writeKey in every event (removed
	// from each), one sentAt for the batch (added to each).
	b.Run("analytics-next", func(b *testing.B) {
		body := `{"writeKey":"wk_shop_1234567890","batch":[` + join(evs) + `],"sentAt":"2026-11-24T12:15:44.023Z"}`
		benchBatch(b, []byte(body), len(evs))
	})
	// Events with nothing to change: each stored byte for byte.
	b.Run("as-is", func(b *testing.B) {
		plain := make([]json.RawMessage, len(evs))
		for i, e := range evs {
			plain[i] = json.RawMessage(strings.Replace(string(e), `"writeKey":"wk_shop_1234567890",`, "", 1))
		}
		benchBatch(b, []byte(`{"batch":[`+join(plain)+`]}`), len(evs))
	})
	// A batch-level context merged into every event's own context.
	b.Run("merge-context", func(b *testing.B) {
		body := `{"batch":[` + join(evs) + `],"context":{"library":{"name":"analytics-go","version":"3.0.0"},"ip":"203.0.113.7"},"integrations":{"All":true},"sentAt":"2026-11-24T12:15:44.023Z"}`
		benchBatch(b, []byte(body), len(evs))
	})
}

// BenchmarkDecodeTrack decodes one track call of about 1 KB, as
// analytics-next posts it to /v1/t.
func BenchmarkDecodeTrack(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "analytics-next-track.json"))
	if err != nil {
		b.Fatal(err)
	}
	lim := DefaultLimits()
	in := Input{Call: CallTrack, Body: body, ReceivedAt: time.Now()}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if _, err := Decode(in, lim); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, b.N, processCPU()-cpu)
}
