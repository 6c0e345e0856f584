package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// These tests read the Profile API over HTTP from derived state written
// straight into a real SQLite store with State.Commit (no processor), so
// they pin the API to the store.State contract: what the processor commits
// is what the API answers.

const profileConfig = `
workspaces:
  - slug: acme
    sources:
      - {slug: web, write_key: wk_pweb_1234567890}
    tokens:
      - {name: desk, token: tok_pdesk_1234567890, scopes: [profiles:read]}
      - {name: ops, token: tok_padmin_1234567890, scopes: [admin]}
      - {name: debugger, token: tok_pdebug_1234567890, scopes: [debug]}
  - slug: globex
    sources:
      - {slug: app, write_key: wk_papp_1234567890}
    tokens:
      - {name: desk, token: tok_gdesk_1234567890, scopes: [profiles:read]}
`

const (
	deskToken   = "tok_pdesk_1234567890"  // acme, profiles:read
	opsToken    = "tok_padmin_1234567890" // acme, admin
	pdebugToken = "tok_pdebug_1234567890" // acme, debug only
	globexToken = "tok_gdesk_1234567890"  // globex, profiles:read
)

// seed is what seedProfiles wrote, for the tests to compute answers from.
type seed struct {
	t0 time.Time
	// ada is profile 1 of acme: 15 traits, plan changed three times,
	// 26 identifiers, and the events below; profile 2 was merged into it.
	adaEvents   []int64 // positions of her events after the merge, newest first
	adaTraits   []string
	adaIDs      []string // type:value, as Identifiers orders them
	planHistory []int64  // positions of the plan values, newest first
	mergePos    int64
	accountUser []store.ProfileID // users linked to the account (profile 3)
}

// profileBundle is a server over a seeded store.
type profileBundle struct {
	*bundle
	seed seed
}

// setupProfiles opens a SQLite store in a temp dir, appends a log to it
// and commits derived state by hand:
//
//	acme   1  user    user_id:ada, email:ada@example.com, anonymous_id:a-01…a-23, anonymous_id:b-1 (merged from 2)
//	acme   2  user    merged into 1 through anonymous_id:b-1
//	acme   3  account group_id:acme-corp, linked to 1 and 4…15
//	acme   4…15 users user_id:pN, email:pN@example.com, name "Person N", tier N%3
//	globex 1  user    user_id:ada, name "Globex Ada" (same identifier, other workspace)
func setupProfiles(t testing.TB) *profileBundle {
	t.Helper()
	b := setup(t, withConfig(profileConfig))
	return &profileBundle{bundle: b, seed: seedProfiles(t, b.st)}
}

