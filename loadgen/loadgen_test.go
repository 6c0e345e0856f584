package loadgen

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a server that decodes every body with encoding/json, as a
// Segment endpoint would, and keeps what a test needs to judge the traffic.
type recorder struct {
	mu      sync.Mutex
	calls   []map[string]any // in arrival order
	bytes   int              // JSON of the calls as sent
	bad     []string         // what was wrong with a request
	answer  func(n int) int  // status for the n-th request (from 0); nil = 200
	handled int
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := rc.handled
	rc.handled++
	if rc.answer != nil {
		if status := rc.answer(n); status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
	}
	if u, _, ok := r.BasicAuth(); !ok || u != "wk_test" || r.Header.Get("Content-Type") != "application/json" {
		rc.bad = append(rc.bad, "no write key or content type")
	}
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			rc.bad = append(rc.bad, "bad gzip: "+err.Error())
			return
		}
		body = zr
	}
	var raw []json.RawMessage
	var sentAt string
	if r.URL.Path == "/v1/batch" {
		var b struct {
			Batch  []json.RawMessage `json:"batch"`
			SentAt string            `json:"sentAt"`
		}
		if err := json.NewDecoder(body).Decode(&b); err != nil {
			rc.bad = append(rc.bad, "bad batch: "+err.Error())
			return
		}
		raw, sentAt = b.Batch, b.SentAt
	} else {
		var c json.RawMessage
		if err := json.NewDecoder(body).Decode(&c); err != nil {
			rc.bad = append(rc.bad, "bad call: "+err.Error())
			return
		}
		raw = []json.RawMessage{c}
	}
	for _, b := range raw {
		var c map[string]any
		if err := json.Unmarshal(b, &c); err != nil {
			rc.bad = append(rc.bad, "bad call: "+err.Error())
			continue
		}
		if r.URL.Path != "/v1/batch" {
			if c["type"] != r.URL.Path[len("/v1/"):] {
				rc.bad = append(rc.bad, "type "+str(c["type"])+" sent to "+r.URL.Path)
			}
			sentAt = str(c["sentAt"])
			rc.bytes += len(b) - len(`,"sentAt":"2006-01-02T15:04:05.000Z"`)
			delete(c, "sentAt")
		} else {
			rc.bytes += len(b)
		}
		if !timeRE.MatchString(sentAt) {
			rc.bad = append(rc.bad, "sentAt "+sentAt)
		}
		rc.calls = append(rc.calls, c)
	}
	_, _ = w.Write([]byte(`{"success":true}`))
}

func str(v any) string { s, _ := v.(string); return s }

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

// setup starts a recorder and returns options that send to it.
func setup(t *testing.T, mode string) (*recorder, Options) {
	t.Helper()
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, Options{URL: srv.URL, WriteKey: "wk_test", Mode: mode, Concurrency: 4, Seed: 7}
}

func TestRunSendsRealisticTraffic(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		o    Options
	}{
		{"batch", Options{Mode: "batch", BatchSize: 50, Requests: 100, Users: 200, DupRate: 0.05}},
		{"batch gzip", Options{Mode: "batch", BatchSize: 50, Requests: 100, Users: 200, DupRate: 0.05, Gzip: true}},
		{"track", Options{Mode: "track", Requests: 5000, Users: 200, DupRate: 0.05}},
		{"track paced", Options{Mode: "track", Requests: 1000, Users: 40, DupRate: 0.05, Rate: 20000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc, o := setup(t, tc.o.Mode)
			tc.o.URL, tc.o.WriteKey, tc.o.Concurrency, tc.o.Seed = o.URL, o.WriteKey, o.Concurrency, o.Seed
			rep, err := Run(context.Background(), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(rc.bad) > 0 {
				t.Fatalf("bad requests: %q", rc.bad[:min(len(rc.bad), 5)])
			}
			events := int64(len(rc.calls))
			if rep.Failed() || rep.OK != int64(tc.o.Requests) || rep.EventsSent != events || rep.EventsAccepted != events {
				t.Fatalf("report %+v; the server saw %d events", rep, events)
			}
			if avg := float64(rc.bytes) / float64(events); avg < 700 || avg > 1500 || avg != rep.AvgEventBytes {
				t.Errorf("average event %.0f bytes (report: %.0f), want 700–1500", avg, rep.AvgEventBytes)
			}
			checkCalls(t, rc.calls, tc.o, rep)
		})
	}
}

