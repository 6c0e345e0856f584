// Package stream publishes deliveries to a NATS JetStream subject, one
// subject per destination, so that any number of downstream services can
// consume what Kith activates at their own pace.
//
// Each delivery becomes one JetStream message on the configured subject:
// the delivery's Payload is the body, and headers carry what it is about
// (see the Header* constants). The message's Nats-Msg-Id header is the
// delivery's idempotency Key, so JetStream drops a redelivered message that
// it already stored within the stream's duplicate window (two minutes by
// default, see Config.DuplicateWindow): a retry after a lost acknowledgement
// does not publish twice.
//
// Send publishes the batch in order and waits for each publish
// acknowledgement (PubAck) before the next, so the stream holds the
// deliveries in the order the delivery engine gave them, even across
// retries: a batch that failed half-way is sent again from its start and
// its already-stored head is dropped as duplicates.
//
// For a data-subject erasure request, Delete publishes a deletion message
// on the same subject (see Delete), in order with the deliveries.
//
// Failures are classified for the delivery engine: a server that cannot be
// reached, no stream answering, a timeout or a lost connection may be
// retried; an authorization failure or a permission violation is
// Permanent; a message larger than the server or the stream allows is
// rejected (Reject), since sending it again cannot help.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kithcdp/kith/destination"
)

// Headers set on every published message, besides nats.MsgIdHdr
// ("Nats-Msg-Id"), which holds the delivery's Key.
const (
	HeaderKind     = "Kith-Kind"     // the delivery's kind, e.g. "event", "audience_entered"
	HeaderPosition = "Kith-Position" // the log position, in decimal (none on a deletion)
	HeaderProfile  = "Kith-Profile"  // the profile id, in decimal
	HeaderAudience = "Kith-Audience" // the audience key, for audience deliveries
	HeaderAt       = "Kith-At"       // when the event was received or the change made, RFC 3339
	HeaderKey      = "Kith-Key"      // the delivery's idempotency key (also in Nats-Msg-Id)
)

// DefaultURL is the NATS server used when Config.URL is empty.
const DefaultURL = nats.DefaultURL

// Default limits.
const (
	DefaultTimeout  = 5 * time.Second // Config.Timeout when unset
	DefaultMaxBatch = 100             // Config.MaxBatch when unset
)

// Config configures a stream destination. It is the JSON a destination's
// settings hold.
type Config struct {
	// URL is the NATS server URL, or a comma-separated list of them
	// (default nats://127.0.0.1:4222).
	URL string `json:"url,omitempty"`
	// Subject is the subject every delivery is published on, e.g.
	// "kith.acme.crm". It must be a literal subject: no wildcards.
	Subject string `json:"subject"`
	// Stream is the name of the JetStream stream that stores Subject.
	// When empty it is derived from the subject, dots replaced by
	// underscores ("kith_acme_crm").
	Stream string `json:"stream,omitempty"`
	// Create, unless false, creates the stream if it is missing: file
	// storage, Subject as its only subject, DuplicateWindow as its
	// duplicate window. With create:false the stream must exist.
	Create *bool `json:"create,omitempty"`
	// DuplicateWindow is the duplicate window of a stream this sender
	// creates, as a Go duration ("2m", "1h"); empty means the server's
	// default (two minutes). Redeliveries older than the window are stored
	// again.
	DuplicateWindow string `json:"duplicate_window,omitempty"`
	// Credentials is the path of a NATS .creds file (user JWT and NKey
	// seed), optional.
	Credentials string `json:"credentials,omitempty"`
	// Token is an authentication token, optional.
	Token string `json:"token,omitempty"`
	// Timeout bounds connecting and each publish acknowledgement, as a Go
	// duration (default 5s).
	Timeout string `json:"timeout,omitempty"`
	// MaxBatch is the most deliveries one Send takes (default 100).
	MaxBatch int `json:"max_batch,omitempty"`
}

// Sender publishes deliveries to one JetStream subject. It connects on
// the first Send and keeps the connection, which reconnects by itself
// after the server comes back.
type Sender struct {
	opts      []nats.Option
	url       string
	subject   string
	stream    string
	create    bool
	dupWindow time.Duration
	timeout   time.Duration
	maxBatch  int

	mu     sync.Mutex // guards nc, js, ready, closed
	nc     *nats.Conn
	js     jetstream.JetStream
	ready  bool // the stream is known to exist and capture the subject
	closed bool

	// denied holds the last permission violation the server reported
	// asynchronously (NATS reports them outside the request that caused
	// them, which then times out).
	denied atomic.Pointer[error]
}

var (
	_ destination.Sender  = (*Sender)(nil)
	_ destination.Deleter = (*Sender)(nil)
)

