package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/destination/webhook"
	"github.com/kithcdp/kith/egress"
)

// Two secrets, as during a rotation.
const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_dGhpcyBpcyB0aGUgbmV4dCBzZWNyZXQsIDMyIGJ5dGVzIQ=="
	secretC = "whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0LCBzYW1lIGxlbmd0aA=="
)

// independentCheck is the receiver's side of the specification, written
// from its text without the package's code: HMAC-SHA256 under the
// base64-decoded part of the secret over "id.timestamp.body", base64, as
// one of the space-separated "v1,<sig>" entries.
func independentCheck(t *testing.T, secret string, h http.Header, body []byte) bool {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("test secret %q: %v", secret, err)
	}
	m := hmac.New(sha256.New, key)
	io.WriteString(m, h.Get("Webhook-Id")+"."+h.Get("Webhook-Timestamp")+".")
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Split(h.Get("Webhook-Signature"), " ") {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

// The specification's example, checked by both implementations.
func TestSpecExample(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	if !independentCheck(t, secretA, h, body) {
		t.Fatal("the independent check rejects the specification's example")
	}
	if err := webhook.Verify(secretA, h, body, 0, time.Unix(1614265330, 0).Add(time.Minute)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// request is what the receiver got.
type request struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is a real HTTP server answering with answer (200 if nil).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []request
	answer func(w http.ResponseWriter, r *http.Request)
}

func newReceiver(t testing.TB, answer func(w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, request{r.Header.Clone(), b, time.Now()})
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

var testClient = egress.New(egress.Options{AllowLoopback: true})

func newSender(t testing.TB, cfg string) destination.Sender {
	t.Helper()
	s, err := webhook.New(json.RawMessage(cfg), testClient)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func cfg(url string, extra string) string {
	return fmt.Sprintf(`{"url": %q, "allow_http": true, "secrets": [%q]%s}`, url, secretA, extra)
}

func deliveries(n int) []destination.Delivery {
	ds := make([]destination.Delivery, n)
	for i := range ds {
		ds[i] = destination.Delivery{
			Key:     fmt.Sprintf("dst1-%d-event", 100+i),
			Kind:    destination.KindEvent,
			Payload: json.RawMessage(fmt.Sprintf(`{"type":"track","event":"Order Completed","messageId":"m-%d","userId":"u-1","properties":{"revenue":%d}}`, i, i)),
		}
	}
	return ds
}

func TestSendOne(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	s := newSender(t, fmt.Sprintf(`{"url": %q, "allow_http": true, "secrets": [%q, %q], "headers": {"Authorization": "Bearer abc", "x-tenant": "acme"}}`, rc.srv.URL+"/hook", secretA, secretB))
	if s.MaxBatch() != 1 {
		t.Errorf("MaxBatch %d, want 1", s.MaxBatch())
	}
	ds := deliveries(2)
	if err := s.Send(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2 (batch 1)", len(got))
	}
	for i, r := range got {
		if string(r.body) != string(ds[i].Payload) {
			t.Errorf("body %s, want the payload %s", r.body, ds[i].Payload)
		}
		if id := r.header.Get("Webhook-Id"); id != ds[i].Key {
			t.Errorf("webhook-id %q, want the key %q", id, ds[i].Key)
		}
		ts, err := strconv.ParseInt(r.header.Get("Webhook-Timestamp"), 10, 64)
		if err != nil || r.at.Sub(time.Unix(ts, 0)).Abs() > 5*time.Second {
			t.Errorf("webhook-timestamp %q, received at %v", r.header.Get("Webhook-Timestamp"), r.at)
		}
		sigs := strings.Split(r.header.Get("Webhook-Signature"), " ")
		if len(sigs) != 2 {
			t.Errorf("signature header %q: want two signatures during a rotation", r.header.Get("Webhook-Signature"))
		}
		for _, sec := range []string{secretA, secretB} {
			if !independentCheck(t, sec, r.header, r.body) {
				t.Errorf("signature does not verify with %s", sec)
			}
			if err := webhook.Verify(sec, r.header, r.body, 5*time.Minute, time.Now()); err != nil {
				t.Errorf("Verify with %s: %v", sec, err)
			}
		}
		if independentCheck(t, secretC, r.header, r.body) {
			t.Error("a third secret verifies")
		}
		if r.header.Get("Authorization") != "Bearer abc" || r.header.Get("X-Tenant") != "acme" {
			t.Errorf("static headers missing: %v", r.header)
		}
		if r.header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.header.Get("Content-Type"))
		}
	}
}

func TestSendBatch(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	s := newSender(t, cfg(rc.srv.URL, `, "batch": 100`))
	if s.MaxBatch() != 100 {
		t.Errorf("MaxBatch %d", s.MaxBatch())
	}
	ds := deliveries(250) // more than MaxBatch: split in order
	if err := s.Send(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), ds[:100]); err != nil { // a retry of the first
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 4 {
		t.Fatalf("%d requests, want 3 + 1", len(got))
	}
	n := 0
	for i, r := range got[:3] {
		var b struct{ Batch []map[string]any }
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		for _, e := range b.Batch {
			if e["messageId"] != fmt.Sprintf("m-%d", n) {
				t.Fatalf("event %d is %v", n, e["messageId"])
			}
			n++
		}
		if !independentCheck(t, secretA, r.header, r.body) {
			t.Errorf("batch %d: bad signature", i)
		}
		if !strings.HasPrefix(r.header.Get("Webhook-Id"), "batch_") {
			t.Errorf("batch id %q", r.header.Get("Webhook-Id"))
		}
	}
	if n != 250 {
		t.Errorf("%d events delivered, want 250", n)
	}
	if got[0].header.Get("Webhook-Id") != got[3].header.Get("Webhook-Id") {
		t.Error("the same batch got a different webhook-id on its retry")
	}
	if got[0].header.Get("Webhook-Id") == got[1].header.Get("Webhook-Id") {
		t.Error("two batches share a webhook-id")
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	s := newSender(t, fmt.Sprintf(`{"url": %q, "allow_http": true, "secrets": [%q, %q]}`, rc.srv.URL, secretA, secretB))
	if err := s.Send(context.Background(), deliveries(1)); err != nil {
		t.Fatal(err)
	}
	r := rc.requests()[0]
	now := r.at
	tampered := append([]byte(nil), r.body...)
	tampered[len(tampered)-2] = '9'
	noSig := r.header.Clone()
	noSig.Del("webhook-signature")
	otherVersion := r.header.Clone()
	otherVersion.Set("webhook-signature", "v1a,abc "+strings.Split(r.header.Get("webhook-signature"), " ")[1])
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		now    time.Time
		want   error // nil: accepted
	}{
		{"correct", secretA, r.header, r.body, now, nil},
		{"the other secret of the rotation", secretB, r.header, r.body, now, nil},
		{"4 minutes later", secretA, r.header, r.body, now.Add(4 * time.Minute), nil},
		{"tampered body", secretA, r.header, tampered, now, webhook.ErrSignature},
		{"wrong secret", secretC, r.header, r.body, now, webhook.ErrSignature},
		{"stale timestamp", secretA, r.header, r.body, now.Add(6 * time.Minute), webhook.ErrTimestamp},
		{"timestamp from the future", secretA, r.header, r.body, now.Add(-6 * time.Minute), webhook.ErrTimestamp},
		{"missing signature", secretA, noSig, r.body, now, webhook.ErrMissingHeader},
		{"other versions skipped", secretB, otherVersion, r.body, now, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secret, tt.header, tt.body, 5*time.Minute, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
			// The independent check agrees on the signature part.
			if tt.want != webhook.ErrTimestamp {
				if ok := independentCheck(t, tt.secret, tt.header, tt.body); ok != (tt.want == nil) && tt.header.Get("webhook-signature") != "" {
					t.Errorf("independent check says %v", ok)
				}
			}
		})
	}
	if err := webhook.Verify("not-a-secret", r.header, r.body, 0, now); err == nil {
		t.Error("Verify accepted a malformed secret")
	}
}

// failure checks that err is a *destination.Error of the wanted class.
func failure(t *testing.T, err error, permanent, reject bool, status int) *destination.Error {
	t.Helper()
	var de *destination.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *destination.Error", err, err)
	}
	if de.Permanent != permanent || de.Reject != reject || de.Status != status {
		t.Fatalf("error %+v: want permanent=%v reject=%v status=%d", de, permanent, reject, status)
	}
	return de
}

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status            int
		permanent, reject bool
	}{
		{200, false, false}, {201, false, false}, {204, false, false},
		{401, true, false}, {403, true, false}, {410, true, false},
		{400, false, true}, {413, false, true}, {422, false, true},
		{429, false, false}, {500, false, false}, {502, false, false}, {503, false, false}, {404, false, false},
		{301, true, false}, {302, true, false}, {307, true, false}, {308, true, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.status >= 300 && tt.status < 400 {
					w.Header().Set("Location", "https://elsewhere.example/hook?token=secret")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, `{"error":"nope"}`)
			})
			err := newSender(t, cfg(rc.srv.URL, "")).Send(context.Background(), deliveries(1))
			if tt.status < 300 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			de := failure(t, err, tt.permanent, tt.reject, tt.status)
			if !strings.Contains(de.Msg, "nope") {
				t.Errorf("Msg %q lacks the response body", de.Msg)
			}
			if tt.status < 400 && (!strings.Contains(de.Msg, "redirect") || strings.Contains(de.Msg, "token")) {
				t.Errorf("redirect Msg %q", de.Msg)
			}
			if len(rc.requests()) != 1 {
				t.Errorf("%d requests: a redirect was followed", len(rc.requests()))
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, h := range []struct {
		header   string
		min, max time.Duration
	}{
		{"7", 7 * time.Second, 7 * time.Second},
		{date, 80 * time.Second, 91 * time.Second},
		{"", 0, 0},
		{"soon", 0, 0},
	} {
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			if h.header != "" {
				w.Header().Set("Retry-After", h.header)
			}
			w.WriteHeader(http.StatusTooManyRequests)
		})
		err := newSender(t, cfg(rc.srv.URL, "")).Send(context.Background(), deliveries(1))
		de := failure(t, err, false, false, 429)
		if de.RetryAfter < h.min || de.RetryAfter > h.max {
			t.Errorf("Retry-After %q: RetryAfter %v, want %v..%v", h.header, de.RetryAfter, h.min, h.max)
		}
	}
	// 503 with Retry-After too.
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	de := failure(t, newSender(t, cfg(rc.srv.URL, "")).Send(context.Background(), deliveries(1)), false, false, 503)
	if de.RetryAfter != 2*time.Minute {
		t.Errorf("RetryAfter %v", de.RetryAfter)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	err := newSender(t, cfg(rc.srv.URL, `, "timeout": "200ms"`)).Send(context.Background(), deliveries(1))
	de := failure(t, err, false, false, 0)
	if !strings.Contains(de.Msg, "timed out") {
		t.Errorf("Msg %q", de.Msg)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	url := rc.srv.URL
	rc.srv.Close()
	failure(t, newSender(t, cfg(url, "")).Send(context.Background(), deliveries(1)), false, false, 0)
}

// Without AllowLoopback, the guarded default client refuses the local
// receiver: a permanent failure naming the address.
func TestForbiddenAddress(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	s, err := webhook.New(json.RawMessage(cfg(rc.srv.URL, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	de := failure(t, s.Send(context.Background(), deliveries(1)), true, false, 0)
	if !strings.Contains(de.Msg, "127.0.0.1") || !strings.Contains(de.Msg, "forbidden") {
		t.Errorf("Msg %q", de.Msg)
	}
	if len(rc.requests()) != 0 {
		t.Error("the receiver was reached")
	}
}

func TestLongResponseTruncated(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, strings.Repeat("é", 100000))
	})
	de := failure(t, newSender(t, cfg(rc.srv.URL, "")).Send(context.Background(), deliveries(1)), false, false, 500)
	if len(de.Msg) > egress.MsgBodyCap+10 || !strings.HasSuffix(de.Msg, "…") || !strings.HasPrefix(de.Msg, "éé") {
		t.Errorf("Msg of %d bytes: %.40q…", len(de.Msg), de.Msg)
	}
}

func TestInvalidPayloadRejected(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	ds := deliveries(3)
	ds[1].Payload = json.RawMessage(`{"type":`)
	de := failure(t, newSender(t, cfg(rc.srv.URL, `, "batch": 10`)).Send(context.Background(), ds), false, true, 0)
	if !strings.Contains(de.Msg, ds[1].Key) {
		t.Errorf("Msg %q does not name the delivery", de.Msg)
	}
	if len(rc.requests()) != 0 {
		t.Error("an invalid body was sent")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  string
		want string
	}{
		{`{"secrets":["` + secretA + `"]}`, "url: missing"},
		{`{"url":"http://x.example","secrets":["` + secretA + `"]}`, `"allow_http": true`},
		{`{"url":"ftp://x.example","secrets":["` + secretA + `"]}`, `scheme "ftp"`},
		{`{"url":"https://","secrets":["` + secretA + `"]}`, "no host"},
		{`{"url":"https://x.example"}`, "at least one"},
		{`{"url":"https://x.example","secrets":["` + secretA + `","` + secretB + `","` + secretC + `"]}`, "at most 2"},
		{`{"url":"https://x.example","secrets":["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}`, `secrets[0]: a secret is written "whsec_"`},
		{`{"url":"https://x.example","secrets":["whsec_c2hvcnQ="]}`, "5 bytes"},
		{`{"url":"https://x.example","secrets":["whsec_!!!"]}`, "not base64"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"batch":5000}`, "batch: 5000"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"batch":-1}`, "batch: -1"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"timeout":"soon"}`, `"soon" is not a duration`},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"timeout":600}`, "timeout: 10m0s"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"headers":{"Host":"x"}}`, "Host is set by Kith"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"headers":{"content-length":"1"}}`, "Content-Length is set by Kith"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"headers":{"webhook-id":"1"}}`, "Webhook-Id is set by Kith"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"headers":{"bad name":"1"}}`, "not a valid header name"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"headers":{"X-A":"1\r\nHost: y"}}`, "line break"},
		{`{"url":"https://x.example","secrets":["` + secretA + `"],"secret":"x"}`, `unknown field "secret"`},
		{`{"url":"https://x.example","secrets":"` + secretA + `"}`, "secrets"},
		{`not json`, "webhook config"},
	}
	for _, tt := range tests {
		_, err := webhook.New(json.RawMessage(tt.cfg), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s) = %v, want an error containing %q", tt.cfg, err, tt.want)
		}
	}
	// Defaults and accepted forms.
	c, err := webhook.ParseConfig(json.RawMessage(`{"url":"https://x.example/h","secrets":["` + secretA + `"],"timeout":2.5,"headers":{"X-Key":"v"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Batch != 1 || time.Duration(c.Timeout) != 2500*time.Millisecond {
		t.Errorf("defaults: %+v", c)
	}
}

// BenchmarkSendBatch100 delivers batches of 100 events to a local
// receiver that reads every body, and reports events/s: small events
// (about 100 bytes) and 1 KB ones. Send is called by one goroutine, as the
// delivery engine does for one destination.
func BenchmarkSendBatch100(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("event=%dB", size), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			s, err := webhook.New(json.RawMessage(cfg(srv.URL, `, "batch": 100`)), egress.New(egress.Options{AllowLoopback: true}))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ds := deliveries(100)
			for i := range ds {
				if pad := size - len(ds[i].Payload); pad > 0 {
					p := ds[i].Payload
					ds[i].Payload = json.RawMessage(string(p[:len(p)-2]) + `,"note":"` + strings.Repeat("x", max(pad-10, 0)) + `"}}`)
				}
			}
			b.SetBytes(int64(100 * size))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := s.Send(ctx, ds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(ds))/time.Since(start).Seconds(), "events/s")
		})
	}
}
