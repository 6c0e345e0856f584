// Package importer streams files of events into a workspace's log: JSONL,
// one Tracking API call per line, and CSV, whose rows a column mapping turns
// into identify calls (the CRM export case).
//
// Every line goes through package ingest, exactly as an HTTP call would, and
// the valid events are appended to the log in batches, one transaction per
// batch. An import reads its input once, front to back, and holds at most
// one batch of events in memory, whatever the size of the file.
//
// Re-running an import is safe: a line without a messageId gets one derived
// from the workspace, the source and the line's bytes ("imp-" and 32 hex
// digits), so the log's messageId dedup recognises the line the second time.
//
// Lines that fail (malformed JSON, an invalid call, a bad CSV row) do not
// stop the import: each is written to the rejects file as one JSON object
// with its line number, a stable code and a message (see Reject), and
// nothing of it is stored — not even in the quarantine, because the file is
// the better place to correct it: fix the lines and run the import again,
// and only the corrected lines are new.
//
// Valid events can still be dropped before they are stored, by the gate
// of Options.Gate (the ingestion gate of the Tracking API: the suppression
// list and the consent storage requires). They are counted as dropped and
// are not written to the rejects file: the file would hold the personal
// data the gate keeps out.
package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/store"
)

// Format is the layout of an input.
type Format string

// The input formats.
const (
	JSONL Format = "jsonl" // one Tracking API call (a JSON object with a "type") per line
	CSV   Format = "csv"   // RFC 4180 with a header row; each row becomes an identify call
)

// DefaultBatch is the number of events appended per transaction when
// Options.Batch is zero.
const DefaultBatch = 1000

// Store is the part of store.Store an import uses.
type Store interface {
	Append(ctx context.Context, b *store.Batch, dedupWindow time.Duration) ([]store.Appended, error)
	Workspaces(ctx context.Context) ([]store.Workspace, error)
	Sources(ctx context.Context) ([]store.Source, error)
}

// Gate decides, before each append, which events of a batch may be
// stored: it removes the others from the batch and returns how many it
// removed. *gate.Gate implements it.
type Gate interface {
	Filter(ctx context.Context, workspace string, b *store.Batch) (droppedEvents int, err error)
}

// Options describe one import.
type Options struct {
	Workspace string // slug of an existing workspace; required
	Source    string // slug of an existing source of that workspace; required
	Format    Format // JSONL or CSV; required
	// Mapping turns CSV columns into identify fields. Nil means the default
	// mapping read from the header (see ParseMapping and DefaultMapping).
	Mapping *Mapping
	// Batch is the number of events per transaction (DefaultBatch if 0).
	Batch int
	// DedupWindow is the workspace's messageId dedup window
	// (tenant.Workspace.DedupWindow); config.DefaultDedupWindow if 0.
	DedupWindow time.Duration
	// Limits bound each event (ingest.DefaultLimits if zero).
	Limits ingest.Limits
	// Gate, if set, filters each batch before it is appended; nil stores
	// every valid event.
	Gate Gate
	// Rejects receives one JSON object per rejected line (see Reject). Nil
	// discards them; they are still counted.
	Rejects io.Writer
	// Progress, if set, is called now and then during the import and once at
	// the end with the counts so far.
	Progress func(Summary)
	// Now gives receivedAt (time.Now if nil).
	Now func() time.Time
}

// Summary counts what an import did.
type Summary struct {
	Bytes      int64 // bytes read from the input
	Lines      int64 // JSONL: lines read, blank ones included; CSV: rows read after the header
	Events     int64 // events appended to the log
	Duplicates int64 // valid events the log already held (same messageId)
	Dropped    int64 // valid events Options.Gate kept out of the log
	Rejected   int64 // lines or rows written to Options.Rejects
}

// Reject is one line of the rejects file.
type Reject struct {
	Line    int64  `json:"line"`    // 1-based line of the input where the line or row starts
	Code    string `json:"code"`    // stable snake_case reason: ingest's codes, plus invalid_csv
	Message string `json:"message"` // what is wrong, for people
	Raw     string `json:"raw"`     // the line or row as read (cut at 1 KiB for over-long lines)
}

// Errors callers branch on.
var (
	ErrUnknownWorkspace = errors.New("unknown workspace")
	ErrUnknownSource    = errors.New("unknown source")
)

