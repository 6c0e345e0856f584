// Package loadgen sends realistic Segment Tracking API traffic to a server
// and measures what it accepts: events per second and request latency
// percentiles. It backs `kith bench`.
//
// The traffic is a web shop's: ~60% track calls (Product Viewed, Product
// Added, Checkout Started, Order Completed, …), ~25% page and ~15% identify
// calls of about 1 KB each, with a browser's context (library, userAgent,
// page, ip, locale, campaign), from many users who start anonymous and are
// later identified, and with a share of retries that repeat an earlier call
// and its messageId. Each of the Concurrency senders owns its own users, so
// one user's calls reach the server in order.
//
// With Rate set, requests are scheduled open-loop at that rate and latency
// is measured from each request's scheduled time, so a server that stalls
// is charged for the requests it made wait (no coordinated omission).
package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options describe a load run.
type Options struct {
	URL         string        // base URL of the server, e.g. http://127.0.0.1:8080
	WriteKey    string        // sent as the HTTP Basic user name
	Mode        string        // "batch" (POST /v1/batch) or "track" (single /v1/track|page|identify calls)
	BatchSize   int           // events per batch request; default 100
	Concurrency int           // requests in flight at once; default 16 (with Rate, see pacedSlack)
	Duration    time.Duration // how long to run when Requests is 0; default 30s
	Requests    int           // stop after this many requests; 0 = run for Duration
	Rate        float64       // target requests/s, paced open-loop; 0 = as fast as possible
	Users       int           // distinct users, at least Concurrency; default 100,000
	DupRate     float64       // share of calls re-sent with an earlier call's body and messageId
	Gzip        bool          // send gzip bodies with Content-Encoding: gzip
	Seed        uint64        // seed of everything random in the traffic
	// Progress, if set, is called about once a second with the figures so far.
	Progress func(Report)
}

// Report is the outcome of a run. Counters cover requests that finished;
// Errors counts the others by status code ("503") or "transport".
type Report struct {
	Mode           string           `json:"mode"`
	Concurrency    int              `json:"concurrency"`
	TargetRate     float64          `json:"target_rate"` // requests/s; 0 = as fast as possible
	Seconds        float64          `json:"seconds"`
	Requests       int64            `json:"requests"`
	OK             int64            `json:"ok"` // 2xx answers
	Errors         map[string]int64 `json:"errors"`
	EventsSent     int64            `json:"events_sent"`
	EventsAccepted int64            `json:"events_accepted"` // events in requests answered 2xx
	DuplicatesSent int64            `json:"duplicates_sent"` // events that repeat an earlier messageId
	BytesSent      int64            `json:"bytes_sent"`      // request bodies as sent (gzip if on)
	AvgEventBytes  float64          `json:"avg_event_bytes"` // JSON of one event, uncompressed
	EventsPerSec   float64          `json:"events_per_second"`
	RequestsPerSec float64          `json:"requests_per_second"`
	LatencyMs      Percentiles      `json:"latency_ms"`
}

// Failed reports whether any request failed with a 5xx or a transport error.
func (r Report) Failed() bool {
	for k, n := range r.Errors {
		if n > 0 && (k == "transport" || strings.HasPrefix(k, "5")) {
			return true
		}
	}
	return false
}

// Run sends load until Requests are done, Duration has passed or ctx ends,
// and reports what the server accepted. When ctx ends early, it returns the
// report so far; requests cut short by ctx are not counted.
func Run(ctx context.Context, o Options) (Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Report{}, err
	}
	p, err := buildPool(rand.New(rand.NewPCG(o.Seed, ^o.Seed)))
	if err != nil {
		return Report{}, err
	}
	r := &runner{o: o, base: strings.TrimRight(o.URL, "/"), errors: map[string]int64{}, start: time.Now()}
	r.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.Concurrency,
		MaxIdleConnsPerHost: o.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
	defer r.client.CloseIdleConnections()

	runCtx := ctx // ends the sending of new requests
	if o.Requests == 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var tickets <-chan time.Time
	if o.Rate > 0 {
		tickets = pace(runCtx, o.Rate, o.Requests, o.Concurrency)
	}
	stopProgress := r.progress()
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sendLoop(ctx, runCtx, newSender(o.Seed, p, w, o.Concurrency, o.Users), tickets)
		}()
	}
	wg.Wait()
	stopProgress()
	return r.report(), nil
}