func seedProfiles(t testing.TB, st store.Store) seed {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	s := seed{t0: t0}

	// The log. ev appends one event and returns its position.
	n := 0
	var batch []store.Event
	ev := func(ws, typ, name, userID, anonID, body string) {
		n++
		ts := t0.Add(time.Duration(n) * time.Minute)
		raw := fmt.Sprintf(`{"type":%q,"messageId":"m-%d","timestamp":%q%s}`, typ, n, ts.Format(time.RFC3339), body)
		batch = append(batch, store.Event{Workspace: ws, Source: "web", MessageID: fmt.Sprint("m-", n), Type: typ, Name: name,
			UserID: userID, AnonymousID: anonID, Timestamp: ts, ReceivedAt: ts.Add(time.Second), Format: store.FormatVersion, Raw: json.RawMessage(raw)})
	}
	// Ada: three identifies (the plan changes), ten tracks, ten pages.
	ev("acme", "identify", "", "ada", "a-01", `,"traits":{"name":"Ada Lovelace","email":"Ada@Example.com","plan":"free"}`)
	ev("acme", "identify", "", "ada", "a-02", `,"traits":{"plan":"pro"}`)
	ev("acme", "identify", "", "ada", "a-03", `,"traits":{"plan":"enterprise"}`)
	for i := range 10 {
		ev("acme", "track", fmt.Sprint("Viewed ", i), "ada", "", fmt.Sprintf(`,"event":"Viewed %d","properties":{"i":%d}`, i, i))
		ev("acme", "page", fmt.Sprint("Page ", i), "", fmt.Sprintf("a-%02d", i+4), fmt.Sprintf(`,"name":"Page %d","properties":{"path":"/p%d"}`, i, i))
	}
	// Profile 2's one event, a group call, the twelve people.
	ev("acme", "page", "Docs", "", "b-1", `,"name":"Docs"`)
	ev("acme", "group", "", "ada", "", `,"groupId":"acme-corp","traits":{"name":"Acme Corp"}`)
	for i := 4; i <= 15; i++ {
		ev("acme", "identify", "", fmt.Sprint("p", i), "", fmt.Sprintf(`,"traits":{"name":"Person %d"}`, i))
	}
	ev("globex", "identify", "", "ada", "", `,"traits":{"name":"Globex Ada"}`)
	if _, err := st.Append(ctx, &store.Batch{Events: batch}, time.Hour); err != nil {
		t.Fatal(err)
	}
	pos := func(messageID string) int64 { // positions are per workspace
		for _, e := range batch {
			if e.MessageID == messageID {
				return e.Position
			}
		}
		t.Fatalf("no event %s", messageID)
		return 0
	}

	// acme's first batch: everything but the merge.
	l, err := st.AcquireLease(ctx, "acme", "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	head := pos(fmt.Sprint("m-", n-1))
	c := &store.Changes{Workspace: "acme", Epoch: l.Epoch, From: l.Position, To: head, NextProfileID: 16}
	at := func(p int64) time.Time { return t0.Add(time.Duration(p) * time.Minute) }
	hold := func(p store.ProfileID, typ, value string, position int64) {
		c.Identifiers = append(c.Identifiers, store.HeldIdentifier{Identifier: store.Identifier{Type: typ, Value: value}, Profile: p, Position: position, AddedAt: at(position)})
	}
	trait := func(p store.ProfileID, key, value string, position int64) {
		c.Traits = append(c.Traits, store.TraitValue{Profile: p, Key: key, Value: json.RawMessage(value), Timestamp: at(position), Source: "web", Position: position})
	}
	var adaEvents []int64
	for i := 1; i <= 23; i++ {
		adaEvents = append(adaEvents, int64(i))
		c.Timeline = append(c.Timeline, store.TimelineEntry{Profile: 1, Position: int64(i)})
	}
	c.Profiles = append(c.Profiles, store.ProfileDelta{ID: 1, Kind: store.KindUser, FirstSeen: at(1), LastSeen: at(23), Events: 23})
	hold(1, "user_id", "ada", 1)
	hold(1, "email", "ada@example.com", 1)
	for i := 1; i <= 23; i++ {
		hold(1, "anonymous_id", fmt.Sprintf("a-%02d", i), int64(min(i, 3)))
	}
	trait(1, "name", `"Ada Lovelace"`, 1)
	trait(1, "email", `"Ada@Example.com"`, 1)
	for i := 1; i <= 12; i++ {
		trait(1, fmt.Sprintf("t%02d", i), fmt.Sprint(i), 1)
	}
	trait(1, "plan", `"free"`, 1)
	trait(1, "plan", `"pro"`, 2)
	trait(1, "plan", `"enterprise"`, 3)
	s.planHistory = []int64{3, 2, 1}

	docs, group := pos("m-24"), pos("m-25")
	c.Profiles = append(c.Profiles, store.ProfileDelta{ID: 2, Kind: store.KindUser, FirstSeen: at(docs), LastSeen: at(docs), Events: 1})
	hold(2, "anonymous_id", "b-1", docs)
	c.Timeline = append(c.Timeline, store.TimelineEntry{Profile: 2, Position: docs})

	c.Profiles = append(c.Profiles, store.ProfileDelta{ID: 3, Kind: store.KindAccount, FirstSeen: at(group), LastSeen: at(group), Events: 1})
	hold(3, "group_id", "acme-corp", group)
	trait(3, "name", `"Acme Corp"`, group)
	c.Timeline = append(c.Timeline, store.TimelineEntry{Profile: 3, Position: group}, store.TimelineEntry{Profile: 1, Position: group})
	adaEvents = append(adaEvents, group)
	c.Profiles[0].Events++
	c.Links = append(c.Links, store.Link{User: 1, Account: 3, Position: group, At: at(group)})
	s.accountUser = []store.ProfileID{1}

	for i := 4; i <= 15; i++ {
		p, e := store.ProfileID(i), pos(fmt.Sprint("m-", 22+i))
		c.Profiles = append(c.Profiles, store.ProfileDelta{ID: p, Kind: store.KindUser, FirstSeen: at(e), LastSeen: at(e), Events: 1})
		hold(p, "user_id", fmt.Sprint("p", i), e)
		hold(p, "email", fmt.Sprintf("p%d@example.com", i), e)
		trait(p, "name", fmt.Sprintf(`"Person %d"`, i), e)
		trait(p, "email", fmt.Sprintf(`"p%d@example.com"`, i), e)
		trait(p, "tier", fmt.Sprint(i%3), e)
		c.Timeline = append(c.Timeline, store.TimelineEntry{Profile: p, Position: e})
		c.Links = append(c.Links, store.Link{User: p, Account: 3, Position: e, At: at(e)})
		s.accountUser = append(s.accountUser, p)
	}
	if err := st.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}

	// acme's second batch: an identify carrying user_id:ada and
	// anonymous_id:b-1 merges profile 2 into profile 1.
	ev("acme", "identify", "", "ada", "b-1", `,"traits":{"plan":"enterprise"}`)
	merge := []store.Event{batch[len(batch)-1]}
	if _, err := st.Append(ctx, &store.Batch{Events: merge}, time.Hour); err != nil {
		t.Fatal(err)
	}
	s.mergePos = merge[0].Position
	c = &store.Changes{Workspace: "acme", Epoch: l.Epoch, From: head, To: s.mergePos, NextProfileID: 16,
		Merges:   []store.Merge{{Into: 1, From: 2, Via: store.Identifier{Type: "anonymous_id", Value: "b-1"}, Position: s.mergePos, At: at(s.mergePos)}},
		Profiles: []store.ProfileDelta{{ID: 1, Kind: store.KindUser, FirstSeen: at(s.mergePos), LastSeen: at(s.mergePos), Events: 1}},
		Timeline: []store.TimelineEntry{{Profile: 1, Position: s.mergePos}},
	}
	if err := st.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	adaEvents = append(adaEvents, docs, s.mergePos)
	slices.Sort(adaEvents)
	slices.Reverse(adaEvents)
	s.adaEvents = adaEvents

	// globex: profile 1 holds user_id:ada too.
	g, err := st.AcquireLease(ctx, "globex", "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, &store.Changes{Workspace: "globex", Epoch: g.Epoch, From: g.Position, To: 1, NextProfileID: 2,
		Profiles:    []store.ProfileDelta{{ID: 1, Kind: store.KindUser, FirstSeen: t0, LastSeen: t0, Events: 1}},
		Identifiers: []store.HeldIdentifier{{Identifier: store.Identifier{Type: "user_id", Value: "ada"}, Profile: 1, Position: 1, AddedAt: t0}},
		Traits:      []store.TraitValue{{Profile: 1, Key: "name", Value: json.RawMessage(`"Globex Ada"`), Timestamp: t0, Source: "app", Position: 1}},
		Timeline:    []store.TimelineEntry{{Profile: 1, Position: 1}},
	}); err != nil {
		t.Fatal(err)
	}

	s.adaTraits = []string{"email", "name", "plan"}
	for i := 1; i <= 12; i++ {
		s.adaTraits = append(s.adaTraits, fmt.Sprintf("t%02d", i))
	}
	slices.Sort(s.adaTraits)
	for i := 1; i <= 23; i++ {
		s.adaIDs = append(s.adaIDs, fmt.Sprintf("anonymous_id:a-%02d", i))
	}
	s.adaIDs = append(s.adaIDs, "anonymous_id:b-1", "email:ada@example.com", "user_id:ada")
	return s
}

