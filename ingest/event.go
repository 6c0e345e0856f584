package ingest

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kithcdp/kith/store"
)

// maxIDBytes bounds messageId, userId and anonymousId. The log indexes
// them, and database indexes refuse very long keys (PostgreSQL's B-tree
// entries stop near 2.7 KB); real identifiers are far shorter (Segment asks
// for messageIds under 100 characters).
const maxIDBytes = 1024

// field is a top-level event member that Kith reads.
type field int

const (
	fType field = iota
	fUserID
	fAnonymousID
	fMessageID
	fEvent
	fName
	fPreviousID
	fGroupID
	fTraits
	fProperties
	fContext
	fIntegrations
	fTimestamp
	fOriginalTimestamp
	fSentAt
	fWriteKey
	numFields
)

var fieldNames = [numFields]string{
	"type", "userId", "anonymousId", "messageId", "event", "name", "previousId", "groupId",
	"traits", "properties", "context", "integrations", "timestamp", "originalTimestamp", "sentAt", "writeKey",
}

// fieldOf returns the field a raw (still escaped) key names, or -1.
func fieldOf(key []byte) field {
	if bytes.IndexByte(key, '\\') >= 0 {
		key = []byte(keyString(key))
	}
	switch string(key) {
	case "type":
		return fType
	case "userId":
		return fUserID
	case "anonymousId":
		return fAnonymousID
	case "messageId":
		return fMessageID
	case "event":
		return fEvent
	case "name":
		return fName
	case "previousId":
		return fPreviousID
	case "groupId":
		return fGroupID
	case "traits":
		return fTraits
	case "properties":
		return fProperties
	case "context":
		return fContext
	case "integrations":
		return fIntegrations
	case "timestamp":
		return fTimestamp
	case "originalTimestamp":
		return fOriginalTimestamp
	case "sentAt":
		return fSentAt
	case "writeKey":
		return fWriteKey
	}
	return -1
}

// scannedEvent is the top level of one event object.
type scannedEvent struct {
	b      []byte            // the object; nil if the event was not scanned
	f      [numFields]member // the members Kith reads; valEnd == 0 when absent
	n      int               // number of members
	second int               // keyStart of the second member, 0 if none
	last   int               // end of the last member's value (1 for {})
	dup    field             // a member that appears twice, or -1
}

// scanEvent reads the top level of the object b.
func scanEvent(b []byte) scannedEvent {
	ev := scannedEvent{b: b, last: 1, dup: -1}
	s := newObjectScanner(b, 0)
	for {
		m, key, ok := s.next()
		if !ok {
			return ev
		}
		ev.n++
		if ev.n == 2 {
			ev.second = m.keyStart
		}
		ev.last = m.valEnd
		if f := fieldOf(key); f >= 0 {
			if ev.f[f].valEnd != 0 && ev.dup < 0 {
				ev.dup = f
			}
			ev.f[f] = m
		}
	}
}

// value returns the raw value of f, or nil if f is absent or null.
func (ev *scannedEvent) value(f field) []byte {
	m := ev.f[f]
	if m.valEnd == 0 || ev.b[m.valStart] == 'n' {
		return nil
	}
	return ev.b[m.valStart:m.valEnd]
}

// id reads an identifier: a string, or a number rendered as sent.
func (ev *scannedEvent) id(f field) (string, *Error) {
	v := ev.value(f)
	var s string
	switch {
	case v == nil:
		return "", nil
	case v[0] == '"':
		s = unquote(v)
	case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
		s = string(v)
	default:
		return "", eventError(CodeInvalidType, fieldNames[f]+" must be a string or a number")
	}
	if len(s) > maxIDBytes {
		return "", eventError(CodeInvalidValue, fmt.Sprintf("%s has %d bytes; the limit is %d", fieldNames[f], len(s), maxIDBytes))
	}
	return s, checkText(f, s)
}

// text reads a string member.
func (ev *scannedEvent) text(f field) (string, *Error) {
	v := ev.value(f)
	if v == nil {
		return "", nil
	}
	if v[0] != '"' {
		return "", eventError(CodeInvalidType, fieldNames[f]+" must be a string")
	}
	s := unquote(v)
	return s, checkText(f, s)
}

// checkText refuses the NUL character, which SQL text columns cannot hold.
func checkText(f field, s string) *Error {
	if strings.IndexByte(s, 0) >= 0 {
		return eventError(CodeInvalidValue, fieldNames[f]+" contains a NUL character")
	}
	return nil
}

// object checks that f, if present, is an object.
func (ev *scannedEvent) object(f field) *Error {
	if v := ev.value(f); v != nil && v[0] != '{' {
		return eventError(CodeInvalidType, fieldNames[f]+" must be an object")
	}
	return nil
}

// time reads a timestamp member; absent, null and "" are no time.
func (ev *scannedEvent) time(f field) (time.Time, bool, *Error) {
	v := ev.value(f)
	if v == nil {
		return time.Time{}, false, nil
	}
	return timeValue(fieldNames[f], v)
}

// timeValue reads the JSON value v of a timestamp member called name.
func timeValue(name string, v []byte) (time.Time, bool, *Error) {
	if v[0] != '"' {
		return time.Time{}, false, eventError(CodeInvalidTimestamp, name+" must be an ISO 8601 string")
	}
	s := unquote(v)
	if s == "" {
		return time.Time{}, false, nil
	}
	t, ok := parseTime(s)
	if !ok {
		return time.Time{}, false, eventError(CodeInvalidTimestamp, fmt.Sprintf("%s %q is not an ISO 8601 date-time from 1970 on", name, s))
	}
	return t, true, nil
}

