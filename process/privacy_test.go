package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// appendPrivacy writes a privacy control event, as the privacy APIs do.
func appendPrivacy(t *testing.T, st store.Store, ws string, at time.Time, cmd privacy.Command) {
	t.Helper()
	cmd.Actor = "test"
	ev, err := cmd.Event(ws, at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(context.Background(), &store.Batch{Events: []store.Event{ev}}, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// consentOf returns a profile's consent value, decoded.
func consentOf(t *testing.T, st store.Store, ws string, p store.ProfileID) map[string]any {
	t.Helper()
	vals, err := st.ComputedValues(context.Background(), ws, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if v.Name == compute.ConsentValue {
			var m map[string]any
			if err := json.Unmarshal(v.Value, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	return nil
}

// seedCompute stores the compute tests' definitions and events in ws and
// folds them; fold folds what was appended since.
func seedCompute(t *testing.T, st store.Store, ws string) (c *clock, fold func()) {
	c = newClock(time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC))
	putComputeDefs(t, st, ws)
	appendEvents(t, st, ws, c.now(), computeEvents...)
	fold = func() {
		t.Helper()
		if err := computeProcessor(st, 100, c).CatchUp(context.Background(), ws, nil); err != nil {
			t.Fatal(err)
		}
	}
	fold()
	return c, fold
}

// TestPrivacyCommands: consent, restriction and correction commands
// change the profile at their place in the log — a restriction takes the
// profile out of its audiences and computed traits until it is lifted —
// and a replay of the same log into a fresh store builds the same state.
func TestPrivacyCommands(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx, ws := context.Background(), "acme"
		c, fold := seedCompute(t, st, ws)
		ada := owner(t, st, ws, "user_id", "ada")
		if s := computeSnapshot(t, st, ws); s["ada.repeat_buyers"] != "true" || s["members.active_accounts"] != "1" {
			t.Fatalf("before any command: %v", s)
		}
		email := store.Identifier{Type: "email", Value: "ada@example.com"}

		appendPrivacy(t, st, ws, c.now(), privacy.Command{Action: privacy.ActionConsent, Identifier: email,
			Consent: map[string]bool{"analytics": false, "marketing": true}})
		appendPrivacy(t, st, ws, c.now(), privacy.Command{Action: privacy.ActionObject, Identifier: email, Scope: privacy.ScopeProfiling})
		fold()
		cv := consentOf(t, st, ws, ada)
		if prefs, _ := cv["categoryPreferences"].(map[string]any); prefs["analytics"] != false || prefs["marketing"] != true ||
			fmt.Sprint(cv["objected"]) != "[profiling]" {
			t.Errorf("consent value %v", cv)
		}
		s := computeSnapshot(t, st, ws)
		if _, ok := s["ada.orders_30d"]; ok || s["ada.repeat_buyers"] != "false" || s["members.repeat_buyers"] != "0" || s["members.active_accounts"] != "0" {
			t.Errorf("an objection to profiling left ada in audiences or computed traits: %v", s)
		}
		if out := strings.Join(outboxOf(t, st, ws), "\n"); !strings.Contains(out, "audience_exited repeat_buyers ada restricted") {
			t.Errorf("no exit for the restriction in the outbox:\n%s", out)
		}

		appendPrivacy(t, st, ws, c.now(), privacy.Command{Action: privacy.ActionUnobject, Identifier: email, Scope: privacy.ScopeProfiling})
		appendPrivacy(t, st, ws, c.now(), privacy.Command{Action: privacy.ActionCorrect, Identifier: email,
			Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"enterprise"`)}})
		fold()
		s = computeSnapshot(t, st, ws)
		if s["ada.orders_30d"] != "2" || s["ada.repeat_buyers"] != "true" || s["members.active_accounts"] != "1" {
			t.Errorf("withdrawing the objection did not restore ada: %v", s)
		}
		traits, err := st.Traits(ctx, ws, ada, nil)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(traits, func(tr store.Trait) bool { return tr.Key == "plan" })
		if i < 0 || string(traits[i].Value) != `"enterprise"` || traits[i].Source != privacy.SourceControl {
			t.Errorf("plan after the correction: %+v", traits)
		}
		hist, err := st.TraitHistory(ctx, ws, ada, "plan", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || string(hist[1].Value) != `"pro"` {
			t.Errorf("the history does not keep the corrected value: %+v", hist)
		}

		// A replay of the log builds the same state.
		replay := backends(t)["sqlite"](t)
		events, err := st.Read(ctx, store.LogQuery{Workspace: ws, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := replay.Append(ctx, &store.Batch{Events: events}, time.Hour); err != nil {
			t.Fatal(err)
		}
		putComputeDefs(t, replay, ws)
		if err := computeProcessor(replay, 3, c).CatchUp(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		if a, b := computeSnapshot(t, st, ws), computeSnapshot(t, replay, ws); !maps.Equal(a, b) {
			t.Errorf("replay differs:\n%v\n%v", a, b)
		}
		if a, b := consentOf(t, st, ws, ada), consentOf(t, replay, ws, owner(t, replay, ws, "user_id", "ada")); fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("replayed consent differs:\n%v\n%v", a, b)
		}
	})
}

// TestEraseCommand: an erasure deletes the profile's events, state and
// the command itself, leaves everyone else as they were, re-evaluates the
// accounts the person belonged to, and survives a restart.
func TestEraseCommand(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx, ws := context.Background(), "acme"
		c, fold := seedCompute(t, st, ws)
		bobBefore := computeSnapshot(t, st, ws)
		appendPrivacy(t, st, ws, c.now(), privacy.Command{Action: privacy.ActionErase, Identifier: store.Identifier{Type: "user_id", Value: "ada"}})
		appendEvents(t, st, ws, c.now(), `{"type":"track","userId":"bob","event":"Order Completed","properties":{"total":1},"timestamp":"2026-11-03T10:00:00Z"}`)
		fold()
		for _, id := range [][2]string{{"user_id", "ada"}, {"email", "ada@example.com"}, {"anonymous_id", "a-ada"}} {
			if p := owner(t, st, ws, id[0], id[1]); p != 0 {
				t.Errorf("%s %s is still held by profile %d", id[0], id[1], p)
			}
		}
		events, err := st.Read(ctx, store.LogQuery{Workspace: ws, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if strings.Contains(string(ev.Raw), "ada") || ev.Type == store.TypePrivacy {
				t.Errorf("event %d survived the erasure: %s %s", ev.Position, ev.Type, ev.Raw)
			}
		}
		if len(events) != 2 { // bob's two orders
			t.Errorf("%d events left, want bob's 2", len(events))
		}
		after := map[string]string{}
		for _, who := range []store.Identifier{{Type: "user_id", Value: "bob"}, {Type: "group_id", Value: "acme"}} {
			p, err := st.Lookup(ctx, ws, who)
			if err != nil {
				t.Fatal(err)
			}
			vals, _ := st.ComputedValues(ctx, ws, p)
			for _, v := range vals {
				after[who.Value+"."+v.Name] = string(v.Value)
			}
		}
		if after["bob.revenue"] != "6.5" || bobBefore["bob.revenue"] != "5.5" || after["acme.active_accounts"] != "false" {
			t.Errorf("after the erasure: %v (before: %v)", after, bobBefore)
		}
		// An erasure of an identifier no profile holds still erases the
		// command that names it.
		appendPrivacy(t, st, ws, c.now(), privacy.Command{Action: privacy.ActionErase, Identifier: store.Identifier{Type: "email", Value: "nobody@example.com"}})
		fold()
		if events, err := st.Read(ctx, store.LogQuery{Workspace: ws, Type: store.TypePrivacy}); err != nil || len(events) != 0 {
			t.Errorf("the erasure of an unknown identifier stays in the log: %v %v", events, err)
		}
		// A restart loads the state without the profile; new events of the
		// same person (nothing suppressed them) start a new profile.
		appendEvents(t, st, ws, c.now(), `{"type":"identify","userId":"ada","timestamp":"2026-11-03T11:00:00Z"}`)
		fold()
		if p := owner(t, st, ws, "user_id", "ada"); p == 0 {
			t.Error("a new event of the erased user id made no profile")
		}
	})
}

// BenchmarkErase measures folding one erasure: a person with n events in a
// workspace of 20,000 events of other people, on each backend. The time
// is the erasure's whole batch — the store's physical deletion (with
// secure_delete on SQLite, the vacuum on PostgreSQL), forgetting the
// profile and the commit.
func BenchmarkErase(b *testing.B) {
	ctx := context.Background()
	for name, open := range backends(b) {
		for _, n := range []int{100, 5000} {
			b.Run(fmt.Sprintf("%s/events=%d", name, n), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					st := open(b)
					rx := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
					var calls []string
					for i := range 20000 {
						calls = append(calls, fmt.Sprintf(`{"type":"track","userId":"u-%d","event":"Viewed","messageId":"o-%d"}`, i%2000, i))
						if len(calls) == 1000 {
							appendEvents(b, st, "acme", rx, calls...)
							calls = calls[:0]
						}
					}
					for i := range n {
						calls = append(calls, fmt.Sprintf(`{"type":"track","userId":"ada","event":"Viewed","messageId":"a-%d","properties":{"email":"ada@example.com"}}`, i))
						if len(calls) == 1000 || i == n-1 {
							appendEvents(b, st, "acme", rx, calls...)
							calls = calls[:0]
						}
					}
					p := newProcessor(st, 5000)
					if err := p.CatchUp(ctx, "acme", nil); err != nil {
						b.Fatal(err)
					}
					cmd := privacy.Command{Action: privacy.ActionErase, Identifier: store.Identifier{Type: "user_id", Value: "ada"}, Actor: "bench"}
					ev, err := cmd.Event("acme", rx)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := st.Append(ctx, &store.Batch{Events: []store.Event{ev}}, time.Hour); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if err := p.CatchUp(ctx, "acme", nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