// call GETs path with the token as the HTTP Basic user name (as Segment's
// clients send it) and decodes the JSON answer.
// pages follows cursor.next from path until has_more is false and returns
// every page. A page's items are under key ("traits" or "data").
func (b *profileBundle) pages(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	next := ""
	for range 100 {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		code, m := b.profileGet(t, path+sep+"next="+url.QueryEscape(next), deskToken)
		if code != 200 {
			t.Fatalf("GET %s next=%q: %d %v", path, next, code, m)
		}
		out = append(out, m)
		c := m["cursor"].(map[string]any)
		if c["has_more"] != true {
			if c["next"] != "" {
				t.Errorf("GET %s: last page has next %q", path, c["next"])
			}
			return out
		}
		next = c["next"].(string)
		if next == "" {
			t.Fatalf("GET %s: has_more without next", path)
		}
	}
	t.Fatalf("GET %s: more than 100 pages", path)
	return nil
}

func items(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, x := range m["data"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

const (
	acmeUsers    = "/v1/spaces/acme/collections/users/profiles/"
	acmeAccounts = "/v1/spaces/acme/collections/accounts/profiles/"
	acmeSearch   = "/v1/spaces/acme/collections/users/search?"
)

func TestProfileAPIReadsState(t *testing.T) {
	t.Parallel()
	b := setupProfiles(t)
	s := b.seed
	for _, tt := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"traits first page is 10 by key", func(t *testing.T) {
			code, m := b.profileGet(t, acmeUsers+"user_id:ada/traits", deskToken)
			traits := m["traits"].(map[string]any)
			c := m["cursor"].(map[string]any)
			if code != 200 || len(traits) != 10 || c["has_more"] != true || c["next"] != s.adaTraits[9] ||
				c["url"] != "/v1/spaces/acme/collections/users/profiles/user_id:ada/traits" {
				t.Fatalf("%d %v", code, m)
			}
		}},
		{"traits paged to the end", func(t *testing.T) {
			var keys []string
			pages := b.pages(t, acmeUsers+"user_id:ada/traits?limit=4")
			for _, p := range pages {
				for k := range p["traits"].(map[string]any) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			if len(pages) != 4 || !slices.Equal(keys, s.adaTraits) {
				t.Fatalf("%d pages, keys %v, want %v", len(pages), keys, s.adaTraits)
			}
		}},
		{"traits values and the winning plan", func(t *testing.T) {
			_, m := b.profileGet(t, acmeUsers+"user_id:ada/traits?limit=200", deskToken)
			traits := m["traits"].(map[string]any)
			if traits["plan"] != "enterprise" || traits["name"] != "Ada Lovelace" || traits["t07"] != float64(7) || len(traits) != 15 {
				t.Fatalf("%v", traits)
			}
		}},
		{"include filters traits", func(t *testing.T) {
			_, m := b.profileGet(t, acmeUsers+"user_id:ada/traits?include=name,plan,nope", deskToken)
			want := map[string]any{"name": "Ada Lovelace", "plan": "enterprise"}
			if got := m["traits"].(map[string]any); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%v, want %v", got, want)
			}
		}},
		{"include pages too", func(t *testing.T) {
			var keys []string
			for _, p := range b.pages(t, acmeUsers+"user_id:ada/traits?include=t01,t02,t03,name,email&limit=2") {
				for k := range p["traits"].(map[string]any) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"email", "name", "t01", "t02", "t03"}) {
				t.Fatalf("%v", keys)
			}
		}},
		{"verbose traits say where a value came from", func(t *testing.T) {
			_, m := b.profileGet(t, acmeUsers+"user_id:ada/traits?verbose=true&include=plan", deskToken)
			plan := m["traits"].(map[string]any)["plan"].(map[string]any)
			if plan["value"] != "enterprise" || plan["source"] != "web" || plan["position"] != float64(3) ||
				plan["timestamp"] != s.t0.Add(3*time.Minute).Format(time.RFC3339) {
				t.Fatalf("%v", plan)
			}
		}},
		{"trait history paged newest first", func(t *testing.T) {
			var vals []string
			var positions []int64
			for _, p := range b.pages(t, acmeUsers+"user_id:ada/traits/plan/history?limit=2") {
				for _, h := range items(p) {
					vals = append(vals, h["value"].(string))
					positions = append(positions, int64(h["position"].(float64)))
					if h["source"] != "web" {
						t.Errorf("history entry %v", h)
					}
				}
			}
			if !slices.Equal(vals, []string{"enterprise", "pro", "free"}) || !slices.Equal(positions, s.planHistory) {
				t.Fatalf("%v %v", vals, positions)
			}
		}},
		{"history of a trait never set is empty", func(t *testing.T) {
			code, m := b.profileGet(t, acmeUsers+"user_id:ada/traits/shoe_size/history", deskToken)
			if code != 200 || len(m["data"].([]any)) != 0 || m["cursor"].(map[string]any)["has_more"] != false {
				t.Fatalf("%d %v", code, m)
			}
		}},
		{"events paged to the end, newest first, from the log", func(t *testing.T) {
			var got []int64
			for _, p := range b.pages(t, acmeUsers+"user_id:ada/events?limit=10") {
				for _, e := range items(p) {
					got = append(got, int64(e["position"].(float64)))
				}
			}
			if !slices.Equal(got, s.adaEvents) {
				t.Fatalf("positions %v, want %v", got, s.adaEvents)
			}
		}},
		{"events render like Segment's", func(t *testing.T) {
			_, m := b.profileGet(t, acmeUsers+"user_id:ada/events?limit=200", deskToken)
			byPos := map[int64]map[string]any{}
			for _, e := range items(m) {
				byPos[int64(e["position"].(float64))] = e
			}
			track, page, identify := byPos[4], byPos[5], byPos[s.mergePos]
			if track["type"] != "track" || track["event"] != "Viewed 0" || track["properties"].(map[string]any)["i"] != float64(0) ||
				track["message_id"] != "m-4" || track["source_id"] != "web" || track["timestamp"] != s.t0.Add(4*time.Minute).Format(time.RFC3339) {
				t.Errorf("track %v", track)
			}
			if page["type"] != "page" || page["name"] != "Page 0" || page["properties"].(map[string]any)["path"] != "/p0" {
				t.Errorf("page %v", page)
			}
			if identify["type"] != "identify" || identify["traits"].(map[string]any)["plan"] != "enterprise" {
				t.Errorf("identify %v", identify)
			}
		}},
		{"external_ids paged to the end", func(t *testing.T) {
			var ids []string
			for _, p := range b.pages(t, acmeUsers+"user_id:ada/external_ids?limit=10") {
				for _, e := range items(p) {
					ids = append(ids, fmt.Sprint(e["type"], ":", e["id"]))
					if e["collection"] != "users" || e["encoding"] != "none" || e["created_at"] == "" {
						t.Errorf("external id %v", e)
					}
				}
			}
			if !slices.Equal(ids, s.adaIDs) {
				t.Fatalf("%v, want %v", ids, s.adaIDs)
			}
		}},
		{"cursor url is the escaped path", func(t *testing.T) {
			_, m := b.profileGet(t, acmeUsers+"email:%20ADA@example.com/traits", deskToken)
			if u := m["cursor"].(map[string]any)["url"]; u != "/v1/spaces/acme/collections/users/profiles/email:%20ADA@example.com/traits" {
				t.Fatalf("cursor url %q", u)
			}
		}},
		{"metadata with merges", func(t *testing.T) {
			code, m := b.profileGet(t, acmeUsers+"user_id:ada/metadata", deskToken)
			md := m["metadata"].(map[string]any)
			merged := md["merged_from"].([]any)
			if code != 200 || md["kith_id"] != float64(1) || md["collection"] != "users" || md["events"] != float64(len(s.adaEvents)) ||
				md["created_at"] != s.t0.Add(time.Minute).Format(time.RFC3339) || len(merged) != 1 {
				t.Fatalf("%d %v", code, m)
			}
			if mf := merged[0].(map[string]any); mf["kith_id"] != float64(2) || mf["via"] != "anonymous_id:b-1" || mf["position"] != float64(s.mergePos) {
				t.Fatalf("merged_from %v", mf)
			}
		}},
		{"merged-away ids answer the surviving profile", func(t *testing.T) {
			for _, ref := range []string{"kith_id:2", "anonymous_id:b-1", "kith_id:1", "email:" + url.PathEscape(" ADA@Example.COM "), "anonymous_id:a-17"} {
				code, m := b.profileGet(t, acmeUsers+ref+"/metadata", deskToken)
				if code != 200 || m["metadata"].(map[string]any)["kith_id"] != float64(1) {
					t.Errorf("%s: %d %v", ref, code, m)
				}
			}
			code, m := b.profileGet(t, acmeUsers+"kith_id:2/traits?include=name", deskToken)
			if code != 200 || m["traits"].(map[string]any)["name"] != "Ada Lovelace" {
				t.Errorf("traits of kith_id:2: %d %v", code, m)
			}
		}},
		{"links of a user", func(t *testing.T) {
			_, m := b.profileGet(t, acmeUsers+"user_id:ada/links", deskToken)
			links := items(m)
			if len(links) != 1 || links[0]["to_collection"] != "accounts" || links[0]["kith_id"] != float64(3) {
				t.Fatalf("%v", m)
			}
			ids := links[0]["external_ids"].([]any)
			if e := ids[0].(map[string]any); len(ids) != 1 || e["type"] != "group_id" || e["id"] != "acme-corp" || e["collection"] != "accounts" {
				t.Fatalf("%v", ids)
			}
		}},
		{"links of an account", func(t *testing.T) {
			_, m := b.profileGet(t, acmeAccounts+"group_id:acme-corp/links?limit=200", deskToken)
			var users []store.ProfileID
			for _, l := range items(m) {
				if l["to_collection"] != "users" {
					t.Errorf("%v", l)
				}
				users = append(users, store.ProfileID(l["kith_id"].(float64)))
			}
			if !slices.Equal(users, s.accountUser) {
				t.Fatalf("%v, want %v", users, s.accountUser)
			}
		}},
		{"links of an account paged to the end", func(t *testing.T) {
			var users []store.ProfileID
			pages := b.pages(t, acmeAccounts+"group_id:acme-corp/links?limit=5")
			for _, p := range pages {
				for _, l := range items(p) {
					users = append(users, store.ProfileID(l["kith_id"].(float64)))
				}
			}
			if len(pages) != 3 || !slices.Equal(users, s.accountUser) {
				t.Fatalf("%d pages: %v, want %v", len(pages), users, s.accountUser)
			}
		}},
		{"has_more is false on a full last page", func(t *testing.T) {
			for _, tt := range []struct {
				path  string
				pages int
			}{
				{acmeUsers + "user_id:ada/events?limit=13", 2},
				{acmeUsers + "user_id:ada/traits/plan/history?limit=3", 1},
				{acmeUsers + "user_id:ada/traits?limit=5", 3},
				{acmeUsers + "user_id:ada/external_ids?limit=13", 2},
				{acmeAccounts + "group_id:acme-corp/links?limit=13", 1},
				{acmeSearch + "q=person&limit=4", 3},
				{acmeSearch + "identifier=user_id:ada", 1},
			} {
				if got := len(b.pages(t, tt.path)); got != tt.pages {
					t.Errorf("%s: %d pages, want %d", tt.path, got, tt.pages)
				}
			}
		}},
		{"Segment's fields", func(t *testing.T) {
			_, m := b.profileGet(t, acmeUsers+"user_id:ada/traits?verbose=true&include=plan", deskToken)
			plan := m["traits"].(map[string]any)["plan"].(map[string]any)
			if plan["source_id"] != "web" || plan["updated_at"] != s.t0.Add(3*time.Minute).Format(time.RFC3339) {
				t.Errorf("verbose trait %v", plan)
			}
			_, m = b.profileGet(t, acmeUsers+"user_id:ada/external_ids?include=user_id,email", deskToken)
			var ids []string
			for _, e := range items(m) {
				ids = append(ids, fmt.Sprint(e["type"], ":", e["id"]))
				if e["source_id"] != "web" {
					t.Errorf("external id %v", e)
				}
			}
			if !slices.Equal(ids, []string{"email:ada@example.com", "user_id:ada"}) {
				t.Errorf("external_ids include: %v", ids)
			}
			_, m = b.profileGet(t, acmeUsers+"user_id:ada/metadata", deskToken)
			if v, ok := m["metadata"].(map[string]any)["expires_at"]; !ok || v != nil {
				t.Errorf("metadata %v", m)
			}
		}},
		{"account traits and metadata", func(t *testing.T) {
			code, m := b.profileGet(t, acmeAccounts+"group_id:acme-corp/traits", deskToken)
			if code != 200 || m["traits"].(map[string]any)["name"] != "Acme Corp" {
				t.Fatalf("%d %v", code, m)
			}
			code, m = b.profileGet(t, acmeAccounts+"kith_id:3/metadata", deskToken)
			if code != 200 || m["metadata"].(map[string]any)["collection"] != "accounts" {
				t.Fatalf("%d %v", code, m)
			}
		}},
		{"a profile is only found in its own collection", func(t *testing.T) {
			for _, path := range []string{acmeAccounts + "kith_id:1/traits", acmeAccounts + "user_id:ada/traits", acmeUsers + "group_id:acme-corp/traits", acmeUsers + "kith_id:3/traits"} {
				if code, m := b.profileGet(t, path, deskToken); code != 404 || errCode(m) != "profile_not_found" {
					t.Errorf("%s: %d %v", path, code, m)
				}
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t)
		})
	}
}