// checkCalls judges the calls a run sent: their shape, mix, identities and
// repeats.
func checkCalls(t *testing.T, calls []map[string]any, o Options, rep Report) {
	t.Helper()
	types := map[string]int{}
	first := map[string]string{} // messageId → the call's JSON when first seen
	dups := 0
	anonOf := map[string]string{}    // anonymousId → its userId once identified
	anonCalls := map[string]int{}    // anonymousId → calls before its identify
	linked := 0                      // anonymousIds identified after anonymous calls
	devices := map[string][]string{} // userId → its anonymousIds
	users := map[string]bool{}
	for _, c := range calls {
		b, _ := json.Marshal(c)
		id := str(c["messageId"])
		if prev, ok := first[id]; ok {
			dups++
			if prev != string(b) {
				t.Fatalf("messageId %s repeated with another body:\n%s\n%s", id, prev, b)
			}
			continue // a retry of an earlier call: not part of the sequence
		}
		first[id] = string(b)
		typ, anon, user := str(c["type"]), str(c["anonymousId"]), str(c["userId"])
		types[typ]++
		ctx, _ := c["context"].(map[string]any)
		switch {
		case !uuidRE.MatchString(id) || !uuidRE.MatchString(anon):
			t.Fatalf("messageId %q, anonymousId %q: want UUIDs", id, anon)
		case !timeRE.MatchString(str(c["timestamp"])):
			t.Fatalf("timestamp %q", c["timestamp"])
		case ctx == nil || net.ParseIP(str(ctx["ip"])) == nil || ctx["userAgent"] == nil || ctx["page"] == nil || ctx["library"] == nil:
			t.Fatalf("context %v", ctx)
		case typ == "track" && (c["event"] == nil || c["properties"] == nil),
			typ == "page" && c["name"] == nil,
			typ == "identify" && (user == "" || c["traits"] == nil):
			t.Fatalf("incomplete %s call: %s", typ, b)
		}
		if user != "" {
			users[user] = true
		}
		switch known, identified := anonOf[anon]; {
		case typ == "identify":
			if !identified {
				if anonCalls[anon] > 0 {
					linked++
				}
				devices[user] = append(devices[user], anon)
			}
			anonOf[anon] = user
		case identified && user != known:
			t.Fatalf("after its identify as %q, anonymousId %s sent a call with userId %q", known, anon, user)
		case !identified && user != "":
			t.Fatalf("anonymousId %s named userId %q before any identify", anon, user)
		case !identified:
			anonCalls[anon]++
		}
	}
	n := len(calls) - dups
	share := func(typ string) float64 { return float64(types[typ]) / float64(n) }
	if s := share("track"); s < 0.5 || s > 0.7 {
		t.Errorf("track share %.2f, want ~0.60 (%v)", s, types)
	}
	if s := share("page"); s < 0.17 || s > 0.33 {
		t.Errorf("page share %.2f, want ~0.25 (%v)", s, types)
	}
	if s := share("identify"); s < 0.09 || s > 0.21 {
		t.Errorf("identify share %.2f, want ~0.15 (%v)", s, types)
	}
	if d := float64(dups) / float64(len(calls)); d < o.DupRate*0.6 || d > o.DupRate*1.4 || int64(dups) != rep.DuplicatesSent {
		t.Errorf("%d repeated messageIds (%.3f of calls, report: %d), want about %.2f", dups, d, rep.DuplicatesSent, o.DupRate)
	}
	if linked < o.Users/4 {
		t.Errorf("%d anonymousIds were identified after anonymous calls, want many of %d users", linked, o.Users)
	}
	moved := 0
	for _, anons := range devices {
		if len(anons) > 1 {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no user was identified on a second device")
	}
	if len(users) > o.Users || len(users) < o.Users/2 {
		t.Errorf("%d distinct userIds, want most of %d", len(users), o.Users)
	}
}

func TestRunCountsFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		answer func(n int) int
		errors map[string]int64
		failed bool
	}{
		{"all 200", nil, map[string]int64{}, false},
		{"some 503", func(n int) int { return []int{200, 503}[n%2] }, map[string]int64{"503": 10}, true},
		{"rate limited", func(n int) int { return []int{200, 429, 400}[n%3] }, map[string]int64{"429": 7, "400": 6}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc, o := setup(t, "track")
			rc.answer = tc.answer
			o.Requests, o.Concurrency = 20, 1
			rep, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			failures := int64(0)
			for _, n := range tc.errors {
				failures += n
			}
			if !maps(rep.Errors, tc.errors) || rep.Failed() != tc.failed || rep.OK != 20-failures || rep.EventsAccepted != 20-failures {
				t.Errorf("report %+v, want errors %v, failed %v", rep, tc.errors, tc.failed)
			}
		})
	}
}

