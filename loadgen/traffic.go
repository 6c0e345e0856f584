package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The traffic is ~60% track, ~25% page and ~15% identify calls of about
// 1 KB, as a web shop's analytics.js sends them. Encoding every call with
// encoding/json would take the CPU the server under test needs on the same
// machine, so each call is a copy of a pre-encoded template whose
// per-call parts (messageId, anonymousId, user number, IP, timestamp) are
// fixed-width placeholders overwritten in place.
const (
	identifyShare  = 0.15
	pageShare      = 0.25
	newDeviceShare = 0.02 // of a known user's calls: a new device, so a new anonymous id to link
	jitter         = 2 * time.Second
	recentCalls    = 256 // calls a sender remembers for re-sending
)

// A hole is a placeholder in a template. Each kind is a run of one letter
// that appears nowhere else in the templates.
type hole struct {
	at   int
	kind holeKind
}

type holeKind uint8

const (
	holeMessageID holeKind = iota
	holeAnonymousID
	holeUser
	holeIP
	holeTimestamp
	numHoles
)

var placeholders = [numHoles]string{
	holeMessageID:   strings.Repeat("Q", 36),
	holeAnonymousID: strings.Repeat("X", 36),
	holeUser:        strings.Repeat("Z", userDigits),
	holeIP:          strings.Repeat("V", 15),
	holeTimestamp:   strings.Repeat("W", len(timeLayout)),
}

const (
	userDigits = 9 // user numbers are written as usr_000012345
	maxUsers   = 1_000_000_000
	timeLayout = "2006-01-02T15:04:05.000Z"
)

type template struct {
	json  []byte
	holes []hole
	path  string
}

// variant is the shape of a call: its type and whether it names a userId.
type variant uint8

const (
	trackAnonymous variant = iota
	trackKnown
	pageAnonymous
	pageKnown
	identify // always with userId and anonymousId: the link
	numVariants
)

// pool holds the templates of each variant; it is read-only once built.
type pool [numVariants][]template

const templatesPerVariant = 64

type product struct {
	id, name, category, variant string
	price                       float64
}

var (
	products = []product{
		{"sku-1001", "Merino Wool Sweater", "Apparel", "Charcoal / M", 89.00},
		{"sku-2040", "Trail Running Shoes", "Footwear", "Blue / 42", 129.95},
		{"sku-3312", "Insulated Water Bottle", "Accessories", "750 ml", 24.50},
		{"sku-4420", "Rain Shell Jacket", "Apparel", "Olive / L", 179.00},
		{"sku-5077", "Wool Hiking Socks (3-pack)", "Accessories", "M", 19.99},
		{"sku-6120", "Down Sleeping Bag", "Camping", "Regular", 249.00},
		{"sku-7003", "Two-Person Tent", "Camping", "Green", 319.50},
		{"sku-8841", "Trekking Poles", "Accessories", "Carbon", 74.90},
	}
	trackEvents = []struct {
		name   string
		weight float64
	}{{"Product Viewed", 0.45}, {"Product Added", 0.25}, {"Checkout Started", 0.12}, {"Order Completed", 0.10}, {"Product Removed", 0.08}}
	userAgents = []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	}
	locales     = [][2]string{{"en-GB", "Europe/London"}, {"de-DE", "Europe/Berlin"}, {"fr-FR", "Europe/Paris"}, {"en-US", "America/New_York"}}
	campaigns   = []string{"winter-sale", "spring-launch", "loyalty-q3", "black-friday"}
	sources     = [][2]string{{"newsletter", "email"}, {"google", "cpc"}, {"instagram", "social"}, {"partner-blog", "referral"}}
	firstNames  = []string{"Alex", "Maria", "Jonas", "Aisha", "Wei", "Sofia", "Liam", "Noor"}
	lastNames   = []string{"Schmidt", "García", "Okafor", "Nguyen", "Dubois", "Kowalski", "Larsen", "Haddad"}
	firstOctets = []uint64{151, 185, 212, 217}
	cities      = [][3]string{{"Berlin", "10115", "DE"}, {"Paris", "75003", "FR"}, {"London", "EC1V 9HX", "GB"}, {"Boston", "02116", "US"}}
)

// buildPool encodes templatesPerVariant templates of every variant.
func buildPool(rng *rand.Rand) (*pool, error) {
	var p pool
	for v := range numVariants {
		for range templatesPerVariant {
			call := newCall(rng, v)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false) // SDKs send & and < as they are
			if err := enc.Encode(call); err != nil {
				return nil, fmt.Errorf("encode a call template: %w", err)
			}
			b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			p[v] = append(p[v], template{json: b, holes: findHoles(b), path: "/v1/" + call["type"].(string)})
		}
	}
	return &p, nil
}

