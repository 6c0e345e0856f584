package main

import (
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kithcdp/kith/gate"
	"github.com/kithcdp/kith/importer"
	"github.com/prometheus/client_golang/prometheus"
)

const importUsage = `Usage: kith import --workspace W --source S [flags] FILE

Imports FILE into the log of workspace W as events of source S: JSONL, one
Tracking API call per line, or CSV, each row an identify call. FILE may be
gzipped (.gz) and "-" reads standard input (then --format is needed).
Rejected lines go to the rejects file and do not stop the import; running
the same import again stores nothing twice. Events of suppressed people, or
whose consent denies a purpose the workspace requires for storage, are
dropped as by the Tracking API. See docs/import.md.

Flags:
`

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kith import", importUsage, stderr)
	var sf storeFlags
	sf.register(fs)
	workspace := fs.String("workspace", env("KITH_WORKSPACE", ""), "slug of the workspace to import into; required (env KITH_WORKSPACE)")
	source := fs.String("source", env("KITH_SOURCE", ""), "slug of the source the events are recorded as coming from; required (env KITH_SOURCE)")
	format := fs.String("format", env("KITH_FORMAT", ""), "jsonl or csv (env KITH_FORMAT; default: from FILE's extension: .jsonl, .ndjson, .json or .csv, each maybe with .gz)")
	mapSpec := fs.String("map", env("KITH_MAP", ""), "CSV column mapping: column=target,... with target userId, anonymousId, messageId, timestamp or traits.NAME[:number|:bool] (env KITH_MAP; default: from the header, see docs/import.md)")
	rejectsPath := fs.String("rejects", env("KITH_REJECTS", ""), "file for rejected lines, as JSONL (env KITH_REJECTS; default: FILE.rejects.jsonl, or stdin.rejects.jsonl)")
	batch := fs.Int("batch", envInt("KITH_BATCH", importer.DefaultBatch), "events per transaction (env KITH_BATCH)")
	quiet := fs.Bool("quiet", env("KITH_QUIET", "") == "1", "print neither progress nor the summary (env KITH_QUIET=1)")
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("kith import takes one FILE (or - for standard input), got %d: %w", fs.NArg(), errUsage)
	}
	path := fs.Arg(0)
	o := importer.Options{Workspace: *workspace, Source: *source, Batch: *batch}
	switch {
	case o.Workspace == "" || o.Source == "":
		return fmt.Errorf("kith import needs --workspace and --source: %w", errUsage)
	case o.Batch <= 0:
		return fmt.Errorf("--batch must be at least 1, not %d: %w", o.Batch, errUsage)
	}
	var err error
	if o.Format, err = importFormat(*format, path); err != nil {
		return err
	}
	if *mapSpec != "" {
		if o.Format != importer.CSV {
			return fmt.Errorf("--map applies to CSV files only: %w", errUsage)
		}
		if o.Mapping, err = importer.ParseMapping(*mapSpec); err != nil {
			return fmt.Errorf("--map: %w: %w", err, errUsage)
		}
	}

	in, size, err := openInput(path)
	if err != nil {
		return err
	}
	defer in.Close()
	st, reg, err := openRegistry(ctx, sf)
	if err != nil {
		return err
	}
	defer st.Close()
	if ws, ok := reg.Workspace(o.Workspace); ok {
		o.DedupWindow = ws.DedupWindow
	} // else importer.Run names the unknown workspace
	if *rejectsPath == "" {
		*rejectsPath = path + ".rejects.jsonl"
		if path == "-" {
			*rejectsPath = "stdin.rejects.jsonl"
		}
	}
	rejects, err := os.Create(*rejectsPath)
	if err != nil {
		return fmt.Errorf("create the rejects file: %w", err)
	}
	o.Rejects = rejects
	// The Tracking API's ingestion gate: the suppression list and the
	// consent storage requires (its counters go nowhere).
	o.Gate = gate.New(gate.Options{Store: st, Workspaces: reg, Metrics: prometheus.NewRegistry(),
		OnError: func(ws string, err error) {
			fmt.Fprintf(stderr, "kith import: reload the suppression list of %s: %v (the previous list stays in use)\n", ws, err)
		}})

	bar := &progressBar{w: stderr, size: size, read: &in.read, start: time.Now()}
	if !*quiet && isTerminal(stderr) {
		o.Progress = bar.show
	}
	sum, err := importer.Run(ctx, sealingStore{Store: st, reg: reg, ws: o.Workspace}, o, in) // sensitive.go
	bar.clear()
	if cerr := rejects.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("write the rejects file: %w", cerr)
	}
	if sum.Rejected == 0 {
		os.Remove(*rejectsPath) // nothing to report: leave no empty file behind
	}
	if !*quiet && sum.Lines > 0 {
		fmt.Fprintln(stdout, summaryLine(sum, o.Format, *rejectsPath))
	}
	if err != nil {
		return fmt.Errorf("%w (committed batches stay; run the import again to complete it)", err)
	}
	return nil
}