// New returns a Sender for the JSON configuration cfg (see Config). It
// checks the configuration only; the connection is made on the first
// Send, so a server that is down when Kith starts delays deliveries
// rather than failing the destination.
func New(cfg json.RawMessage) (destination.Sender, error) {
	s, err := newSender(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newSender(raw json.RawMessage) (*Sender, error) {
	var c Config
	if len(raw) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("stream destination: config: %w", err)
		}
	}
	if err := checkSubject(c.Subject); err != nil {
		return nil, fmt.Errorf("stream destination: config: subject: %w", err)
	}
	if c.Stream == "" {
		c.Stream = strings.ReplaceAll(c.Subject, ".", "_")
	}
	if err := checkStreamName(c.Stream); err != nil {
		return nil, fmt.Errorf("stream destination: config: stream: %w", err)
	}
	if c.URL == "" {
		c.URL = DefaultURL
	}
	for _, u := range strings.Split(c.URL, ",") {
		u = strings.TrimSpace(u)
		if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") && !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
			return nil, fmt.Errorf("stream destination: config: url %q: want nats://, tls://, ws:// or wss://", u)
		}
	}
	if c.Credentials != "" && c.Token != "" {
		return nil, errors.New("stream destination: config: set credentials or token, not both")
	}
	s := &Sender{
		url:      c.URL,
		subject:  c.Subject,
		stream:   c.Stream,
		create:   c.Create == nil || *c.Create,
		timeout:  DefaultTimeout,
		maxBatch: DefaultMaxBatch,
	}
	var err error
	if c.Timeout != "" {
		if s.timeout, err = time.ParseDuration(c.Timeout); err != nil || s.timeout <= 0 {
			return nil, fmt.Errorf("stream destination: config: timeout %q: want a positive Go duration", c.Timeout)
		}
	}
	if c.DuplicateWindow != "" {
		if s.dupWindow, err = time.ParseDuration(c.DuplicateWindow); err != nil || s.dupWindow <= 0 {
			return nil, fmt.Errorf("stream destination: config: duplicate_window %q: want a positive Go duration", c.DuplicateWindow)
		}
	}
	switch {
	case c.MaxBatch < 0:
		return nil, fmt.Errorf("stream destination: config: max_batch %d: want a positive number", c.MaxBatch)
	case c.MaxBatch > 0:
		s.maxBatch = c.MaxBatch
	}
	s.opts = []nats.Option{
		nats.Name("kith destination " + c.Subject),
		nats.Timeout(s.timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// No buffering while disconnected: a publish then fails at once
		// (and is retried by the engine) instead of waiting out its timeout.
		nats.ReconnectBufSize(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				s.denied.Store(&err)
			}
		}),
	}
	if c.Credentials != "" {
		s.opts = append(s.opts, nats.UserCredentials(c.Credentials))
	}
	if c.Token != "" {
		s.opts = append(s.opts, nats.Token(c.Token))
	}
	return s, nil
}

// checkSubject accepts a literal NATS subject: dot-separated non-empty
// tokens without whitespace or wildcards.
func checkSubject(s string) error {
	if s == "" {
		return errors.New("required")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return fmt.Errorf("%q has an empty token", s)
		}
		if tok == "*" || tok == ">" {
			return fmt.Errorf("%q has a wildcard; publish needs a literal subject", s)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("%q has whitespace", s)
		}
	}
	return nil
}

// checkStreamName accepts what nats-server accepts as a stream name.
func checkStreamName(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > 255 {
		return fmt.Errorf("%q is longer than 255 bytes", s)
	}
	if strings.ContainsAny(s, ".*> \t\r\n/\\") {
		return fmt.Errorf("%q may not hold '.', '*', '>', '/', '\\' or whitespace", s)
	}
	return nil
}

// MaxBatch is the most deliveries one Send takes (Config.MaxBatch).
func (s *Sender) MaxBatch() int { return s.maxBatch }

// Send publishes the batch in order, waiting for each acknowledgement. On
// failure it returns a *destination.Error; the deliveries before the
// failing one are stored, and are dropped as duplicates when the batch is
// sent again within the duplicate window.
func (s *Sender) Send(ctx context.Context, batch []destination.Delivery) error {
	js, err := s.connect(ctx)
	if err != nil {
		return err
	}
	for i := range batch {
		d := &batch[i]
		m := message(s.subject, d)
		pctx, cancel := context.WithTimeout(ctx, s.timeout)
		_, err := js.PublishMsg(pctx, m, jetstream.WithExpectStream(s.stream))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return &destination.Error{Msg: fmt.Sprintf("publish %s to %s: %v", d.Key, s.subject, ctx.Err())}
			}
			e := s.classify(err)
			e.Msg = fmt.Sprintf("publish %s (%d of %d) to %s: %s", d.Key, i+1, len(batch), s.subject, e.Msg)
			if !e.Permanent && !e.Reject {
				// The stream may have been deleted or the server replaced:
				// check it again before the next try.
				s.mu.Lock()
				s.ready = false
				s.mu.Unlock()
			}
			return e
		}
	}
	return nil
}

