package importer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/importer"
	"github.com/kithcdp/kith/store"
)

// bundle is the fixture of one test: a real SQLite store holding workspace
// "acme" with source "crm".
type bundle struct {
	ctx context.Context
	st  store.Store
	now time.Time
}

const (
	testWS  = "acme"
	testSrc = "crm"
)

func setup(t testing.TB) *bundle {
	t.Helper()
	ctx := context.Background()
	st := openTestStore(t)
	if err := st.PutWorkspace(ctx, store.Workspace{Slug: testWS, Settings: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutSource(ctx, store.Source{Workspace: testWS, Slug: testSrc, KeyHash: []byte("h"), Settings: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	return &bundle{ctx: ctx, st: st, now: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)}
}

// opts returns the options of an import into acme/crm.
func (b *bundle) opts(f importer.Format) importer.Options {
	return importer.Options{Workspace: testWS, Source: testSrc, Format: f, Now: func() time.Time { return b.now }}
}

// run imports input and returns the summary and the rejects.
func (b *bundle) run(t testing.TB, o importer.Options, input string) (importer.Summary, []importer.Reject) {
	t.Helper()
	var rej bytes.Buffer
	o.Rejects = &rej
	sum, err := importer.Run(b.ctx, b.st, o, strings.NewReader(input))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var rejects []importer.Reject
	for line := range strings.Lines(rej.String()) {
		var r importer.Reject
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("rejects file line %q: %v", line, err)
		}
		rejects = append(rejects, r)
	}
	if int64(len(rejects)) != sum.Rejected {
		t.Errorf("%d rejects written, summary says %d", len(rejects), sum.Rejected)
	}
	if sum.Bytes != int64(len(input)) {
		t.Errorf("summary counts %d bytes, input has %d", sum.Bytes, len(input))
	}
	return sum, rejects
}

// events returns the workspace's log.
func (b *bundle) events(t testing.TB) []store.Event {
	t.Helper()
	var all []store.Event
	for after := int64(0); ; {
		evs, err := b.st.Read(b.ctx, store.LogQuery{Workspace: testWS, After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Position
	}
}

// member reads a top-level member of a raw event.
func member(t testing.TB, raw []byte, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("raw %s: %v", raw, err)
	}
	return m[name]
}

func TestJSONL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	input := "\xef\xbb\xbf" + `{"type":"identify","userId":"u1","messageId":"m1","traits":{"email":"a@example.com"}}` + "\r\n" +
		`{"type":"track","userId":"u1","event":"Order Completed","properties":{"messageId":"nested"}}` + "\n" +
		"\n" +
		"   \t\n" +
		`{"type":"track","userId":"u1"}` + "\n" +
		`{"type":"page","anonymousId":"a1","name":"Home","messageId":null}` + "\n" +
		`{"type":"track","userId":"u1","event":` + "\n" +
		`{"userId":"u2"}` + "\n" +
		`{"type":"order","userId":"u2"}` + "\n" +
		`{"type":"batch","batch":[]}` + "\n" +
		`{"type":7,"userId":"u2"}` + "\n" +
		`[1,2]` + "\n" +
		`{"type":"alias","userId":"u3","previousId":"a1","timestamp":"2020-03-01T10:00:00Z","sentAt":"2020-03-01T10:00:05Z"}` // no final newline
	sum, rejects := b.run(t, b.opts(importer.JSONL), input)

	want := importer.Summary{Bytes: int64(len(input)), Lines: 13, Events: 4, Rejected: 7}
	if sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	wantRejects := []struct {
		line int64
		code string
	}{{5, "missing_event"}, {7, "invalid_json"}, {8, "unknown_type"}, {9, "unknown_type"}, {10, "unknown_type"}, {11, "invalid_type"}, {12, "invalid_type"}}
	if len(rejects) != len(wantRejects) {
		t.Fatalf("rejects %+v, want %v", rejects, wantRejects)
	}
	for i, w := range wantRejects {
		if r := rejects[i]; r.Line != w.line || r.Code != w.code || r.Message == "" || r.Raw == "" {
			t.Errorf("reject %d: %+v, want line %d code %s", i, r, w.line, w.code)
		}
	}
	if rejects[0].Raw != `{"type":"track","userId":"u1"}` {
		t.Errorf("raw of the rejected line: %q", rejects[0].Raw)
	}

	evs := b.events(t)
	if len(evs) != 4 {
		t.Fatalf("%d events in the log, want 4", len(evs))
	}
	for i, w := range []struct{ typ, mid string }{{"identify", "m1"}, {"track", "imp-"}, {"page", "imp-"}, {"alias", "imp-"}} {
		e := evs[i]
		if e.Type != w.typ || !strings.HasPrefix(e.MessageID, w.mid) || e.Workspace != testWS || e.Source != testSrc {
			t.Errorf("event %d: %s %q %s/%s, want %s %s…", i, e.Type, e.MessageID, e.Workspace, e.Source, w.typ, w.mid)
		}
		if got := member(t, e.Raw, "messageId"); got != e.MessageID {
			t.Errorf("event %d: raw messageId %v, column %q", i, got, e.MessageID)
		}
		if !e.ReceivedAt.Equal(b.now) {
			t.Errorf("event %d: receivedAt %s, want the import's time", i, e.ReceivedAt)
		}
	}
	if len(evs[1].MessageID) != len("imp-")+32 || evs[1].Flags&store.FlagMessageIDGenerated == 0 {
		t.Errorf("generated messageId %q flags %b", evs[1].MessageID, evs[1].Flags)
	}
	if want := `{"type":"page","anonymousId":"a1","name":"Home","messageId":"` + evs[2].MessageID + `"}`; string(evs[2].Raw) != want {
		t.Errorf("a null messageId is replaced in place: %s, want %s", evs[2].Raw, want)
	}
	// A file's times are kept as recorded: sentAt does not shift them.
	if ts := evs[3].Timestamp; !ts.Equal(time.Date(2020, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("alias timestamp %s, want 2020-03-01T10:00:00Z", ts)
	}
}

func TestLongLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	long := `{"type":"track","userId":"u1","event":"E","properties":{"x":"` + strings.Repeat("x", 100<<10) + `"}}`
	// over fits the line buffer but not the event limit: ingest refuses it.
	over := `{"type":"track","userId":"u1","event":"E","properties":{"x":"` + strings.Repeat("y", 32<<10) + `"}}`
	over = over[:32<<10-40] + over[len(over)-40:]
	over = strings.Replace(over, `"x":"`, `"x":"zz`, 1) // 32,769 bytes
	input := long + "\n" + over + "\n" + `{"type":"track","userId":"u1","event":"After"}` + "\n"
	sum, rejects := b.run(t, b.opts(importer.JSONL), input)
	if sum.Lines != 3 || sum.Events != 1 || sum.Rejected != 2 {
		t.Errorf("summary %+v", sum)
	}
	for i, r := range rejects {
		if r.Line != int64(i+1) || r.Code != "event_too_large" {
			t.Errorf("reject %+v, want line %d event_too_large", r, i+1)
		}
	}
	if len(rejects[0].Raw) != 1024 {
		t.Errorf("an over-long line is cut to 1 KiB in the rejects file, got %d bytes", len(rejects[0].Raw))
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m, err := importer.ParseMapping("crm_id=userId, email=traits.email,first_name=traits.firstName,age=traits.age:number,vip=traits.vip:bool,signup=timestamp")
	if err != nil {
		t.Fatal(err)
	}
	o := b.opts(importer.CSV)
	o.Mapping = m
	input := "crm_id,email,first_name,age,vip,signup,notes\n" + // line 1
		"c1,ada@example.com,Ada,36,true,2024-01-02 10:00:00,ignored\n" + // line 2
		`c2,"bob@example.com","Bob ""B"" Jones",,0,,"two` + "\n" + `lines"` + "\n" + // lines 3-4
		"c3,carol@example.com,\"Car\nol\",x1,t,,\n" + // lines 5-6: bad number
		"c4,dan@example.com,Dan,40,maybe,,\n" + // line 7: bad bool
		"c5,eve@example.com,Eve\n" + // line 8: too few fields
		"c6,fay@example.com,Fay,1e3,F,2023-05-06T07:08:09Z,\n" + // line 9
		"c7,gus@example.com,G\"us,1,1,,\n" + // line 10: bare quote
		",nobody@example.com,None,,,,\n" + // line 11: no identity
		"c8,hal@example.com,Hal,5,1,not a date,\n" + // line 12: bad timestamp
		"\n" + // line 13: blank, skipped
		"c9,,Ivy,-2.5,,,\n" // line 14
	sum, rejects := b.run(t, o, input)
	if want := (importer.Summary{Bytes: int64(len(input)), Lines: 10, Events: 4, Rejected: 6}); sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	wantRejects := []struct {
		line int64
		code string
	}{{5, "invalid_value"}, {7, "invalid_value"}, {8, "invalid_csv"}, {10, "invalid_csv"}, {11, "missing_identity"}, {12, "invalid_timestamp"}}
	if len(rejects) != len(wantRejects) {
		t.Fatalf("rejects %+v, want %v", rejects, wantRejects)
	}
	for i, w := range wantRejects {
		if r := rejects[i]; r.Line != w.line || r.Code != w.code || r.Message == "" {
			t.Errorf("reject %d: %+v, want line %d code %s", i, r, w.line, w.code)
		}
	}
	if want := "c3,carol@example.com,\"Car\nol\",x1,t,,"; rejects[0].Raw != want {
		t.Errorf("raw of a rejected row: %q, want %q", rejects[0].Raw, want)
	}

	evs := b.events(t)
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4", len(evs))
	}
	wantRaw := []string{
		`{"type":"identify","userId":"c1","timestamp":"2024-01-02 10:00:00","traits":{"email":"ada@example.com","firstName":"Ada","age":36,"vip":true},"messageId":"` + evs[0].MessageID + `"}`,
		`{"type":"identify","userId":"c2","traits":{"email":"bob@example.com","firstName":"Bob \"B\" Jones","vip":false},"messageId":"` + evs[1].MessageID + `"}`,
		`{"type":"identify","userId":"c6","timestamp":"2023-05-06T07:08:09Z","traits":{"email":"fay@example.com","firstName":"Fay","age":1e3,"vip":false},"messageId":"` + evs[2].MessageID + `"}`,
		`{"type":"identify","userId":"c9","traits":{"firstName":"Ivy","age":-2.5},"messageId":"` + evs[3].MessageID + `"}`,
	}
	for i, e := range evs {
		if e.Type != "identify" || !strings.HasPrefix(e.MessageID, "imp-") {
			t.Errorf("event %d: %s %s", i, e.Type, e.MessageID)
		}
		if string(e.Raw) != wantRaw[i] {
			t.Errorf("event %d raw\n got %s\nwant %s", i, e.Raw, wantRaw[i])
		}
	}
	if !evs[0].Timestamp.Equal(time.Date(2024, 1, 2, 10, 0, 0, 0, time.UTC)) || !evs[1].Timestamp.Equal(b.now) {
		t.Errorf("timestamps %s %s", evs[0].Timestamp, evs[1].Timestamp)
	}
}

func TestCSVDefaultMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		input   string
		userID  string
		anonID  string
		traits  map[string]any
		wantErr string
	}{
		{"user_id column", "\xef\xbb\xbfUser_ID,email,plan\n42,a@example.com,pro\n", "42", "", map[string]any{"email": "a@example.com", "plan": "pro"}, ""},
		{"email alone is also the userId", "Email,plan\na@example.com,free\n", "a@example.com", "", map[string]any{"Email": "a@example.com", "plan": "free"}, ""},
		{"anonymous_id", "anonymous_id,messageId,timestamp,n\nx1,m-1,2025-01-01,7\n", "", "x1", map[string]any{"n": "7"}, ""},
		{"no identity column", "name,plan\nAda,pro\n", "", "", nil, "no userId"},
		{"empty file", "", "", "", nil, "empty"},
		{"duplicate column", "userId,plan,plan\n1,a,b\n", "", "", nil, "more than once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			o := b.opts(importer.CSV)
			_, err := importer.Run(b.ctx, b.st, o, strings.NewReader(c.input))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			evs := b.events(t)
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			e := evs[0]
			if e.UserID != c.userID || e.AnonymousID != c.anonID {
				t.Errorf("userId %q anonymousId %q", e.UserID, e.AnonymousID)
			}
			got, _ := member(t, e.Raw, "traits").(map[string]any)
			if fmt.Sprint(got) != fmt.Sprint(c.traits) {
				t.Errorf("traits %v, want %v (raw %s)", got, c.traits, e.Raw)
			}
		})
	}
}