// messageID is the event's messageId as sent, for reports; "" if unreadable.
func (ev *scannedEvent) messageID() string {
	if ev.b == nil {
		return ""
	}
	s, err := ev.id(fMessageID)
	if err != nil {
		return ""
	}
	return s
}

// writeKey is the event's writeKey, or "".
func (ev *scannedEvent) writeKey() string {
	if v := ev.value(fWriteKey); v != nil && v[0] == '"' {
		return unquote(v)
	}
	return ""
}

// eventCall returns the call an event's "type" names.
func eventCall(t string) (Call, bool) {
	switch c := Call(t); c {
	case CallIdentify, CallTrack, CallPage, CallScreen, CallGroup, CallAlias:
		return c, true
	}
	return "", false
}

// quote returns the JSON string of a call name (plain ASCII).
func quote(c Call) []byte {
	return []byte(`"` + string(c) + `"`)
}

// event validates a scanned event and builds its store.Event. call is the
// single call's path, or "" for an element of a batch.
func (d *decoder) event(ev *scannedEvent, call Call) (store.Event, *Error) {
	if ev.dup >= 0 {
		return store.Event{}, eventError(CodeDuplicateKey, fmt.Sprintf("the member %q appears more than once", fieldNames[ev.dup]))
	}
	typ, err := ev.call(call)
	if err != nil {
		return store.Event{}, err
	}
	e := store.Event{
		Type:       string(typ),
		ReceivedAt: d.rx,
		Format:     store.FormatVersion,
		Signals:    d.in.Signals,
	}
	for _, f := range [...]field{fTraits, fProperties, fContext, fIntegrations} {
		if err := ev.object(f); err != nil {
			return store.Event{}, err
		}
	}
	var prev, group string
	for _, r := range [...]struct {
		f   field
		dst *string
	}{{fUserID, &e.UserID}, {fAnonymousID, &e.AnonymousID}, {fMessageID, &e.MessageID}, {fPreviousID, &prev}, {fGroupID, &group}} {
		if *r.dst, err = ev.id(r.f); err != nil {
			return store.Event{}, err
		}
	}
	switch typ {
	case CallTrack:
		if e.Name, err = ev.text(fEvent); err != nil {
			return store.Event{}, err
		}
		if e.Name == "" {
			return store.Event{}, eventError(CodeMissingEvent, "a track call needs a non-empty event name")
		}
	case CallPage, CallScreen:
		if e.Name, err = ev.text(fName); err != nil {
			return store.Event{}, err
		}
	}
	switch {
	case typ == CallAlias && prev == "":
		return store.Event{}, eventError(CodeMissingPreviousID, "an alias call needs previousId")
	case typ == CallAlias && e.UserID == "":
		return store.Event{}, eventError(CodeMissingUserID, "an alias call needs userId")
	case typ == CallGroup && group == "":
		return store.Event{}, eventError(CodeMissingGroupID, "a group call needs groupId")
	case typ != CallAlias && e.UserID == "" && e.AnonymousID == "":
		return store.Event{}, eventError(CodeMissingIdentity, "the event needs userId or anonymousId")
	}
	if e.Timestamp, e.Flags, err = d.timestamp(ev); err != nil {
		return store.Event{}, err
	}
	if e.MessageID == "" {
		e.MessageID = uuid.NewString()
		e.Flags |= store.FlagMessageIDGenerated
	}
	e.Raw = d.raw(ev.b, ev)
	return e, nil
}

// call returns the event's call: its "type" for an element of a batch, or
// the path's call for a single call (whose "type", if any, must agree).
func (ev *scannedEvent) call(path Call) (Call, *Error) {
	v := ev.value(fType)
	if v == nil {
		if path == "" {
			return "", eventError(CodeUnknownType, "the event has no type")
		}
		return path, nil
	}
	if v[0] != '"' {
		return "", eventError(CodeInvalidType, "type must be a string")
	}
	t := unquote(v)
	switch c, ok := eventCall(t); {
	case path != "" && t != string(path):
		return "", eventError(CodeTypeMismatch, fmt.Sprintf("the event's type %q does not match the path's call %q", t, path))
	case !ok:
		return "", eventError(CodeUnknownType, fmt.Sprintf("type %q is not identify, track, page, screen, group or alias", t))
	default:
		return c, nil
	}
}

// timestamp computes the event's corrected time and flags from its
// originalTimestamp (or timestamp), its sentAt (or the batch's) and
// receivedAt, as Segment does: timestamp = receivedAt − (sentAt −
// originalTimestamp).
func (d *decoder) timestamp(ev *scannedEvent) (time.Time, int, *Error) {
	orig, hasOrig, err := ev.time(fOriginalTimestamp)
	if err != nil {
		return time.Time{}, 0, err
	}
	ts, hasTS, err := ev.time(fTimestamp)
	if err != nil {
		return time.Time{}, 0, err
	}
	sent, hasSent, err := ev.time(fSentAt)
	if err != nil {
		return time.Time{}, 0, err
	}
	if !hasSent {
		sent, hasSent = d.top.sentAt, d.top.hasSentAt
	}
	if hasOrig && !(d.in.KeepTimes && hasTS) {
		ts, hasTS = orig, true
	}
	t := d.rx
	switch {
	case hasTS && hasSent && !d.in.KeepTimes:
		t = d.rx.Add(ts.Sub(sent))
	case hasTS:
		t = ts
	}
	if t.After(d.rx.Add(d.lim.MaxFutureSkew)) {
		return d.rx, store.FlagTimestampClamped, nil
	}
	if t.Year() < 1970 {
		return time.Time{}, 0, eventError(CodeInvalidTimestamp, "sentAt lies so far after the event's time that the corrected timestamp falls before 1970")
	}
	return t, 0, nil
}
