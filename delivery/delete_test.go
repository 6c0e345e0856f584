package delivery_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/destination/forward"
	"github.com/kithcdp/kith/destination/webhook"
	"github.com/kithcdp/kith/egress"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

// erasure is a deletion request for u1.
var erasure = destination.Deletion{Request: "dsr-1", Profile: 1, Identifiers: []store.Identifier{
	{Type: "user_id", Value: "u1"}, {Type: "email", Value: "ada@example.com"},
}}

// deleteEngine is an engine that is not running, whose destinations are
// webhooks and forwards reached on loopback.
func deleteEngine(t *testing.T, st store.Store, o delivery.Options) *delivery.Engine {
	t.Helper()
	rules, err := identity.DefaultRules().Compile()
	if err != nil {
		t.Fatal(err)
	}
	client := egress.New(egress.Options{AllowLoopback: true, Timeout: 5 * time.Second})
	o.Store = st
	o.Rules = func(string) (*identity.Compiled, error) { return rules, nil }
	o.Senders = func(_ string, d delivery.Definition) (destination.Sender, error) {
		if d.Type == delivery.TypeForward {
			return forward.New(d.Config, client)
		}
		return webhook.New(d.Config, client)
	}
	return delivery.New(o)
}

// TestDelete: a webhook destination receives a deletion, signed, with the
// request id as webhook-id — through the sender of the worker running on
// this node, and through one made for it when none runs; a retry sends the
// same id.
func TestDelete(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		f := setup(t, st, webhookDef, false)
		ctx := context.Background()
		if err := f.eng.Delete(ctx, f.ws, "hook", erasure); err != nil {
			t.Fatalf("Delete through the running worker: %v", err)
		}
		if err := deleteEngine(t, st, delivery.Options{}).Delete(ctx, f.ws, "hook", erasure); err != nil {
			t.Fatalf("Delete on an engine that does not run the destination: %v", err)
		}
		f.rcv.mu.Lock()
		n := f.rcv.ids[erasure.Request]
		f.rcv.mu.Unlock()
		if got := f.rcv.received(); n != 2 || len(got) != 2 || got[0] != erasure.Request {
			t.Errorf("received %q, %d with webhook-id %s: want the deletion twice with the request id", got, n, erasure.Request)
		}
		// Events still flow after the deletion used the worker's sender.
		f.send(t, track("m1", "A", ""))
		waitFor(t, "an event after the deletion", func() bool { return len(f.rcv.received()) == 3 })
	})
}

// TestDeleteOutcomes: a destination that does not exist, or a forward
// (the Tracking API has no delete call), is ErrDeleteUnsupported; the
// receiver's answer is classified (410 permanent, 503 retried); a
// deletion without a request id or of another workspace is rejected; a
// destination whose sender cannot be made fails for good; a receiver that
// does not answer in time is a failure to retry.
func TestDeleteOutcomes(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	ctx := context.Background()
	rcv := newReceiver(t)
	status := make(chan int, 1)
	rcv.script(func([]byte) (int, http.Header) { return <-status, nil })
	hang := make(chan struct{})
	slow := newReceiver(t)
	slow.script(func([]byte) (int, http.Header) { <-hang; return 200, nil })
	t.Cleanup(func() { close(hang) }) // before the server's Close, which waits for the handler
	for name, def := range map[string]string{
		"hook": strings.ReplaceAll(webhookDef, "RECEIVER", rcv.srv.URL),
		"slow": strings.ReplaceAll(strings.ReplaceAll(webhookDef, "RECEIVER", slow.srv.URL), `"name":"hook"`, `"name":"slow"`),
		"fwd": `{"name":"fwd","type":"forward","events":{},"strictly_necessary":true,
			"config":{"url":"` + rcv.srv.URL + `","allow_http":true,"write_key":"k"}}`,
		"broken": `{"name":"broken","type":"webhook","events":{},"strictly_necessary":true,"config":{"url":"` + rcv.srv.URL + `","allow_http":true}}`,
	} {
		defineWebhook(t, st, "acme", name, def, false)
	}
	eng := deleteEngine(t, st, delivery.Options{DeleteTimeout: 300 * time.Millisecond})

	for _, name := range []string{"fwd", "nowhere"} {
		if err := eng.Delete(ctx, "acme", name, erasure); !errors.Is(err, delivery.ErrDeleteUnsupported) {
			t.Errorf("Delete to %s: %v, want ErrDeleteUnsupported", name, err)
		}
	}
	check := func(what string, err error, permanent, reject bool, status int) {
		t.Helper()
		var de *destination.Error
		if !errors.As(err, &de) || de.Permanent != permanent || de.Reject != reject || de.Status != status {
			t.Errorf("%s: %v (%T), want a *destination.Error permanent=%v reject=%v status %d", what, err, err, permanent, reject, status)
		}
	}
	status <- 410
	check("410", eng.Delete(ctx, "acme", "hook", erasure), true, false, 410)
	status <- 503
	check("503", eng.Delete(ctx, "acme", "hook", erasure), false, false, 503)
	check("no request id", eng.Delete(ctx, "acme", "hook", destination.Deletion{Identifiers: erasure.Identifiers}), false, true, 0)
	other := erasure
	other.Workspace = "globex"
	check("another workspace", eng.Delete(ctx, "acme", "hook", other), false, true, 0)
	check("a sender that cannot be made", eng.Delete(ctx, "acme", "broken", erasure), true, false, 0)
	check("no answer in time", eng.Delete(ctx, "acme", "slow", erasure), false, false, 0)
	if n := rcv.calls.Load(); n != 2 {
		t.Errorf("%d requests reached the receiver, want the 410 and the 503", n)
	}
}

// TestDeleteWaitsForSend: a deletion through a running worker waits for
// the send in progress, and gives up, as a failure to retry, when that
// outlasts its time; once the send is done it goes through.
func TestDeleteWaitsForSend(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite")
	rcv := newReceiver(t)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	rcv.script(func(body []byte) (int, http.Header) {
		if strings.Contains(string(body), `"m1"`) {
			<-release
		}
		return 200, nil
	})
	t.Cleanup(free) // before the server's Close, which waits for the handler
	defineWebhook(t, st, "acme", "hook", strings.ReplaceAll(webhookDef, "RECEIVER", rcv.srv.URL), true)
	eng := webhookEngine(t, st, 10*time.Second, delivery.Options{
		Owner: "test", LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond, DefinitionsPoll: 50 * time.Millisecond,
		DeleteTimeout: 300 * time.Millisecond,
	})
	t.Cleanup(run(eng, "acme"))
	f := &fixture{st: st, ws: "acme"}
	f.send(t, track("m1", "A", ""))
	waitFor(t, "the send in progress", func() bool { return rcv.calls.Load() == 1 })
	var de *destination.Error
	if err := eng.Delete(context.Background(), "acme", "hook", erasure); !errors.As(err, &de) || de.Permanent || de.Reject ||
		!strings.Contains(de.Msg, "did not end in time") {
		t.Fatalf("Delete during a send: %v, want a failure to retry", err)
	}
	free()
	if err := eng.Delete(context.Background(), "acme", "hook", erasure); err != nil {
		t.Fatalf("Delete after the send: %v", err)
	}
	if got := rcv.received(); !slices.Equal(got, []string{"m1A", erasure.Request}) {
		t.Errorf("received %q: want the event, then the deletion", got)
	}
}