func TestProfileSearchReadsState(t *testing.T) {
	t.Parallel()
	b := setupProfiles(t)
	persons := func(lo, hi int, extra ...float64) []float64 {
		var out []float64
		out = append(out, extra...)
		for i := lo; i <= hi; i++ {
			out = append(out, float64(i))
		}
		return out
	}
	for _, tt := range []struct {
		name, query string
		want        []float64 // kith_ids in order
	}{
		{"identifier", "identifier=email:" + url.QueryEscape(" P7@example.com"), []float64{7}},
		{"identifier of a merged-away profile finds the survivor", "identifier=anonymous_id:b-1", []float64{1}},
		{"identifier nobody holds", "identifier=user_id:nobody", nil},
		{"trait exact string", "trait=name:" + url.QueryEscape("Person 12"), []float64{12}},
		{"trait exact number", "trait=tier:0", []float64{6, 9, 12, 15}},
		{"trait prefix", "trait_prefix=email:p1", persons(10, 15)},
		{"free text over names, paged", "q=person", persons(4, 15)},
		{"free text is case-insensitive", "q=LOVE", []float64{1}},
		{"free text over email", "q=p9", []float64{9}},
		{"no match", "q=zzz", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []float64
			for _, p := range b.pages(t, acmeSearch+tt.query+"&limit=3") {
				for _, r := range items(p) {
					got = append(got, r["kith_id"].(float64))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("%v, want %v", got, tt.want)
			}
		})
	}
	t.Run("summary", func(t *testing.T) {
		t.Parallel()
		_, m := b.profileGet(t, acmeSearch+"identifier=user_id:p5", deskToken)
		r := items(m)[0]
		traits := r["traits"].(map[string]any)
		if r["events"] != float64(1) || r["first_seen"] == "" || r["last_seen"] == "" || traits["name"] != "Person 5" || traits["email"] != "p5@example.com" || traits["tier"] != nil {
			t.Fatalf("%v", r)
		}
	})
	t.Run("accounts", func(t *testing.T) {
		t.Parallel()
		_, m := b.profileGet(t, "/v1/spaces/acme/collections/accounts/search?q=acme", deskToken)
		if d := items(m); len(d) != 1 || d[0]["kith_id"] != float64(3) {
			t.Fatalf("%v", m)
		}
		_, m = b.profileGet(t, "/v1/spaces/acme/collections/accounts/search?q=person", deskToken)
		if d := items(m); len(d) != 0 {
			t.Fatalf("users found as accounts: %v", m)
		}
	})
}

