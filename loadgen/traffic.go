// Package loadgen sends realistic Segment Tracking API traffic to a server
// and measures what it accepts: events per second and request latency
// percentiles. It backs `kith bench`.
package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// traffic produces realistic calls: ~60% track, ~25% page, ~15% identify, of
// about 1 KB each, from many users who start anonymous and later identify
// (the pool is built in order, so identifies precede a user's later calls
// within it), with a share of retries that repeat an earlier messageId.
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
	u := t.rng.IntN(t.users)
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

// A pool of pre-encoded calls: encoding JSON per event would take CPU from
// the server under test on the same machine. Each template holds a
// fixed-width messageId placeholder that is overwritten per send.
type template struct {
	json  []byte
	idAt  int // offset of the messageId placeholder
	path  string
	typed []byte // the call without its "type" member, for single calls
	tidAt int
}

const idWidth = 24 // "lg-" + 21 digits

func placeholderID() string { return "lg-" + strings.Repeat("0", idWidth-3) }

func (t *traffic) buildPool(n int, now time.Time) ([]template, error) {
	pool := make([]template, n)
	for i := range pool {
		call, typ := t.next(now)
		call["messageId"] = placeholderID()
		b, err := json.Marshal(call)
		if err != nil {
			return nil, err
		}
		delete(call, "type")
		single, err := json.Marshal(call)
		if err != nil {
			return nil, err
		}
		pool[i] = template{json: b, idAt: bytes.Index(b, []byte(placeholderID())), path: "/v1/" + typ,
			typed: single, tidAt: bytes.Index(single, []byte(placeholderID()))}
	}
	return pool, nil
}

// nextID returns a fresh messageId or, at the duplicate rate, an earlier one.
func (t *traffic) nextID() string {
	t.seq++
	id := fmt.Sprintf("lg-%0*d", idWidth-3, t.seq)
	if len(t.recent) > 0 && t.rng.Float64() < t.dupRate {
		return t.recent[t.rng.IntN(len(t.recent))]
	}
	if len(t.recent) < 1000 {
		t.recent = append(t.recent, id)
	} else {
		t.recent[t.rng.IntN(len(t.recent))] = id
	}
	return id
}

func withID(dst, tmpl []byte, at int, id string) []byte {
	dst = append(dst, tmpl[:at]...)
	dst = append(dst, id...)
	return append(dst, tmpl[at+idWidth:]...)
}

// batchBody returns a /v1/batch body of n calls from the pool.
func (t *traffic) batchBody(pool []template, n int, now time.Time) []byte {
	b := make([]byte, 0, n*1100)
	b = append(b, `{"batch":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		tp := pool[t.rng.IntN(len(pool))]
		b = withID(b, tp.json, tp.idAt, t.nextID())
	}
	b = append(b, `],"sentAt":"`...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, `"}`...)
}

// singleBody returns one call with its sentAt and the path to send it to.
func (t *traffic) singleBody(pool []template, now time.Time) ([]byte, string) {
	tp := pool[t.rng.IntN(len(pool))]
	b := withID(make([]byte, 0, 1200), tp.typed, tp.tidAt, t.nextID())
	b = append(b[:len(b)-1], `,"sentAt":"`...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, `"}`...), tp.path
}