// Delete publishes the deletion's message (destination.Deletion.Payload)
// on the subject, with Kith-Kind "deletion", Kith-Profile, and the request
// id as Nats-Msg-Id (so a retry within the duplicate window is stored
// once), and waits for its acknowledgement. Consumers delete what they
// hold on the person.
func (s *Sender) Delete(ctx context.Context, d destination.Deletion) error {
	payload, err := d.Payload()
	if err != nil {
		return err
	}
	return s.Send(ctx, []destination.Delivery{{Key: d.Request, Kind: destination.KindDeletion, Profile: d.Profile, Payload: payload}})
}

// message builds the JetStream message for d.
func message(subject string, d *destination.Delivery) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = d.Payload
	if d.Key != "" {
		m.Header.Set(nats.MsgIdHdr, d.Key)
		m.Header.Set(HeaderKey, d.Key)
	}
	m.Header.Set("Content-Type", "application/json")
	m.Header.Set(HeaderKind, d.Kind)
	if d.Position > 0 {
		m.Header.Set(HeaderPosition, strconv.FormatInt(d.Position, 10))
	}
	m.Header.Set(HeaderProfile, strconv.FormatInt(int64(d.Profile), 10))
	if d.Audience != "" {
		m.Header.Set(HeaderAudience, d.Audience)
	}
	if !d.At.IsZero() {
		m.Header.Set(HeaderAt, d.At.UTC().Format(time.RFC3339Nano))
	}
	return m
}

// connect returns the JetStream context, connecting and checking the
// stream (creating it if configured) when that has not been done yet.
func (s *Sender) connect(ctx context.Context) (jetstream.JetStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, &destination.Error{Msg: "stream destination: sender closed"}
	}
	if s.nc == nil {
		nc, err := nats.Connect(s.url, s.opts...)
		if err != nil {
			e := s.classify(err)
			e.Msg = fmt.Sprintf("connect to %s: %s", redactURL(s.url), e.Msg)
			return nil, e
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, &destination.Error{Msg: fmt.Sprintf("jetstream on %s: %v", redactURL(s.url), err)}
		}
		s.nc, s.js = nc, js
	}
	if !s.ready {
		if err := s.ensureStream(ctx); err != nil {
			return nil, err
		}
		s.ready = true
	}
	return s.js, nil
}

// ensureStream checks that the stream exists and captures the subject,
// creating it if it is missing and Create allows.
func (s *Sender) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	info, err := s.streamInfo(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !s.create {
			return &destination.Error{Permanent: true, Msg: fmt.Sprintf("stream %s does not exist (create is false)", s.stream)}
		}
		cfg := jetstream.StreamConfig{
			Name:       s.stream,
			Subjects:   []string{s.subject},
			Storage:    jetstream.FileStorage,
			Duplicates: s.dupWindow,
		}
		_, err = s.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created meanwhile by someone else: use it if it fits.
			info, err = s.streamInfo(ctx)
		} else if err == nil {
			return nil
		}
	}
	if err != nil {
		e := s.classify(err)
		e.Msg = fmt.Sprintf("stream %s: %s", s.stream, e.Msg)
		return e
	}
	for _, pat := range info.Config.Subjects {
		if subjectMatches(pat, s.subject) {
			return nil
		}
	}
	return &destination.Error{Permanent: true, Msg: fmt.Sprintf("stream %s does not capture subject %s (its subjects: %s)",
		s.stream, s.subject, strings.Join(info.Config.Subjects, ", "))}
}

func (s *Sender) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}

// subjectMatches reports whether the literal subject matches pattern,
// which may hold '*' (one token) and a final '>' (one or more tokens).
func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

// classify maps a NATS or JetStream error to a destination.Error.
func (s *Sender) classify(err error) *destination.Error {
	if p := s.denied.Swap(nil); p != nil {
		// The server refused a publish or the reply subscription; the
		// request itself then only times out.
		return &destination.Error{Permanent: true, Msg: (*p).Error()}
	}
	var api *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired),
		errors.Is(err, nats.ErrPermissionViolation), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return &destination.Error{Permanent: true, Msg: err.Error()}
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum):
		return &destination.Error{Reject: true, Status: 413, Msg: err.Error()}
	case errors.As(err, &api) && api.Code == 403:
		return &destination.Error{Permanent: true, Status: api.Code, Msg: err.Error()}
	case errors.Is(err, nats.ErrReconnectBufExceeded):
		// Nothing is buffered while reconnecting (ReconnectBufSize -1).
		return &destination.Error{Msg: "disconnected from the server, reconnecting"}
	}
	// No responders (no stream yet, JetStream restarting), timeouts,
	// connection refused or lost, the outbound buffer disabled while
	// reconnecting, and other API errors: worth another try.
	return &destination.Error{Msg: err.Error()}
}

// redactURL drops user information from NATS URLs for error messages.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if sch := strings.Index(p, "://"); sch >= 0 && sch < at {
				parts[i] = p[:sch+3] + "***@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// Close closes the connection. Send fails after Close.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.nc != nil {
		s.nc.Close()
		s.nc, s.js = nil, nil
	}
	return nil
}
