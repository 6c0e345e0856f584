package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// control appends a privacy control event, as the privacy APIs do.
func (f *fixture) control(t *testing.T, c privacy.Command) {
	t.Helper()
	c.Actor = "test"
	ev, err := c.Event(f.ws, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Append(context.Background(), &store.Batch{Events: []store.Event{ev}}, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// outboxEnd is the ID of the workspace's last outbox entry.
func (f *fixture) outboxEnd(t *testing.T) int64 {
	t.Helper()
	var last int64
	for {
		page, err := f.st.ReadOutbox(context.Background(), f.ws, last, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return last
		}
		last = page[len(page)-1].ID
	}
}

// TestRestrictedAll: once a person restricts all processing (the
// "restricted": ["all"] of their consent value), a strictly necessary
// destination receives nothing about them — not their events, nor the
// trait change the restriction itself causes — but the exit from the
// audience it had received (a removal), while another person's
// deliveries go on. The events after the restriction in
// the log wait until it is folded.
func TestRestrictedAll(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		defineBuyers(t, st)
		def := strings.Replace(webhookDef, `"strictly_necessary":true`, `"strictly_necessary":true,"traits":["orders"],"audiences":["buyers"]`, 1)
		f := setup(t, st, def, false)
		delivered := f.rcv.bodies
		f.send(t, track("m1", "Order Completed", ""), `{"type":"track","userId":"u2","messageId":"m2","event":"Order Completed"}`)
		f.fold(t)
		// Two events, two trait changes, two entries.
		waitFor(t, "both people's deliveries", func() bool { return len(f.rcv.received()) == 6 })
		before := len(delivered())

		f.control(t, privacy.Command{Action: privacy.ActionRestrict, Scope: privacy.ScopeAll,
			Identifier: store.Identifier{Type: "user_id", Value: "u1"}})
		f.send(t, track("m3", "Viewed", ""), `{"type":"track","userId":"u2","messageId":"m4","event":"Viewed"}`)
		// Until the restriction (position 3) is folded, the events after it
		// wait.
		time.Sleep(300 * time.Millisecond)
		if c := f.cursor(t); c.Log != 2 || len(delivered()) != before {
			t.Fatalf("log cursor %d, %d deliveries before the restriction was folded: want 2 and %d", c.Log, len(delivered()), before)
		}
		f.fold(t)
		end := f.outboxEnd(t)
		waitFor(t, "the destination to pass everything", func() bool {
			c := f.cursor(t)
			return c.Log >= 5 && c.Outbox >= end
		})
		after := delivered()[before:]
		u2, exits := 0, 0
		for _, b := range after {
			switch {
			case strings.Contains(b, `"userId":"u1"`) && strings.Contains(b, `"Audience Exited"`):
				exits++ // the removal from the audience it had received
			case strings.Contains(b, `"userId":"u1"`):
				t.Errorf("delivered after u1 restricted all processing: %s", b)
			}
			if strings.Contains(b, `"messageId":"m4"`) {
				u2++
			}
		}
		if u2 != 1 || exits != 1 {
			t.Errorf("delivered after the restriction: %q; want u2's m4 and u1's exit from buyers", after)
		}
	})
}

// TestObjectionRemovesFromSyncedAudiences: a person who consented to
// advertising is synced into an audience; when they object to profiling,
// the consent gate denies the advertising purpose from then on, but the
// exit from the audience — a removal — still reaches the destination
// that received them.
func TestObjectionRemovesFromSyncedAudiences(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		defineBuyers(t, st)
		def := strings.Replace(webhookDef, `"strictly_necessary":true`, `"purposes":["advertising"],"audiences":["buyers"]`, 1)
		f := setup(t, st, def, false)
		f.send(t, track("m1", "Order Completed", `,"context":{"consent":{"categoryPreferences":{"Advertising":true}}}`))
		f.fold(t)
		waitFor(t, "the event and the entry", func() bool { return len(f.rcv.received()) == 2 })

		f.control(t, privacy.Command{Action: privacy.ActionObject, Scope: privacy.ScopeProfiling,
			Identifier: store.Identifier{Type: "user_id", Value: "u1"}})
		f.send(t, track("m2", "Order Completed", ""))
		f.fold(t)
		end := f.outboxEnd(t)
		waitFor(t, "the destination to pass everything", func() bool {
			c := f.cursor(t)
			return c.Log >= 3 && c.Outbox >= end
		})
		// The receiver lists messageId+event of each delivery.
		if got := f.rcv.received()[2:]; len(got) != 1 || !strings.HasSuffix(got[0], "Audience Exited") {
			t.Errorf("after the objection: %q; want only the exit from buyers (not m2)", got)
		}
	})
}

// TestWithdrawalRemovesFromSyncedAudiences: a person synced into an
// audience by a destination for advertising withdraws that consent: the
// destination gets the exit (a removal). Withdrawing a purpose the
// destination does not need sends nothing: the person stays.
func TestWithdrawalRemovesFromSyncedAudiences(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		withdraw string
		want     string // the event of what the destination gets after the withdrawal
	}{
		{"advertising", "Audience Exited"},
		{"analytics", ""},
	} {
		t.Run(c.withdraw, func(t *testing.T) {
			t.Parallel()
			eachBackend(t, func(t *testing.T, st store.Store) {
				defineBuyers(t, st)
				def := strings.Replace(webhookDef, `"strictly_necessary":true`, `"purposes":["advertising"],"audiences":["buyers"]`, 1)
				f := setup(t, st, def, false)
				f.send(t, track("m1", "Order Completed", `,"context":{"consent":{"categoryPreferences":{"Advertising":true,"Analytics":true}}}`))
				f.fold(t)
				waitFor(t, "the event and the entry", func() bool { return len(f.rcv.received()) == 2 })
				f.control(t, privacy.Command{Action: privacy.ActionConsent, Consent: map[string]bool{c.withdraw: false},
					Identifier: store.Identifier{Type: "user_id", Value: "u1"}})
				f.fold(t)
				end := f.outboxEnd(t)
				waitFor(t, "the destination to pass everything", func() bool {
					cur := f.cursor(t)
					return cur.Log >= 2 && cur.Outbox >= end
				})
				// The receiver lists messageId+event of each delivery.
				got := ""
				for _, r := range f.rcv.received()[2:] {
					if i := strings.Index(r, "Audience"); i >= 0 {
						r = r[i:] // the exit's messageId is derived
					}
					got += r
				}
				if got != c.want {
					t.Errorf("after the withdrawal of %s: %q, want %q", c.withdraw, got, c.want)
				}
			})
		})
	}
}
