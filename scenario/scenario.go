// Package scenario generates synthetic Segment Tracking API traffic with
// ground truth — the real person behind every call — to measure identity
// resolution: anonymous browsing on several devices before login, shared
// family devices, logout and another login, test accounts, shared
// inboxes, CRM records linked by email, and mobile apps.
//
// Generation is deterministic for a seed and streams, so millions of calls
// need constant memory. Each group of people who share identifiers is
// emitted whole before the next; groups share nothing, so interleaving
// them would not change how identities resolve.
package scenario

import (
	"encoding/json"
	"fmt"
	"iter"
	"math/rand/v2"
	"time"
)

// Kind is a kind of scenario.
type Kind string

// The scenarios.
const (
	MultiDevice  Kind = "multi_device"  // one person browses on 1–3 devices, then logs in on each
	SharedDevice Kind = "shared_device" // two people use one browser, logging in one after the other
	Logout       Kind = "logout"        // a person logs out (new anonymousId), another logs in on that browser
	TestAccount  Kind = "test_account"  // several people log in with a placeholder userId ("0", "null")
	SharedEmail  Kind = "shared_email"  // two people with their own userIds give one family email
	CRMImport    Kind = "crm_import"    // a CRM record (externalId crm_id + email) and the web user with that email
	Mobile       Kind = "mobile"        // an app install with device ids, then login
)

// Kinds lists every scenario, in a fixed order.
var Kinds = []Kind{MultiDevice, SharedDevice, Logout, TestAccount, SharedEmail, CRMImport, Mobile}

// Call is one generated Tracking API call.
type Call struct {
	JSON   []byte // the call as an SDK sends it (with "type")
	Person int    // the real person behind it (ground truth)
	Kind   Kind
}

// Options configure a stream.
type Options struct {
	Seed   uint64
	Groups int    // groups of people to generate
	Kinds  []Kind // scenarios to draw groups from, uniformly; empty means all
	Start  time.Time
}

// Generate streams the calls of o.Groups groups, in time order per group.
func Generate(o Options) iter.Seq[Call] {
	kinds := o.Kinds
	if len(kinds) == 0 {
		kinds = Kinds
	}
	start := o.Start
	if start.IsZero() {
		start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	return func(yield func(Call) bool) {
		g := &gen{rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)), at: start}
		for i := 0; i < o.Groups; i++ {
			g.kind = kinds[g.rng.IntN(len(kinds))]
			g.group(i)
			for _, c := range g.calls {
				if !yield(c) {
					return
				}
			}
			g.calls = g.calls[:0]
		}
	}
}

// gen builds the calls of one group at a time.
type gen struct {
	rng    *rand.Rand
	at     time.Time
	kind   Kind
	calls  []Call
	person int
	anon   int
}

func (g *gen) newPerson() int { g.person++; return g.person }
func (g *gen) newAnon() string {
	g.anon++
	return fmt.Sprintf("anon-%08x-%d", g.rng.Uint32(), g.anon)
}

// emit appends a call of person p; fields are the call's JSON fields.
func (g *gen) emit(p int, fields map[string]any) {
	g.at = g.at.Add(time.Duration(1+g.rng.IntN(90)) * time.Second)
	fields["timestamp"] = g.at.Format(time.RFC3339Nano)
	fields["messageId"] = fmt.Sprintf("msg-%d-%d", p, len(g.calls)+g.rng.IntN(1<<30))
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err) // only maps of plain values are marshalled
	}
	g.calls = append(g.calls, Call{JSON: b, Person: p, Kind: g.kind})
}

func (g *gen) pages(p int, anon string, n int) {
	for range n {
		g.emit(p, map[string]any{"type": "page", "anonymousId": anon, "name": fmt.Sprint("Page ", g.rng.IntN(20)),
			"properties": map[string]any{"path": fmt.Sprint("/p/", g.rng.IntN(100))}})
	}
}

func (g *gen) login(p int, anon, userID, email string) {
	traits := map[string]any{"name": fmt.Sprint("Person ", p)}
	if email != "" {
		traits["email"] = email
	}
	g.emit(p, map[string]any{"type": "identify", "anonymousId": anon, "userId": userID, "traits": traits})
	g.emit(p, map[string]any{"type": "track", "anonymousId": anon, "userId": userID, "event": "Signed In"})
}

