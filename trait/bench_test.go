package trait

import (
	"fmt"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// orderCompleted is a realistic track event as an analytics.js or server
// SDK sends it, with the batch context merged in: about 1 KB.
const orderCompleted = `{"type":"track","event":"Order Completed","messageId":"ajs-next-1710072000000-4f1c9a4e-6b1d-4a3e-9a53-5d0c8a4b2f11",` +
	`"anonymousId":"7c8f3d2e-1b4a-4c6e-8f9a-0b1c2d3e4f5a","userId":"user_84213",` +
	`"properties":{"order_id":"50314b8e9bcf000000000000","affiliation":"Google Store","total":27.5,"subtotal":22.5,"revenue":25,` +
	`"shipping":3,"tax":2,"discount":2.5,"coupon":"hasbros","currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011",` +
	`"sku":"45790-32","name":"Monopoly: 3rd Edition","price":19,"quantity":1,"category":"Games"},{"product_id":"505bd76785ebb509fc183733",` +
	`"sku":"46493-32","name":"Uno Card Game","price":3,"quantity":2,"category":"Games"}]},` +
	`"context":{"library":{"name":"analytics.js","version":"next-1.64.0"},"page":{"path":"/checkout/complete","referrer":"https://www.example.com/cart",` +
	`"search":"","title":"Thank you","url":"https://www.example.com/checkout/complete"},"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",` +
	`"locale":"en-US","ip":"203.0.113.7","campaign":{"name":"spring_sale","source":"newsletter","medium":"email"},"traits":{"plan":"pro"}},` +
	`"integrations":{},"timestamp":"2025-03-10T12:00:00.000Z","sentAt":"2025-03-10T12:00:00.100Z","receivedAt":"2025-03-10T12:00:00.150Z"}`

func benchEvent() *store.Event {
	return &store.Event{Position: 1, Type: "track", Name: "Order Completed", Timestamp: base, Raw: []byte(orderCompleted)}
}

// BenchmarkObserve folds a fresh ~1 KB event into a state per iteration
// (NewEvent included): what the engine pays per trait when the event is
// the only one to read.
func BenchmarkObserve(b *testing.B) {
	defs := []Definition{
		{Name: "orders", Kind: "count", Events: []string{"Order Completed"}},
		{Name: "other_event", Kind: "count", Events: []string{"Signed Up"}},
		{Name: "spend_30d", Kind: "sum", Events: []string{"Order Completed"}, Property: "properties.total", WindowDays: 30},
		{Name: "campaigns", Kind: "unique_list", Property: "context.campaign.name", WindowDays: 90},
		{Name: "last_currency", Kind: "last", Property: "properties.currency"},
		{Name: "big_orders", Kind: "count", Events: []string{"Order Completed"}, Where: `properties.total > 20`, WindowDays: 30},
		{Name: "campaign_orders", Kind: "count", Where: `context.campaign.source == "newsletter" && properties.currency == "USD"`},
		{Name: "checkout", Kind: "funnel", Events: []string{"Checkout Started", "Order Completed"}, Within: "1h", WindowDays: 7},
	}
	if len(orderCompleted) < 1000 || len(orderCompleted) > 1400 {
		b.Fatalf("event of %d bytes", len(orderCompleted))
	}
	for _, d := range defs {
		b.Run(d.Name, func(b *testing.B) {
			tr := mustCompile(b, d)
			raw := benchEvent()
			s := &State{}
			b.SetBytes(int64(len(raw.Raw)))
			b.ReportAllocs()
			for b.Loop() {
				raw.Timestamp = base.Add(time.Duration(b.N%1000) * time.Second)
				tr.Observe(s, NewEvent(raw))
			}
		})
	}
	// All of them on one Event: reading is shared.
	b.Run("all_8_shared", func(b *testing.B) {
		traits := make([]*Trait, len(defs))
		states := make([]*State, len(defs))
		for i, d := range defs {
			traits[i], states[i] = mustCompile(b, d), &State{}
		}
		raw := benchEvent()
		b.ReportAllocs()
		for b.Loop() {
			e := NewEvent(raw)
			for i, tr := range traits {
				tr.Observe(states[i], e)
			}
		}
	})
}

// benchState is a 90-day state of a trait of each kind after 2,000 events.
func benchState(b *testing.B, kind string, pool int) (*Trait, *State) {
	d := Definition{Name: "b", Kind: kind, Property: "properties.v", WindowDays: 90}
	tr := mustCompile(b, d)
	s := &State{}
	for i := range 2000 {
		v := fmt.Sprintf(`%d.5`, i%pool)
		if kind == "unique_list" || kind == "most_frequent" || kind == "last" {
			v = fmt.Sprintf(`"value-%d"`, i%pool)
		}
		tr.Observe(s, ev{at: days(i % 90).Add(time.Duration(i) * time.Second), props: `{"v":` + v + `}`}.event(int64(i+1)))
	}
	return tr, s
}

func BenchmarkValue(b *testing.B) {
	for _, kind := range []string{"count", "sum", "avg", "max", "last", "most_frequent", "unique_list"} {
		b.Run(kind, func(b *testing.B) {
			tr, s := benchState(b, kind, 50)
			b.ReportAllocs()
			for b.Loop() {
				tr.Value(s, base)
			}
		})
	}
}

func BenchmarkEncodeDecode(b *testing.B) {
	for _, kind := range []string{"sum", "unique_list"} {
		tr, s := benchState(b, kind, 50)
		enc := tr.Encode(s)
		b.Run("encode_"+kind, func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(enc)), "bytes")
			for b.Loop() {
				tr.Encode(s)
			}
		})
		b.Run("decode_"+kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