func TestProfileAPIAuthAndIsolation(t *testing.T) {
	t.Parallel()
	b := setupProfiles(t)
	const globexUsers = "/v1/spaces/globex/collections/users/profiles/"
	for _, tt := range []struct {
		name, path, token string
		bearer            bool
		code              int
		errCode           string
		traitName         string // the name trait a 200 answers
	}{
		{"no token", acmeUsers + "user_id:ada/traits", "", false, 401, "missing_token", ""},
		{"wrong token", acmeUsers + "user_id:ada/traits", "tok_wrong_1234567890", false, 401, "invalid_token", ""},
		{"token too long", acmeUsers + "user_id:ada/traits", strings.Repeat("x", 5000), false, 401, "invalid_token", ""},
		{"debug scope only", acmeUsers + "user_id:ada/traits", pdebugToken, false, 403, "forbidden", ""},
		{"debug scope only, search", acmeSearch + "q=ada", pdebugToken, false, 403, "forbidden", ""},
		{"other workspace's token", acmeUsers + "user_id:ada/traits", globexToken, false, 404, "workspace_not_found", ""},
		{"other workspace's token, by kith_id", acmeUsers + "kith_id:1/events", globexToken, false, 404, "workspace_not_found", ""},
		{"other workspace's token, search", acmeSearch + "q=ada", globexToken, false, 404, "workspace_not_found", ""},
		{"token into the other workspace", globexUsers + "user_id:ada/traits", deskToken, false, 404, "workspace_not_found", ""},
		{"workspace that does not exist", "/v1/spaces/nope/collections/users/profiles/user_id:ada/traits", deskToken, false, 404, "workspace_not_found", ""},
		{"reader", acmeUsers + "user_id:ada/traits", deskToken, false, 200, "", "Ada Lovelace"},
		{"reader as bearer", acmeUsers + "user_id:ada/traits", deskToken, true, 200, "", "Ada Lovelace"},
		{"admin implies profiles:read", acmeUsers + "user_id:ada/traits", opsToken, false, 200, "", "Ada Lovelace"},
		{"same identifier, own workspace's profile", globexUsers + "user_id:ada/traits", globexToken, false, 200, "", "Globex Ada"},
		{"profile only in the other workspace", globexUsers + "email:ada@example.com/traits", globexToken, false, 404, "profile_not_found", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest("GET", b.srv.URL+tt.path, nil)
			switch {
			case tt.token == "":
			case tt.bearer:
				req.Header.Set("Authorization", "Bearer "+tt.token)
			default:
				req.SetBasicAuth(tt.token, "")
			}
			code, m, _ := do(t, req)
			if code != tt.code || errCode(m) != tt.errCode {
				t.Fatalf("%d %v, want %d %s", code, m, tt.code, tt.errCode)
			}
			if tt.traitName != "" && m["traits"].(map[string]any)["name"] != tt.traitName {
				t.Fatalf("%v, want name %q", m, tt.traitName)
			}
		})
	}
}

