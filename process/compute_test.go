package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
)

// clock is a settable time for processors under test.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }

func computeProcessor(st store.Store, batch int, c *clock) *process.Processor {
	rules, err := identity.DefaultRules().Compile()
	if err != nil {
		panic(err)
	}
	return process.New(process.Options{
		Store: st, Batch: batch, Owner: fmt.Sprintf("test-%d", os.Getpid()), LeaseTTL: time.Second,
		Rules: func(string) (*identity.Compiled, error) { return rules, nil },
		Now:   c.now,
	})
}

func putDefinition(t *testing.T, st store.Store, ws, kind, name, body string) {
	t.Helper()
	if _, err := st.PutDefinition(context.Background(), store.Definition{
		Workspace: ws, Kind: kind, Name: name, Body: json.RawMessage(body), Origin: "api",
	}); err != nil {
		t.Fatal(err)
	}
}

// computeDefs are the definitions of the compute tests: a windowed
// counter, an all-time sum, a last value, an audience on the counter, one
// on an event condition with a filter, and an account audience.
var computeDefs = []struct{ kind, name, body string }{
	{store.DefinitionTrait, "orders_30d", `{"name":"orders_30d","kind":"count","events":["Order Completed"],"window_days":30}`},
	{store.DefinitionTrait, "revenue", `{"name":"revenue","kind":"sum","events":["Order Completed"],"property":"properties.total"}`},
	{store.DefinitionTrait, "last_page", `{"name":"last_page","kind":"last","types":["page"],"property":"name"}`},
	{store.DefinitionAudience, "repeat_buyers", `{"name":"repeat_buyers","condition":"computed.orders_30d >= 2"}`},
	{store.DefinitionAudience, "big_spenders", `{"name":"big_spenders","condition":"events.count(\"Order Completed\", 365, \"properties.total >= 100\") >= 1 && traits.plan == \"pro\""}`},
	{store.DefinitionAudience, "active_accounts", `{"name":"active_accounts","entity":"account","condition":"users.exists(u, \"repeat_buyers\" in u.audiences)"}`},
}

func putComputeDefs(t *testing.T, st store.Store, ws string) {
	for _, d := range computeDefs {
		putDefinition(t, st, ws, d.kind, d.name, d.body)
	}
}

// computeEvents: ada buys twice (100 and 20) within days, as an anonymous
// visitor first; bob buys once; ada's company is acme.
var computeEvents = []string{
	`{"type":"page","anonymousId":"a-ada","name":"Pricing","timestamp":"2026-11-01T09:00:00Z"}`,
	`{"type":"track","anonymousId":"a-ada","event":"Order Completed","properties":{"total":100},"timestamp":"2026-11-01T09:05:00Z"}`,
	`{"type":"identify","anonymousId":"a-ada","userId":"ada","traits":{"plan":"pro","email":"ada@example.com"},"timestamp":"2026-11-01T09:06:00Z"}`,
	`{"type":"group","userId":"ada","groupId":"acme","traits":{"name":"Acme"},"timestamp":"2026-11-01T09:07:00Z"}`,
	`{"type":"track","userId":"bob","event":"Order Completed","properties":{"total":5.5},"timestamp":"2026-11-02T10:00:00Z"}`,
	`{"type":"track","userId":"ada","event":"Order Completed","properties":{"total":20},"timestamp":"2026-11-03T09:00:00Z"}`,
	`{"type":"page","userId":"ada","name":"Checkout","timestamp":"2026-11-03T09:01:00Z"}`,
}

// snapshot is a workspace's compute output: values and members by the
// user ids and group ids of the profiles.
func computeSnapshot(t *testing.T, st store.Store, ws string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, who := range []store.Identifier{{Type: "user_id", Value: "ada"}, {Type: "user_id", Value: "bob"}, {Type: "group_id", Value: "acme"}} {
		p, err := st.Lookup(ctx, ws, who)
		if err != nil {
			t.Fatalf("lookup %s: %v", who, err)
		}
		vals, err := st.ComputedValues(ctx, ws, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			out[who.Value+"."+v.Name] = string(v.Value)
		}
	}
	for _, a := range []string{"repeat_buyers", "big_spenders", "active_accounts"} {
		n, err := st.MemberCount(ctx, ws, a)
		if err != nil {
			t.Fatal(err)
		}
		out["members."+a] = fmt.Sprint(n)
	}
	return out
}

