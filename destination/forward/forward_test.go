package forward_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/destination/forward"
	"github.com/kithcdp/kith/egress"
	"github.com/kithcdp/kith/httpapi"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

const kithConfig = `
workspaces:
  - slug: acme
    sources:
      - slug: upstream
        write_key: wk_upstream_1234567890
    tokens:
      - name: debugger
        token: tok_debug_1234567890
        scopes: [debug]
`

const (
	writeKey   = "wk_upstream_1234567890"
	debugToken = "tok_debug_1234567890"
)

// kith starts a real Kith Tracking API (SQLite store, group committer,
// the HTTP API) in-process, as httpapi's tests do.
func kith(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(kithConfig))
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := tenant.Load(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gc := store.NewGroupCommitter(st, store.GroupCommitOptions{})
	api := httpapi.New(httpapi.Options{Store: st, Registry: reg, Committer: gc, Limits: ingest.DefaultLimits()})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		srv.Close()
		gc.Close()
		st.Close()
	})
	return srv
}

type loggedEvent struct {
	MessageID string          `json:"messageId"`
	Source    string          `json:"source"`
	Type      string          `json:"type"`
	Name      string          `json:"event"`
	UserID    string          `json:"userId"`
	Timestamp time.Time       `json:"timestamp"`
	Raw       json.RawMessage `json:"raw"`
}

