package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options describe a load run.
type Options struct {
	URL         string        // base URL of the server, e.g. http://127.0.0.1:8080
	WriteKey    string        // sent as the HTTP Basic user name
	Mode        string        // "batch" (POST /v1/batch) or "track" (single calls)
	BatchSize   int           // events per batch request
	Concurrency int           // requests in flight at once
	Duration    time.Duration // how long to run (ignored when Requests > 0)
	Requests    int           // stop after this many requests
	Rate        float64       // target requests/s (open loop); 0 = as fast as possible
	Users       int           // distinct users
	DupRate     float64       // share of calls re-sent with an earlier messageId
	Gzip        bool          // send Content-Encoding: gzip
	Seed        uint64
	// Progress, if set, is called about once a second.
	Progress func(Report)
}

// Report is the outcome of a run.
type Report struct {
	Requests     int64            `json:"requests"`
	OK           int64            `json:"ok"`
	Errors       map[string]int64 `json:"errors,omitempty"` // by status code or "transport"
	Events       int64            `json:"events"`           // events in 2xx answers
	BytesSent    int64            `json:"bytes_sent"`
	Seconds      float64          `json:"seconds"`
	EventsPerSec float64          `json:"events_per_second"`
	ReqPerSec    float64          `json:"requests_per_second"`
	LatencyMs    Percentiles      `json:"latency_ms"`
}

// Percentiles of request latency in milliseconds.
type Percentiles struct {
	P50, P90, P99, P999, Max float64
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

type request struct {
	body      []byte
	path      string
	events    int
	scheduled time.Time
}

// Run sends load until the duration or request count is reached or ctx ends.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.WriteKey == "" {
		return Report{}, errors.New("a write key is required")
	}
	if o.Mode != "batch" && o.Mode != "track" {
		return Report{}, fmt.Errorf("mode must be batch or track, not %q", o.Mode)
	}
	o.Concurrency = max(o.Concurrency, 1)
	o.BatchSize = max(o.BatchSize, 1)
	if o.Requests <= 0 && o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.Concurrency, MaxIdleConnsPerHost: o.Concurrency, IdleConnTimeout: time.Minute,
	}}
	if o.Duration > 0 && o.Requests <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	work := make(chan request, o.Concurrency*2)
	var genErr error
	go func() { // producer: builds bodies and paces them
		defer close(work)
		tr := newTraffic(o.Seed, o.Users, o.DupRate)
		pool, err := tr.buildPool(4096, time.Now())
		if err != nil {
			genErr = err
			return
		}
		start := time.Now()
		for i := 0; o.Requests <= 0 || i < o.Requests; i++ {
			sched := time.Now()
			if o.Rate > 0 {
				sched = start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))
				if d := time.Until(sched); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
			}
			rq := request{scheduled: sched, path: "/v1/batch", events: o.BatchSize}
			if o.Mode == "batch" {
				rq.body = tr.batchBody(pool, o.BatchSize, sched)
			} else {
				rq.events = 1
				rq.body, rq.path = tr.singleBody(pool, sched)
			}
			if o.Gzip {
				rq.body, err = gzipped(rq.body)
			}
			if err != nil {
				genErr = err
				return
			}
			select {
			case work <- rq:
			case <-ctx.Done():
				return
			}
		}
	}()

	var (
		mu        sync.Mutex
		rep       = Report{Errors: map[string]int64{}}
		latencies []float64
		sent      atomic.Int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	stopProgress := make(chan struct{})
	if o.Progress != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					mu.Lock()
					r := rep
					mu.Unlock()
					r.Seconds = time.Since(start).Seconds()
					r.EventsPerSec = float64(r.Events) / r.Seconds
					o.Progress(r)
				case <-stopProgress:
					return
				}
			}
		}()
	}
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rq := range work {
				status, err := send(context.WithoutCancel(ctx), client, o, rq)
				// Latency counts from the scheduled time, so a slow server
				// cannot hide its queueing (no coordinated omission).
				lat := float64(time.Since(rq.scheduled).Microseconds()) / 1000
				sent.Add(int64(len(rq.body)))
				mu.Lock()
				rep.Requests++
				switch {
				case err != nil:
					rep.Errors["transport"]++
				case status/100 == 2:
					rep.OK++
					rep.Events += int64(rq.events)
				default:
					rep.Errors[fmt.Sprint(status)]++
				}
				if len(latencies) < 2_000_000 { // bounded memory
					latencies = append(latencies, lat)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	if genErr != nil {
		return rep, fmt.Errorf("generate traffic: %w", genErr)
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.BytesSent = sent.Load()
	if rep.Seconds > 0 {
		rep.EventsPerSec = float64(rep.Events) / rep.Seconds
		rep.ReqPerSec = float64(rep.Requests) / rep.Seconds
	}
	rep.LatencyMs = percentiles(latencies)
	return rep, nil
}

func send(ctx context.Context, c *http.Client, o Options, rq request) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(o.URL, "/")+rq.path, bytes.NewReader(rq.body))
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(o.WriteKey, "")
	req.Header.Set("Content-Type", "application/json")
	if o.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// percentiles computes nearest-rank percentiles of xs (which it sorts).
func percentiles(xs []float64) Percentiles {
	if len(xs) == 0 {
		return Percentiles{}
	}
	slices.Sort(xs)
	at := func(q float64) float64 {
		i := int(q*float64(len(xs))+0.5) - 1
		return xs[min(max(i, 0), len(xs)-1)]
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: xs[len(xs)-1]}
}
