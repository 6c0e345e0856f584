// Package scenario generates synthetic Segment Tracking API traffic with
// ground truth — the real person behind every call — to measure identity
// resolution: anonymous browsing on several devices before login, shared
// family devices, logout and another login, test accounts, shared
// inboxes, CRM imports linked by email, and mobile apps.
//
// Calls look as Segment's SDKs send them (analytics.js, analytics-ios,
// analytics-android, a server library for CRM imports): type, userId and
// anonymousId, a UUID messageId, an ISO 8601 timestamp, traits or
// properties, and a context with library, page, userAgent, device, os and
// app as the SDK would fill them (context.traits.email on some calls of
// people who are logged in).
//
// Generation is deterministic for a seed and streams: a fixed number of
// groups of people (Options.Concurrent) are in flight at once, their calls
// interleaved in timestamp order, so millions of calls need constant
// memory.
package scenario

import (
	"encoding/json"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of scenario. Each group of people generated is of one
// kind.
type Kind string

// The scenarios.
const (
	// MultiDevice: one person browses anonymously on 1–4 browsers over
	// several days and logs in on each (the first login is a signup, often
	// with an alias call).
	MultiDevice Kind = "multi_device"
	// SharedDevice: a family computer. Two people use one browser, so one
	// anonymousId, and log in one after the other without logging out; the
	// SDK keeps sending the previous person's userId until the next login.
	SharedDevice Kind = "shared_device"
	// Logout: a person logs in and out (analytics.reset(): a new
	// anonymousId), then another person browses and logs in on that
	// browser; sometimes the first comes back and logs in again.
	Logout Kind = "logout"
	// TestAccount: several people, each on their own browser, log in to a
	// test account whose userId is a placeholder ("0", "null",
	// "undefined"); shared by every test-account group in the stream.
	TestAccount Kind = "test_account"
	// SharedEmail: two people with their own accounts give one family
	// email; sometimes the second only subscribes to a newsletter with it
	// (no userId).
	SharedEmail Kind = "shared_email"
	// CRMImport: a lead browses anonymously and gives an email in a form
	// (identify without userId); a CRM import (identify with userId = CRM
	// id and traits.email, written in another case) arrives before or
	// after, and must link to the web visitor by email.
	CRMImport Kind = "crm_import"
	// CRMAccount: like CRMImport, but the web visitor also has an account
	// of the app (its own userId). A userId from the CRM and one from the
	// app cannot share a profile under a user_id limit of 1 (see
	// Options.CRMExternalIDs).
	CRMAccount Kind = "crm_account"
	// Mobile: an app on iOS or Android (context.device id and advertising
	// id, zeroed when ad tracking is limited), anonymous screens, a login,
	// sometimes a reinstall (new anonymousId; on iOS a new device id) and
	// sometimes the website with the same account.
	Mobile Kind = "mobile"
)

// Kinds lists every scenario, in a fixed order.
var Kinds = []Kind{MultiDevice, SharedDevice, Logout, TestAccount, SharedEmail, CRMImport, CRMAccount, Mobile}

// Call is one generated Tracking API call.
type Call struct {
	JSON   []byte // the call as an SDK sends it, with "type"
	Person int    // the real person behind it (ground truth), from 1
	Group  int    // the group of people it belongs to, from 0
	Kind   Kind
}

// Options configure a stream.
type Options struct {
	Seed uint64
	// Groups is how many groups of people to generate.
	Groups int
	// Mix weighs the scenarios: a group is of kind k with probability
	// Mix[k] / (sum of weights). Empty: every Kind, equally. Only (k) and
	// Equal(ks...) build common mixes.
	Mix map[Kind]float64
	// Concurrent is how many groups are in flight at once, their calls
	// interleaved by timestamp (default 16). 1 emits each group whole.
	Concurrent int
	// Start is the time of the first group (default 2026-11-01 UTC).
	Start time.Time
	// CRMExternalIDs makes CRM imports identify people by a crm_id in
	// context.externalIds (and the same value as anonymousId) instead of
	// userId — how to import a CRM whose ids are not the app's user ids.
	CRMExternalIDs bool
}

// Only returns a mix of one scenario.
func Only(k Kind) map[Kind]float64 { return map[Kind]float64{k: 1} }

// Equal returns a mix of the given scenarios with equal weights.
func Equal(ks ...Kind) map[Kind]float64 {
	m := map[Kind]float64{}
	for _, k := range ks {
		m[k] = 1
	}
	return m
}

// Generate streams the calls of o.Groups groups. It panics if o.Mix names
// an unknown scenario or has no positive weight.
func Generate(o Options) iter.Seq[Call] {
	kinds, cum := mix(o.Mix)
	if o.Concurrent < 1 {
		o.Concurrent = 16
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	return func(yield func(Call) bool) {
		g := &gen{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed5eed5eed)), clock: o.Start}
		var active []*group
		started := 0
		for {
			for len(active) < o.Concurrent && started < o.Groups {
				x := g.rng.Float64() * cum[len(cum)-1]
				k := kinds[min(sortSearch(cum, x), len(kinds)-1)]
				// Groups start within an hour of the stream's clock.
				gr := &group{id: started, kind: k, start: g.clock.Add(time.Duration(g.rng.Int64N(int64(time.Hour))))}
				g.build(gr)
				active = append(active, gr)
				started++
			}
			if len(active) == 0 {
				return
			}
			// The group whose next call is earliest (ties: the older group).
			next := 0
			for i, gr := range active[1:] {
				if gr.nextAt().Before(active[next].nextAt()) {
					next = i + 1
				}
			}
			gr := active[next]
			c := g.finish(gr, gr.calls[gr.next])
			gr.next++
			if gr.next == len(gr.calls) {
				active = slices.Delete(active, next, next+1)
			}
			if !yield(c) {
				return
			}
		}
	}
}

