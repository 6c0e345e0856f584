// Package forward sends events on to another Tracking API in Segment's
// format: Segment's own, RudderStack's data plane, or another Kith.
//
// Each request is what an official SDK sends:
//
//	POST {url}/v1/batch
//	Authorization: Basic base64(write_key + ":")
//	Content-Type: application/json
//	Content-Encoding: gzip            (with "gzip": true)
//
//	{"batch": [event, event, …], "sentAt": "2026-03-01T12:00:00.000Z"}
//
// within the limits every such API sets: at most 2,500 events and 500 KB
// (512,000 bytes, before compression) per request, 32 KB per event. A Send
// given more is split into as many requests as it takes, in order.
//
// # Events as forwarded
//
// Each payload must be a JSON object. Three top-level fields are adjusted,
// so that the receiving API files the event as this one filed it:
//
//   - messageId is set to the delivery's key if the payload has none, so a
//     retried request is deduplicated by the receiver instead of counted
//     twice (an existing messageId is kept: it is the event's identity).
//   - sentAt of the event, if any, is removed: the batch's sentAt, set when
//     the request is made, is the one that applies. The receiver corrects
//     the clock as timestamp = receivedAt − (sentAt − timestamp), which
//     with a payload whose timestamp is this node's time gives back that
//     time, corrected for the skew between the two servers' clocks. An
//     event's original sentAt, measured on a client long ago, would move
//     it to the time of forwarding instead.
//   - writeKey, if any, is removed: the request's write key is the one
//     configured here.
//
// A payload that carries originalTimestamp is corrected from that field
// by the receiver (Segment's rule), so a mapping that forwards events to
// another Tracking API should give each one its corrected timestamp and
// no originalTimestamp.
//
// # Configuration
//
//	{
//	  "url": "https://api.segment.io",  // the API's base; /v1/batch is appended
//	  "write_key": "…",                 // the receiving source's write key
//	  "batch": 100,                     // events per request: 1 to 2500 (default 100)
//	  "gzip": true,                     // compress bodies (default false)
//	  "timeout": "10s",                 // per request, or a number of seconds
//	  "allow_http": false               // http:// URLs only when true
//	}
//
// # Failures
//
// As egress.Classify says (401, 403, 410 permanent; 400, 413, 422 reject;
// 429 and 5xx retry after Retry-After; 3xx a permanent failure), plus one
// case a Kith receiver reports: a 200 answer whose "rejected" list names
// events it refused (say, an identify without a userId). Those events are
// not stored and never will be, so the Send fails with Reject: the engine
// splits the batch, the accepted events are sent again and dropped as
// duplicates by messageId, and the refused ones end in the dead letters.
//
// # Deletion requests
//
// The Tracking API has no call that deletes a person (Segment and
// RudderStack take deletions through separate regulation APIs with their
// own credentials), so the Sender is no destination.Deleter: a
// data-subject erasure request records this destination's deletion as
// unsupported, for an operator to carry out on the receiving side.
package forward

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/egress"
)

// Limits of a Segment-compatible Tracking API.
const (
	MaxBatchEvents = 2500
	MaxBatchBytes  = 500 * 1024 // of the uncompressed body
	MaxEventBytes  = 32 * 1024
	DefaultBatch   = 100
	MaxTimeout     = 60 * time.Second
)

// Config is a forward destination's configuration, as JSON.
type Config struct {
	URL       string               `json:"url"`
	WriteKey  string               `json:"write_key"`
	Batch     int                  `json:"batch,omitempty"`
	Gzip      bool                 `json:"gzip,omitempty"`
	Timeout   destination.Duration `json:"timeout,omitempty"`
	AllowHTTP bool                 `json:"allow_http,omitempty"`
}

// Sender forwards to one Tracking API. It implements destination.Sender.
type Sender struct {
	endpoint string
	header   http.Header
	batch    int
	gzip     bool
	timeout  time.Duration
	client   *http.Client
	now      func() time.Time
	gzPool   sync.Pool
}

var _ destination.Sender = (*Sender)(nil)

// New makes a forward Sender from its JSON configuration (see Config). A
// nil client means egress.New(egress.Options{}), the guarded default.
// Errors name the field at fault.
func New(cfg json.RawMessage, client *http.Client) (destination.Sender, error) {
	c, err := ParseConfig(cfg)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = egress.New(egress.Options{})
	}
	header := http.Header{
		"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(c.WriteKey+":"))},
		"Content-Type":  {"application/json"},
		"User-Agent":    {"Kith-Forward/1"},
	}
	if c.Gzip {
		header.Set("Content-Encoding", "gzip")
	}
	return &Sender{
		endpoint: strings.TrimRight(c.URL, "/") + "/v1/batch",
		header:   header, batch: c.Batch, gzip: c.Gzip,
		timeout: time.Duration(c.Timeout), client: client, now: time.Now,
	}, nil
}