// progressEvery is how many lines pass between Progress calls (besides one
// after each commit).
const progressEvery = 1024

// Run imports r into the log of opts.Workspace and reports what it did. It
// stops at the first error it cannot put in the rejects file — the input
// cannot be read, the store fails, ctx is done — and then returns the
// counts so far with the error; the batches committed until then stay, and
// running the import again completes it.
func Run(ctx context.Context, st Store, opts Options, r io.Reader) (Summary, error) {
	if err := checkTarget(ctx, st, opts.Workspace, opts.Source); err != nil {
		return Summary{}, err
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Limits == (ingest.Limits{}) {
		opts.Limits = ingest.DefaultLimits()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DedupWindow <= 0 {
		opts.DedupWindow = config.DefaultDedupWindow
	}
	im := &importer{ctx: ctx, st: st, opts: opts, in: &countingReader{r: r}}
	if opts.Rejects != nil {
		im.rejects = json.NewEncoder(opts.Rejects)
		im.rejects.SetEscapeHTML(false)
	}
	var err error
	switch opts.Format {
	case JSONL:
		err = im.jsonl()
	case CSV:
		err = im.csv()
	default:
		return Summary{}, fmt.Errorf("import: unknown format %q: use %q or %q", opts.Format, JSONL, CSV)
	}
	if err == nil {
		err = im.flush()
	}
	im.sum.Bytes = im.in.n
	if opts.Progress != nil {
		opts.Progress(im.sum)
	}
	return im.sum, err
}

// checkTarget verifies that the workspace and its source exist.
func checkTarget(ctx context.Context, st Store, workspace, source string) error {
	wss, err := st.Workspaces(ctx)
	if err != nil {
		return fmt.Errorf("import: list workspaces: %w", err)
	}
	found := false
	for _, w := range wss {
		found = found || w.Slug == workspace
	}
	if !found {
		return fmt.Errorf("import: %w %q: declare it in the config file and start kith serve once", ErrUnknownWorkspace, workspace)
	}
	srcs, err := st.Sources(ctx)
	if err != nil {
		return fmt.Errorf("import: list sources: %w", err)
	}
	for _, s := range srcs {
		if s.Workspace == workspace && s.Slug == source {
			return nil
		}
	}
	return fmt.Errorf("import: %w %q in workspace %q: declare it in the config file and start kith serve once", ErrUnknownSource, source, workspace)
}

// importer is the state of one Run.
type importer struct {
	ctx     context.Context
	st      Store
	opts    Options
	in      *countingReader
	rejects *json.Encoder
	batch   store.Batch
	wrap    []byte // the batch body around the line being decoded
	sum     Summary
}

// line counts one line or row read, and reports progress now and then.
func (im *importer) line() {
	im.sum.Lines++
	if im.opts.Progress != nil && im.sum.Lines%progressEvery == 0 {
		im.sum.Bytes = im.in.n
		im.opts.Progress(im.sum)
	}
}

// add decodes body, the call read at line, and queues its event for the
// log, or rejects it.
func (im *importer) add(line int64, body []byte) error {
	e, ie := im.decode(body)
	if ie != nil {
		return im.reject(line, ie.Code, ie.Message, body)
	}
	e.Workspace, e.Source = im.opts.Workspace, im.opts.Source
	if e.Flags&store.FlagMessageIDGenerated != 0 {
		e.MessageID = stableID(im.opts.Workspace, im.opts.Source, body)
		e.Raw = setMessageID(e.Raw, e.MessageID)
	}
	im.batch.Events = append(im.batch.Events, e)
	if len(im.batch.Events) >= im.opts.Batch {
		return im.flush()
	}
	return nil
}

// decode validates body with ingest as the one event of a batch, so that
// ingest reads its call from its "type" and judges everything about it.
// A body that is not one JSON object is decoded alone, for ingest to name
// the fault: wrapped, it could read as more than one event.
func (im *importer) decode(body []byte) (store.Event, *ingest.Error) {
	rx := im.opts.Now().UTC()
	body = bytes.TrimSpace(body)
	if !json.Valid(body) || body[0] != '{' {
		_, err := ingest.Decode(ingest.Input{Body: body, ReceivedAt: rx}, im.opts.Limits)
		var ie *ingest.Error
		if errors.As(err, &ie) {
			return store.Event{}, ie
		}
		return store.Event{}, &ingest.Error{Code: ingest.CodeInvalidJSON, Message: "the line is not a JSON object"}
	}
	im.wrap = append(append(append(im.wrap[:0], `{"batch":[`...), body...), `]}`...)
	out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: im.wrap, ReceivedAt: rx, KeepTimes: true}, im.opts.Limits)
	switch {
	case err != nil:
		var ie *ingest.Error
		if errors.As(err, &ie) {
			return store.Event{}, ie
		}
		return store.Event{}, &ingest.Error{Code: ingest.CodeInvalidJSON, Message: err.Error()}
	case len(out.Rejected) > 0:
		return store.Event{}, &ingest.Error{Code: out.Rejected[0].Code, Message: out.Rejected[0].Message}
	}
	return out.Events[0], nil
}