// mix returns the kinds of a mix in a fixed order and their cumulative
// weights.
func mix(m map[Kind]float64) ([]Kind, []float64) {
	if len(m) == 0 {
		m = Equal(Kinds...)
	}
	var kinds []Kind
	var cum []float64
	total := 0.0
	for _, k := range Kinds {
		if w := m[k]; w > 0 {
			total += w
			kinds = append(kinds, k)
			cum = append(cum, total)
		}
	}
	for k := range m {
		if !slices.Contains(Kinds, k) {
			panic(fmt.Sprintf("scenario: unknown kind %q", k))
		}
	}
	if total == 0 {
		panic("scenario: the mix has no positive weight")
	}
	return kinds, cum
}

// sortSearch returns the first i with x < cum[i].
func sortSearch(cum []float64, x float64) int {
	i, _ := slices.BinarySearchFunc(cum, x, func(c, x float64) int {
		if c <= x {
			return -1
		}
		return 1
	})
	return i
}

// gen is the state of one stream.
type gen struct {
	o      Options
	rng    *rand.Rand
	clock  time.Time // the timestamp of the last call emitted
	person int
}

// group is one group of people and its calls, built whole when it starts
// (a few dozen calls) and emitted one call at a time.
type group struct {
	id    int
	kind  Kind
	start time.Time
	at    time.Duration // offset of the last call built, from start
	calls []pending
	next  int
}

func (gr *group) nextAt() time.Time { return gr.start.Add(gr.calls[gr.next].at) }

// pending is a call built but not yet emitted: its messageId and timestamp
// are set when it is.
type pending struct {
	at     time.Duration
	person int
	fields map[string]any
}

// finish stamps a call and encodes it.
func (g *gen) finish(gr *group, p pending) Call {
	t := gr.start.Add(p.at)
	if t.After(g.clock) {
		g.clock = t
	}
	p.fields["messageId"] = g.uuid()
	p.fields["timestamp"] = t.Format("2006-01-02T15:04:05.000Z07:00")
	b, err := json.Marshal(p.fields)
	if err != nil {
		panic(err) // only maps of plain values are marshalled
	}
	return Call{JSON: b, Person: p.person, Group: gr.id, Kind: gr.kind}
}

func (g *gen) uuid() string {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	a = a&^0xf000 | 0x4000     // version 4
	b = b&^(0xc<<60) | 0x8<<60 // variant 10
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, a>>16&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// person is a real person.
type person struct {
	id     int
	userID string // the app's user id
	email  string
	first  string
	last   string
}

var firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Donald", "Radia", "Linus"}
var lastNames = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen", "Knuth", "Perlman", "Torvalds"}

func (g *gen) newPerson() *person {
	g.person++
	p := &person{id: g.person, first: firstNames[g.rng.IntN(len(firstNames))], last: lastNames[g.rng.IntN(len(lastNames))]}
	p.userID = fmt.Sprintf("u-%d", 100000+p.id)
	p.email = fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(p.first), strings.ToLower(p.last), p.id)
	return p
}

