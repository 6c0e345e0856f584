// Package ingest decodes, validates and normalizes the bodies of Tracking
// API requests — the HTTP API of Segment, which Segment's and RudderStack's
// SDKs speak — into events for the log. It does no I/O: the HTTP layer
// reads (and inflates) the body, authenticates, calls Decode, and appends
// what Decode returns.
//
// Decode reads only the top level of each event. Traits, properties and
// context stay the bytes the client sent: an event's Raw is its JSON object
// as received, with only these changes — the members of the batch's
// context and integrations that the event lacks, and the batch's sentAt if
// the event has none, are added to it; the writeKey member is removed (the
// key is a credential and is never stored); and a single call that did not
// name its type gets a "type" member from its path.
//
// docs/tracking-api.md describes the API for users, with the rules this
// package applies.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/kithcdp/kith/store"
)

// Call is a Tracking API call: the type of a single event, or a batch.
type Call string

// The Tracking API calls.
const (
	CallIdentify Call = "identify"
	CallTrack    Call = "track"
	CallPage     Call = "page"
	CallScreen   Call = "screen"
	CallGroup    Call = "group"
	CallAlias    Call = "alias"
	CallBatch    Call = "batch"
)

// CallForPath maps the last element of a /v1/{name} path to its call:
// the six event types, batch, import (Segment's older name for batch), and
// the one-letter paths that @segment/analytics-next posts to (i, t, p, s,
// g, a, and b for a batch). It reports false for any other name.
func CallForPath(name string) (Call, bool) {
	switch name {
	case "identify", "i":
		return CallIdentify, true
	case "track", "t":
		return CallTrack, true
	case "page", "p":
		return CallPage, true
	case "screen", "s":
		return CallScreen, true
	case "group", "g":
		return CallGroup, true
	case "alias", "a":
		return CallAlias, true
	case "batch", "import", "b":
		return CallBatch, true
	}
	return "", false
}

// Limits bound what Decode accepts. Zero is not "unlimited": start from
// DefaultLimits and change what you need.
type Limits struct {
	// MaxEventBytes is the largest event, in bytes as sent: a single call's
	// body, or one element of a batch.
	MaxEventBytes int
	// MaxBatchBytes is the largest request body, after decompression.
	MaxBatchBytes int
	// MaxBatchEvents is the most events one batch may hold.
	MaxBatchEvents int
	// MaxFutureSkew is how far after receivedAt a corrected timestamp may
	// lie. A later one is set to receivedAt and the event is flagged
	// store.FlagTimestampClamped.
	MaxFutureSkew time.Duration
}

// DefaultLimits returns Segment's limits, a little widened where an SDK
// could otherwise be refused for its own rounding:
//
//   - 32 KiB per event (Segment: 32 KB; analytics-go v3 stops at 32,000
//     bytes, RudderStack's Go SDK at 32,768);
//   - 512 KiB per request (Segment: 500 KB; RudderStack's Go SDK fills
//     batches up to 512,000 bytes of events without counting the commas
//     between them, so its bodies can be slightly larger);
//   - 2,500 events per batch (Segment's limit);
//   - timestamps at most 10 minutes after receivedAt: a sender's clock may
//     run a little fast, but an event cannot happen after it arrived, and a
//     future timestamp would win every "last updated" comparison until that
//     time comes.
func DefaultLimits() Limits {
	return Limits{
		MaxEventBytes:  32 << 10,
		MaxBatchBytes:  512 << 10,
		MaxBatchEvents: 2500,
		MaxFutureSkew:  10 * time.Minute,
	}
}

// Input is one Tracking API request.
type Input struct {
	Call       Call
	Body       []byte        // the request body, already decompressed
	ReceivedAt time.Time     // when the request arrived; required
	Signals    store.Signals // copied into every event and quarantined event
	// KeepTimes takes event times as recorded, with no clock-skew
	// correction: for files of past events (kith import), whose sentAt, if
	// any, tells when they were first sent, not when Kith received them. The
	// event time is then the event's timestamp, or else its
	// originalTimestamp; a future one is still clamped.
	KeepTimes bool
}

// Output is what Decode made of a request. Workspace and Source are left
// empty in Events and Quarantine for the caller to fill. Raw bytes never
// share memory with Input.Body.
type Output struct {
	WriteKey   string              // "writeKey" of the body (of a batch, or else of its first event), if any
	Events     []store.Event       // the valid events, in request order
	Quarantine []store.Quarantined // the invalid events of a batch, in request order
	Rejected   []Rejection         // one per quarantined event, for the response body
}

