package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// recorder is a server that decodes every body like a Segment endpoint would.
type recorder struct {
	mu       sync.Mutex
	events   int
	bytes    int
	types    map[string]int
	ids      map[string]int
	identify map[string]bool // anonymousIds that were identified
	badAuth  int
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u, _, ok := r.BasicAuth(); !ok || u != "wk_test" {
		rc.mu.Lock()
		rc.badAuth++
		rc.mu.Unlock()
		http.Error(w, "no", 401)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var calls []map[string]any
	if r.URL.Path == "/v1/batch" {
		var b struct {
			Batch  []map[string]any `json:"batch"`
			SentAt string           `json:"sentAt"`
		}
		if json.Unmarshal(body, &b) != nil || b.SentAt == "" {
			http.Error(w, "bad batch", 400)
			return
		}
		calls = b.Batch
	} else {
		var c map[string]any
		if json.Unmarshal(body, &c) != nil {
			http.Error(w, "bad call", 400)
			return
		}
		c["type"] = r.URL.Path[len("/v1/"):]
		calls = []map[string]any{c}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, c := range calls {
		b, _ := json.Marshal(c)
		rc.bytes += len(b)
		rc.events++
		rc.types[c["type"].(string)]++
		rc.ids[c["messageId"].(string)]++
		if c["type"] == "identify" {
			rc.identify[c["anonymousId"].(string)] = c["userId"] != nil
		}
	}
	w.Write([]byte(`{"success":true}`))
}

func TestRunSendsRealisticTraffic(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"batch", "track"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			rc := &recorder{types: map[string]int{}, ids: map[string]int{}, identify: map[string]bool{}}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			rep, err := Run(context.Background(), Options{URL: srv.URL, WriteKey: "wk_test", Mode: mode, BatchSize: 50,
				Concurrency: 4, Requests: 100, Users: 500, DupRate: 0.05, Gzip: false, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Failed() || rep.OK != 100 || rc.badAuth > 0 {
				t.Fatalf("report %+v, bad auth %d", rep, rc.badAuth)
			}
			if int64(rc.events) != rep.Events {
				t.Fatalf("server saw %d events, report says %d", rc.events, rep.Events)
			}
			avg := rc.bytes / rc.events
			if avg < 700 || avg > 1500 {
				t.Errorf("average event size %d bytes, want about 1 KB", avg)
			}
			for _, typ := range []string{"track", "page", "identify"} {
				if rc.types[typ] == 0 {
					t.Errorf("no %s calls: %v", typ, rc.types)
				}
			}
			dups := 0
			for _, n := range rc.ids {
				dups += n - 1
			}
			if dups == 0 {
				t.Errorf("no repeated messageIds")
			}
			if len(rc.identify) == 0 {
				t.Errorf("no anonymous user was identified")
			}
			if rep.LatencyMs.Max <= 0 || rep.LatencyMs.P50 > rep.LatencyMs.P99 {
				t.Errorf("latency %+v", rep.LatencyMs)
			}
		})
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := Run(context.Background(), Options{Mode: "batch"}); err == nil {
		t.Error("no write key accepted")
	}
	if _, err := Run(context.Background(), Options{WriteKey: "k", Mode: "stream"}); err == nil {
		t.Error("unknown mode accepted")
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	xs := make([]float64, 1000)
	for i := range xs {
		xs[len(xs)-1-i] = float64(i + 1)
	}
	p := percentiles(xs)
	if p.P50 != 500 || p.P90 != 900 || p.P99 != 990 || p.P999 != 999 || p.Max != 1000 {
		t.Fatalf("%+v", p)
	}
	if (percentiles(nil) != Percentiles{}) {
		t.Fatal("empty input")
	}
}

func TestReportFailed(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{"400": false, "429": false, "503": true, "transport": true}
	for k, want := range cases {
		if got := (Report{Errors: map[string]int64{k: 1}}).Failed(); got != want {
			t.Errorf("%s: Failed() = %v", k, got)
		}
	}
}
