package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// TestCorrection: a correction (privacy.ActionCorrect) reaches, as an
// identify call with the corrected traits, the destinations subscribed to
// identify calls that received data about the person — not one that never
// did, nor one subscribed to track calls only; a malformed control event
// is delivered nowhere, and other control events are not delivered as
// events.
func TestCorrection(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		f := &fixture{st: st, ws: "acme", rcv: newReceiver(t)}
		others, tracks := newReceiver(t), newReceiver(t)
		// u1 sent a track call, u2 an identify; both are profiles before
		// the destinations start at the log's beginning (so the ledger
		// counts what they receive).
		f.send(t, track("m1", "A", ""), `{"type":"identify","userId":"u2","messageId":"i2","traits":{"plan":"free"}}`)
		f.fold(t)
		// hook receives every call (and so would receive control events,
		// were they delivered as events).
		for name, d := range map[string]struct {
			rcv    *receiver
			events string
		}{"hook": {f.rcv, `{}`}, "others": {others, `{"types":["identify"]}`}, "tracks": {tracks, `{"types":["track"]}`}} {
			def := fmt.Sprintf(`{"name":%q,"type":"webhook","events":%s,"strictly_necessary":true,
				"config":{"url":%q,"allow_http":true,"secrets":[%q],"batch":10}}`, name, d.events, d.rcv.srv.URL, secret)
			defineWebhook(t, st, f.ws, name, def, true)
		}
		f.eng = webhookEngine(t, st, 2*time.Second, delivery.Options{
			Owner: "test", LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond, DefinitionsPoll: 50 * time.Millisecond, Page: 100,
		})
		t.Cleanup(run(f.eng, f.ws))
		waitFor(t, "the first deliveries", func() bool {
			return len(f.rcv.received()) == 2 && len(others.received()) == 1 && len(tracks.received()) == 1
		})

		u1 := store.Identifier{Type: "user_id", Value: "u1"}
		bad, err := (&privacy.Command{Action: privacy.ActionErase, Identifier: u1, Actor: "test"}).Event(f.ws, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		bad.Raw = json.RawMessage(`{"action":"correct","identifier":{"type":"user_id","value":"u1"},"actor":"test"}`) // no traits
		if _, err := st.Append(context.Background(), &store.Batch{Events: []store.Event{bad}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		f.control(t, privacy.Command{Action: privacy.ActionConsent, Identifier: u1, Consent: map[string]bool{"analytics": true}})
		f.control(t, privacy.Command{Action: privacy.ActionCorrect, Identifier: u1, Request: "dsr-9",
			Traits: map[string]json.RawMessage{"email": json.RawMessage(`"ada@example.com"`), "nickname": json.RawMessage(`null`)}})
		f.control(t, privacy.Command{Action: privacy.ActionCorrect, Identifier: store.Identifier{Type: "user_id", Value: "u2"},
			Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}})
		f.fold(t)
		f.send(t, track("m2", "B", "")) // after the control events: every destination passes them
		waitFor(t, "the corrections", func() bool {
			return len(f.rcv.received()) == 6 && len(others.received()) == 2 && len(tracks.received()) == 2
		})
		time.Sleep(200 * time.Millisecond) // nothing else arrives
		want := []string{"m1A", `identify plan="free"`, `identify email="ada@example.com"`, `identify nickname=null`, `identify plan="pro"`, "m2B"}
		if got := f.rcv.received(); !sameSet(got, want) || got[5] != "m2B" {
			t.Errorf("hook received %q, want %q", got, want)
		}
		if got := others.received(); !slices.Equal(got, []string{`identify plan="free"`, `identify plan="pro"`}) {
			t.Errorf("a destination that never received u1 got %q: want only u2's identify and its correction", got)
		}
		if got := tracks.received(); !slices.Equal(got, []string{"m1A", "m2B"}) {
			t.Errorf("a destination of track calls got %q", got)
		}

		bodies := f.rcv.bodies()
		var call struct {
			Batch []struct {
				Type, MessageID, UserID string
				Context                 struct{ Kith map[string]any }
				Traits                  map[string]json.RawMessage
			}
		}
		for _, b := range bodies {
			if !strings.Contains(b, "ada@example.com") {
				continue
			}
			if err := json.Unmarshal([]byte(b), &call); err != nil {
				t.Fatal(err)
			}
		}
		if len(call.Batch) == 0 {
			t.Fatalf("no body carried the correction: %q", bodies)
		}
		c := call.Batch[0]
		if c.Type != "identify" || c.UserID != "u1" || !strings.HasPrefix(c.MessageID, "kith-") ||
			c.Context.Kith["correction"] != true || c.Context.Kith["request"] != "dsr-9" {
			t.Errorf("correction %+v", c)
		}
	})
}