func TestProfileAPIBadInput(t *testing.T) {
	t.Parallel()
	b := setupProfiles(t)
	const accountsSearch = "/v1/spaces/acme/collections/accounts/search?"
	for _, tt := range []struct {
		name, path string
		code       int
		errCode    string
	}{
		{"no colon", acmeUsers + "ada/traits", 400, "invalid_profile_id"},
		{"empty type", acmeUsers + ":ada/traits", 400, "invalid_profile_id"},
		{"empty value", acmeUsers + "user_id:/events", 400, "invalid_profile_id"},
		{"kith_id not a number", acmeUsers + "kith_id:ada/metadata", 400, "invalid_profile_id"},
		{"kith_id zero", acmeUsers + "kith_id:0/metadata", 400, "invalid_profile_id"},
		{"kith_id negative", acmeUsers + "kith_id:-3/metadata", 400, "invalid_profile_id"},
		{"kith_id overflows", acmeUsers + "kith_id:99999999999999999999/metadata", 400, "invalid_profile_id"},
		{"kith_id unknown", acmeUsers + "kith_id:999/metadata", 404, "profile_not_found"},
		{"unknown identifier", acmeUsers + "user_id:nobody/traits", 404, "profile_not_found"},
		{"unknown identifier type", acmeUsers + "shoe:42/traits", 404, "profile_not_found"},
		{"email the rules cannot hold", acmeUsers + "email:not-an-email/traits", 404, "profile_not_found"},
		{"unknown collection", "/v1/spaces/acme/collections/people/profiles/user_id:ada/traits", 404, "unknown_collection"},
		{"unknown collection, search", "/v1/spaces/acme/collections/people/search?q=a", 404, "unknown_collection"},
		{"unknown section", acmeUsers + "user_id:ada/audiences", 404, "not_found"},
		{"limit zero", acmeUsers + "user_id:ada/traits?limit=0", 400, "invalid_limit"},
		{"limit negative", acmeUsers + "user_id:ada/external_ids?limit=-1", 400, "invalid_limit"},
		{"limit over 200", acmeUsers + "user_id:ada/events?limit=201", 400, "invalid_limit"},
		{"limit not a number", acmeUsers + "user_id:ada/links?limit=ten", 400, "invalid_limit"},
		{"limit fractional", acmeUsers + "user_id:ada/traits/plan/history?limit=1.5", 400, "invalid_limit"},
		{"limit bad on an unknown profile", acmeUsers + "user_id:nobody/traits?limit=0", 400, "invalid_limit"},
		{"events cursor not a position", acmeUsers + "user_id:ada/events?next=abc", 400, "invalid_cursor"},
		{"events cursor zero", acmeUsers + "user_id:ada/events?next=0", 400, "invalid_cursor"},
		{"history cursor not a position", acmeUsers + "user_id:ada/traits/plan/history?next=x", 400, "invalid_cursor"},
		{"external_ids cursor not held", acmeUsers + "user_id:ada/external_ids?next=user_id:bob", 400, "invalid_cursor"},
		{"links cursor not a link", acmeAccounts + "group_id:acme-corp/links?next=2", 400, "invalid_cursor"},
		{"links cursor not a number", acmeAccounts + "group_id:acme-corp/links?next=x", 400, "invalid_cursor"},
		{"search without a mode", acmeSearch + "limit=5", 400, "invalid_search"},
		{"search with two modes", acmeSearch + "q=ada&identifier=user_id:ada", 400, "invalid_search"},
		{"search with all modes", acmeSearch + "q=a&identifier=user_id:a&trait=a:b&trait_prefix=a:b", 400, "invalid_search"},
		{"search identifier without type", acmeSearch + "identifier=ada", 400, "invalid_profile_id"},
		{"search trait without value", acmeSearch + "trait=name", 400, "invalid_search"},
		{"search trait with empty key", acmeSearch + "trait=:x", 400, "invalid_search"},
		{"search prefix without prefix", acmeSearch + "trait_prefix=email:", 400, "invalid_search"},
		{"search empty text", acmeSearch + "q=", 400, "invalid_search"},
		{"search blank text", accountsSearch + "q=%20%20", 400, "invalid_search"},
		{"search limit", acmeSearch + "q=a&limit=500", 400, "invalid_limit"},
		{"search cursor", acmeSearch + "q=a&next=abc", 400, "invalid_cursor"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, m := b.profileGet(t, tt.path, deskToken)
			if code != tt.code || errCode(m) != tt.errCode {
				t.Fatalf("%d %v, want %d %s", code, m, tt.code, tt.errCode)
			}
			if msg, _ := m["error"].(map[string]any)["message"].(string); msg == "" {
				t.Fatalf("error without a message: %v", m)
			}
		})
	}
}

