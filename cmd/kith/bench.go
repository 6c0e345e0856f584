package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/kithcdp/kith/loadgen"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kith bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o loadgen.Options
	fs.StringVar(&o.URL, "url", env("KITH_URL", "http://127.0.0.1:8080"), "base URL of the server (env KITH_URL)")
	fs.StringVar(&o.WriteKey, "write-key", env("KITH_WRITE_KEY", ""), "write key of the source to send to (env KITH_WRITE_KEY)")
	fs.StringVar(&o.Mode, "mode", "batch", "batch: POST /v1/batch; track: single /v1/identify|track|page calls")
	fs.IntVar(&o.BatchSize, "batch-size", 100, "events per batch request")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "requests in flight at once")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to run")
	fs.IntVar(&o.Requests, "requests", 0, "stop after this many requests (overrides --duration)")
	fs.Float64Var(&o.Rate, "rate", 0, "target requests/s, paced open-loop; 0 = as fast as possible")
	fs.IntVar(&o.Users, "users", 100000, "distinct users")
	fs.Float64Var(&o.DupRate, "dup-rate", 0.01, "share of calls re-sent with an earlier messageId")
	fs.BoolVar(&o.Gzip, "gzip", false, "send gzip-compressed bodies")
	seed := fs.Uint64("seed", 1, "random seed")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o.Seed = *seed
	if !*quiet {
		o.Progress = func(r loadgen.Report) {
			fmt.Fprintf(stderr, "\r%6.0fs  %9d events  %8.0f events/s  errors %v   ", r.Seconds, r.Events, r.EventsPerSec, r.Errors)
		}
	}
	rep, err := loadgen.Run(ctx, o)
	if !*quiet {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "requests %d (ok %d, errors %v) in %.1fs\n", rep.Requests, rep.OK, rep.Errors, rep.Seconds)
		fmt.Fprintf(stdout, "events/s %.0f   requests/s %.0f   sent %s MB\n", rep.EventsPerSec, rep.ReqPerSec, strconv.FormatFloat(float64(rep.BytesSent)/1e6, 'f', 1, 64))
		l := rep.LatencyMs
		fmt.Fprintf(stdout, "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if rep.Failed() {
		return errors.New("bench: some requests failed with 5xx or transport errors")
	}
	return nil
}