// logged reads a workspace's whole log through Kith's log API.
func logged(t *testing.T, srv *httptest.Server) []loggedEvent {
	t.Helper()
	var all []loggedEvent
	next := ""
	for {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/workspaces/acme/events?limit=1000&next="+next, nil)
		req.Header.Set("Authorization", "Bearer "+debugToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Data []loggedEvent `json:"data"`
			Next string        `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("log API: %d %v", resp.StatusCode, err)
		}
		all = append(all, page.Data...)
		if page.Next == "" {
			return all
		}
		next = page.Next
	}
}

var testClient = egress.New(egress.Options{AllowLoopback: true})

func newSender(t *testing.T, cfg string) destination.Sender {
	t.Helper()
	s, err := forward.New(json.RawMessage(cfg), testClient)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// events makes n deliveries whose payloads carry the time they happened,
// an hour ago; every tenth has no messageId (the delivery key stands in)
// and every seventh still carries the sentAt of the client that sent it
// long ago.
func events(n int, at time.Time) []destination.Delivery {
	ds := make([]destination.Delivery, n)
	for i := range ds {
		ts := at.Add(time.Duration(i) * time.Millisecond).UTC().Format(time.RFC3339Nano)
		var p string
		switch {
		case i%10 == 3:
			p = fmt.Sprintf(`{"type":"track","event":"Order Completed","userId":"u-%d","timestamp":%q,"properties":{"revenue":%d}}`, i%50, ts, i)
		case i%7 == 0:
			p = fmt.Sprintf(`{"type":"identify","messageId":"m-%d","userId":"u-%d","timestamp":%q,"sentAt":"2020-01-01T00:00:00Z","traits":{"plan":"pro"}}`, i, i%50, ts)
		default:
			p = fmt.Sprintf(`{"type":"track","event":"Page Scrolled","messageId":"m-%d","userId":"u-%d","timestamp":%q,"properties":{"depth":%d}}`, i, i%50, ts, i)
		}
		ds[i] = destination.Delivery{Key: fmt.Sprintf("fwd-%d-event", i), Kind: destination.KindEvent, Position: int64(i + 1), Payload: json.RawMessage(p)}
	}
	return ds
}

// TestForwardIntoKith forwards 3,000 events into a real Kith (more than
// one request's 2,500) and reads them back from its log API: all there,
// once each even after a retry, with their messageIds and the times they
// happened.
func TestForwardIntoKith(t *testing.T) {
	t.Parallel()
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			t.Parallel()
			srv := kith(t)
			s := newSender(t, fmt.Sprintf(`{"url": %q, "write_key": %q, "batch": 2500, "gzip": %v, "allow_http": true}`, srv.URL, writeKey, gz))
			at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			ds := events(3000, at)
			ctx := context.Background()
			if err := s.Send(ctx, ds); err != nil {
				t.Fatal(err)
			}
			if err := s.Send(ctx, ds[:2500]); err != nil { // a retry
				t.Fatal(err)
			}
			got := logged(t, srv)
			if len(got) != len(ds) {
				t.Fatalf("%d events in Kith's log, want %d", len(got), len(ds))
			}
			byID := map[string]loggedEvent{}
			for _, e := range got {
				byID[e.MessageID] = e
			}
			for i, d := range ds {
				id := fmt.Sprintf("m-%d", i)
				if i%10 == 3 {
					id = d.Key
				}
				e, ok := byID[id]
				if !ok {
					t.Fatalf("event %d (messageId %s) missing", i, id)
				}
				if e.Source != "upstream" || e.UserID != fmt.Sprintf("u-%d", i%50) {
					t.Errorf("event %d: source %q user %q", i, e.Source, e.UserID)
				}
				want := at.Add(time.Duration(i) * time.Millisecond)
				if d := e.Timestamp.Sub(want).Abs(); d > 5*time.Second {
					t.Errorf("event %d: timestamp %v, want %v (off by %v)", i, e.Timestamp, want, d)
				}
				if strings.Contains(string(e.Raw), "2020-01-01") {
					t.Errorf("event %d kept its old sentAt: %s", i, e.Raw)
				}
			}
		})
	}
}

func TestWrongWriteKey(t *testing.T) {
	t.Parallel()
	srv := kith(t)
	s := newSender(t, fmt.Sprintf(`{"url": %q, "write_key": "wk_nope_1234567890", "allow_http": true}`, srv.URL))
	err := s.Send(context.Background(), events(3, time.Now()))
	var de *destination.Error
	if !errors.As(err, &de) || !de.Permanent || de.Status != 401 {
		t.Fatalf("Send = %#v, want a permanent 401", err)
	}
}

// An event Kith refuses inside a 200 answer fails the Send with Reject, so
// that the engine isolates it; the others are stored.
func TestRefusedEventInKith(t *testing.T) {
	t.Parallel()
	srv := kith(t)
	s := newSender(t, fmt.Sprintf(`{"url": %q, "write_key": %q, "allow_http": true}`, srv.URL, writeKey))
	ds := events(5, time.Now())
	ds[2].Payload = json.RawMessage(`{"type":"track","messageId":"m-bad","event":"No Identity"}`)
	err := s.Send(context.Background(), ds)
	var de *destination.Error
	if !errors.As(err, &de) || !de.Reject || !strings.Contains(de.Msg, "m-bad") {
		t.Fatalf("Send = %#v, want a Reject naming m-bad", err)
	}
	t.Logf("Msg: %s", de.Msg)
	if n := len(logged(t, srv)); n != 4 {
		t.Errorf("%d events stored, want 4", n)
	}
}

// recorder is a Tracking API stand-in that keeps every request's batch.
type recorder struct {
	mu      sync.Mutex
	bodies  []int // uncompressed sizes
	batches [][]json.RawMessage
	header  []http.Header
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	var v struct {
		Batch  []json.RawMessage `json:"batch"`
		SentAt time.Time         `json:"sentAt"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.SentAt.IsZero() || r.URL.Path != "/prefix/v1/batch" {
		http.Error(w, fmt.Sprintf("bad request %s: %v", r.URL.Path, err), 400)
		return
	}
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, len(b))
	rc.batches = append(rc.batches, v.Batch)
	rc.header = append(rc.header, r.Header.Clone())
	rc.mu.Unlock()
	io.WriteString(w, `{"success":true}`)
}

func TestSplit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 20000)
	tests := []struct {
		name     string
		n        int
		pad      string
		batch    int
		requests int
	}{
		{"by count", 2600, "", 2500, 2},
		{"by configured batch", 250, "", 100, 3},
		{"by bytes", 60, big, 2500, 3}, // 60 × 20 KB = 1.2 MB: three requests under 500 KB
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := &recorder{}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			s := newSender(t, fmt.Sprintf(`{"url": %q, "write_key": "k", "batch": %d, "gzip": true, "allow_http": true}`, srv.URL+"/prefix/", tt.batch))
			ds := make([]destination.Delivery, tt.n)
			for i := range ds {
				ds[i] = destination.Delivery{Key: fmt.Sprint(i), Payload: json.RawMessage(fmt.Sprintf(`{"type":"track","event":"E","userId":"u","messageId":"m-%d","properties":{"pad":%q}}`, i, tt.pad))}
			}
			if err := s.Send(context.Background(), ds); err != nil {
				t.Fatal(err)
			}
			if len(rc.batches) != tt.requests {
				t.Fatalf("%d requests, want %d", len(rc.batches), tt.requests)
			}
			n := 0
			for i, b := range rc.batches {
				if rc.bodies[i] > forward.MaxBatchBytes || len(b) > tt.batch {
					t.Errorf("request %d: %d bytes, %d events", i, rc.bodies[i], len(b))
				}
				if u, p, ok := (&http.Request{Header: rc.header[i]}).BasicAuth(); !ok || u != "k" || p != "" {
					t.Errorf("request %d: basic auth %q %q %v", i, u, p, ok)
				}
				for _, e := range b {
					var v struct{ MessageID string }
					json.Unmarshal(e, &v)
					if v.MessageID != fmt.Sprintf("m-%d", n) {
						t.Fatalf("event %d is %s: order lost", n, v.MessageID)
					}
					n++
				}
			}
			if n != tt.n {
				t.Errorf("%d events sent, want %d", n, tt.n)
			}
		})
	}
}