// ParseConfig reads and checks a configuration, filling in defaults.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("forward config: %w", err)
	}
	if dec.More() {
		return c, errors.New("forward config: data after the JSON object")
	}
	if err := checkURL(c.URL, c.AllowHTTP); err != nil {
		return c, fmt.Errorf("forward config: url: %w", err)
	}
	if c.WriteKey == "" {
		return c, errors.New("forward config: write_key: missing (the receiving source's write key)")
	}
	if strings.ContainsAny(c.WriteKey, ":\r\n") {
		return c, errors.New("forward config: write_key: contains a colon or a line break")
	}
	switch {
	case c.Batch == 0:
		c.Batch = DefaultBatch
	case c.Batch < 0 || c.Batch > MaxBatchEvents:
		return c, fmt.Errorf("forward config: batch: %d is not between 1 and %d", c.Batch, MaxBatchEvents)
	}
	if c.Timeout < 0 || time.Duration(c.Timeout) > MaxTimeout {
		return c, fmt.Errorf("forward config: timeout: %v is not between 0 (the client's) and %v", time.Duration(c.Timeout), MaxTimeout)
	}
	return c, nil
}

func checkURL(s string, allowHTTP bool) error {
	u, err := egress.CheckURL(s, allowHTTP, "the write key would travel in clear text")
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("the base URL takes no query or fragment")
	}
	if strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1/batch") {
		return fmt.Errorf("give the API's base URL (like https://api.segment.io); /v1/batch is appended")
	}
	return nil
}

// MaxBatch is the configured number of events per request.
func (s *Sender) MaxBatch() int { return s.batch }

// Close releases the client's idle connections.
func (s *Sender) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Send forwards the deliveries in as many requests as the limits require,
// in order, and stops at the first failure. Requests already accepted are
// sent again on a retry; their events keep their messageIds, which the
// receiver deduplicates.
func (s *Sender) Send(ctx context.Context, batch []destination.Delivery) error {
	events := make([][]byte, len(batch))
	for i, d := range batch {
		e, err := prepare(d)
		if err != nil {
			return &destination.Error{Reject: true, Msg: fmt.Sprintf("delivery %s: %v", d.Key, err)}
		}
		events[i] = e
	}
	for len(events) > 0 {
		n, size := 0, 0
		for n < len(events) && n < s.batch {
			add := len(events[n]) + 1
			if n > 0 && size+add > MaxBatchBytes-envelope {
				break
			}
			size += add
			n++
		}
		if err := s.post(ctx, events[:n]); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

// envelope is the room the body takes besides its events.
const envelope = len(`{"batch":[],"sentAt":"2006-01-02T15:04:05.000Z"}`) + 16

// prepare checks a payload and adjusts its top-level fields (see the
// package documentation).
func prepare(d destination.Delivery) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(d.Payload, &m); err != nil || m == nil {
		return nil, errors.New("the payload is not a JSON object")
	}
	changed := false
	for _, k := range []string{"sentAt", "writeKey"} {
		if _, ok := m[k]; ok {
			delete(m, k)
			changed = true
		}
	}
	if id, ok := m["messageId"]; !ok || string(id) == `""` || string(id) == "null" {
		if d.Key == "" {
			return nil, errors.New("the payload has no messageId and the delivery no key")
		}
		m["messageId"], _ = json.Marshal(d.Key)
		changed = true
	}
	p := []byte(d.Payload)
	if changed {
		var err error
		if p, err = json.Marshal(m); err != nil {
			return nil, err
		}
	}
	if len(p) > MaxEventBytes {
		return nil, fmt.Errorf("the event is %d bytes; a Tracking API takes at most %d", len(p), MaxEventBytes)
	}
	return p, nil
}

func (s *Sender) post(ctx context.Context, events [][]byte) error {
	now := s.now()
	var body bytes.Buffer
	body.Grow(envelope + len(events)*512)
	body.WriteString(`{"batch":[`)
	for i, e := range events {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(e)
	}
	body.WriteString(`],"sentAt":"`)
	body.WriteString(now.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	body.WriteString(`"}`)

	var r io.Reader = &body
	if s.gzip {
		var z bytes.Buffer
		zw, _ := s.gzPool.Get().(*gzip.Writer)
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(&z, gzip.BestSpeed)
		} else {
			zw.Reset(&z)
		}
		zw.Write(body.Bytes())
		zw.Close()
		s.gzPool.Put(zw)
		r = &z
	}
	return egress.Post(ctx, s.client, s.endpoint, s.header, r, s.timeout,
		func() time.Time { return now }, func(resp *http.Response) error { return accepted(resp, len(events)) })
}

// accepted reads a 200 answer: a Kith receiver lists the events it
// refused, which fail the Send with Reject; other APIs answer
// {"success":true} or nothing, which is success.
func accepted(resp *http.Response, n int) error {
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	var ans struct {
		Rejected []struct {
			Index     int    `json:"index"`
			MessageID string `json:"messageId"`
			Code      string `json:"code"`
			Message   string `json:"message"`
		} `json:"rejected"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans); err != nil || len(ans.Rejected) == 0 {
		return nil
	}
	r := ans.Rejected[0]
	msg := fmt.Sprintf("the receiver refused %d of %d events; the first, #%d", len(ans.Rejected), n, r.Index)
	if r.MessageID != "" {
		msg += " (messageId " + r.MessageID + ")"
	}
	msg += ": " + r.Code + ": " + r.Message
	if len(msg) > egress.MsgBodyCap {
		msg = strings.ToValidUTF8(msg[:egress.MsgBodyCap], "") + "…"
	}
	return &destination.Error{Reject: true, Status: http.StatusOK, Msg: msg}
}
