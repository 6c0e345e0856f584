package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/loadgen"
)

const benchUsage = `Usage: kith bench --write-key KEY [flags]

Sends realistic Segment Tracking API traffic to a running Kith (or any
Segment-compatible endpoint) and reports events/s and latency percentiles:
~60% track, ~25% page, ~15% identify calls of about 1 KB, from many users who
start anonymous and later identify, with a share of retries that repeat a
messageId. With --rate, requests are paced open-loop and latency counts from
each request's scheduled time. Exits 1 if any request got a 5xx or a
transport error.

Every flag has a KITH_* twin: --dup-rate is KITH_DUP_RATE, and so on.

Flags:
`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kith bench", benchUsage, stderr)
	var o loadgen.Options
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "base URL of the server")
	fs.StringVar(&o.WriteKey, "write-key", "", "write key of the source to send to; required")
	fs.StringVar(&o.Mode, "mode", "batch", "batch: POST /v1/batch; track: single /v1/track, /v1/page and /v1/identify calls")
	fs.IntVar(&o.BatchSize, "batch-size", 100, "events per batch request (the Tracking API takes up to 500 KB, about 450 of these events)")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "requests in flight at once; with --rate at least rate × 50 ms, so a paced run is not held back by the generator")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to run")
	fs.IntVar(&o.Requests, "requests", 0, "stop after this many requests instead of after --duration")
	fs.Float64Var(&o.Rate, "rate", 0, "target requests/s, paced open-loop; 0 = as fast as possible")
	fs.IntVar(&o.Users, "users", 100_000, "distinct users")
	fs.Float64Var(&o.DupRate, "dup-rate", 0.01, "share of calls that are retries of an earlier call, same messageId")
	fs.BoolVar(&o.Gzip, "gzip", false, "send gzip bodies (Content-Encoding: gzip)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the generated traffic")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := flagsFromEnv(fs); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("kith bench takes no arguments, got %q: %w", fs.Args(), errUsage)
	case o.WriteKey == "":
		return fmt.Errorf("kith bench needs --write-key (or KITH_WRITE_KEY): %w", errUsage)
	}
	if !*quiet {
		o.Progress = progressLine(stderr)
	}
	rep, err := loadgen.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("bench: %w: %w", err, errUsage)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("print the report: %w", err)
		}
	} else {
		printReport(stdout, rep)
	}
	if rep.Failed() {
		return errors.New("bench: some requests failed with a 5xx status or a transport error")
	}
	return nil
}

// flagsFromEnv sets each flag not given on the command line from its
// KITH_* twin: --dup-rate from KITH_DUP_RATE.
func flagsFromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "KITH_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && !given[f.Name] && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w: %w", name, v, serr, errUsage)
			}
		}
	})
	return err
}

// progressLine returns a loadgen progress callback that prints one line a
// second: totals, the last second's rate and the latency so far.
func progressLine(w io.Writer) func(loadgen.Report) {
	var last loadgen.Report
	return func(r loadgen.Report) {
		now := float64(r.EventsAccepted-last.EventsAccepted) / (r.Seconds - last.Seconds)
		fmt.Fprintf(w, "%5.0fs  %9d requests  %10d events  %8.0f events/s (last second %.0f)  p50 %.1f ms  p99 %.1f ms%s\n",
			r.Seconds, r.Requests, r.EventsAccepted, r.EventsPerSec, now, r.LatencyMs.P50, r.LatencyMs.P99, errorList(r.Errors))
		last = r
	}
}

func errorList(errs map[string]int64) string {
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("  errors")
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		fmt.Fprintf(&b, " %s×%d", k, errs[k])
	}
	return b.String()
}

func printReport(w io.Writer, r loadgen.Report) {
	rate := "as fast as possible"
	if r.TargetRate > 0 {
		rate = fmt.Sprintf("target %.0f requests/s", r.TargetRate)
	}
	fmt.Fprintf(w, "mode %s, concurrency %d, %s, %.1f s\n", r.Mode, r.Concurrency, rate, r.Seconds)
	fmt.Fprintf(w, "requests   %d sent, %d ok%s\n", r.Requests, r.OK, errorList(r.Errors))
	fmt.Fprintf(w, "events     %d sent (%d repeats), %d accepted, %.0f bytes each on average\n", r.EventsSent, r.DuplicatesSent, r.EventsAccepted, r.AvgEventBytes)
	fmt.Fprintf(w, "throughput %.0f events/s accepted, %.0f requests/s, %.1f MB sent\n", r.EventsPerSec, r.RequestsPerSec, float64(r.BytesSent)/1e6)
	l := r.LatencyMs
	fmt.Fprintf(w, "latency    p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n", l.P50, l.P90, l.P99, l.P999, l.Max)
}
