package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rudder "github.com/rudderlabs/analytics-go"
)

// TestRudderStackGoClient drives Kith with RudderStack's official Go SDK,
// unmodified: it posts batches to /v1/batch with its own headers
// (RS-targetNode, RS-nodeCount), a batch-level messageId, sentAt and
// context, and fills anonymousId with the userId when none is given.
func TestRudderStackGoClient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	client, err := rudder.NewWithConfig(webKey, b.srv.URL, rudder.Config{BatchSize: 3, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	calls := []rudder.Message{
		rudder.Identify{UserId: "r-1", AnonymousId: "anon-r", Traits: rudder.NewTraits().SetEmail("grace@example.com").SetName("Grace")},
		rudder.Track{UserId: "r-1", Event: "Order Completed", Properties: rudder.NewProperties().SetRevenue(12.5).SetCurrency("EUR")},
		rudder.Page{UserId: "r-1", Name: "Pricing"},
		rudder.Screen{UserId: "r-1", Name: "Home"},
		rudder.Group{UserId: "r-1", GroupId: "navy", Traits: rudder.NewTraits().SetName("US Navy")},
		rudder.Alias{PreviousId: "anon-r", UserId: "r-1"},
	}
	for _, c := range calls {
		if err := client.Enqueue(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	evs := b.events(t, "acme")
	if len(evs) != len(calls) {
		t.Fatalf("log holds %d events, want %d: %v", len(evs), len(calls), evs)
	}
	want := map[string]string{"identify": "", "track": "Order Completed", "page": "Pricing", "screen": "Home", "group": "", "alias": ""}
	seen := map[string]bool{}
	for i, e := range evs {
		typ, _ := e["type"].(string)
		name, _ := e["event"].(string)
		if wantName, ok := want[typ]; !ok || name != wantName || seen[typ] {
			t.Errorf("event %d: unexpected type %q name %q", i, typ, name)
		}
		seen[typ] = true
		if e["userId"] != "r-1" || e["source"] != "web" {
			t.Errorf("event %d: %v", i, e)
		}
		raw := e["raw"].(map[string]any)
		lib, _ := raw["context"].(map[string]any)["library"].(map[string]any)
		if lib["name"] != "analytics-go" {
			t.Errorf("event %d: context.library = %v, want the batch context merged in", i, lib)
		}
	}

	// The profile gets everything, as with Segment's client.
	b.fold(t, "acme")
	code, m := b.profileGet(t, users+"email:grace@example.com/metadata", readToken)
	if code != 200 || m["metadata"].(map[string]any)["events"] != float64(len(calls)) {
		t.Fatalf("profile: %d %v", code, m)
	}
}

// TestRudderStackGoClientWrongKey: on a 401 the SDK retries a bounded
// number of times, then reports the failure and drops the batch — it
// neither loops forever nor stops sending other batches.
func TestRudderStackGoClientWrongKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var requests atomic.Int64
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		b.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer counting.Close()
	var failed atomic.Int64
	client, err := rudder.NewWithConfig("wk_wrong_1234567890", counting.URL, rudder.Config{
		BatchSize: 1, Interval: 10 * time.Millisecond,
		RetryAfter: func(int) time.Duration { return time.Millisecond },
		Callback:   callback{failed: &failed},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Enqueue(rudder.Track{UserId: "x", Event: "E"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); failed.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	// The SDK may report the dropped message twice (once when its retries
	// run out, once more when Close finds it still queued): what matters is
	// that it gave up after its 10 attempts and said so.
	if failed.Load() < 1 || requests.Load() != 10 {
		t.Fatalf("failures reported %d, requests %d; want a failure after the SDK's 10 attempts", failed.Load(), requests.Load())
	}
	if got := len(b.events(t, "acme")); got != 0 {
		t.Fatalf("%d events stored with a wrong key", got)
	}
}

type callback struct{ failed *atomic.Int64 }

func (c callback) Success(rudder.Message)        {}
func (c callback) Failure(rudder.Message, error) { c.failed.Add(1) }

// TestBeacon: RudderStack's browser SDK in beacon mode posts text/plain
// batches to /beacon/v1/batch with the write key in the query string.
func TestBeacon(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"batch":[{"type":"track","anonymousId":"a1","event":"Beaconed","channel":"web"}],"sentAt":"2026-11-24T10:00:00.000Z"}`
	for _, tt := range []struct {
		query   string
		code    int
		errCode string
	}{
		{"?writeKey=" + webKey, 200, ""},
		{"?writeKey=wk_wrong_1234567890", 401, "invalid_write_key"},
		{"", 401, "missing_write_key"},
	} {
		req, _ := http.NewRequest("POST", b.srv.URL+"/beacon/v1/batch"+tt.query, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		code, m, _ := do(t, req)
		if code != tt.code || errCode(m) != tt.errCode {
			t.Errorf("beacon%s: %d %v, want %d %s", tt.query, code, m, tt.code, tt.errCode)
		}
	}
	if evs := b.events(t, "acme"); len(evs) != 1 || evs[0]["event"] != "Beaconed" {
		t.Fatalf("log: %v", evs)
	}
}