// browser is a web browser: its analytics.js cookie (anonymousId) and the
// userId it has stored since the last identify (until reset()).
type browser struct {
	anon   string
	userID string
	email  string // the logged-in person's email, for context.traits
	ua     string
	ip     string
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
}

func (g *gen) newBrowser() *browser {
	return &browser{anon: g.uuid(), ua: userAgents[g.rng.IntN(len(userAgents))],
		ip: fmt.Sprintf("198.51.%d.%d", g.rng.IntN(256), 1+g.rng.IntN(254))}
}

// reset is analytics.reset(): a new anonymousId, no userId.
func (g *gen) reset(b *browser) { b.anon, b.userID, b.email = g.uuid(), "", "" }

// device is a phone or tablet with the app installed.
type device struct {
	os     string // "ios" or "android"
	id     string // identifierForVendor or ANDROID_ID
	adID   string // IDFA or Google advertising id; "" if not sent
	adOn   bool
	model  string
	anon   string // the app install's anonymousId
	userID string
	email  string
}

const zeroAdID = "00000000-0000-0000-0000-000000000000"

func (g *gen) newDevice() *device {
	d := &device{os: "ios", anon: g.uuid()}
	if g.rng.IntN(2) == 0 {
		d.os = "android"
	}
	if d.os == "ios" {
		d.id, d.model = strings.ToUpper(g.uuid()), []string{"iPhone15,2", "iPhone16,1", "iPad13,4"}[g.rng.IntN(3)]
	} else {
		d.id, d.model = fmt.Sprintf("%016x", g.rng.Uint64()), []string{"SM-S911B", "Pixel 8", "SM-A546B"}[g.rng.IntN(3)]
	}
	// Ad tracking: allowed for half; otherwise the SDK sends the zeroed
	// id or none.
	switch d.adOn = g.rng.IntN(2) == 0; {
	case d.adOn:
		d.adID = g.uuid()
		if d.os == "ios" {
			d.adID = strings.ToUpper(d.adID)
		}
	case g.rng.IntN(2) == 0:
		d.adID = zeroAdID
	}
	return d
}

// reinstall is deleting and reinstalling the app: a new anonymousId, no
// userId; iOS gives a new identifierForVendor (the vendor's only app was
// removed), Android keeps ANDROID_ID; the advertising id stays.
func (g *gen) reinstall(d *device) {
	d.anon, d.userID, d.email = g.uuid(), "", ""
	if d.os == "ios" {
		d.id = strings.ToUpper(g.uuid())
	}
}

// builder builds the calls of one group.
type builder struct {
	g  *gen
	gr *group
}

// wait advances the group's clock by between lo and hi.
func (x builder) wait(lo, hi time.Duration) {
	x.gr.at += lo + time.Duration(x.g.rng.Int64N(int64(hi-lo)+1))
}

func (x builder) add(p *person, fields map[string]any) {
	x.wait(2*time.Second, 90*time.Second)
	x.gr.calls = append(x.gr.calls, pending{at: x.gr.at, person: p.id, fields: fields})
}

var paths = []string{"/", "/pricing", "/products/shoes", "/products/bags", "/blog/identity", "/cart", "/checkout", "/help", "/about", "/search"}

func (x builder) webContext(br *browser, path string) map[string]any {
	c := map[string]any{
		"library":   map[string]any{"name": "analytics.js", "version": "npm:next-1.76.0"},
		"userAgent": br.ua,
		"ip":        br.ip,
		"locale":    "en-US",
	}
	if path != "" {
		c["page"] = map[string]any{"path": path, "url": "https://shop.example.com" + path, "title": "Shop", "referrer": ""}
	}
	// Some sites add the logged-in person's email to every call.
	if br.email != "" && x.g.rng.IntN(3) == 0 {
		c["traits"] = map[string]any{"email": br.email}
	}
	return c
}

// webCall fills the ids a browser's SDK adds to every call.
func webCall(br *browser, f map[string]any) map[string]any {
	f["anonymousId"] = br.anon
	if br.userID != "" {
		f["userId"] = br.userID
	}
	return f
}

func (x builder) pages(p *person, br *browser, n int) {
	for range n {
		path := paths[x.g.rng.IntN(len(paths))]
		x.add(p, webCall(br, map[string]any{"type": "page", "name": "Shop",
			"properties": map[string]any{"path": path, "url": "https://shop.example.com" + path, "title": "Shop"},
			"context":    x.webContext(br, path)}))
	}
}