func TestParseMapping(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		spec string
		ok   bool
	}{
		{"email=traits.email", true},
		{"email=userId,email=traits.email", true},
		{"a=traits.n:number,b=traits.b:bool,c=traits.s:string,d=anonymousId,e=messageId,f=timestamp", true},
		{"a=b=traits.x", true}, // the last = separates
		{"", false},
		{"email", false},
		{"=userId", false},
		{"a=traits.", false},
		{"a=traits.x:int", false},
		{"a=userId:number", false},
		{"a=groupId", false},
		{"a=userId,b=userId", false},
		{"a=traits.x,b=traits.x", false},
	} {
		_, err := importer.ParseMapping(c.spec)
		if (err == nil) != c.ok {
			t.Errorf("ParseMapping(%q): %v, want ok=%v", c.spec, err, c.ok)
		}
	}
}

func TestMappingNamesMissingColumn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := b.opts(importer.CSV)
	o.Mapping, _ = importer.ParseMapping("id=userId")
	_, err := importer.Run(b.ctx, b.st, o, strings.NewReader("user,email\n1,a@example.com\n"))
	if err == nil || !strings.Contains(err.Error(), `"id"`) {
		t.Fatalf("error %v, want one naming the column", err)
	}
}

// Running an import again stores nothing new: every event is a duplicate.
func TestIdempotentRerun(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		format importer.Format
		input  string
		events int64
	}{
		{"jsonl", importer.JSONL, `{"type":"track","userId":"u1","event":"A"}` + "\n" +
			`{"type":"track","userId":"u1","event":"B","messageId":"given"}` + "\n" +
			`{"type":"identify","userId":"u2"}` + "\n" + `not json` + "\n", 3},
		{"csv", importer.CSV, "userId,email\n1,a@example.com\n2,b@example.com\n3,c@example.com\n,\n", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			o := b.opts(c.format)
			o.Batch = 2
			first, _ := b.run(t, o, c.input)
			b.now = b.now.Add(time.Hour)
			second, _ := b.run(t, o, c.input)
			if first.Events != c.events || first.Duplicates != 0 || first.Rejected != 1 {
				t.Errorf("first run %+v", first)
			}
			if second.Events != 0 || second.Duplicates != c.events || second.Rejected != 1 {
				t.Errorf("second run %+v, want 0 events, %d duplicates", second, c.events)
			}
			if n := len(b.events(t)); int64(n) != c.events {
				t.Errorf("%d events in the log, want %d", n, c.events)
			}
		})
	}
}