// Rejection tells the client why one event of a batch was quarantined.
type Rejection struct {
	Index     int    `json:"index"` // position in the batch array, from 0
	MessageID string `json:"messageId,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// Error is a failure of a whole request: nothing of it may be stored. Code
// is stable and snake_case; Status is the HTTP status to answer with.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes, used by *Error for whole requests and by Rejection and
// store.Quarantined for single events of a batch.
const (
	CodeBodyTooLarge      = "body_too_large"      // 413: the body exceeds MaxBatchBytes
	CodeTooManyEvents     = "too_many_events"     // 413: a batch holds more than MaxBatchEvents
	CodeEventTooLarge     = "event_too_large"     // 413 for a single call: an event exceeds MaxEventBytes
	CodeInvalidJSON       = "invalid_json"        // the body is empty or not JSON
	CodeInvalidUTF8       = "invalid_utf8"        // the body or event is not UTF-8
	CodeInvalidBatch      = "invalid_batch"       // a batch body has no "batch" array
	CodeInvalidType       = "invalid_type"        // a body, event or member has the wrong JSON type
	CodeDuplicateKey      = "duplicate_key"       // a member Kith reads appears twice
	CodeUnknownType       = "unknown_type"        // an event's "type" is missing or not a known call
	CodeTypeMismatch      = "type_mismatch"       // a single call's "type" names another call than its path
	CodeMissingIdentity   = "missing_identity"    // neither userId nor anonymousId
	CodeMissingUserID     = "missing_user_id"     // an alias without userId
	CodeMissingEvent      = "missing_event"       // a track without event
	CodeMissingPreviousID = "missing_previous_id" // an alias without previousId
	CodeMissingGroupID    = "missing_group_id"    // a group without groupId
	CodeInvalidValue      = "invalid_value"       // an id or name Kith cannot store (NUL character, too long)
	CodeInvalidTimestamp  = "invalid_timestamp"   // a time that is not ISO 8601 (or before 1970)
)

// Decode validates a request body and returns its events.
//
// A body that is too large, not JSON, not an object, or a batch without a
// "batch" array or with too many events fails as a whole, as does a single
// call (not a batch) that fails any event rule. Inside a batch, each
// invalid event goes to Quarantine (with a Rejection) and the others are
// kept. Every error Decode returns is an *Error.
func Decode(in Input, lim Limits) (Output, error) {
	// A UTF-8 byte order mark is not JSON, but RFC 8259 lets readers skip it.
	in.Body = bytes.TrimPrefix(in.Body, []byte("\xef\xbb\xbf"))
	b := in.Body
	if len(b) > lim.MaxBatchBytes {
		return Output{}, &Error{http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
			fmt.Sprintf("the body has %d bytes; the limit is %d", len(b), lim.MaxBatchBytes)}
	}
	start := skipSpace(b, 0)
	if start == len(b) {
		return Output{}, &Error{http.StatusBadRequest, CodeInvalidJSON, "the body is empty"}
	}
	if !validJSON(b) {
		var v json.RawMessage
		err := json.Unmarshal(b, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Output{}, &Error{http.StatusBadRequest, CodeInvalidJSON,
				fmt.Sprintf("the body is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)}
		}
		return Output{}, &Error{http.StatusBadRequest, CodeInvalidJSON, "the body is not valid JSON"}
	}
	if b[start] != '{' {
		return Output{}, &Error{http.StatusBadRequest, CodeInvalidType, "the body must be a JSON object"}
	}
	d := decoder{
		in:     in,
		lim:    lim,
		rx:     in.ReceivedAt.UTC(),
		utf8ok: utf8.Valid(b),
	}
	if in.Call == CallBatch {
		return d.batch(start)
	}
	return d.single(start)
}

// decoder holds the state of one Decode.
type decoder struct {
	in     Input
	lim    Limits
	rx     time.Time
	utf8ok bool   // the whole body is valid UTF-8
	arena  []byte // backing store for the Raw bytes of this request
	top    batchTop
}

// single decodes a body that is one event of call d.in.Call.
func (d *decoder) single(start int) (Output, error) {
	if _, ok := eventCall(string(d.in.Call)); !ok {
		return Output{}, &Error{http.StatusBadRequest, CodeUnknownType, fmt.Sprintf("%q is not a Tracking API call", d.in.Call)}
	}
	obj := d.in.Body[start:skipValue(d.in.Body, start)]
	if len(obj) > d.lim.MaxEventBytes {
		return Output{}, &Error{http.StatusRequestEntityTooLarge, CodeEventTooLarge,
			fmt.Sprintf("the event has %d bytes; the limit is %d", len(obj), d.lim.MaxEventBytes)}
	}
	if !d.utf8ok {
		return Output{}, &Error{http.StatusBadRequest, CodeInvalidUTF8, "the body is not valid UTF-8"}
	}
	d.arena = make([]byte, 0, len(obj)+32)
	ev := scanEvent(obj)
	e, err := d.event(&ev, d.in.Call)
	if err != nil {
		return Output{}, err
	}
	return Output{WriteKey: ev.writeKey(), Events: []store.Event{e}}, nil
}

// eventError is the error of an invalid event.
func eventError(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}
