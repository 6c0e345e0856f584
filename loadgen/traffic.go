// Package loadgen sends realistic Segment Tracking API traffic to a server
// and measures what it accepts: events per second and request latency
// percentiles. It backs `kith bench`.
package loadgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// traffic produces realistic calls: ~60% track, ~25% page, ~15% identify, of
// about 1 KB each, from many users who start anonymous and later identify,
// with a share of retries that repeat an earlier messageId.
type traffic struct {
	rng     *rand.Rand
	users   int
	dupRate float64
	seq     uint64
	recent  []string // messageIds that may be sent again
	known   map[int]bool
}

func newTraffic(seed uint64, users int, dupRate float64) *traffic {
	return &traffic{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), users: max(users, 1), dupRate: dupRate, known: map[int]bool{}}
}

var products = []struct {
	id, name, category string
	price              float64
}{
	{"sku-1001", "Merino Wool Sweater", "Apparel", 89.00},
	{"sku-2040", "Trail Running Shoes", "Footwear", 129.95},
	{"sku-3312", "Insulated Water Bottle", "Accessories", 24.50},
	{"sku-4420", "Rain Shell Jacket", "Apparel", 179.00},
	{"sku-5077", "Wool Hiking Socks (3-pack)", "Accessories", 19.99},
}

var trackEvents = []string{"Product Viewed", "Product Added", "Checkout Started", "Order Completed"}

const userAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// next returns one call as a JSON object and its type.
func (t *traffic) next(now time.Time) (map[string]any, string) {
	t.seq++
	u := t.rng.IntN(t.users)
	msgID := fmt.Sprintf("lg-%08x-%012x", t.rng.Uint32(), t.seq)
	if len(t.recent) > 0 && t.rng.Float64() < t.dupRate {
		msgID = t.recent[t.rng.IntN(len(t.recent))]
	} else if len(t.recent) < 1000 {
		t.recent = append(t.recent, msgID)
	} else {
		t.recent[t.rng.IntN(len(t.recent))] = msgID
	}
	anon := fmt.Sprintf("anon-%08d-4f1c-9b2e-%06d", u, u%999983)
	userID := fmt.Sprintf("user-%08d", u)
	p := products[t.rng.IntN(len(products))]
	ctx := map[string]any{
		"library":   map[string]any{"name": "kith-bench", "version": "1.0.0"},
		"userAgent": userAgent,
		"locale":    "en-GB",
		"timezone":  "Europe/Berlin",
		"ip":        fmt.Sprintf("203.0.113.%d", u%250+1),
		"page": map[string]any{
			"path":     "/products/" + p.id,
			"url":      "https://shop.example.com/products/" + p.id + "?utm_source=newsletter",
			"title":    p.name + " | Example Shop",
			"referrer": "https://www.example.org/search?q=" + p.category,
		},
		"campaign": map[string]any{"name": "winter-sale", "source": "newsletter", "medium": "email"},
	}
	call := map[string]any{
		"messageId": msgID,
		"timestamp": now.Add(-time.Duration(t.rng.IntN(2000)) * time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z"),
		"context":   ctx,
	}
	// A user is anonymous until their first identify; then they are known.
	if t.known[u] {
		call["userId"] = userID
	}
	call["anonymousId"] = anon
	r := t.rng.Float64()
	switch {
	case r < 0.15:
		t.known[u] = true
		call["type"] = "identify"
		call["userId"] = userID
		call["traits"] = map[string]any{
			"email": fmt.Sprintf("customer%d@example.com", u), "firstName": "Alex", "lastName": fmt.Sprintf("Example%d", u),
			"plan": []string{"free", "pro", "team"}[u%3], "createdAt": "2025-03-14T09:26:53.000Z",
			"address": map[string]any{"city": "Berlin", "country": "DE", "postalCode": "10115", "street": "Invalidenstr. 1"},
			"phone":   fmt.Sprintf("+49 30 %07d", u%10000000),
		}
		return call, "identify"
	case r < 0.40:
		call["type"] = "page"
		call["name"] = p.name
		call["properties"] = map[string]any{"path": "/products/" + p.id, "title": p.name, "url": "https://shop.example.com/products/" + p.id, "category": p.category}
		return call, "page"
	default:
		call["type"] = "track"
		call["event"] = trackEvents[t.rng.IntN(len(trackEvents))]
		qty := t.rng.IntN(3) + 1
		call["properties"] = map[string]any{
			"product_id": p.id, "sku": p.id, "name": p.name, "category": p.category, "brand": "Example Outdoor",
			"price": p.price, "quantity": qty, "currency": "EUR", "value": p.price * float64(qty),
			"coupon": "WINTER10", "position": t.rng.IntN(20) + 1,
		}
		return call, "track"
	}
}

// batchBody returns a /v1/batch body of n calls.
func (t *traffic) batchBody(n int, now time.Time) ([]byte, error) {
	batch := make([]map[string]any, n)
	for i := range batch {
		batch[i], _ = t.next(now)
	}
	return json.Marshal(map[string]any{"batch": batch, "sentAt": now.UTC().Format("2006-01-02T15:04:05.000Z")})
}

// singleBody returns one call with its sentAt and the path to send it to.
func (t *traffic) singleBody(now time.Time) ([]byte, string, error) {
	call, typ := t.next(now)
	delete(call, "type")
	call["sentAt"] = now.UTC().Format("2006-01-02T15:04:05.000Z")
	b, err := json.Marshal(call)
	return b, "/v1/" + typ, err
}