func TestUnknownTarget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []struct {
		ws, src string
		want    error
	}{
		{"nope", testSrc, importer.ErrUnknownWorkspace},
		{testWS, "nope", importer.ErrUnknownSource},
	} {
		o := b.opts(importer.JSONL)
		o.Workspace, o.Source = c.ws, c.src
		_, err := importer.Run(b.ctx, b.st, o, strings.NewReader(`{"type":"track","userId":"u","event":"E"}`))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("%s/%s: %v, want %v", c.ws, c.src, err, c.want)
		}
	}
	if n := len(b.events(t)); n != 0 {
		t.Errorf("%d events stored", n)
	}
}

// An input that fails to be read stops the import with an error; what was
// committed stays.
func TestReadError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := b.opts(importer.JSONL)
	o.Batch = 1
	r := io.MultiReader(strings.NewReader(`{"type":"track","userId":"u","event":"E"}`+"\n"), errReader{})
	sum, err := importer.Run(b.ctx, b.st, o, r)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v, want a read error at line 2", err)
	}
	if sum.Events != 1 || len(b.events(t)) != 1 {
		t.Errorf("summary %+v", sum)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// generate writes n JSONL lines (or CSV rows after a header) to a pipe, so
// that the input is never held in memory.
func generate(format importer.Format, n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriter(pw)
		if format == importer.CSV {
			fmt.Fprintln(w, "user_id,email,plan,country")
		}
		for i := range n {
			if format == importer.CSV {
				fmt.Fprintf(w, "u%d,user%d@example.com,pro,DE\n", i, i)
				continue
			}
			fmt.Fprintf(w, `{"type":"track","userId":"u%d","event":"Order Completed","timestamp":"2025-06-01T12:00:00Z","properties":{"orderId":"o-%d","total":99.5,"currency":"EUR","items":[{"sku":"sku-1","qty":2}]},"context":{"ip":"203.0.113.9","library":{"name":"kith-test","version":"1"}}}`+"\n", i%5000, i)
		}
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

// A large import runs in bounded memory: the heap stays far below what the
// input would take if it were held.
func TestLargeImportBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 200,000 lines")
	}
	b := setup(t)
	const lines = 200_000 // about 55 MB of JSONL
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	sum, err := importer.Run(b.ctx, b.st, b.opts(importer.JSONL), generate(importer.JSONL, lines))
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Events != lines || sum.Lines != lines || sum.Rejected != 0 {
		t.Errorf("summary %+v", sum)
	}
	const bound = 48 << 20
	t.Logf("imported %d bytes; peak heap %.1f MiB", sum.Bytes, float64(peak.Load())/(1<<20))
	if peak.Load() > bound {
		t.Errorf("peak heap %d MiB, want under %d MiB", peak.Load()>>20, bound>>20)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := b.opts(importer.CSV)
	o.Batch = 100
	var calls []importer.Summary
	o.Progress = func(s importer.Summary) { calls = append(calls, s) }
	sum, err := importer.Run(b.ctx, b.st, o, generate(importer.CSV, 3000))
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 30 || calls[len(calls)-1] != sum {
		t.Fatalf("%d progress calls, the last %+v; summary %+v", len(calls), calls[len(calls)-1], sum)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Lines < calls[i-1].Lines || calls[i].Events < calls[i-1].Events || calls[i].Bytes < calls[i-1].Bytes {
			t.Fatalf("progress went back: %+v then %+v", calls[i-1], calls[i])
		}
	}
}

func TestCanceled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	_, err := importer.Run(ctx, b.st, b.opts(importer.JSONL), strings.NewReader(`{"type":"track","userId":"u","event":"E"}`))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// countingStore counts the appends made to its store.
type countingStore struct {
	store.Store
	appends int
}

func (c *countingStore) Append(ctx context.Context, b *store.Batch, dedupWindow time.Duration) ([]store.Appended, error) {
	c.appends++
	return c.Store.Append(ctx, b, dedupWindow)
}

// dropGate drops the events of one userId, as gate.Gate drops a suppressed
// person's.
type dropGate struct {
	userID string
	err    error
}

func (g dropGate) Filter(_ context.Context, ws string, b *store.Batch) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	kept := b.Events[:0]
	for _, e := range b.Events {
		if e.Workspace == ws && e.UserID != g.userID {
			kept = append(kept, e)
		}
	}
	n := len(b.Events) - len(kept)
	b.Events = kept
	return n, nil
}

