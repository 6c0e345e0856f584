package importer_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kithcdp/kith/importer"
)

// FuzzImportJSONL imports any input as JSONL. It must never panic or fail
// (the input is read from memory and every bad line is a reject), and the
// counts must agree: at most one event per line, and one reject per
// rejected line, in line order.
func FuzzImportJSONL(f *testing.F) {
	for _, s := range []string{
		"",
		"\n\n",
		`{"type":"track","userId":"u","event":"E"}`,
		"\xef\xbb\xbf" + `{"type":"identify","userId":"u","messageId":null}` + "\r\n" + `{"type":"page","anonymousId":"a"}`,
		`{"type":"track","userId":"u","event":` + "\n" + `[1]` + "\n" + `{"type":7}` + "\n" + `{"type":"batch","batch":[]}`,
		`{"type":"alias","userId":"u","previousId":"p","messageId" : "" , "sentAt":"2020-01-01T00:00:00Z"}`,
		`{"type":"group","userId":"u","groupId":"g","message\u0049d":null}`,
		`{"type":"track","userId":"u","event":"E","properties":{"messageId":"x"},"messageId":""}`,
		"{\"type\":\"track\",\"userId\":\"\xff\",\"event\":\"E\"}",
	} {
		f.Add([]byte(s))
	}
	b := setup(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		o := b.opts(importer.JSONL)
		var rej bytes.Buffer
		o.Rejects = &rej
		sum, err := importer.Run(b.ctx, b.st, o, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkCounts(t, sum, rej.Bytes(), true)
	})
}

// FuzzImportCSV imports any input as CSV, with a mapping parsed from any
// spec (or the default mapping when the spec does not parse). It must
// never panic, and when it succeeds the counts must agree.
func FuzzImportCSV(f *testing.F) {
	for _, c := range []struct{ spec, data string }{
		{"", "userId,email\n1,a@example.com\n"},
		{"", "\xef\xbb\xbfEmail,plan\na@example.com,pro\n\n"},
		{"id=userId,n=traits.n:number,b=traits.b:bool,t=timestamp", "id,n,b,t\n1,2,true,2020-01-01\n2,x,maybe,\n3,\"4\n\",0,bad\n"},
		{"id=userId", "id,x\n1,\"a\"\"b\"\n2,\"open\n3,b\"c\n"},
		{"a=b=traits.x,c=messageId", "a=b,c\n1,\n"},
		{"", "userId,plan,plan\n"},
		{"", ""},
	} {
		f.Add(c.spec, []byte(c.data))
	}
	b := setup(f)
	f.Fuzz(func(t *testing.T, spec string, data []byte) {
		o := b.opts(importer.CSV)
		o.Mapping, _ = importer.ParseMapping(spec)
		var rej bytes.Buffer
		o.Rejects = &rej
		sum, err := importer.Run(b.ctx, b.st, o, bytes.NewReader(data))
		if err != nil {
			return // a header or mapping the import cannot use
		}
		checkCounts(t, sum, rej.Bytes(), false)
	})
}

// checkCounts checks a summary against its rejects file. Rows of a CSV
// file may span lines, so their line numbers are only checked for order.
func checkCounts(t *testing.T, sum importer.Summary, rejects []byte, lineBound bool) {
	t.Helper()
	if sum.Events+sum.Duplicates+sum.Rejected > sum.Lines {
		t.Fatalf("more outcomes than lines: %+v", sum)
	}
	dec := json.NewDecoder(bytes.NewReader(rejects))
	var n, last int64
	for dec.More() {
		var r importer.Reject
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("rejects file: %v", err)
		}
		if r.Line <= last || r.Code == "" || r.Message == "" || (lineBound && r.Line > sum.Lines) {
			t.Fatalf("reject %+v after line %d (%d lines)", r, last, sum.Lines)
		}
		last = r.Line
		n++
	}
	if n != sum.Rejected {
		t.Fatalf("%d rejects written, summary says %d", n, sum.Rejected)
	}
}