func (o Options) withDefaults() (Options, error) {
	u, err := url.Parse(o.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return o, fmt.Errorf("the URL must be http(s)://host[:port], not %q", o.URL)
	case o.WriteKey == "":
		return o, errors.New("a write key is required")
	case o.Mode != "batch" && o.Mode != "track":
		return o, fmt.Errorf("mode must be batch or track, not %q", o.Mode)
	case o.BatchSize < 0 || o.Concurrency < 0 || o.Duration < 0 || o.Requests < 0 || o.Rate < 0 || o.Users < 0:
		return o, errors.New("batch size, concurrency, duration, requests, rate and users must not be negative")
	case o.DupRate < 0 || o.DupRate >= 1:
		return o, fmt.Errorf("the duplicate rate must be in [0, 1), not %g", o.DupRate)
	}
	o.BatchSize = cmpOr(o.BatchSize, 100)
	o.Concurrency = cmpOr(o.Concurrency, 16)
	o.Duration = cmpOr(o.Duration, 30*time.Second)
	o.Users = cmpOr(o.Users, 100_000)
	if o.Rate > 0 {
		o.Concurrency = max(o.Concurrency, min(int(math.Ceil(o.Rate*pacedSlack.Seconds())), o.Users))
	}
	switch {
	case o.Users < o.Concurrency:
		return o, fmt.Errorf("users (%d) must be at least the concurrency (%d): each sender has users of its own", o.Users, o.Concurrency)
	case o.Users > maxUsers:
		return o, fmt.Errorf("users must be at most %d, not %d", maxUsers, o.Users)
	}
	return o, nil
}

// pacedSlack is how long answers of a paced run may take before the
// generator runs out of senders and holds requests back: with Rate set, at
// least Rate × pacedSlack requests may be in flight. With a fixed 16, a
// server answering single calls in 5 ms (one fsync and a wait for the commit
// before) could not be offered more than 3,200 requests/s, and the queue of
// scheduled requests made the 4,000/s runs' p99 grow to seconds.
const pacedSlack = 50 * time.Millisecond

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// pace sends the scheduled time of each request at rate per second,
// absolute from the start so a late wake-up does not slow the schedule,
// until n are scheduled (0 = no limit) or ctx ends.
func pace(ctx context.Context, rate float64, n, buffer int) <-chan time.Time {
	c := make(chan time.Time, buffer)
	go func() {
		defer close(c)
		start := time.Now()
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for i := 0; n == 0 || i < n; i++ {
			at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			}
			select {
			case c <- at:
			case <-ctx.Done():
				return
			}
		}
	}()
	return c
}

type runner struct {
	o      Options
	base   string
	client *http.Client
	start  time.Time

	claimed                                  atomic.Int64 // requests started, when not paced
	requests, ok, eventsSent, eventsAccepted atomic.Int64
	dups, bytesSent, eventBytes              atomic.Int64
	latency                                  histogram
	mu                                       sync.Mutex
	errors                                   map[string]int64
}