// The gate's dropped events are counted, stored nowhere and not written
// to the rejects file; a batch the gate empties is not appended.
func TestGate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := b.opts(importer.JSONL)
	o.Batch = 2
	o.Gate = dropGate{userID: "erased"}
	input := `{"type":"identify","userId":"erased","traits":{"email":"gone@example.com"}}` + "\n" +
		`{"type":"track","userId":"erased","event":"Viewed"}` + "\n" + // a batch of dropped events only
		`{"type":"track","userId":"u1","event":"Viewed"}` + "\n" +
		`{"type":"track","userId":"erased","event":"Viewed again"}` + "\n" +
		`{"type":"track","userId":"u1"}` + "\n" // rejected: no event name
	sum, rejects := b.run(t, o, input)
	if want := (importer.Summary{Bytes: int64(len(input)), Lines: 5, Events: 1, Dropped: 3, Rejected: 1}); sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if len(rejects) != 1 || strings.Contains(rejects[0].Raw, "erased") {
		t.Errorf("rejects %+v; want only line 5's", rejects)
	}
	if evs := b.events(t); len(evs) != 1 || evs[0].UserID != "u1" {
		t.Errorf("stored %+v; want u1's event only", evs)
	}

	// Only the batch the gate leaves events in is appended.
	cs := &countingStore{Store: b.st}
	o.Rejects = nil
	more := `{"type":"track","userId":"erased","event":"Viewed"}` + "\n" + `{"type":"track","userId":"erased","event":"Left"}` + "\n" +
		`{"type":"track","userId":"u2","event":"Viewed"}` + "\n"
	if sum, err := importer.Run(b.ctx, cs, o, strings.NewReader(more)); err != nil || sum.Dropped != 2 || sum.Events != 1 || cs.appends != 1 {
		t.Errorf("Run: %+v, %v, %d appends; want 2 dropped, 1 event, 1 append", sum, err, cs.appends)
	}

	// A gate that fails stops the import.
	o.Gate = dropGate{err: errors.New("suppression list unavailable")}
	if _, err := importer.Run(b.ctx, b.st, o, strings.NewReader(input)); err == nil || !strings.Contains(err.Error(), "suppression list unavailable") {
		t.Errorf("Run with a failing gate: %v", err)
	}
}