func (x builder) track(p *person, br *browser, event string, props map[string]any) {
	x.add(p, webCall(br, map[string]any{"type": "track", "event": event, "properties": props, "context": x.webContext(br, "")}))
}

// login is a login on a browser: identify with the user's traits (the
// email unless noEmail), then Signed In.
func (x builder) login(p *person, br *browser, userID, email string) {
	br.userID = userID
	traits := map[string]any{"firstName": p.first, "lastName": p.last, "name": p.first + " " + p.last}
	if email != "" {
		traits["email"] = email
	}
	x.add(p, webCall(br, map[string]any{"type": "identify", "traits": traits, "context": x.webContext(br, "")}))
	br.email = email
	x.track(p, br, "Signed In", map[string]any{"method": "password"})
}

// signup is a first login: sometimes the site aliases the cookie first.
func (x builder) signup(p *person, br *browser, email string) {
	if x.g.rng.IntN(3) == 0 {
		x.add(p, map[string]any{"type": "alias", "previousId": br.anon, "userId": p.userID, "anonymousId": br.anon,
			"context": x.webContext(br, "")})
	}
	x.track(p, &browser{anon: br.anon, ua: br.ua, ip: br.ip}, "Signed Up", map[string]any{"plan": "free"})
	x.login(p, br, p.userID, email)
}

func (x builder) logout(p *person, br *browser) {
	x.track(p, br, "Signed Out", map[string]any{})
	x.g.reset(br)
}

func (x builder) shop(p *person, br *browser) {
	x.track(p, br, "Product Viewed", map[string]any{"product_id": fmt.Sprint("sku-", x.g.rng.IntN(500)), "price": 19.99})
	if x.g.rng.IntN(2) == 0 {
		x.track(p, br, "Order Completed", map[string]any{"order_id": x.g.uuid(), "total": 39.98, "currency": "USD"})
	}
}

func (x builder) mobileContext(d *device) map[string]any {
	dev := map[string]any{"id": d.id, "model": d.model, "type": d.os, "adTrackingEnabled": d.adOn}
	if d.adID != "" {
		dev["advertisingId"] = d.adID
	}
	c := map[string]any{"device": dev, "app": map[string]any{"name": "Shop", "version": "4.2.0", "build": "420", "namespace": "com.example.shop"},
		"network": map[string]any{"wifi": x.g.rng.IntN(2) == 0}, "locale": "en-US", "timezone": "Europe/Berlin"}
	if d.os == "ios" {
		dev["manufacturer"] = "Apple"
		c["os"] = map[string]any{"name": "iOS", "version": "18.1"}
		c["library"] = map[string]any{"name": "analytics-ios", "version": "4.1.8"}
	} else {
		dev["manufacturer"] = "Google"
		c["os"] = map[string]any{"name": "Android", "version": "14"}
		c["library"] = map[string]any{"name": "analytics-android", "version": "4.11.3"}
	}
	if d.email != "" && x.g.rng.IntN(3) == 0 {
		c["traits"] = map[string]any{"email": d.email}
	}
	return c
}

func (x builder) appCall(p *person, d *device, f map[string]any) {
	f["anonymousId"] = d.anon
	if d.userID != "" {
		f["userId"] = d.userID
	}
	f["context"] = x.mobileContext(d)
	x.add(p, f)
}

func (x builder) screens(p *person, d *device, n int) {
	for range n {
		x.appCall(p, d, map[string]any{"type": "screen", "name": []string{"Home", "Product", "Cart", "Search"}[x.g.rng.IntN(4)]})
	}
}

// crm is a CRM import of a person: an identify from a server library.
func (x builder) crm(p *person) {
	crmID := fmt.Sprintf("003Dn%08d", p.id)
	traits := map[string]any{
		"email":     strings.ToUpper(p.email[:1]) + p.email[1:], // the CRM keeps what was typed
		"firstName": p.first, "lastName": p.last, "lifecycleStage": "lead", "crm_owner": "sales-emea",
	}
	f := map[string]any{"type": "identify", "traits": traits,
		"context": map[string]any{"library": map[string]any{"name": "analytics-go", "version": "3.3.0"}}}
	if x.g.o.CRMExternalIDs {
		f["anonymousId"] = crmID
		f["context"].(map[string]any)["externalIds"] = []map[string]any{{"id": crmID, "type": "crm_id", "collection": "users", "encoding": "none"}}
	} else {
		f["userId"] = crmID
	}
	x.add(p, f)
}