// parseInterspersed parses flags that may come before and after the FILE
// argument.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// importFormat is the format named by --format, or else by the file's
// extension.
func importFormat(flagValue, path string) (importer.Format, error) {
	name := flagValue
	if name == "" {
		if path == "-" {
			return "", fmt.Errorf("reading standard input needs --format jsonl or --format csv: %w", errUsage)
		}
		name = strings.TrimPrefix(filepath.Ext(strings.TrimSuffix(strings.ToLower(path), ".gz")), ".")
	}
	switch name {
	case "jsonl", "ndjson", "json":
		return importer.JSONL, nil
	case "csv":
		return importer.CSV, nil
	}
	if flagValue != "" {
		return "", fmt.Errorf("--format must be jsonl or csv, not %q: %w", flagValue, errUsage)
	}
	return "", fmt.Errorf("cannot tell the format of %s from its extension: pass --format jsonl or --format csv: %w", path, errUsage)
}

// input is the file being imported, inflated if it is gzipped, counting
// the bytes read from the file itself (for the progress bar).
type input struct {
	io.Reader
	read  int64
	close func() error
}

func (in *input) Close() error { return in.close() }

// openInput opens path ("-" for standard input) and returns it with its
// size, or 0 when unknown.
func openInput(path string) (*input, int64, error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, 0, fmt.Errorf("open the input: %w", err)
		}
	}
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	in := &input{close: f.Close}
	in.Reader = readFunc(func(p []byte) (int, error) {
		n, err := f.Read(p)
		in.read += int64(n)
		return n, err
	})
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		zr, err := gzip.NewReader(in.Reader)
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("open the input: %s is not gzip: %w", path, err)
		}
		in.Reader = zr
	}
	return in, size, nil
}

// readFunc is a function as an io.Reader.
type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// envDuration is env for a duration flag; a value that is not a duration
// gives -1, for the command's validation to report.
func envDuration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return -1
	}
	return d
}

// envInt is env for an integer flag; a value that is not a number is left
// for the flag's own check to refuse.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(env(name, strconv.Itoa(def))); err == nil {
		return n
	}
	return 0
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one status line, rewritten in place.
type progressBar struct {
	w     io.Writer
	size  int64  // bytes in the file, 0 if unknown
	read  *int64 // bytes read from the file so far
	start time.Time
	last  time.Time
	drawn bool
}

// show redraws the line at most five times a second.
func (p *progressBar) show(s importer.Summary) {
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last, p.drawn = now, true
	var b strings.Builder
	if p.size > 0 {
		fmt.Fprintf(&b, "%5.1f%%  ", 100*float64(*p.read)/float64(p.size))
	}
	fmt.Fprintf(&b, "%s  %d lines  %.0f events/s  %d rejected",
		megabytes(*p.read), s.Lines, float64(s.Events+s.Duplicates)/now.Sub(p.start).Seconds(), s.Rejected)
	fmt.Fprint(p.w, "\r"+b.String()+"\x1b[K")
}

// clear erases the line, if it was drawn.
func (p *progressBar) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func megabytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// summaryLine tells what an import did; the events the gate dropped are
// named only when there are some.
func summaryLine(s importer.Summary, f importer.Format, rejectsPath string) string {
	unit := "lines"
	if f == importer.CSV {
		unit = "rows"
	}
	line := fmt.Sprintf("imported %d events (%d duplicates) from %d %s, ", s.Events, s.Duplicates, s.Lines, unit)
	if s.Dropped > 0 {
		line += fmt.Sprintf("%d dropped (suppressed or no consent), ", s.Dropped)
	}
	line += fmt.Sprintf("%d rejected", s.Rejected)
	if s.Rejected > 0 {
		line += " → " + rejectsPath
	}
	return line
}
