// Package webhook delivers to an HTTPS endpoint as signed webhooks, in the
// format of the Standard Webhooks specification
// (https://www.standardwebhooks.com/), so that receivers can check them
// with any of its libraries, or with the few lines below.
//
// # What is sent
//
// Each request is a POST with a JSON body: with batch 1 (the default), one
// request per delivery whose body is the delivery's payload, a
// Segment-format event; with batch > 1, up to that many deliveries in one
// body {"batch":[event, event, …]}. Three headers sign it:
//
//	webhook-id         the delivery's idempotency key (batch 1), or for a batch
//	                   "batch_" + a hash of its deliveries' keys; the same
//	                   deliveries get the same id on every retry, so a
//	                   receiver can drop duplicates by it
//	webhook-timestamp  when the request was signed, in Unix seconds
//	webhook-signature  "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)),
//	                   one per secret, separated by spaces
//
// A secret is written "whsec_" + base64 of 24 to 64 random bytes; the HMAC
// key is those bytes (the decoded part, not the text). During a rotation
// the configuration holds two secrets, every request carries both
// signatures, and a receiver that knows either one accepts it.
//
// # Checking a signature: a worked example
//
// The specification's own example: the secret
//
//	whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
//
// is the key base64-decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") (24 bytes).
// A request with
//
//	webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek
//	webhook-timestamp: 1614265330
//	body: {"test": 2432232314}
//
// signs the bytes
//
//	msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}
//
// and HMAC-SHA256 of them under the key, in base64, gives
//
//	webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
//
// A receiver recomputes that from the raw body (before any JSON parsing:
// re-encoding changes the bytes), compares it in constant time with each
// space-separated v1 entry, and rejects timestamps more than a few minutes
// from its clock, which stops a captured request from being replayed
// later. Verify does exactly this, for Go receivers.
//
// # Configuration
//
//	{
//	  "url": "https://hooks.example.com/kith",  // https; http only with "allow_http": true
//	  "secrets": ["whsec_…"],                    // one, or two during a rotation
//	  "batch": 100,                               // deliveries per request; 1 (default) to 1000
//	  "timeout": "5s",                            // per request; or a number of seconds
//	  "headers": {"Authorization": "Bearer …"}   // static extra headers
//	}
//
// Headers may not set Host, Content-Length, Content-Type, Content-Encoding,
// Transfer-Encoding, Connection or any webhook-* header.
//
// # Deletion requests
//
// For a data-subject erasure request, Delete sends the person's deletion
// to the same URL, signed the same way, in the same shape as events (alone
// with batch 1, else {"batch":[message]}):
//
//	{"type": "delete", "messageId": "<request id>", "userId": "…", "anonymousId": "…",
//	 "context": {"externalIds": [{"id": "ada@example.com", "type": "email", "collection": "users", "encoding": "none"}, …],
//	             "traits": {"email": "ada@example.com"}}}
//
// Its webhook-id is the request id, the same on every retry; a receiver
// deletes what it holds on the person (found by any of the identifiers)
// and answers 2xx, also when it holds nothing.
//
// # How failures are classified
//
// As egress.Classify says: 2xx is delivered; 401, 403 and 410 are
// permanent (the destination is disabled until an admin resumes it); 400,
// 413 and 422 reject the batch's content; 429 and 5xx retry after the
// Retry-After header's wait; 3xx is a failure (redirects are not
// followed); timeouts and connection errors retry.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/egress"
)

