package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
)

// BenchmarkAppend commits one batch per operation, as the group committer
// does under load: events of ~1.1 KB (the load generator's size) with random
// UUID messageIds, so each event's dedup entry lands on a random page. The
// log grows by b.N batches, so compare runs with the same -benchtime, e.g.
//
//	go test -run '^$' -bench Append -benchtime 300x ./store/sqlite/
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			batches := make([]store.Batch, b.N)
			for i := range batches {
				batches[i].Events = benchEvents(rng, size)
			}
			b.SetBytes(int64(size * len(batches[0].Events[0].Raw)))
			b.ResetTimer()
			for i := range b.N {
				if _, err := st.Append(ctx, &batches[i], 7*24*time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchRaw is a web shop's track call as analytics.js sends it, ~1.1 KB.
var benchRaw = `{"type":"track","event":"Product Added","messageId":"%s","anonymousId":"%s","userId":"usr_000012345",` +
	`"properties":{"product_id":"sku-48213","sku":"48213-BL-M","category":"Apparel","name":"Merino Crew Sweater","brand":"Northwind",` +
	`"variant":"Blue / M","price":89.5,"quantity":1,"coupon":"","position":3,"url":"https://shop.example.com/p/merino-crew-sweater",` +
	`"image_url":"https://cdn.example.com/img/48213-bl.jpg","currency":"EUR","value":89.5,"cart_id":"c-5521093"},` +
	`"context":{"library":{"name":"analytics.js","version":"next-1.70.0"},"ip":"203.0.113.77","locale":"de-DE",` +
	`"userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",` +
	`"page":{"path":"/p/merino-crew-sweater","referrer":"https://www.google.com/","search":"?utm_source=google",` +
	`"title":"Merino Crew Sweater – Northwind","url":"https://shop.example.com/p/merino-crew-sweater?utm_source=google"},` +
	`"campaign":{"name":"winter-sale","source":"google","medium":"cpc","term":"merino sweater","content":"ad-3"},` +
	`"timezone":"Europe/Berlin","screen":{"width":1920,"height":1080,"density":1}},` +
	`"integrations":{},"originalTimestamp":"2026-11-24T13:56:25.280Z","sentAt":"2026-11-24T13:56:25.301Z"}`

func benchEvents(rng *rand.Rand, n int) []store.Event {
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff,
			rng.Uint32()&0xffff|0x8000, rng.Uint64()&0xffffffffffff)
	}
	now := time.Now().UTC()
	evs := make([]store.Event, n)
	for i := range evs {
		id, anon := uuid(), uuid()
		evs[i] = store.Event{
			Workspace: "default", Source: "web", MessageID: id, Type: "track", Name: "Product Added",
			UserID: "usr_000012345", AnonymousID: anon, Timestamp: now, ReceivedAt: now, Format: store.FormatVersion,
			Signals: store.Signals{IP: "203.0.113.77", UserAgent: strings.Repeat("M", 110)},
			Raw:     json.RawMessage(fmt.Sprintf(benchRaw, id, anon)),
		}
	}
	return evs
}