// sendLoop sends requests built by s until there are no more tickets (paced)
// or the request count or runCtx is used up. Requests already sent finish
// unless ctx ends.
func (r *runner) sendLoop(ctx, runCtx context.Context, s *sender, tickets <-chan time.Time) {
	var body []byte
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	for {
		var at time.Time
		if tickets != nil {
			var ok bool
			if at, ok = <-tickets; !ok || runCtx.Err() != nil {
				return
			}
		} else {
			if runCtx.Err() != nil || (r.o.Requests > 0 && r.claimed.Add(1) > int64(r.o.Requests)) {
				return
			}
			at = time.Now()
		}
		rq := r.build(s, body[:0], at)
		body = rq.body
		if r.o.Gzip {
			zbuf.Reset()
			zw.Reset(&zbuf)
			_, _ = zw.Write(body) // a bytes.Buffer does not fail
			_ = zw.Close()
			body = append(body[:0], zbuf.Bytes()...)
		}
		status, err := r.send(ctx, rq.path, body)
		if ctx.Err() != nil {
			return // cut short by the caller: not a server failure
		}
		// From the scheduled time, so queueing behind a slow server counts.
		r.latency.record(time.Since(at))
		r.requests.Add(1)
		r.eventsSent.Add(int64(rq.events))
		r.eventBytes.Add(int64(rq.eventBytes))
		r.dups.Add(int64(rq.dups))
		r.bytesSent.Add(int64(len(body)))
		switch {
		case err != nil:
			r.countError("transport")
		case status/100 == 2:
			r.ok.Add(1)
			r.eventsAccepted.Add(int64(rq.events))
		default:
			r.countError(strconv.Itoa(status))
		}
	}
}

// request is one request's body and what it holds.
type request struct {
	body       []byte
	path       string
	events     int
	dups       int // events that repeat an earlier call
	eventBytes int // JSON of the events, without the envelope and sentAt
}

// build makes the body of one request in body's memory, with events
// timestamped shortly before at and sentAt now.
func (r *runner) build(s *sender, body []byte, at time.Time) request {
	var rq request
	if r.o.Mode == "track" {
		var dup bool
		body, rq.path, dup = s.appendCall(body, at, r.o.DupRate)
		rq.events, rq.eventBytes = 1, len(body)
		if dup {
			rq.dups = 1
		}
		body = append(body[:len(body)-1], `,"sentAt":"`...) // into the call's object
	} else {
		rq.path, rq.events = "/v1/batch", r.o.BatchSize
		body = append(body, `{"batch":[`...)
		for i := range r.o.BatchSize {
			if i > 0 {
				body = append(body, ',')
			}
			n := len(body)
			var dup bool
			body, _, dup = s.appendCall(body, at, r.o.DupRate)
			rq.eventBytes += len(body) - n
			if dup {
				rq.dups++
			}
		}
		body = append(body, `],"sentAt":"`...)
	}
	body = time.Now().UTC().AppendFormat(body, timeLayout)
	rq.body = append(body, `"}`...)
	return rq
}

func (r *runner) send(ctx context.Context, path string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build a request: %w", err)
	}
	req.SetBasicAuth(r.o.WriteKey, "")
	req.Header.Set("Content-Type", "application/json")
	if r.o.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, nil
}

func (r *runner) countError(key string) {
	r.mu.Lock()
	r.errors[key]++
	r.mu.Unlock()
}

// progress calls o.Progress once a second until the returned stop is called.
func (r *runner) progress() (stop func()) {
	if r.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.o.Progress(r.report())
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// report reads the figures so far.
func (r *runner) report() Report {
	rep := Report{
		Mode: r.o.Mode, Concurrency: r.o.Concurrency, TargetRate: r.o.Rate,
		Seconds:  time.Since(r.start).Seconds(),
		Requests: r.requests.Load(), OK: r.ok.Load(), Errors: map[string]int64{},
		EventsSent: r.eventsSent.Load(), EventsAccepted: r.eventsAccepted.Load(), DuplicatesSent: r.dups.Load(),
		BytesSent: r.bytesSent.Load(), LatencyMs: r.latency.percentiles(),
	}
	r.mu.Lock()
	for k, n := range r.errors {
		rep.Errors[k] = n
	}
	r.mu.Unlock()
	if rep.EventsSent > 0 {
		rep.AvgEventBytes = float64(r.eventBytes.Load()) / float64(rep.EventsSent)
	}
	if rep.Seconds > 0 {
		rep.EventsPerSec = float64(rep.EventsAccepted) / rep.Seconds
		rep.RequestsPerSec = float64(rep.Requests) / rep.Seconds
	}
	return rep
}