// Limits of the configuration.
const (
	MaxBatch       = 1000 // deliveries per request
	MaxSecrets     = 2
	MinSecretBytes = 24 // the specification's range for a secret's key
	MaxSecretBytes = 64
	MaxTimeout     = 60 * time.Second
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock when Verify is given a tolerance of 0.
const DefaultTolerance = 5 * time.Minute

// Config is a webhook destination's configuration, as JSON.
type Config struct {
	URL       string               `json:"url"`
	AllowHTTP bool                 `json:"allow_http,omitempty"`
	Secrets   []string             `json:"secrets"`
	Batch     int                  `json:"batch,omitempty"`
	Timeout   destination.Duration `json:"timeout,omitempty"`
	Headers   map[string]string    `json:"headers,omitempty"`
}

// Sender is a webhook destination. It implements destination.Sender.
type Sender struct {
	url     string
	keys    [][]byte
	batch   int
	timeout time.Duration
	headers http.Header
	client  *http.Client
	now     func() time.Time
}

var (
	_ destination.Sender  = (*Sender)(nil)
	_ destination.Deleter = (*Sender)(nil)
)

// New makes a webhook Sender from its JSON configuration (see Config). A
// nil client means egress.New(egress.Options{}), the guarded default; the
// caller closes nothing but the Sender. Errors name the field at fault.
func New(cfg json.RawMessage, client *http.Client) (destination.Sender, error) {
	c, err := ParseConfig(cfg)
	if err != nil {
		return nil, err
	}
	s := &Sender{url: c.URL, batch: c.Batch, timeout: time.Duration(c.Timeout), client: client, now: time.Now}
	if s.client == nil {
		s.client = egress.New(egress.Options{})
	}
	for _, sec := range c.Secrets {
		k, _ := secretKey(sec) // checked by ParseConfig
		s.keys = append(s.keys, k)
	}
	s.headers = make(http.Header, len(c.Headers)+5)
	for k, v := range c.Headers {
		s.headers.Set(k, v)
	}
	s.headers.Set("Content-Type", "application/json")
	s.headers.Set("User-Agent", "Kith-Webhook/1")
	return s, nil
}

// ParseConfig reads and checks a configuration, filling in defaults.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("webhook config: %w", err)
	}
	if dec.More() {
		return c, errors.New("webhook config: data after the JSON object")
	}
	if err := checkURL(c.URL, c.AllowHTTP); err != nil {
		return c, fmt.Errorf("webhook config: url: %w", err)
	}
	switch {
	case len(c.Secrets) == 0:
		return c, errors.New(`webhook config: secrets: at least one "whsec_…" secret is needed`)
	case len(c.Secrets) > MaxSecrets:
		return c, fmt.Errorf("webhook config: secrets: %d given; at most %d (the current one and the next, during a rotation)", len(c.Secrets), MaxSecrets)
	}
	for i, sec := range c.Secrets {
		if _, err := secretKey(sec); err != nil {
			return c, fmt.Errorf("webhook config: secrets[%d]: %w", i, err)
		}
	}
	switch {
	case c.Batch == 0:
		c.Batch = 1
	case c.Batch < 0 || c.Batch > MaxBatch:
		return c, fmt.Errorf("webhook config: batch: %d is not between 1 and %d", c.Batch, MaxBatch)
	}
	if c.Timeout < 0 || time.Duration(c.Timeout) > MaxTimeout {
		return c, fmt.Errorf("webhook config: timeout: %v is not between 0 (the client's) and %v", time.Duration(c.Timeout), MaxTimeout)
	}
	for k, v := range c.Headers {
		if err := checkHeader(k, v); err != nil {
			return c, fmt.Errorf("webhook config: headers: %w", err)
		}
	}
	return c, nil
}

func checkURL(s string, allowHTTP bool) error {
	_, err := egress.CheckURL(s, allowHTTP, "signed webhooks still travel in clear text")
	return err
}

// Headers a configuration may not set: the transport's, the body's, and
// the signature's.
var reserved = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Content-Encoding": true,
	"Transfer-Encoding": true, "Connection": true, "Te": true, "Upgrade": true, "Trailer": true,
}

func checkHeader(k, v string) error {
	if k == "" {
		return errors.New("an empty header name")
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return fmt.Errorf("%q is not a valid header name", k)
		}
	}
	ck := textproto.CanonicalMIMEHeaderKey(k)
	if reserved[ck] || strings.HasPrefix(ck, "Webhook-") {
		return fmt.Errorf("%s is set by Kith and cannot be configured", ck)
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("the value of %s contains a line break or NUL", ck)
	}
	return nil
}

// secretKey returns the HMAC key of a "whsec_<base64>" secret.
func secretKey(sec string) ([]byte, error) {
	b64, ok := strings.CutPrefix(sec, "whsec_")
	if !ok {
		return nil, errors.New(`a secret is written "whsec_" followed by base64`)
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if k, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return nil, errors.New(`the part after "whsec_" is not base64`)
		}
	}
	if len(k) < MinSecretBytes || len(k) > MaxSecretBytes {
		return nil, fmt.Errorf("the secret's key is %d bytes; it must be %d to %d random bytes", len(k), MinSecretBytes, MaxSecretBytes)
	}
	return k, nil
}

// MaxBatch is the configured batch size.
func (s *Sender) MaxBatch() int { return s.batch }

