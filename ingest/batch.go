package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/kithcdp/kith/store"
)

// batch decodes a body of the form {"batch": [...], ...}.
func (d *decoder) batch(start int) (Output, error) {
	b := d.in.Body
	if !d.utf8ok {
		// Only the events may hold invalid UTF-8; the rest of the body must not.
		if err := d.checkTopUTF8(start); err != nil {
			return Output{}, err
		}
	}
	if err := d.top.read(b, start); err != nil {
		return Output{}, err
	}
	elems := arrayElements(b, d.top.batch.valStart, d.lim.MaxBatchEvents)
	if len(elems) > d.lim.MaxBatchEvents {
		return Output{}, &Error{http.StatusRequestEntityTooLarge, CodeTooManyEvents,
			fmt.Sprintf("the batch holds more than %d events", d.lim.MaxBatchEvents)}
	}
	d.arena = make([]byte, 0, len(b)+len(elems)*d.top.extraPerEvent())
	out := Output{WriteKey: d.top.writeKey, Events: make([]store.Event, 0, len(elems))}
	for i, se := range elems {
		elem := b[se[0]:se[1]]
		var ev scannedEvent
		if elem[0] == '{' && len(elem) <= d.lim.MaxEventBytes && (d.utf8ok || utf8.Valid(elem)) {
			ev = scanEvent(elem)
			if out.WriteKey == "" {
				out.WriteKey = ev.writeKey()
			}
		}
		e, ie := d.batchEvent(elem, &ev)
		if ie != nil {
			mid := ev.messageID()
			out.Quarantine = append(out.Quarantine, store.Quarantined{
				MessageID:  mid,
				ReceivedAt: d.rx,
				Code:       ie.Code,
				Reason:     ie.Message,
				Signals:    d.in.Signals,
				Raw:        d.raw(elem, &ev),
			})
			out.Rejected = append(out.Rejected, Rejection{Index: i, MessageID: mid, Code: ie.Code, Message: ie.Message})
			continue
		}
		out.Events = append(out.Events, e)
	}
	return out, nil
}

// batchEvent validates one element of a batch. ev is zero unless the
// element is an object within the size limit and valid UTF-8.
func (d *decoder) batchEvent(elem []byte, ev *scannedEvent) (store.Event, *Error) {
	switch {
	case elem[0] != '{':
		return store.Event{}, eventError(CodeInvalidType, "the event must be a JSON object")
	case len(elem) > d.lim.MaxEventBytes:
		return store.Event{}, &Error{http.StatusRequestEntityTooLarge, CodeEventTooLarge,
			fmt.Sprintf("the event has %d bytes; the limit is %d", len(elem), d.lim.MaxEventBytes)}
	case ev.b == nil:
		return store.Event{}, eventError(CodeInvalidUTF8, "the event is not valid UTF-8")
	}
	return d.event(ev, "")
}

// checkTopUTF8 reports invalid UTF-8 outside the events of a batch body.
func (d *decoder) checkTopUTF8(start int) error {
	b := d.in.Body
	s := newObjectScanner(b, start)
	for {
		m, key, ok := s.next()
		if !ok {
			return nil
		}
		if keyIs(key, "batch") && b[m.valStart] == '[' {
			if !utf8.Valid(b[:m.valStart]) || !utf8.Valid(b[m.valEnd:]) {
				return &Error{http.StatusBadRequest, CodeInvalidUTF8, "the body is not valid UTF-8 outside its events"}
			}
			return nil
		}
	}
}

// batchTop is what a batch body holds besides its events.
type batchTop struct {
	batch     member // the "batch" member
	writeKey  string
	sentAt    time.Time
	hasSentAt bool
	sentAtRaw []byte // the JSON string, with quotes
	ctx       batchObject
	integ     batchObject
}