// build generates a group's calls.
func (g *gen) build(gr *group) {
	x := builder{g: g, gr: gr}
	r := g.rng
	day := 24 * time.Hour
	switch gr.kind {
	case MultiDevice:
		p := g.newPerson()
		for i := range 1 + r.IntN(4) {
			br := g.newBrowser()
			x.pages(p, br, 1+r.IntN(5))
			if r.IntN(3) == 0 {
				// Comes back another day before logging in.
				x.wait(time.Hour, 3*day)
				x.pages(p, br, 1+r.IntN(3))
			}
			if i == 0 {
				x.signup(p, br, p.email)
			} else {
				x.login(p, br, p.userID, p.email)
			}
			x.shop(p, br)
			x.pages(p, br, r.IntN(3))
			x.wait(time.Hour, 5*day)
		}
	case SharedDevice:
		br := g.newBrowser()
		a, c := g.newPerson(), g.newPerson()
		people := []*person{a, c}
		if r.IntN(2) == 0 {
			people = append(people, a) // the first comes back
		}
		for i, p := range people {
			// Until they log in, the SDK sends the previous person's
			// userId, unless the site dropped it when the session expired.
			if br.userID != "" && r.IntN(2) == 0 {
				br.userID, br.email = "", ""
			}
			x.pages(p, br, 1+r.IntN(3))
			if i < 2 {
				x.signup(p, br, p.email)
			} else {
				x.login(p, br, p.userID, p.email)
			}
			x.shop(p, br)
			x.wait(time.Hour, day)
		}
	case Logout:
		br := g.newBrowser()
		a, c := g.newPerson(), g.newPerson()
		people := []*person{a, c}
		if r.IntN(2) == 0 {
			people = append(people, a)
		}
		for i, p := range people {
			x.pages(p, br, 1+r.IntN(3))
			if i < 2 {
				x.signup(p, br, p.email)
			} else {
				x.login(p, br, p.userID, p.email)
			}
			x.shop(p, br)
			x.logout(p, br)
			x.wait(10*time.Minute, day)
		}
	case TestAccount:
		placeholder := []string{"0", "null", "undefined", "0"}[r.IntN(4)]
		for range 2 + r.IntN(4) {
			p := g.newPerson()
			br := g.newBrowser()
			x.pages(p, br, 1+r.IntN(3))
			email := ""
			if r.IntN(2) == 0 {
				email = p.email // the tester's own address, from a form
			}
			x.login(p, br, placeholder, email)
			x.shop(p, br)
			x.wait(time.Minute, 2*time.Hour)
		}
	case SharedEmail:
		email := fmt.Sprintf("the.family.%d@example.net", gr.id)
		a, c := g.newPerson(), g.newPerson()
		newsletter := r.IntN(4) == 0
		for i, p := range []*person{a, c} {
			br := g.newBrowser()
			x.pages(p, br, 1+r.IntN(4))
			if i == 1 && newsletter {
				// Subscribes with the family address, has no account.
				x.add(p, webCall(br, map[string]any{"type": "identify", "traits": map[string]any{"email": email}, "context": x.webContext(br, "/newsletter")}))
				x.pages(p, br, 1+r.IntN(3))
				continue
			}
			x.signup(p, br, email)
			x.shop(p, br)
			x.wait(time.Hour, 2*day)
		}
	case CRMImport, CRMAccount:
		p := g.newPerson()
		br := g.newBrowser()
		crmFirst := r.IntN(2) == 0
		if crmFirst {
			x.crm(p)
			x.wait(time.Hour, 10*day)
		}
		x.pages(p, br, 1+r.IntN(4))
		if gr.kind == CRMImport {
			// A newsletter form: identify with the email, no userId.
			x.add(p, webCall(br, map[string]any{"type": "identify", "traits": map[string]any{"email": p.email}, "context": x.webContext(br, "/newsletter")}))
			x.pages(p, br, 1+r.IntN(3))
		} else {
			x.signup(p, br, p.email)
			x.shop(p, br)
		}
		x.wait(time.Hour, 10*day)
		if !crmFirst || r.IntN(2) == 0 {
			x.crm(p) // imported after the visit, or imported again
		}
	case Mobile:
		p := g.newPerson()
		d := g.newDevice()
		x.appCall(p, d, map[string]any{"type": "track", "event": "Application Installed", "properties": map[string]any{"version": "4.2.0", "build": "420"}})
		x.appCall(p, d, map[string]any{"type": "track", "event": "Application Opened", "properties": map[string]any{"from_background": false}})
		x.screens(p, d, 1+r.IntN(4))
		d.userID, d.email = p.userID, p.email
		x.appCall(p, d, map[string]any{"type": "identify", "traits": map[string]any{"email": p.email, "firstName": p.first, "lastName": p.last}})
		x.screens(p, d, r.IntN(4))
		x.appCall(p, d, map[string]any{"type": "track", "event": "Order Completed", "properties": map[string]any{"order_id": g.uuid(), "total": 12.5}})
		if r.IntN(3) == 0 {
			x.wait(time.Hour, 20*day)
			g.reinstall(d)
			x.appCall(p, d, map[string]any{"type": "track", "event": "Application Installed", "properties": map[string]any{"version": "4.3.0", "build": "431"}})
			x.screens(p, d, 1+r.IntN(3))
			if r.IntN(4) != 0 {
				d.userID, d.email = p.userID, p.email
				x.appCall(p, d, map[string]any{"type": "identify", "traits": map[string]any{"email": p.email}})
				x.screens(p, d, r.IntN(3))
			}
		}
		if r.IntN(3) == 0 {
			// The website, same account.
			br := g.newBrowser()
			x.wait(time.Hour, 5*day)
			x.pages(p, br, 1+r.IntN(3))
			x.login(p, br, p.userID, p.email)
			x.shop(p, br)
		}
	default:
		panic("scenario: unknown kind " + string(gr.kind))
	}
}