func (g *gen) group(i int) {
	switch g.kind {
	case MultiDevice:
		p := g.newPerson()
		user, email := fmt.Sprint("user-", p), fmt.Sprintf("person%d@example.com", p)
		for d := 0; d <= g.rng.IntN(3); d++ {
			anon := g.newAnon()
			g.pages(p, anon, 1+g.rng.IntN(4))
			g.login(p, anon, user, email)
			g.pages(p, anon, g.rng.IntN(3))
		}
	case SharedDevice:
		// One browser, one anonymousId, two people who never log out.
		// The second person's anonymous browsing before logging in can
		// only be attributed to the first: the cookie says so.
		anon := g.newAnon()
		for range 2 {
			p := g.newPerson()
			g.pages(p, anon, 2)
			g.login(p, anon, fmt.Sprint("user-", p), fmt.Sprintf("person%d@example.com", p))
			g.emit(p, map[string]any{"type": "track", "userId": fmt.Sprint("user-", p), "anonymousId": anon, "event": "Order Completed"})
		}
	case Logout:
		anon := g.newAnon()
		a := g.newPerson()
		g.pages(a, anon, 2)
		g.login(a, anon, fmt.Sprint("user-", a), fmt.Sprintf("person%d@example.com", a))
		// Logging out resets the anonymousId, as analytics.js does.
		anon = g.newAnon()
		b := g.newPerson()
		g.pages(b, anon, 2)
		g.login(b, anon, fmt.Sprint("user-", b), fmt.Sprintf("person%d@example.com", b))
	case TestAccount:
		placeholder := []string{"0", "null", "undefined"}[g.rng.IntN(3)]
		for range 3 {
			p := g.newPerson()
			anon := g.newAnon()
			g.pages(p, anon, 2)
			g.emit(p, map[string]any{"type": "identify", "anonymousId": anon, "userId": placeholder})
		}
	case SharedEmail:
		email := fmt.Sprintf("family%d@example.com", i)
		for range 2 {
			p := g.newPerson()
			anon := g.newAnon()
			g.pages(p, anon, 2)
			g.login(p, anon, fmt.Sprint("user-", p), email)
		}
	case CRMImport:
		p := g.newPerson()
		email := fmt.Sprintf("Person%d@Example.com", p) // the CRM writes it differently
		g.emit(p, map[string]any{"type": "identify", "traits": map[string]any{"email": email, "plan": "gold"},
			"context":     map[string]any{"externalIds": []map[string]any{{"id": fmt.Sprint("crm-", p), "type": "crm_id", "collection": "users", "encoding": "none"}}},
			"anonymousId": fmt.Sprint("crm-import-", p)})
		anon := g.newAnon()
		g.pages(p, anon, 2)
		g.login(p, anon, fmt.Sprint("user-", p), fmt.Sprintf("person%d@example.com", p))
	case Mobile:
		p := g.newPerson()
		anon := g.newAnon()
		device := map[string]any{"id": fmt.Sprintf("dev-%08x", g.rng.Uint32()), "advertisingId": fmt.Sprintf("idfa-%08x", g.rng.Uint32()), "type": "ios"}
		for range 1 + g.rng.IntN(3) {
			g.emit(p, map[string]any{"type": "screen", "anonymousId": anon, "name": "Home", "context": map[string]any{"device": device}})
		}
		g.emit(p, map[string]any{"type": "identify", "anonymousId": anon, "userId": fmt.Sprint("user-", p),
			"context": map[string]any{"device": device}, "traits": map[string]any{"email": fmt.Sprintf("person%d@example.com", p)}})
		// A reinstall: new anonymousId, same device.
		g.emit(p, map[string]any{"type": "screen", "anonymousId": g.newAnon(), "name": "Home", "context": map[string]any{"device": device}})
	}
}

// Quality is how well a predicted partition of calls matches the truth,
// counted over pairs of calls: precision is the share of pairs put
// together that belong to one person, recall the share of one person's
// pairs put together.
type Quality struct {
	Calls     int
	Precision float64
	Recall    float64
	F1        float64
}

// Measure compares predicted[i] (the profile of call i) with truth[i] (its
// person) in O(n) with a contingency table; it never enumerates pairs.
func Measure(truth, predicted []int64) Quality {
	type cell struct{ t, p int64 }
	cells := map[cell]int64{}
	byTruth := map[int64]int64{}
	byPred := map[int64]int64{}
	for i := range truth {
		cells[cell{truth[i], predicted[i]}]++
		byTruth[truth[i]]++
		byPred[predicted[i]]++
	}
	pairs := func(n int64) float64 { return float64(n) * float64(n-1) / 2 }
	var both, t, p float64
	for _, n := range cells {
		both += pairs(n)
	}
	for _, n := range byTruth {
		t += pairs(n)
	}
	for _, n := range byPred {
		p += pairs(n)
	}
	q := Quality{Calls: len(truth), Precision: 1, Recall: 1}
	if p > 0 {
		q.Precision = both / p
	}
	if t > 0 {
		q.Recall = both / t
	}
	if q.Precision+q.Recall > 0 {
		q.F1 = 2 * q.Precision * q.Recall / (q.Precision + q.Recall)
	}
	return q
}
