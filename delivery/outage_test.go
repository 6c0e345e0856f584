package delivery_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/store"
)

// TestOutage: the receiver is down — connections refused, then 503 on
// every request — while events keep arriving, then recovers. Two webhook
// destinations read the same log, one event per request (the webhook-id is
// the delivery's idempotency key) and batches of 50. After the recovery
// every event reaches each destination, in log order, none lost; an event
// received twice (none is expected here: only failed requests are retried)
// must carry the same idempotency key and the same bytes.
//
// KITH_OUTAGE_MINUTES=10 runs the long outage instead (SQLite only, half
// refused connections, half 503s, with events arriving all the while) and
// logs how long after the recovery the first and the last event arrived.
func TestOutage(t *testing.T) {
	if v := os.Getenv("KITH_OUTAGE_MINUTES"); v != "" {
		minutes, err := strconv.ParseFloat(v, 64)
		if err != nil || minutes <= 0 {
			t.Fatalf("KITH_OUTAGE_MINUTES=%q: want a number of minutes", v)
		}
		d := time.Duration(minutes * float64(time.Minute))
		runOutage(t, openStore(t, "sqlite"), d/2, d/2, 20*time.Second)
		return
	}
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		runOutage(t, st, 2*time.Second, 2*time.Second, 200*time.Millisecond)
	})
}

// outageReceiver is a webhook endpoint on a fixed address that can be
// taken down (nothing listens: connections are refused), answer 503, or
// accept. It checks every signature and records, per destination (the
// URL's path), each event accepted: how often, with which webhook-id and
// which bytes.
type outageReceiver struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	srv      *http.Server
	failing  bool                            // answer 503
	failures map[string]int                  // path → 503s answered
	order    map[string][]string             // path → messageIds in order of first acceptance
	got      map[string]map[string]*accepted // path → messageId → what was accepted
	firstAt  time.Time                       // first acceptance after the outage
}

type accepted struct {
	times int
	ids   map[string]bool // webhook-ids it came with
	sum   [32]byte        // hash of the event's bytes
}

func newOutageReceiver(t *testing.T) *outageReceiver {
	r := &outageReceiver{t: t, failures: map[string]int{}, order: map[string][]string{}, got: map[string]map[string]*accepted{}}
	r.listen(false)
	t.Cleanup(func() { r.down() })
	return r
}

// listen serves on the receiver's address (a new one the first time).
func (r *outageReceiver) listen(failing bool) {
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 100 { // the port may linger a moment after the close
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen on %s again: %v", addr, err)
	}
	r.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(r.serve)}
	r.mu.Lock()
	r.srv, r.failing = srv, failing
	r.mu.Unlock()
	go srv.Serve(ln)
}

// down closes the listener and every connection: connections are refused.
func (r *outageReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *outageReceiver) recover() {
	r.mu.Lock()
	r.failing, r.firstAt = false, time.Time{}
	r.mu.Unlock()
}

func (r *outageReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, ok := verified(r.t, w, req)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		r.failures[req.URL.Path]++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var events []json.RawMessage
	if strings.HasPrefix(string(body), `{"batch":`) {
		var b struct{ Batch []json.RawMessage }
		if err := json.Unmarshal(body, &b); err != nil {
			r.t.Errorf("batch body: %v", err)
		}
		events = b.Batch
	} else {
		events = []json.RawMessage{body}
	}
	if r.firstAt.IsZero() {
		r.firstAt = time.Now()
	}
	dest := req.URL.Path
	if r.got[dest] == nil {
		r.got[dest] = map[string]*accepted{}
	}
	for _, raw := range events {
		var ev struct {
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil || ev.MessageID == "" {
			r.t.Errorf("event without a messageId: %s", raw)
			continue
		}
		a := r.got[dest][ev.MessageID]
		if a == nil {
			a = &accepted{ids: map[string]bool{}, sum: sha256.Sum256(raw)}
			r.got[dest][ev.MessageID] = a
			r.order[dest] = append(r.order[dest], ev.MessageID)
		} else if a.sum != sha256.Sum256(raw) {
			r.t.Errorf("%s: messageId %s received again with other bytes", dest, ev.MessageID)
		}
		a.times++
		a.ids[req.Header.Get("webhook-id")] = true
	}
}

func (r *outageReceiver) count(dest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order[dest])
}