// findHoles returns the placeholders in b in order.
func findHoles(b []byte) []hole {
	var hs []hole
	for k, ph := range placeholders {
		for i := 0; ; {
			j := bytes.Index(b[i:], []byte(ph))
			if j < 0 {
				break
			}
			hs = append(hs, hole{at: i + j, kind: holeKind(k)})
			i += j + len(ph)
		}
	}
	return hs
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// newCall returns one call of variant v as a JSON object with placeholders.
func newCall(rng *rand.Rand, v variant) map[string]any {
	p := pick(rng, products)
	loc := pick(rng, locales)
	src := pick(rng, sources)
	campaign := pick(rng, campaigns)
	pageURL := "https://shop.example.com/products/" + p.id
	query := "?utm_source=" + src[0] + "&utm_medium=" + src[1] + "&utm_campaign=" + campaign
	user := "usr_" + placeholders[holeUser]
	call := map[string]any{
		"messageId":   placeholders[holeMessageID],
		"anonymousId": placeholders[holeAnonymousID],
		"timestamp":   placeholders[holeTimestamp],
		"context": map[string]any{
			"library":   map[string]any{"name": "kith-bench", "version": "1.0.0"},
			"userAgent": pick(rng, userAgents),
			"locale":    loc[0],
			"timezone":  loc[1],
			"ip":        placeholders[holeIP],
			"page": map[string]any{
				"path":     "/products/" + p.id,
				"url":      pageURL + query,
				"search":   query,
				"title":    p.name + " | Example Outdoor Shop",
				"referrer": "https://www.google.com/",
			},
			"campaign": map[string]any{"name": campaign, "source": src[0], "medium": src[1]},
		},
	}
	if v != trackAnonymous && v != pageAnonymous {
		call["userId"] = user
	}
	switch v {
	case identify:
		first, last, city := pick(rng, firstNames), pick(rng, lastNames), pick(rng, cities)
		call["type"] = "identify"
		call["traits"] = map[string]any{
			"email":     "customer" + placeholders[holeUser] + "@example.com",
			"firstName": first, "lastName": last, "name": first + " " + last,
			"phone":      "+49 30 " + placeholders[holeUser],
			"plan":       pick(rng, []string{"free", "plus", "pro"}),
			"createdAt":  "2025-03-14T09:26:53.000Z",
			"address":    map[string]any{"street": "Market Street 12", "city": city[0], "postalCode": city[1], "country": city[2]},
			"newsletter": rng.IntN(2) == 0,
		}
	case pageAnonymous, pageKnown:
		call["type"] = "page"
		call["name"] = p.name
		call["category"] = p.category
		call["properties"] = map[string]any{"path": "/products/" + p.id, "url": pageURL, "title": p.name + " | Example Outdoor Shop", "referrer": "https://www.google.com/"}
	default:
		call["type"] = "track"
		call["event"] = trackEvent(rng)
		qty := rng.IntN(3) + 1
		props := map[string]any{
			"product_id": p.id, "sku": p.id, "name": p.name, "category": p.category, "brand": "Example Outdoor",
			"variant": p.variant, "price": p.price, "quantity": qty, "currency": "EUR", "value": p.price * float64(qty),
			"position": rng.IntN(24) + 1, "url": pageURL, "image_url": "https://cdn.example.com/img/" + p.id + ".jpg",
		}
		if call["event"] == "Order Completed" || call["event"] == "Checkout Started" {
			props = map[string]any{
				"order_id": "ord-" + strconv.Itoa(rng.IntN(1e8)), "total": p.price * float64(qty), "shipping": 4.95, "tax": 0.19 * p.price,
				"coupon": "WINTER10", "currency": "EUR",
				"products": []any{map[string]any{"product_id": p.id, "sku": p.id, "name": p.name, "price": p.price, "quantity": qty, "category": p.category}},
			}
		}
		call["properties"] = props
	}
	return call
}

func trackEvent(rng *rand.Rand) string {
	r := rng.Float64()
	for _, e := range trackEvents {
		if r -= e.weight; r < 0 {
			return e.name
		}
	}
	return trackEvents[0].name
}

// sender generates the calls of one connection. It owns the users whose
// number is first, first+stride, first+2·stride, …, so one user's calls
// leave in order: anonymous calls, then an identify linking the
// anonymousId to the userId, then calls with both, and now and then a new
// device whose anonymous calls are linked by the next identify.
type sender struct {
	rng    *rand.Rand
	seed   uint64
	pool   *pool
	first  int
	stride int
	users  []userState
	recent []recentCall // ring of calls to re-send
	next   int          // next ring slot to overwrite
	vals   [numHoles][]byte
}

type userState struct {
	device uint32 // how many devices the user has had, i.e. anonymousIds
	known  bool   // whether the current device has been identified
}

type recentCall struct {
	json []byte
	path string
}

func newSender(seed uint64, p *pool, first, stride, users int) *sender {
	s := &sender{
		rng: rand.New(rand.NewPCG(seed, uint64(first))), seed: seed, pool: p,
		first: first, stride: stride, users: make([]userState, (users-first+stride-1)/stride),
		recent: make([]recentCall, 0, recentCalls),
	}
	for k, ph := range placeholders {
		s.vals[k] = make([]byte, len(ph))
	}
	return s
}

// appendCall appends one call to dst: at the duplicate rate an earlier call
// again (a client's retry: same body, same messageId), else a new call
// timestamped shortly before at. It returns the call's path and whether it
// is a repeat.
func (s *sender) appendCall(dst []byte, at time.Time, dupRate float64) ([]byte, string, bool) {
	if len(s.recent) > 0 && s.rng.Float64() < dupRate {
		rc := s.recent[s.rng.IntN(len(s.recent))]
		return append(dst, rc.json...), rc.path, true
	}
	k := s.rng.IntN(len(s.users))
	u := &s.users[k]
	if u.known && s.rng.Float64() < newDeviceShare {
		u.device++
		u.known = false
	}
	v := trackAnonymous
	switch r := s.rng.Float64(); {
	case r < identifyShare:
		v = identify
		u.known = true
	case r < identifyShare+pageShare:
		v = pageAnonymous
	}
	if u.known && v != identify {
		v++ // the Known twin of an Anonymous variant
	}
	tp := pick(s.rng, s.pool[v])
	s.fill(s.first+k*s.stride, u.device, at)
	start := len(dst)
	dst = append(dst, tp.json...)
	for _, h := range tp.holes {
		copy(dst[start+h.at:], s.vals[h.kind])
	}
	s.remember(dst[start:], tp.path)
	return dst, tp.path, false
}

// fill writes the per-call values for user n on their device-th device.
func (s *sender) fill(n int, device uint32, at time.Time) {
	putUUID(s.vals[holeMessageID], s.rng.Uint64(), s.rng.Uint64())
	h := mix(s.seed ^ uint64(n)*0x9e3779b97f4a7c15 ^ uint64(device)<<40)
	putUUID(s.vals[holeAnonymousID], h, mix(h))
	u := s.vals[holeUser]
	for i, x := len(u)-1, n; i >= 0; i, x = i-1, x/10 {
		u[i] = byte('0' + x%10)
	}
	// A public-looking IPv4 address of exactly 15 characters.
	ip := s.vals[holeIP][:0]
	hu := mix(uint64(n) ^ s.seed)
	ip = strconv.AppendUint(ip, firstOctets[hu%uint64(len(firstOctets))], 10)
	for range 3 {
		hu >>= 8
		ip = strconv.AppendUint(append(ip, '.'), 100+hu%156, 10)
	}
	ts := at.Add(-time.Duration(s.rng.Int64N(int64(jitter)))).UTC()
	var buf [64]byte // AppendFormat needs room beyond the 24 bytes it keeps
	copy(s.vals[holeTimestamp], ts.AppendFormat(buf[:0], timeLayout))
}

func (s *sender) remember(call []byte, path string) {
	if len(s.recent) < cap(s.recent) {
		s.recent = append(s.recent, recentCall{json: bytes.Clone(call), path: path})
		return
	}
	rc := &s.recent[s.next]
	rc.json, rc.path = append(rc.json[:0], call...), path
	s.next = (s.next + 1) % len(s.recent)
}

// mix is SplitMix64's finalizer: a cheap, well-spread hash of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// putUUID writes a version 4 UUID made of hi and lo into dst (36 bytes).
func putUUID(dst []byte, hi, lo uint64) {
	const hexDigits = "0123456789abcdef"
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	j := 0
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			dst[j] = '-'
			j++
		}
		w, sh := hi, 60-4*i
		if i >= 16 {
			w, sh = lo, 60-4*(i-16)
		}
		dst[j] = hexDigits[w>>sh&0xf]
		j++
	}
}
