package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/destination/webhook"
	"github.com/kithcdp/kith/egress"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/postgres"
	"github.com/kithcdp/kith/store/postgres/pgtest"
	"github.com/kithcdp/kith/store/sqlite"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// eachBackend runs test on a fresh store of each backend, in parallel.
func eachBackend(t *testing.T, test func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, openStore(t, "sqlite"))
	})
	if os.Getenv(pgtest.EnvURL) == "" {
		t.Log("KITH_TEST_POSTGRES_URL is not set: PostgreSQL runs of this test are skipped")
		return
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, openStore(t, "postgres"))
	})
}

// openStore opens a fresh store of a backend, sqlite or postgres (skipped
// when KITH_TEST_POSTGRES_URL is not set), closed when the test ends.
func openStore(t testing.TB, backend string) store.Store {
	t.Helper()
	var st store.Store
	var err error
	switch backend {
	case "sqlite":
		st, err = sqlite.Open(context.Background(), t.TempDir())
	case "postgres":
		if os.Getenv(pgtest.EnvURL) == "" {
			t.Skip(pgtest.EnvURL + " is not set")
		}
		st, err = postgres.Open(context.Background(), pgtest.SchemaURL(t))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// defineWebhook defines the webhook destination name of ws (def is its
// JSON); with fromStart, it starts at the log's beginning rather than at
// its head.
func defineWebhook(t testing.TB, st store.Store, ws, name, def string, fromStart bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.PutDefinition(ctx, store.Definition{
		Workspace: ws, Kind: store.DefinitionDestination, Name: name, Body: json.RawMessage(def), Origin: "api",
	}); err != nil {
		t.Fatal(err)
	}
	if !fromStart {
		return
	}
	c, err := st.AcquireDelivery(ctx, ws, name, "setup", time.Minute, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ReleaseDelivery(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// webhookEngine makes an engine over st with o, whose destinations are
// webhooks reached on loopback with a timeout, and the default identity
// rules.
func webhookEngine(t testing.TB, st store.Store, timeout time.Duration, o delivery.Options) *delivery.Engine {
	t.Helper()
	rules, err := identity.DefaultRules().Compile()
	if err != nil {
		t.Fatal(err)
	}
	client := egress.New(egress.Options{AllowLoopback: true, Timeout: timeout})
	o.Store = st
	o.Senders = func(_ string, d delivery.Definition) (destination.Sender, error) {
		return webhook.New(d.Config, client)
	}
	o.Rules = func(string) (*identity.Compiled, error) { return rules, nil }
	return delivery.New(o)
}

// run runs eng on ws until stop is called.
func run(eng *delivery.Engine, ws string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx, []string{ws}); close(done) }()
	return func() { cancel(); <-done }
}

// verified reads a webhook request's body and checks its signature; on a
// bad one, the test fails and the answer is 401.
func verified(t testing.TB, w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	body, _ := io.ReadAll(req.Body)
	if err := webhook.Verify(secret, req.Header, body, 0, time.Now()); err != nil {
		t.Errorf("bad signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// receiver is a real webhook endpoint whose answers a test scripts. It
// checks every signature and records what it accepted, by webhook-id.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	answer func(body []byte) (int, http.Header) // nil: 200
	got    []string                             // messageIds accepted, in order
	raw    []string                             // the bodies of every signed request, accepted or not, in order
	ids    map[string]int                       // webhook-id → times accepted
	calls  atomic.Int64
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, ids: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		body, ok := verified(t, w, req)
		if !ok {
			return
		}
		r.mu.Lock()
		answer := r.answer
		r.raw = append(r.raw, string(body))
		r.mu.Unlock()
		if answer != nil {
			if code, h := answer(body); code != 200 {
				for k, v := range h {
					w.Header()[k] = v
				}
				w.WriteHeader(code)
				return
			}
		}
		var batch struct {
			Batch []struct {
				MessageID string                     `json:"messageId"`
				Event     string                     `json:"event"`
				Type      string                     `json:"type"`
				Traits    map[string]json.RawMessage `json:"traits"`
			} `json:"batch"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			t.Errorf("body: %v", err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.ids[req.Header.Get("webhook-id")]++
		for _, ev := range batch.Batch {
			if ev.Type == "identify" {
				for k, v := range ev.Traits {
					r.got = append(r.got, "identify "+k+"="+string(v))
				}
				continue
			}
			r.got = append(r.got, ev.MessageID+ev.Event)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) script(f func(body []byte) (int, http.Header)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// bodies are the bodies of every signed request, in order, whatever the
// answer.
func (r *receiver) bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.raw)
}

// defineBuyers defines, in workspace acme, the computed trait "orders"
// (a count of Order Completed) and the audience "buyers" (orders >= 1).
func defineBuyers(t *testing.T, st store.Store) {
	t.Helper()
	for _, d := range []store.Definition{
		{Kind: store.DefinitionTrait, Name: "orders", Body: json.RawMessage(`{"name":"orders","kind":"count","events":["Order Completed"]}`)},
		{Kind: store.DefinitionAudience, Name: "buyers", Body: json.RawMessage(`{"name":"buyers","condition":"computed.orders >= 1"}`)},
	} {
		d.Workspace, d.Origin = "acme", "api"
		if _, err := st.PutDefinition(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 400 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

type fixture struct {
	st  store.Store
	ws  string
	rcv *receiver
	eng *delivery.Engine
	now atomic.Int64 // Unix ns; 0: the real time
}

// setup makes a workspace with one webhook destination (def's JSON, with
// the receiver's URL put in) and runs the delivery engine.
func setup(t *testing.T, st store.Store, def string, missingConsent bool) *fixture {
	f := &fixture{st: st, ws: "acme", rcv: newReceiver(t)}
	def = strings.ReplaceAll(def, "RECEIVER", f.rcv.srv.URL)
	defineWebhook(t, st, f.ws, "hook", def, false)
	f.eng = webhookEngine(t, st, 2*time.Second, delivery.Options{
		AllowMissingConsent: func(string) bool { return missingConsent },
		Owner:               "test", LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond,
		DefinitionsPoll: 50 * time.Millisecond, Page: 100,
		Now: func() time.Time {
			if ns := f.now.Load(); ns != 0 {
				return time.Unix(0, ns)
			}
			return time.Now()
		},
	})
	t.Cleanup(run(f.eng, f.ws))
	// The destination starts at the log's head: wait until it holds its
	// cursor, so the events appended next are after it.
	waitFor(t, "the destination to start", func() bool {
		cs, err := st.Deliveries(context.Background(), f.ws)
		return err == nil && len(cs) == 1
	})
	return f
}

func (f *fixture) send(t *testing.T, calls ...string) {
	t.Helper()
	f.sendSignals(t, store.Signals{}, calls...)
}

// sendSignals appends calls as one request with these signals (e.g.
// Sec-GPC: 1) would.
func (f *fixture) sendSignals(t *testing.T, sig store.Signals, calls ...string) {
	t.Helper()
	body := `{"batch":[` + strings.Join(calls, ",") + `]}`
	out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: []byte(body), ReceivedAt: time.Now()}, ingest.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for i := range out.Events {
		out.Events[i].Workspace, out.Events[i].Source = f.ws, "web"
		out.Events[i].Signals.GPC = sig.GPC
	}
	if _, err := f.st.Append(context.Background(), &store.Batch{Events: out.Events}, time.Hour); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) fold(t *testing.T) {
	t.Helper()
	rules, _ := identity.DefaultRules().Compile()
	p := process.New(process.Options{Store: f.st, Owner: "folder", LeaseTTL: time.Second,
		Rules: func(string) (*identity.Compiled, error) { return rules, nil }})
	if err := p.CatchUp(context.Background(), f.ws, nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) cursor(t *testing.T) store.DeliveryCursor {
	t.Helper()
	cs, err := f.st.Deliveries(context.Background(), f.ws)
	if err != nil || len(cs) != 1 {
		t.Fatalf("deliveries: %v %v", cs, err)
	}
	return cs[0]
}

func (f *fixture) dead(t *testing.T) []store.DeadLetter {
	t.Helper()
	d, err := f.st.DeadLetters(context.Background(), f.ws, "hook", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func track(id, event string, extra string) string {
	return fmt.Sprintf(`{"type":"track","userId":"u1","messageId":%q,"event":%q%s}`, id, event, extra)
}

const webhookDef = `{"name":"hook","type":"webhook","events":{"types":["track"]},"strictly_necessary":true,
	"config":{"url":"RECEIVER","allow_http":true,"secrets":["` + secret + `"],"batch":10}}`

// TestDeliversInOrderAndRetries: events reach the receiver in log order,
// signed; a failing receiver (500, then 429 with Retry-After) gets them
// after it recovers, duplicates only as retries with the same webhook-id;
// the ledger counts the profile's deliveries.
func TestDeliversInOrderAndRetries(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		f := setup(t, st, webhookDef, false)
		f.send(t, track("m1", "A", ""), track("m2", "B", ""), `{"type":"page","userId":"u1","messageId":"m3"}`)
		waitFor(t, "2 deliveries", func() bool { return len(f.rcv.received()) == 2 })
		if got := f.rcv.received(); !slices.Equal(got, []string{"m1A", "m2B"}) {
			t.Fatalf("received %q: want the two track events in order (the page is not subscribed)", got)
		}
		f.fold(t) // u1 is a profile from now on: the ledger counts its deliveries
		// The receiver fails: 500 twice, then 429 asking for 1 s.
		var fails atomic.Int64
		f.rcv.script(func([]byte) (int, http.Header) {
			switch fails.Add(1) {
			case 1, 2:
				return 500, nil
			case 3:
				return 429, http.Header{"Retry-After": {"1"}}
			}
			return 200, nil
		})
		f.send(t, track("m4", "C", ""), track("m5", "D", ""))
		waitFor(t, "the retried deliveries", func() bool { return len(f.rcv.received()) == 4 })
		if got := f.rcv.received(); !slices.Equal(got[2:], []string{"m4C", "m5D"}) {
			t.Errorf("after recovery received %q", got)
		}
		if n := fails.Load(); n != 4 {
			t.Errorf("%d attempts, want 4 (two 500s, one 429, one success)", n)
		}
		waitFor(t, "the cursor to pass the page", func() bool { return f.cursor(t).Log >= 5 })
		p, err := st.Lookup(context.Background(), f.ws, store.Identifier{Type: "user_id", Value: "u1"})
		if err != nil {
			t.Fatal(err)
		}
		ledger, err := st.Ledger(context.Background(), f.ws, p)
		if err != nil {
			t.Fatal(err)
		}
		// The first two were delivered before u1 was folded into a
		// profile, so the ledger counts the last two.
		var n int64
		for _, e := range ledger {
			n += e.Deliveries
		}
		if n != 2 || len(ledger) != 1 || ledger[0].Destination != "hook" {
			t.Errorf("ledger %+v: want u1's deliveries counted", ledger)
		}
		if len(f.dead(t)) != 0 {
			t.Errorf("dead letters: %+v", f.dead(t))
		}
	})
}

// TestRejectedGoesToDeadLettersAndReplays: a receiver that refuses one
// event's content (400) gets the rest; the refused one is a dead letter
// with the error, and is delivered when an admin replays it after the
// receiver is fixed.
func TestRejectedGoesToDeadLettersAndReplays(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		f := setup(t, st, webhookDef, false)
		f.rcv.script(func(body []byte) (int, http.Header) {
			if strings.Contains(string(body), `"Bad"`) {
				return 400, nil
			}
			return 200, nil
		})
		f.send(t, track("m1", "A", ""), track("m2", "Bad", ""), track("m3", "C", ""))
		waitFor(t, "a dead letter", func() bool { return len(f.dead(t)) == 1 })
		if got := f.rcv.received(); !sameSet(got, []string{"m1A", "m3C"}) {
			t.Errorf("received %q, want m1 and m3", got)
		}
		d := f.dead(t)[0]
		if d.Kind != destination.KindEvent || !strings.Contains(d.Error, "400") || !strings.Contains(string(d.Payload), "m2") {
			t.Errorf("dead letter %+v", d)
		}
		f.rcv.script(nil)
		if n, err := st.MarkReplay(context.Background(), f.ws, "hook", nil); err != nil || n != 1 {
			t.Fatalf("mark replay: %d %v", n, err)
		}
		waitFor(t, "the replayed letter", func() bool { return slices.Contains(f.rcv.received(), "m2Bad") })
		waitFor(t, "the dead letter to go", func() bool { return len(f.dead(t)) == 0 })
	})
}

// TestGoneDisablesDestination: 410 disables the destination with the
// reason; nothing more is sent until it is resumed.
func TestGoneDisablesDestination(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		f := setup(t, st, webhookDef, false)
		f.rcv.script(func([]byte) (int, http.Header) { return 410, nil })
		f.send(t, track("m1", "A", ""))
		waitFor(t, "the destination to be disabled", func() bool { return f.cursor(t).Status == store.DestinationDisabled })
		if c := f.cursor(t); !strings.Contains(c.Reason, "410") {
			t.Errorf("reason %q", c.Reason)
		}
		calls := f.rcv.calls.Load()
		time.Sleep(300 * time.Millisecond)
		if f.rcv.calls.Load() != calls {
			t.Error("a disabled destination was sent to")
		}
		f.rcv.script(nil)
		if err := st.SetDeliveryStatus(context.Background(), f.ws, "hook", store.DestinationActive, ""); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery after resume", func() bool { return slices.Contains(f.rcv.received(), "m1A") })
	})
}

// TestRetryTimeRunsOut: a delivery still failing when its retry time has
// passed goes to the dead letters and the destination moves on.
func TestRetryTimeRunsOut(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		def := strings.Replace(webhookDef, `"strictly_necessary":true`, `"strictly_necessary":true,"retry_for":"1m"`, 1)
		f := setup(t, st, def, false)
		f.rcv.script(func([]byte) (int, http.Header) { return 503, nil })
		f.send(t, track("m1", "A", ""))
		waitFor(t, "a failed attempt", func() bool { return f.rcv.calls.Load() >= 1 })
		f.now.Store(time.Now().Add(2 * time.Minute).UnixNano())
		waitFor(t, "a dead letter", func() bool { return len(f.dead(t)) == 1 })
		if d := f.dead(t)[0]; !strings.Contains(d.Error, "503") || d.Attempts < 2 {
			t.Errorf("dead letter %+v", d)
		}
		f.rcv.script(nil)
		f.send(t, track("m2", "B", ""))
		waitFor(t, "the next event", func() bool { return slices.Contains(f.rcv.received(), "m2B") })
	})
}

// TestConsentGate: a destination that needs "advertising" receives only
// events whose consent grants it; an event without consent is denied
// unless the workspace opted into delivering those; a profile's later
// withdrawal stops an event waiting in retries.
func TestConsentGate(t *testing.T) {
	t.Parallel()
	grant := `,"context":{"consent":{"categoryPreferences":{"Advertising":true}}}`
	deny := `,"context":{"consent":{"categoryPreferences":{"Advertising":false,"Analytics":true}}}`
	def := strings.Replace(webhookDef, `"strictly_necessary":true`, `"purposes":["advertising"]`, 1)
	eachBackend(t, func(t *testing.T, st store.Store) {
		f := setup(t, st, def, false)
		f.send(t, track("m1", "A", grant), track("m2", "B", deny), track("m3", "C", ""), track("m4", "D", grant))
		waitFor(t, "the cursor to pass the page", func() bool { return f.cursor(t).Log >= 4 })
		if got := f.rcv.received(); !slices.Equal(got, []string{"m1A", "m4D"}) {
			t.Errorf("received %q: want only the events granting advertising", got)
		}
		// The receiver is down while the profile withdraws consent: the
		// waiting event is not delivered when it comes back.
		f.fold(t)
		f.rcv.script(func([]byte) (int, http.Header) { return 503, nil })
		f.send(t, track("m5", "E", grant))
		waitFor(t, "a failed attempt", func() bool { return f.rcv.calls.Load() >= 3 })
		// The withdrawal happens later than m5 (consent of the latest
		// event by timestamp), and is folded into the profile.
		f.send(t, fmt.Sprintf(`{"type":"track","userId":"u1","messageId":"w","event":"Consent Updated","timestamp":%q%s}`,
			time.Now().Add(time.Minute).UTC().Format(time.RFC3339), deny))
		f.fold(t)
		f.rcv.script(nil)
		waitFor(t, "the cursor to pass m5", func() bool { return f.cursor(t).Log >= 5 })
		time.Sleep(200 * time.Millisecond)
		if got := f.rcv.received(); slices.Contains(got, "m5E") {
			t.Errorf("received %q: m5 was delivered after the profile withdrew consent", got)
		}
	})
	t.Run("missing consent allowed by the workspace", func(t *testing.T) {
		t.Parallel()
		f := setup(t, openStore(t, "sqlite"), def, true)
		f.send(t, track("m1", "A", deny), track("m2", "B", ""))
		waitFor(t, "one delivery", func() bool { return len(f.rcv.received()) == 1 })
		if got := f.rcv.received(); got[0] != "m2B" {
			t.Errorf("received %q: want only the event without consent", got)
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestOutboxFeed: a destination subscribed to a computed trait and an
// audience receives the trait's changes as identify calls and the
// audience's entries as "Audience Entered", with consent checked against
// the profile's.
func TestOutboxFeed(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		defineBuyers(t, st)
		def := strings.Replace(webhookDef, `"events":{"types":["track"]},"strictly_necessary":true`,
			`"traits":["orders"],"audiences":["buyers"],"purposes":["advertising"]`, 1)
		f := setup(t, st, def, false)
		grant := `,"context":{"consent":{"categoryPreferences":{"Advertising":true}}}`
		f.send(t, track("m1", "Order Completed", grant), `{"type":"track","userId":"u2","event":"Order Completed"}`)
		f.fold(t)
		waitFor(t, "the trait change and the entry", func() bool { return len(f.rcv.received()) == 2 })
		got := f.rcv.received()
		if got[0] != "identify orders=1" || !strings.HasSuffix(got[1], "Audience Entered") {
			t.Errorf("received %q: want u1's trait change then its entry (u2 gave no consent)", got)
		}
	})
}

// TestSuppressAll: members of a workspace-wide suppression list receive
// nothing from any destination, even a strictly necessary one.
func TestSuppressAll(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		if _, err := st.PutDefinition(context.Background(), store.Definition{
			Workspace: "acme", Kind: store.DefinitionAudience, Name: "complained", Origin: "api",
			Body: json.RawMessage(`{"name":"complained","condition":"events.performed(\"Complaint Filed\", 7)","suppression":true,"suppress_all":true}`),
		}); err != nil {
			t.Fatal(err)
		}
		f := setup(t, st, webhookDef, false)
		f.send(t, track("c1", "Complaint Filed", ""), `{"type":"track","userId":"u2","messageId":"c2","event":"Viewed"}`)
		f.fold(t)
		f.send(t, track("m1", "Viewed", ""), `{"type":"track","userId":"u2","messageId":"m2","event":"Viewed"}`)
		waitFor(t, "the cursor to pass the page", func() bool { return f.cursor(t).Log >= 4 })
		got := f.rcv.received()
		if slices.Contains(got, "m1Viewed") || !slices.Contains(got, "m2Viewed") {
			t.Errorf("received %q: want u2's events and none of u1's after the complaint", got)
		}
	})
}

// TestIDSync: a destination with id_sync gets the profile's identifiers of
// that type in context.externalIds — the last one only with mode "last".
func TestIDSync(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		def := strings.Replace(webhookDef, `"strictly_necessary":true`, `"strictly_necessary":true,"id_sync":{"type":"email","mode":"last"}`, 1)
		f := setup(t, st, def, false)
		var bodies []string
		var mu sync.Mutex
		f.rcv.script(func(body []byte) (int, http.Header) {
			mu.Lock()
			bodies = append(bodies, string(body))
			mu.Unlock()
			return 200, nil
		})
		f.send(t, `{"type":"identify","userId":"u1","traits":{"email":"old@example.com"}}`)
		f.send(t, `{"type":"identify","userId":"u1","traits":{"email":"new@example.com"}}`)
		f.fold(t)
		f.send(t, track("m1", "A", `,"originalTimestamp":"2026-01-01T00:00:00Z","sentAt":"2026-01-01T00:00:01Z"`))
		waitFor(t, "the delivery", func() bool { return len(f.rcv.received()) == 1 })
		mu.Lock()
		defer mu.Unlock()
		last := bodies[len(bodies)-1]
		if !strings.Contains(last, `"externalIds":[{"collection":"users","encoding":"none","id":"new@example.com","type":"email"}]`) {
			t.Errorf("body %s: want the last email in context.externalIds", last)
		}
		// A log event goes out with its messageId, corrected timestamp and
		// receivedAt, without what the timestamp was corrected from.
		for _, want := range []string{`"messageId":"m1"`, `"receivedAt":"`, `"timestamp":"`} {
			if !strings.Contains(last, want) {
				t.Errorf("body %s: want %s", last, want)
			}
		}
		if strings.Contains(last, "originalTimestamp") || strings.Contains(last, "sentAt") {
			t.Errorf("body %s: originalTimestamp and sentAt should be left out", last)
		}
	})
}

// TestGlobalPrivacyControl: an event sent with Sec-GPC: 1 is not delivered
// to a destination that needs advertising, whatever its preferences say;
// and once a profile has sent GPC, its later events are not either.
func TestGlobalPrivacyControl(t *testing.T) {
	t.Parallel()
	grant := `,"context":{"consent":{"categoryPreferences":{"Advertising":true}}}`
	def := strings.Replace(webhookDef, `"strictly_necessary":true`, `"purposes":["advertising"]`, 1)
	eachBackend(t, func(t *testing.T, st store.Store) {
		f := setup(t, st, def, false)
		f.sendSignals(t, store.Signals{GPC: true}, track("m1", "A", grant))
		f.send(t, `{"type":"track","userId":"u2","messageId":"m2","event":"B"`+grant+`}`)
		f.fold(t) // u1's profile now carries GPC
		f.send(t, track("m3", "C", grant))
		waitFor(t, "the cursor to pass m3", func() bool { return f.cursor(t).Log >= 3 })
		if got := f.rcv.received(); !slices.Equal(got, []string{"m2B"}) {
			t.Errorf("received %q: want only u2's event (u1 sent GPC)", got)
		}
	})
}
