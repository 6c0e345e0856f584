package ingest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecode feeds Decode any body for any call. It must never panic, and
// what it returns must be consistent: an *Error and nothing else, or events
// whose raw bytes are JSON objects agreeing with the event's columns, and
// one rejection per quarantined event at a valid position of the batch.
func FuzzDecode(f *testing.F) {
	calls := []Call{CallBatch, CallTrack, CallIdentify, CallPage, CallScreen, CallGroup, CallAlias}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), b)
		f.Add(uint8(1), b)
	}
	for i, c := range badEvents {
		f.Add(uint8(i%len(calls)), []byte(c.event))
		f.Add(uint8(0), []byte(`{"batch":[`+c.event+`],"context":{"a":1},"sentAt":"2026-01-01T00:00:00Z"}`))
	}
	for _, s := range []string{``, `{}`, `[]`, `{"batch":[1,{},[]]}`, `{"batch":{}}`, "{\"batch\":[{\"userId\":\"\xff\"}]}",
		`{"writeKey":"k","integrations":{"x":true},"batch":[{"type":"track","userId":"u","event":"E","context":null,"integrations":{ }}]}`} {
		f.Add(uint8(0), []byte(s))
	}
	rx := time.Date(2026, 11, 24, 12, 16, 0, 0, time.UTC)
	lim := DefaultLimits()
	lim.MaxEventBytes = 2048 // so that the fuzzer reaches the size rules
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		call := calls[int(which)%len(calls)]
		out, err := Decode(Input{Call: call, Body: body, ReceivedAt: rx}, lim)
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) || ie.Code == "" || ie.Message == "" || (ie.Status != 400 && ie.Status != 413) {
				t.Fatalf("error %#v", err)
			}
			if len(out.Events)+len(out.Quarantine)+len(out.Rejected) != 0 || out.WriteKey != "" {
				t.Fatalf("an error with output %+v", out)
			}
			return
		}
		checkOutput(t, call, body, out)
		if call != CallBatch {
			return
		}
		var v struct{ Batch []json.RawMessage }
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("Decode accepted a body encoding/json refuses: %v", err)
		}
		if len(out.Events)+len(out.Quarantine) != len(v.Batch) {
			t.Fatalf("%d events and %d quarantined from a batch of %d", len(out.Events), len(out.Quarantine), len(v.Batch))
		}
		for _, r := range out.Rejected {
			if r.Index >= len(v.Batch) {
				t.Fatalf("rejection %+v beyond the batch of %d", r, len(v.Batch))
			}
		}
	})
}

// FuzzValid holds validJSON to encoding/json.Valid on any input.
func FuzzValid(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}