// read reads the top level of a batch body.
func (t *batchTop) read(b []byte, start int) error {
	s := newObjectScanner(b, start)
	var seen [numFields + 1]bool
	for {
		m, key, ok := s.next()
		if !ok {
			break
		}
		f := fieldOf(key)
		isBatch := f < 0 && keyIs(key, "batch")
		if isBatch {
			f = numFields // the index of "batch" in seen
		}
		if f < 0 {
			continue
		}
		if seen[f] {
			name := "batch"
			if !isBatch {
				name = fieldNames[f]
			}
			return &Error{http.StatusBadRequest, CodeDuplicateKey, fmt.Sprintf("the member %q appears more than once", name)}
		}
		seen[f] = true
		v := b[m.valStart:m.valEnd]
		switch {
		case isBatch:
			if v[0] != '[' {
				return &Error{http.StatusBadRequest, CodeInvalidBatch, "batch must be an array of events"}
			}
			t.batch = m
		case v[0] == 'n':
		case f == fWriteKey:
			if v[0] != '"' {
				return &Error{http.StatusBadRequest, CodeInvalidType, "writeKey must be a string"}
			}
			t.writeKey = unquote(v)
		case f == fSentAt:
			var err *Error
			if t.sentAt, t.hasSentAt, err = timeValue("the batch's sentAt", v); err != nil {
				return err
			}
			if t.hasSentAt {
				t.sentAtRaw = v
			}
		case f == fContext || f == fIntegrations:
			if v[0] != '{' {
				return &Error{http.StatusBadRequest, CodeInvalidType, "the batch's " + fieldNames[f] + " must be an object"}
			}
			if f == fContext {
				t.ctx.init(v)
			} else {
				t.integ.init(v)
			}
		}
	}
	if t.batch.valEnd == 0 {
		return &Error{http.StatusBadRequest, CodeInvalidBatch, `the body has no "batch" array`}
	}
	return nil
}

// extraPerEvent bounds how many bytes merging adds to one event.
func (t *batchTop) extraPerEvent() int {
	return len(t.ctx.raw) + len(t.integ.raw) + len(t.sentAtRaw) + 64
}

// batchObject is a batch-level object (context or integrations) that is
// merged into each event: members the event lacks are added to it.
type batchObject struct {
	raw     []byte   // the object; nil if absent or empty
	keys    [][]byte // raw keys of its members
	members [][]byte // the members, "key":value
	missing []bool   // scratch for plan: members the current event lacks
}

// init reads the object v.
func (o *batchObject) init(v []byte) {
	s := newObjectScanner(v, 0)
	for {
		m, key, ok := s.next()
		if !ok {
			break
		}
		o.keys = append(o.keys, key)
		o.members = append(o.members, v[m.keyStart:m.valEnd])
	}
	if len(o.members) > 0 {
		o.raw = v
		o.missing = make([]bool, len(o.members))
	}
}

// plan finds which of o's members the event object v lacks. It returns the
// end of v's last member (1 if v is empty), v's member count, and whether
// any member is missing.
func (o *batchObject) plan(v []byte) (lastEnd, n int, any bool) {
	for i := range o.missing {
		o.missing[i] = true
	}
	lastEnd = 1
	s := newObjectScanner(v, 0)
	for {
		m, key, ok := s.next()
		if !ok {
			break
		}
		n++
		lastEnd = m.valEnd
		for i, k := range o.keys {
			if o.missing[i] && sameKey(key, k) {
				o.missing[i] = false
			}
		}
	}
	for _, miss := range o.missing {
		any = any || miss
	}
	return lastEnd, n, any
}

// writeMerged appends the event object v with the missing members added
// after its own (lastEnd and n as plan returned them).
func (o *batchObject) writeMerged(dst, v []byte, lastEnd, n int) []byte {
	dst = append(dst, v[:lastEnd]...)
	for i, m := range o.members {
		if o.missing[i] {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, m...)
			n++
		}
	}
	return append(dst, v[lastEnd:]...)
}

// sameKey reports whether two raw keys name the same member.
func sameKey(a, b []byte) bool {
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return bytes.Equal(a, b)
	}
	return keyString(a) == keyString(b)
}
