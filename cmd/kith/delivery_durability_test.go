package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/destination/webhook"
	"github.com/kithcdp/kith/store"
)

const (
	outboundWorkspace = "outbound"
	outboundKey       = "wk_delivery_durability_01234"
	outboundConfig    = `workspaces:
  - slug: outbound
    sources:
      - slug: web
        write_key: wk_delivery_durability_01234
`
	outboundSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	// outboundPage is kith serve's delivery page (the engine's default):
	// what a destination sends before it records its progress, so at most
	// what a SIGKILL makes it send again.
	outboundPage = 500
)

// TestSIGKILLDuringDelivery runs kith serve with two webhook destinations
// (one event per request, whose webhook-id is the delivery's idempotency
// key, and batches of 100) to a receiver in this test, sends events while
// they are delivered, and kills kith with SIGKILL in the middle of the
// delivery, three times, restarting it each time. After the last restart
// it proves: every acknowledged event reached each destination; an event
// received more than once came with the same bytes and (one per request)
// the same webhook-id, so a receiver drops it by its key; and at most one
// page per destination and kill was sent again.
func TestSIGKILLDuringDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts and kills kith processes under load")
	}
	t.Parallel()
	eachStore(t, func(t *testing.T, storeURL string) {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, outboundConfig)
		data := filepath.Join(dir, "data")
		rcv := newDeliveryReceiver(t)
		putDestinations(t, storeURL, data, rcv.srv.URL)
		// A short lease, so that a restarted kith takes the
		// destinations over soon after the killed one.
		args := []string{"--data", data, "--config", cfg, "--store", storeURL, "--egress-allow", "127.0.0.1/32", "--lease-ttl", "2s"}
		runDeliveryDurability(t, args, rcv)
	})
}