// runOutage delivers through an outage of refused connections, then one of
// 503s, appending an event every `every` meanwhile, and checks what the
// receiver got after it recovered.
func runOutage(t *testing.T, st store.Store, refused, unavailable, every time.Duration) {
	ctx := context.Background()
	const ws = "acme"
	rcv := newOutageReceiver(t)
	dests := map[string]int{"single": 1, "batched": 50} // name → webhook batch
	for name, batch := range dests {
		def := fmt.Sprintf(`{"name":%q,"type":"webhook","events":{},"strictly_necessary":true,
			"config":{"url":"http://%s/%s","allow_http":true,"secrets":[%q],"batch":%d,"timeout":"2s"}}`,
			name, rcv.addr, name, secret, batch)
		defineWebhook(t, st, ws, name, def, true) // both start at the log's beginning
	}
	eng := webhookEngine(t, st, 5*time.Second, delivery.Options{
		Owner: "test", LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond,
		DefinitionsPoll: 50 * time.Millisecond, Page: 100,
	})
	defer run(eng, ws)()

	var sent []string
	appendEvents := func(n int) {
		t.Helper()
		calls := make([]string, n)
		for i := range calls {
			id := fmt.Sprintf("m%05d", len(sent))
			sent = append(sent, id)
			calls[i] = fmt.Sprintf(`{"type":"track","userId":"u%d","messageId":%q,"event":"Outage Survived","properties":{"n":%d}}`, len(sent)%7, id, len(sent))
		}
		out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: []byte(`{"batch":[` + strings.Join(calls, ",") + `]}`), ReceivedAt: time.Now()}, ingest.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for i := range out.Events {
			out.Events[i].Workspace, out.Events[i].Source = ws, "web"
		}
		if _, err := st.Append(ctx, &store.Batch{Events: out.Events}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Before the outage: delivered at once.
	appendEvents(100)
	waitUntil(t, 30*time.Second, "the first 100 events", func() bool { return rcv.count("/single") == 100 && rcv.count("/batched") == 100 })

	// Down: nothing listens. Events keep coming.
	rcv.down()
	outage := time.Now()
	for time.Since(outage) < refused {
		appendEvents(10)
		time.Sleep(every)
	}
	for name := range dests {
		if e := eng.LastError(ws, name); !strings.Contains(e, "refused") {
			t.Errorf("%s: last error %q, want a refused connection", name, e)
		}
	}
	// Up again but answering 503, for at least `unavailable` and until
	// each destination has been answered 503 (its retries are backing off).
	rcv.listen(true)
	failed := func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.failures["/single"] > 0 && rcv.failures["/batched"] > 0
	}
	for time.Since(outage) < refused+unavailable || !failed() {
		if time.Since(outage) > refused+unavailable+10*time.Minute {
			t.Fatal("no destination retried within 10 minutes")
		}
		appendEvents(10)
		time.Sleep(every)
	}
	for name := range dests {
		if e := eng.LastError(ws, name); !strings.Contains(e, "503") {
			t.Errorf("%s: last error %q, want the 503", name, e)
		}
	}
	appendEvents(100)
	// Recovered.
	rcv.recover()
	recovered := time.Now()
	waitUntil(t, 10*time.Minute, "every event after the recovery", func() bool {
		return rcv.count("/single") == len(sent) && rcv.count("/batched") == len(sent)
	})
	all := time.Since(recovered)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	first := rcv.firstAt.Sub(recovered)
	dups := 0
	for name := range dests {
		path := "/" + name
		if got := rcv.order[path]; !slices.Equal(got, sent) {
			t.Errorf("%s: received %d events, not the %d sent in log order", name, len(got), len(sent))
		}
		for id, a := range rcv.got[path] {
			if a.times > 1 {
				dups += a.times - 1
				if name == "single" && len(a.ids) != 1 {
					t.Errorf("%s: messageId %s received %d times with %d different webhook-ids", name, id, a.times, len(a.ids))
				}
			}
		}
	}
	t.Logf("outage of %v refused then %v of 503 (answered %v) with %d events sent in all: after the recovery the first event arrived in %v, all of them in %v, duplicates %d",
		refused, (recovered.Sub(outage) - refused).Round(time.Millisecond), rcv.failures, len(sent), first.Round(time.Millisecond), all.Round(time.Millisecond), dups)
	cs, err := st.Deliveries(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Status != store.DestinationActive {
			t.Errorf("%s: status %s (%s) after the outage", c.Destination, c.Status, c.Reason)
		}
	}
	for name := range dests {
		if d, err := st.DeadLetters(ctx, ws, name, 0, 10); err != nil || len(d) > 0 {
			t.Errorf("%s: dead letters %+v %v", name, d, err)
		}
	}
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