// flush passes the queued events through the gate and appends those it
// keeps in one transaction.
func (im *importer) flush() error {
	if len(im.batch.Events) == 0 {
		return nil
	}
	queued := im.batch.Events
	if im.opts.Gate != nil {
		dropped, err := im.opts.Gate.Filter(im.ctx, im.opts.Workspace, &im.batch)
		if err != nil {
			return fmt.Errorf("import: apply the ingestion gate to %d events: %w", len(im.batch.Events), err)
		}
		im.sum.Dropped += int64(dropped)
	}
	var res []store.Appended
	if len(im.batch.Events) > 0 {
		var err error
		if res, err = im.st.Append(im.ctx, &im.batch, im.opts.DedupWindow); err != nil {
			return fmt.Errorf("import: append %d events to the log: %w", len(im.batch.Events), err)
		}
	}
	for _, a := range res {
		if a.Duplicate {
			im.sum.Duplicates++
		} else {
			im.sum.Events++
		}
	}
	clear(queued) // drop the raw bytes (the dropped events' too) for the collector
	im.batch.Events = queued[:0]
	if im.opts.Progress != nil {
		im.sum.Bytes = im.in.n
		im.opts.Progress(im.sum)
	}
	return nil
}

// reject writes one rejected line to the rejects file.
func (im *importer) reject(line int64, code, msg string, raw []byte) error {
	im.sum.Rejected++
	if im.rejects == nil {
		return nil
	}
	if err := im.rejects.Encode(Reject{Line: line, Code: code, Message: msg, Raw: string(raw)}); err != nil {
		return fmt.Errorf("import: write the rejection of line %d: %w", line, err)
	}
	return nil
}

// stableID derives a messageId from where an event goes and its bytes, so
// that importing the same line again yields the same messageId.
func stableID(workspace, source string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(workspace))
	h.Write([]byte{0})
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(body)
	return "imp-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// setMessageID returns the event object raw with its top-level messageId
// set to id: a messageId member that is null or "" is replaced in place,
// else one is added at the end. raw is a valid JSON object with at least
// one member (ingest has checked it).
func setMessageID(raw []byte, id string) []byte {
	val := `"` + id + `"` // id is hex: nothing to escape
	// Without these bytes, raw has no messageId member (a key may also be
	// spelled with \u escapes).
	if bytes.Contains(raw, []byte("messageId")) || bytes.Contains(raw, []byte(`\u`)) {
		if start, end, ok := memberValue(raw, "messageId"); ok {
			out := make([]byte, 0, len(raw)+len(val))
			out = append(out, raw[:start]...)
			out = append(out, val...)
			return append(out, raw[end:]...)
		}
	}
	closing := bytes.LastIndexByte(raw, '}')
	out := make([]byte, 0, len(raw)+len(val)+14)
	out = append(out, raw[:closing]...)
	out = append(out, `,"messageId":`...)
	out = append(out, val...)
	return append(out, raw[closing:]...)
}

// memberValue returns the byte range of the value of the top-level member
// key of the JSON object obj.
func memberValue(obj []byte, key string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // the opening brace
		return 0, 0, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, 0, false
		}
		if k, _ := t.(string); k == key {
			end := int(dec.InputOffset())
			return end - len(v), end, true
		}
	}
	return 0, 0, false
}

// countingReader counts the bytes read through it, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