func TestBadPayloads(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSender(t, fmt.Sprintf(`{"url": %q, "write_key": "k", "allow_http": true}`, srv.URL+"/prefix"))
	for _, p := range []string{`[1,2]`, `{"type":`, `null`, `{"type":"track","event":"E","userId":"u","properties":{"pad":"` + strings.Repeat("y", forward.MaxEventBytes) + `"}}`} {
		ds := events(3, time.Now())
		ds[1].Payload = json.RawMessage(p)
		var de *destination.Error
		if err := s.Send(context.Background(), ds); !errors.As(err, &de) || !de.Reject || !strings.Contains(de.Msg, ds[1].Key) {
			t.Errorf("payload %.30s…: Send = %v, want a Reject naming %s", p, err, ds[1].Key)
		}
	}
	if len(rc.batches) != 0 {
		t.Error("a batch with a bad payload was sent")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for cfg, want := range map[string]string{
		`{"write_key":"k"}`:                                          "url: missing",
		`{"url":"http://x.example","write_key":"k"}`:                 `"allow_http": true`,
		`{"url":"https://api.segment.io/v1/batch","write_key":"k"}`:  "/v1/batch is appended",
		`{"url":"https://x.example?k=1","write_key":"k"}`:            "no query",
		`{"url":"https://x.example"}`:                                "write_key: missing",
		`{"url":"https://x.example","write_key":"a:b"}`:              "colon",
		`{"url":"https://x.example","write_key":"k","batch":2501}`:   "batch: 2501",
		`{"url":"https://x.example","write_key":"k","timeout":"2h"}`: "timeout: 2h0m0s",
		`{"url":"https://x.example","write_key":"k","writeKey":"k"}`: `unknown field "writeKey"`,
		`{"url":"https://x.example","write_key":"k","gzip":"yes"}`:   "gzip",
	} {
		if _, err := forward.New(json.RawMessage(cfg), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%s) = %v, want an error containing %q", cfg, err, want)
		}
	}
	c, err := forward.ParseConfig(json.RawMessage(`{"url":"https://api.segment.io","write_key":"k"}`))
	if err != nil || c.Batch != forward.DefaultBatch || c.Gzip {
		t.Errorf("defaults: %+v %v", c, err)
	}
}