func maps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRunTransportError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	rep, err := Run(context.Background(), Options{URL: srv.URL, WriteKey: "k", Mode: "batch", Requests: 3, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors["transport"] != 3 || !rep.Failed() {
		t.Errorf("report %+v, want 3 transport errors", rep)
	}
}

// A paced run is not held back by too few senders: at 2,000 requests/s at
// least 100 (50 ms worth) may be in flight, whatever Concurrency says.
func TestPacedRunHasSendersForItsRate(t *testing.T) {
	t.Parallel()
	_, o := setup(t, "track")
	o.Concurrency, o.Rate, o.Requests = 1, 2000, 200
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Concurrency != 100 || rep.OK != 200 {
		t.Errorf("report %+v: want concurrency 100 and 200 requests answered", rep)
	}
}

func TestRunStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, o := setup(t, "track")
	rc.answer = func(n int) int {
		if n == 50 {
			cancel()
		}
		return http.StatusOK
	}
	o.Duration = time.Hour
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// Requests in flight at the cancel are not counted.
	if rep.Failed() || rep.Requests < int64(50-o.Concurrency) {
		t.Errorf("report %+v: want the requests before the cancel, none failed", rep)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	t.Parallel()
	good := Options{URL: "http://127.0.0.1:1", WriteKey: "k", Mode: "batch"}
	cases := map[string]func(*Options){
		"no write key":    func(o *Options) { o.WriteKey = "" },
		"unknown mode":    func(o *Options) { o.Mode = "stream" },
		"no scheme":       func(o *Options) { o.URL = "127.0.0.1:8080" },
		"negative rate":   func(o *Options) { o.Rate = -1 },
		"dup rate 1":      func(o *Options) { o.DupRate = 1 },
		"fewer users":     func(o *Options) { o.Users, o.Concurrency = 3, 4 },
		"too many users":  func(o *Options) { o.Users = maxUsers + 1 },
		"negative reqs":   func(o *Options) { o.Requests = -1 },
		"negative conc.":  func(o *Options) { o.Concurrency = -1 },
		"negative length": func(o *Options) { o.Duration = -time.Second },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := good
			change(&o)
			if _, err := Run(context.Background(), o); err == nil {
				t.Errorf("%+v accepted", o)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	record := func(us ...int) *histogram {
		h := new(histogram)
		for _, v := range us {
			h.record(time.Duration(v) * time.Microsecond)
		}
		return h
	}
	seq := func(n, unit int) []int { // n..1, so the order of recording is not sorted
		xs := make([]int, n)
		for i := range xs {
			xs[i] = (n - i) * unit
		}
		return xs
	}
	cases := []struct {
		name string
		us   []int
		want Percentiles
	}{
		{"empty", nil, Percentiles{}},
		{"one", []int{1500}, Percentiles{1.5, 1.5, 1.5, 1.5, 1.5}},
		{"exact below 256 µs", seq(200, 1), Percentiles{0.1, 0.18, 0.198, 0.2, 0.2}},
		{"1..1000 ms", seq(1000, 1000), Percentiles{500, 900, 990, 999, 1000}},
		{"one slow request in 10,000", append(slices.Repeat([]int{2000}, 9999), 4_000_000), Percentiles{2, 2, 2, 2, 4000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := record(tc.us...).percentiles()
			g := []float64{got.P50, got.P90, got.P99, got.P999, got.Max}
			w := []float64{tc.want.P50, tc.want.P90, tc.want.P99, tc.want.P999, tc.want.Max}
			for i := range g {
				// A bucket's upper bound: never below the value, at most 1/128 above.
				if g[i] < w[i] || g[i] > w[i]*(1+1.0/subCount) {
					t.Fatalf("got %+v, want %+v (within +%.1f%%)", got, tc.want, 100.0/subCount)
				}
			}
		})
	}
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	prev := -1
	for v := uint64(0); v < 1<<maxBits; v = v*17/16 + 1 {
		i := bucketOf(v)
		if i < prev || i >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", v, i, prev)
		}
		if h := highest(i); h < v || h-v > v/subCount {
			t.Fatalf("highest(bucketOf(%d)) = %d", v, h)
		}
		prev = i
	}
	if bucketOf(1<<62) != nBuckets-1 {
		t.Error("a huge value is not capped into the last bucket")
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	_, o := setup(t, "batch")
	o.Requests, o.BatchSize = 2, 10
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"avg_event_bytes", "bytes_sent", "concurrency", "duplicates_sent", "errors", "events_accepted",
		"events_per_second", "events_sent", "latency_ms", "mode", "ok", "requests", "requests_per_second", "seconds", "target_rate"}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	lat, _ := m["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("latency_ms.%s missing: %s", k, b)
		}
	}
	if m["mode"] != "batch" || m["events_accepted"] != 20.0 || m["errors"] == nil {
		t.Errorf("report %s", b)
	}
}