// Close releases the client's idle connections.
func (s *Sender) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Send posts the deliveries, in requests of up to MaxBatch deliveries. If
// given more than MaxBatch, it sends them in order and stops at the first
// failure; the requests already delivered will be sent again on a retry,
// with the same webhook-id, for the receiver to drop.
func (s *Sender) Send(ctx context.Context, batch []destination.Delivery) error {
	for len(batch) > 0 {
		n := min(len(batch), s.batch)
		if err := s.post(ctx, batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}

func (s *Sender) post(ctx context.Context, ds []destination.Delivery) error {
	body, err := s.body(ds)
	if err != nil {
		return err
	}
	id := messageID(ds)
	ts := strconv.FormatInt(s.now().Unix(), 10)
	header := make(http.Header, len(s.headers)+3)
	for k, v := range s.headers {
		header[k] = v
	}
	header["Webhook-Id"] = []string{id}
	header["Webhook-Timestamp"] = []string{ts}
	header["Webhook-Signature"] = []string{sign(s.keys, id, ts, body)}
	return egress.Post(ctx, s.client, s.url, header, bytes.NewReader(body), s.timeout, s.now, nil)
}

// Delete posts the deletion's message (destination.Deletion.Payload) to
// the endpoint, signed like events, with the request id as webhook-id (or
// "msg_" + its hash when it does not fit a header), alone or as a batch of
// one as events are sent. A receiver deletes what it holds on the person
// and answers 2xx; failures are classified as for events.
func (s *Sender) Delete(ctx context.Context, d destination.Deletion) error {
	payload, err := d.Payload()
	if err != nil {
		return err
	}
	return s.post(ctx, []destination.Delivery{{Key: d.Request, Kind: destination.KindDeletion, Profile: d.Profile, Payload: payload}})
}

// body is the request's body: the payload itself for one delivery with
// batch 1, else {"batch":[…]}. A payload that is not JSON is the batch's
// content at fault: a Reject, so that the engine finds and sets it aside.
func (s *Sender) body(ds []destination.Delivery) ([]byte, error) {
	for _, d := range ds {
		if !json.Valid(d.Payload) {
			return nil, &destination.Error{Reject: true, Msg: fmt.Sprintf("delivery %s: the payload is not valid JSON", d.Key)}
		}
	}
	if s.batch == 1 {
		return ds[0].Payload, nil
	}
	n := len(`{"batch":[]}`) + len(ds)
	for _, d := range ds {
		n += len(d.Payload)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"batch":[`...)
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d.Payload...)
	}
	return append(b, "]}"...), nil
}

// messageID is the webhook-id: the delivery's key when it is alone and
// fits a header, else a hash of the keys.
func messageID(ds []destination.Delivery) string {
	if len(ds) == 1 && validID(ds[0].Key) {
		return ds[0].Key
	}
	h := sha256.New()
	for _, d := range ds {
		h.Write([]byte(d.Key))
		h.Write([]byte{0})
		if d.Key == "" {
			h.Write(d.Payload)
			h.Write([]byte{0})
		}
	}
	prefix := "batch_"
	if len(ds) == 1 {
		prefix = "msg_"
	}
	return prefix + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

func validID(k string) bool {
	if k == "" || len(k) > 256 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] >= 0x7f {
			return false
		}
	}
	return true
}

// sign returns the webhook-signature header: one "v1,<base64>" per key.
func sign(keys [][]byte, id, ts string, body []byte) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(k, id, ts, body)))
	}
	return b.String()
}

func mac(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify; each is wrapped with the details.
var (
	ErrMissingHeader = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrTimestamp     = errors.New("webhook: timestamp outside the tolerance")
	ErrSignature     = errors.New("webhook: no matching signature")
)

// Verify checks a received webhook, for receivers written in Go: secret is
// the "whsec_…" secret, header the request's headers, body its raw bytes
// (as read, before any parsing). The webhook-timestamp must lie within
// tolerance of now, either way (0 means DefaultTolerance), and one of the
// webhook-signature's v1 entries must match; entries of other versions
// are skipped. The error wraps ErrMissingHeader, ErrTimestamp or
// ErrSignature, or says what is wrong with the secret.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := secretKey(secret)
	if err != nil {
		return fmt.Errorf("webhook: secret: %w", err)
	}
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeader
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not a number of seconds", ErrTimestamp, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %v from now", ErrTimestamp, ts, d.Round(time.Second))
	}
	want := mac(key, id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		b64, ok := strings.CutPrefix(sig, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}