// Quality is how well a predicted partition of calls matches the truth,
// counted over pairs of calls: precision is the share of the pairs put
// together that belong to one person, recall the share of one person's
// pairs that are put together, F1 their harmonic mean. With no pair on a
// side, its measure is 1.
type Quality struct {
	Calls     int
	Precision float64
	Recall    float64
	F1        float64
}

func (q Quality) String() string {
	return fmt.Sprintf("%d calls: precision %.4f recall %.4f F1 %.4f", q.Calls, q.Precision, q.Recall, q.F1)
}

// Tally accumulates a contingency table of (true person, predicted
// cluster) pairs, one call at a time; its memory grows with the number of
// distinct cells, not with pairs. The zero value is not ready: use
// NewTally.
type Tally struct {
	n       int
	cells   map[[2]int64]int64
	truth   map[int64]int64
	predict map[int64]int64
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{cells: map[[2]int64]int64{}, truth: map[int64]int64{}, predict: map[int64]int64{}}
}

// Add counts one call of true person truth, put in cluster predicted.
func (t *Tally) Add(truth, predicted int64) {
	t.n++
	t.cells[[2]int64{truth, predicted}]++
	t.truth[truth]++
	t.predict[predicted]++
}

// Quality returns pairwise precision, recall and F1 of the calls added:
// with n calls in a cell of the table, n·(n−1)/2 pairs are together in
// both partitions.
func (t *Tally) Quality() Quality {
	pairs := func(m map[int64]int64) (s float64) {
		for _, n := range m {
			s += float64(n) * float64(n-1) / 2
		}
		return s
	}
	var both float64
	for _, n := range t.cells {
		both += float64(n) * float64(n-1) / 2
	}
	tp, pp := pairs(t.truth), pairs(t.predict)
	q := Quality{Calls: t.n, Precision: 1, Recall: 1}
	if pp > 0 {
		q.Precision = both / pp
	}
	if tp > 0 {
		q.Recall = both / tp
	}
	if q.Precision+q.Recall > 0 {
		q.F1 = 2 * q.Precision * q.Recall / (q.Precision + q.Recall)
	}
	return q
}

// Measure compares predicted[i] (the cluster, e.g. profile, of call i)
// with truth[i] (its person) in O(n) with a contingency table; it never
// enumerates pairs. It panics if the slices differ in length.
func Measure(truth, predicted []int64) Quality {
	if len(truth) != len(predicted) {
		panic(fmt.Sprintf("scenario.Measure: %d true labels, %d predicted", len(truth), len(predicted)))
	}
	t := NewTally()
	for i := range truth {
		t.Add(truth[i], predicted[i])
	}
	return t.Quality()
}