// FuzzProfilePath: no profile reference, section or query string makes
// the Profile API answer 5xx or anything but JSON.
func FuzzProfilePath(f *testing.F) {
	b := setupProfiles(f)
	for _, s := range [][3]string{
		{"user_id:ada", "traits", "limit=3&include=a,,b"},
		{"kith_id:2", "events", "next=9223372036854775807"},
		{"email:%20Ada@Example.com", "external_ids", "next=email:"},
		{"group_id:acme-corp", "links", "verbose=true"},
		{"kith_id:-1", "metadata", "limit=%zz"},
		{"a:b:c", "traits/plan/history", "next=-9"},
		{"%00:%ff", "traits", "include=%00"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, ref, section, query string) {
		for _, coll := range []string{"users", "accounts"} {
			target := "/v1/spaces/acme/collections/" + coll + "/profiles/" + ref + "/" + section + "?" + query
			u, err := url.Parse(target)
			if err != nil || !strings.HasPrefix(u.Path, "/") {
				return
			}
			req := httptest.NewRequestWithContext(context.Background(), "GET", "/", nil)
			req.URL = u
			req.RequestURI = ""
			req.SetBasicAuth(deskToken, "")
			rec := httptest.NewRecorder()
			b.handler.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
			}
			var v map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil && rec.Code != http.StatusMovedPermanently && rec.Code != http.StatusTemporaryRedirect {
				t.Fatalf("GET %s: %d, not JSON: %q", target, rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkProfileAPI reads each Profile API endpoint of one seeded
// profile over HTTP (keep-alive connection, real SQLite).
func BenchmarkProfileAPI(b *testing.B) {
	pb := setupProfiles(b)
	client := &http.Client{}
	for _, bm := range []struct{ name, path string }{
		{"traits", acmeUsers + "user_id:ada/traits"},
		{"traits_include", acmeUsers + "user_id:ada/traits?include=name,plan"},
		{"traits_verbose", acmeUsers + "user_id:ada/traits?verbose=true&limit=200"},
		{"events", acmeUsers + "user_id:ada/events"},
		{"external_ids", acmeUsers + "user_id:ada/external_ids"},
		{"links", acmeAccounts + "group_id:acme-corp/links"},
		{"metadata", acmeUsers + "kith_id:2/metadata"},
		{"search_q", acmeSearch + "q=person"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest("GET", pb.srv.URL+bm.path, nil)
				req.SetBasicAuth(deskToken, "")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s: %d", bm.path, resp.StatusCode)
				}
			}
		})
	}
}