// putDestinations stores the two destinations through the store, before
// kith starts, with their cursors at the log's beginning (a new
// destination would otherwise start at the log's end when kith first
// takes it up, and miss the events sent before that).
func putDestinations(t *testing.T, storeURL, data, url string) {
	t.Helper()
	ctx := context.Background()
	st, err := openStore(ctx, storeURL, data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, batch := range map[string]int{"single": 1, "batched": 100} {
		def := fmt.Sprintf(`{"name":%q,"type":"webhook","events":{},"strictly_necessary":true,
			"config":{"url":"%s/%s","allow_http":true,"secrets":[%q],"batch":%d,"timeout":"5s"}}`,
			name, url, name, outboundSecret, batch)
		if _, err := st.PutDefinition(ctx, store.Definition{Workspace: outboundWorkspace, Kind: store.DefinitionDestination,
			Name: name, Body: json.RawMessage(def), Origin: "api"}); err != nil {
			t.Fatal(err)
		}
		c, err := st.AcquireDelivery(ctx, outboundWorkspace, name, "test-setup", time.Minute, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.ReleaseDelivery(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

// deliveryReceiver is the destinations' webhook endpoint: it checks every
// signature, answers 200 and records each event it got, per destination
// (the URL's path).
type deliveryReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu   sync.Mutex
	got  map[string]map[string]*receipt // path → messageId → receipt
	reqs atomic.Int64
}

type receipt struct {
	times int
	ids   map[string]bool // webhook-ids it came with
	sum   [32]byte        // hash of the event's bytes
}

func newDeliveryReceiver(t *testing.T) *deliveryReceiver {
	r := &deliveryReceiver{t: t, got: map[string]map[string]*receipt{"/single": {}, "/batched": {}}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.reqs.Add(1)
		body, err := io.ReadAll(req.Body)
		if err != nil {
			// The sender was killed mid-request: a cut-off body is no
			// delivery (it will be sent again), not a bad signature.
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify(outboundSecret, req.Header, body, 0, time.Now()); err != nil {
			t.Errorf("bad signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		events := []json.RawMessage{body}
		if strings.HasPrefix(string(body), `{"batch":`) {
			var b struct{ Batch []json.RawMessage }
			if err := json.Unmarshal(body, &b); err != nil {
				t.Errorf("batch: %v", err)
			}
			events = b.Batch
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		dest := r.got[req.URL.Path]
		if dest == nil {
			t.Errorf("a request to %s", req.URL.Path)
			return
		}
		for _, raw := range events {
			var ev struct {
				MessageID string `json:"messageId"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil || ev.MessageID == "" {
				t.Errorf("%s: an event without a messageId: %.200s", req.URL.Path, raw)
				continue
			}
			rc := dest[ev.MessageID]
			if rc == nil {
				rc = &receipt{ids: map[string]bool{}, sum: sha256.Sum256(raw)}
				dest[ev.MessageID] = rc
			}
			if rc.sum != sha256.Sum256(raw) {
				t.Errorf("%s: messageId %s received again with other bytes", req.URL.Path, ev.MessageID)
			}
			rc.times++
			rc.ids[req.Header.Get("webhook-id")] = true
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// received returns how many distinct events each destination got.
func (r *deliveryReceiver) received() (single, batched int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got["/single"]), len(r.got["/batched"])
}

func runDeliveryDurability(t *testing.T, args []string, rcv *deliveryReceiver) {
	const (
		kills    = 3
		clients  = 2
		batch    = 50
		perRound = 1500 // events sent per round at most
	)
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var (
		mu      sync.Mutex
		seq     int
		acked   = map[string]bool{} // acknowledged messageIds
		sent    = map[string]bool{} // every messageId sent
		pending [][]byte            // bodies of unanswered requests, sent again after the restart
	)
	newBody := func() []byte {
		mu.Lock()
		defer mu.Unlock()
		events := make([]string, batch)
		for i := range events {
			seq++
			id := fmt.Sprintf("kill-%06d", seq)
			sent[id] = true
			events[i] = fmt.Sprintf(`{"type":"track","userId":"u%d","messageId":%q,"event":"Delivered Despite SIGKILL","properties":{"seq":%d}}`, seq%50, id, seq)
		}
		return []byte(`{"batch":[` + strings.Join(events, ",") + `]}`)
	}
	ack := func(body []byte) {
		var b struct {
			Batch []struct{ MessageID string }
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b.Batch {
			acked[e.MessageID] = true
		}
	}
	post := func(p *kithProcess, body []byte) error {
		status, resp, err := p.post(client, "/v1/batch", outboundKey, body)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("/v1/batch answered %d: %s", status, resp)
		}
		ack(body)
		return nil
	}

	// restart starts kith and first sends again what was not answered
	// before it was killed.
	restart := func() *kithProcess {
		p := startKith(t, args...)
		mu.Lock()
		resend := pending
		pending = nil
		mu.Unlock()
		for _, body := range resend {
			if err := post(p, body); err != nil {
				t.Fatalf("resend after restart: %v", err)
			}
		}
		return p
	}

	for round := 1; round <= kills; round++ {
		p := restart()
		single0, batched0 := rcv.received()
		var killed atomic.Bool
		var wg sync.WaitGroup
		var quota atomic.Int64
		for range clients {
			wg.Go(func() {
				for !killed.Load() {
					if quota.Add(batch) > perRound {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					body := newBody()
					if err := post(p, body); err != nil {
						if !killed.Load() {
							t.Errorf("/v1/batch failed before the kill: %v", err)
						}
						mu.Lock()
						pending = append(pending, body)
						mu.Unlock()
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
		// Kill once events flow to both destinations in this round, while
		// the load goes on.
		start := time.Now()
		for time.Since(start) < 20*time.Second {
			s, b := rcv.received()
			if time.Since(start) > time.Second && s > single0+200 && b > batched0+200 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		killed.Store(true)
		p.kill()
		wg.Wait()
		client.CloseIdleConnections()
		s, b := rcv.received()
		mu.Lock()
		t.Logf("round %d: SIGKILL after %v: %d events acknowledged so far; received single %d (+%d this round), batched %d (+%d); %d requests unanswered",
			round, time.Since(start).Round(time.Millisecond), len(acked), s, s-single0, b, b-batched0, len(pending))
		if s >= len(acked) && b >= len(acked) {
			t.Logf("round %d: the kill came after delivery had caught up", round)
		}
		mu.Unlock()
		if t.Failed() {
			t.FailNow()
		}
	}

	// Restart, send what was never answered, and wait for every event.
	p := restart()
	if len(acked) != len(sent) {
		t.Fatalf("%d of %d events acknowledged after the resends", len(acked), len(sent))
	}
	restarted := time.Now()
	deadline := restarted.Add(3 * time.Minute)
	for {
		s, b := rcv.received()
		if s >= len(acked) && b >= len(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after 3 minutes, single has %d and batched %d of %d events", s, b, len(acked))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	caughtUp := time.Since(restarted)
	p.stop()

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, path := range []string{"/single", "/batched"} {
		got := rcv.got[path]
		var missing []string
		for id := range acked {
			if got[id] == nil {
				missing = append(missing, id)
			}
		}
		dups, dupEvents := 0, 0
		for id, rc := range got {
			if !sent[id] {
				t.Errorf("%s: received messageId %s that was never sent", path, id)
			}
			if rc.times > 1 {
				dups += rc.times - 1
				dupEvents++
				if path == "/single" && len(rc.ids) != 1 {
					t.Errorf("%s: messageId %s received %d times under %d webhook-ids: a retry must carry the same idempotency key", path, id, rc.times, len(rc.ids))
				}
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: %d acknowledged events never delivered, e.g. %q", path, len(missing), missing[:min(5, len(missing))])
		}
		// A kill loses at most the progress of the page in flight.
		if dups > kills*outboundPage {
			t.Errorf("%s: %d events sent again after %d kills; at most a page (%d) per kill expected", path, dups, kills, outboundPage)
		}
		t.Logf("%s: %d acknowledged events all delivered (last one %v after the final restart); %d events received twice or more (%d extra copies), each with the same bytes%s",
			path, len(acked), caughtUp.Round(time.Millisecond), dupEvents, dups, map[bool]string{true: " and webhook-id", false: " and messageId"}[path == "/single"])
	}
	t.Logf("receiver handled %d requests", rcv.reqs.Load())
}