func outboxOf(t *testing.T, st store.Store, ws string) []string {
	t.Helper()
	entries, err := st.ReadOutbox(context.Background(), ws, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		var ev struct {
			Event, UserID string
			Properties    map[string]any
			Context       struct{ GroupID string }
		}
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		who := ev.UserID
		if who == "" {
			who = ev.Context.GroupID
		}
		if who == "" {
			who = fmt.Sprint("#", e.Profile)
		}
		out = append(out, fmt.Sprintf("%s %s %s %v", e.Kind, e.Key, who, ev.Properties["reason"]))
	}
	return out
}

func TestComputedTraitsAndAudiences(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		ws := "acme"
		putComputeDefs(t, st, ws)
		c := newClock(time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC))
		appendEvents(t, st, ws, c.now(), computeEvents...)
		if err := computeProcessor(st, 2, c).CatchUp(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"ada.orders_30d": "2", "ada.revenue": "120", "ada.last_page": `"Checkout"`,
			"ada.repeat_buyers": "true", "ada.big_spenders": "true",
			"bob.orders_30d": "1", "bob.revenue": "5.5",
			"acme.active_accounts":  "true",
			"members.repeat_buyers": "1", "members.big_spenders": "1", "members.active_accounts": "1",
		}
		got := computeSnapshot(t, st, ws)
		if !maps.Equal(got, want) {
			t.Errorf("after folding:\n got %v\nwant %v", got, want)
		}
		entered := outboxOf(t, st, ws)
		if want := []string{
			"audience_entered big_spenders ada evaluated",
			"audience_entered repeat_buyers ada evaluated",
			"audience_entered active_accounts acme evaluated",
		}; !sameSet(entered, want) {
			t.Errorf("outbox %q, want %q in some order", entered, want)
		}

		// 30 days after the first order nothing new arrives, but the
		// window moves: ada's count falls to 1 and she leaves; the account
		// follows.
		c.set(time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC))
		if err := computeProcessor(st, 2, c).CatchUp(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		got = computeSnapshot(t, st, ws)
		if got["ada.orders_30d"] != "1" || got["ada.repeat_buyers"] != "false" || got["members.repeat_buyers"] != "0" {
			t.Errorf("after ada's first order left the window: %v", got)
		}
		all := outboxOf(t, st, ws)
		if len(all) < 4 || all[len(all)-1] != "audience_exited repeat_buyers ada expired" && all[len(all)-2] != "audience_exited repeat_buyers ada expired" {
			t.Errorf("outbox %q: want ada's expiry exit after her entry", all)
		}
		// Bob's 30 days end on Dec 2: his count falls to 0.
		c.set(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
		if err := computeProcessor(st, 2, c).CatchUp(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		got = computeSnapshot(t, st, ws)
		if got["bob.orders_30d"] != "0" || got["ada.orders_30d"] != "0" || got["ada.revenue"] != "120" {
			t.Errorf("after every order left the window: %v", got)
		}
		if got["members.active_accounts"] != "0" {
			t.Errorf("the account should have left active_accounts: %v", got)
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestBackfillEqualsIncremental defines the traits and audiences after the
// events were folded: the backfill from the log must give what folding
// them with the definitions in place gave, and so must a replay.
func TestBackfillEqualsIncremental(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		c := newClock(time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC))
		// incremental: definitions first
		putComputeDefs(t, st, "inc")
		appendEvents(t, st, "inc", c.now(), computeEvents...)
		if err := computeProcessor(st, 3, c).CatchUp(ctx, "inc", nil); err != nil {
			t.Fatal(err)
		}
		// backfill: events folded first, definitions later
		appendEvents(t, st, "late", c.now(), computeEvents...)
		if err := computeProcessor(st, 3, c).CatchUp(ctx, "late", nil); err != nil {
			t.Fatal(err)
		}
		if got := computeSnapshot(t, st, "late"); got["members.repeat_buyers"] != "0" {
			t.Fatalf("before definitions: %v", got)
		}
		putComputeDefs(t, st, "late")
		if err := computeProcessor(st, 3, c).CatchUp(ctx, "late", nil); err != nil {
			t.Fatal(err)
		}
		inc, late := computeSnapshot(t, st, "inc"), computeSnapshot(t, st, "late")
		if !maps.Equal(inc, late) {
			t.Errorf("backfill differs from incremental:\nincremental %v\nbackfill    %v", inc, late)
		}
		// The same events again (new messageIds) count on top of the
		// backfilled state.
		more := slices.Clone(computeEvents)
		for i := range more {
			more[i] = strings.Replace(more[i], `"type"`, fmt.Sprintf(`"messageId":"again-%d","type"`, i), 1)
		}
		appendEvents(t, st, "late", c.now(), more...)
		appendEvents(t, st, "inc", c.now(), more...)
		for _, ws := range []string{"inc", "late"} {
			if err := computeProcessor(st, 3, c).CatchUp(ctx, ws, nil); err != nil {
				t.Fatal(err)
			}
		}
		inc, late = computeSnapshot(t, st, "inc"), computeSnapshot(t, st, "late")
		if !maps.Equal(inc, late) || inc["ada.orders_30d"] != "4" {
			t.Errorf("after more events:\nincremental %v\nbackfill    %v", inc, late)
		}
		outbox := outboxOf(t, st, "inc")
		if err := computeProcessor(st, 3, c).Replay(ctx, "inc", nil); err != nil {
			t.Fatal(err)
		}
		if replayed := computeSnapshot(t, st, "inc"); !maps.Equal(inc, replayed) {
			t.Errorf("replay differs:\nincremental %v\nreplay      %v", inc, replayed)
		}
		if got := outboxOf(t, st, "inc"); len(got) != len(outbox) {
			t.Errorf("replay changed the outbox:\nbefore %q\nafter  %q", outbox, got)
		}
	})
}

// TestDefinitionRemoved: deleting an audience ends its memberships (reason
// "removed") and deletes its values; deleting a trait deletes its values.
func TestDefinitionRemoved(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		ws := "acme"
		putComputeDefs(t, st, ws)
		c := newClock(time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC))
		appendEvents(t, st, ws, c.now(), computeEvents...)
		if err := computeProcessor(st, 10, c).CatchUp(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		for _, d := range [][2]string{{store.DefinitionAudience, "active_accounts"}, {store.DefinitionAudience, "big_spenders"}, {store.DefinitionTrait, "last_page"}} {
			if err := st.DeleteDefinition(ctx, ws, d[0], d[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := computeProcessor(st, 10, c).CatchUp(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		got := computeSnapshot(t, st, ws)
		for _, gone := range []string{"ada.big_spenders", "ada.last_page", "acme.active_accounts"} {
			if v, ok := got[gone]; ok {
				t.Errorf("%s = %s after its definition was deleted", gone, v)
			}
		}
		if got["members.big_spenders"] != "0" || got["ada.repeat_buyers"] != "true" {
			t.Errorf("after deleting definitions: %v", got)
		}
		out := outboxOf(t, st, ws)
		if !slices.Contains(out, "audience_exited big_spenders ada removed") {
			t.Errorf("outbox %q: want ada removed from big_spenders", out)
		}
	})
}

// TestPreview previews audiences that are not stored on a running
// processor: one on maintained state, one on an event condition and a
// trait key nothing maintains yet, and one true for profiles that hold
// nothing.
func TestPreview(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ws := "acme"
		putComputeDefs(t, st, ws)
		c := newClock(time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC))
		appendEvents(t, st, ws, c.now(), computeEvents...)
		p := computeProcessor(st, 100, c)
		if _, err := p.Preview(ctx, ws, audience.Definition{Name: "x", Condition: "true"}, 10); !errors.Is(err, process.ErrNotLeading) {
			t.Fatalf("preview before leading: %v, want ErrNotLeading", err)
		}
		done := make(chan struct{})
		go func() { p.Run(ctx, []string{ws}); close(done) }()
		defer func() { cancel(); <-done }()
		preview := func(cond string) compute.PreviewResult {
			t.Helper()
			for range 200 {
				res, err := p.Preview(ctx, ws, audience.Definition{Name: "candidate", Condition: cond}, 10)
				if errors.Is(err, process.ErrNotLeading) {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if err != nil {
					t.Fatalf("preview %q: %v", cond, err)
				}
				return res
			}
			t.Fatal("the processor never led the workspace")
			return compute.PreviewResult{}
		}
		ada := waitOwner(t, st, ws, "ada")
		cases := []struct {
			cond    string
			members int64
		}{
			{"computed.orders_30d >= 2", 1},
			{`events.count("Order Completed", 0, "properties.total < 50") >= 1 && traits.email == "ada@example.com"`, 1},
			{`!("repeat_buyers" in audiences)`, 1}, // bob; the account is not a user
			{`events.performed("Never Happened")`, 0},
		}
		for _, tc := range cases {
			res := preview(tc.cond)
			if res.Members != tc.members || res.Evaluated != 2 {
				t.Errorf("preview %q: %+v, want %d members of 2", tc.cond, res, tc.members)
			}
		}
		if res := preview("computed.orders_30d >= 2"); len(res.Sample) != 1 || res.Sample[0] != ada {
			t.Errorf("sample %v, want [%d]", res.Sample, ada)
		}
		if _, err := p.Preview(ctx, ws, audience.Definition{Name: "bad", Condition: "traits.plan =="}, 10); err == nil {
			t.Error("a bad condition previewed without error")
		}
	})
}

// waitOwner waits until the profile holding user_id uid is folded.
func waitOwner(t *testing.T, st store.Store, ws, uid string) store.ProfileID {
	t.Helper()
	for range 500 {
		if p, err := st.Lookup(context.Background(), ws, store.Identifier{Type: "user_id", Value: uid}); err == nil {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("user_id %s never folded", uid)
	return 0
}

// TestProfileConsent: a profile's current consent is the
// categoryPreferences of its latest event by timestamp (not by arrival),
// kept across merges, also with no definitions at all.
func TestProfileConsent(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		ws := "acme"
		c := newClock(time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC))
		appendEvents(t, st, ws, c.now(),
			`{"type":"track","anonymousId":"a1","event":"Viewed","timestamp":"2026-11-02T10:00:00Z","context":{"consent":{"categoryPreferences":{"Advertising":false,"Analytics":true}}}}`,
			`{"type":"track","userId":"u1","event":"Viewed","timestamp":"2026-11-01T10:00:00Z","context":{"consent":{"categoryPreferences":{"Advertising":true}}}}`,
			`{"type":"identify","anonymousId":"a1","userId":"u1","timestamp":"2026-11-02T11:00:00Z"}`,
		)
		if err := computeProcessor(st, 1, c).CatchUp(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		p := waitOwner(t, st, ws, "u1")
		vals, err := st.ComputedValues(ctx, ws, p)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, v := range vals {
			if v.Name == compute.ConsentValue {
				got = string(v.Value)
			}
		}
		if !strings.Contains(got, `"Advertising":false`) || !strings.Contains(got, `"2026-11-02T10:00:00Z"`) {
			t.Errorf("consent %s, want the later event's (Advertising false)", got)
		}
	})
}

// TestRulesReload: identity rules set through the API (a definition) are
// picked up by a running processor, which reloads its graph under them.
func TestRulesReload(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ws := "acme"
		c := newClock(time.Now())
		rules, _ := identity.DefaultRules().Compile()
		p := process.New(process.Options{
			Store: st, Batch: 100, Owner: "reload-test", LeaseTTL: time.Second, DefinitionsPoll: 20 * time.Millisecond,
			Rules: func(string) (*identity.Compiled, error) { return rules, nil }, Now: c.now,
		})
		done := make(chan struct{})
		go func() { p.Run(ctx, []string{ws}); close(done) }()
		defer func() { cancel(); <-done }()
		appendEvents(t, st, ws, c.now(), `{"type":"identify","userId":"x1"}`)
		waitOwner(t, st, ws, "x1")
		r := identity.DefaultRules()
		r.BlockedPatterns = append(r.BlockedPatterns, `^blocked-.*$`)
		body, _ := json.Marshal(r)
		putDefinition(t, st, ws, store.DefinitionIdentity, process.IdentityRulesName, string(body))
		// The reload takes a poll and a new lease: send a fresh blocked
		// value until one is folded after it (each value is held for good
		// once folded under the old rules, hence fresh ones).
		for i := 0; ; i++ {
			if i == 200 {
				t.Fatal("the rules set through the API were never applied")
			}
			v, marker := fmt.Sprintf("blocked-%d", i), fmt.Sprintf("marker-%d", i)
			appendEvents(t, st, ws, c.now(), `{"type":"identify","userId":"`+v+`"}`, `{"type":"identify","userId":"`+marker+`"}`)
			waitOwner(t, st, ws, marker)
			if _, err := st.Lookup(ctx, ws, store.Identifier{Type: "user_id", Value: v}); errors.Is(err, store.ErrNotFound) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
