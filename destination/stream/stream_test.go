package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/store"
)

// natsServer is an embedded nats-server with JetStream: a real server on
// a random loopback port with its store in a temporary directory.
type natsServer struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

func startServer(t testing.TB, edit func(*server.Options)) *natsServer {
	t.Helper()
	ns := &natsServer{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	if edit != nil {
		edit(&ns.opts)
	}
	ns.start()
	// A restart keeps the port the clients know, and the store.
	ns.opts.Port = ns.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	ns.t.Helper()
	opts := ns.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		ns.t.Fatalf("nats-server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		ns.t.Fatal("nats-server not ready")
	}
	ns.srv = srv
}

func (ns *natsServer) stop() {
	if ns.srv != nil {
		ns.srv.Shutdown()
		ns.srv.WaitForShutdown()
		ns.srv = nil
	}
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.opts.Port) }

// sender builds a Sender from cfg, a JSON object to which "url" is added.
func (ns *natsServer) sender(t testing.TB, cfg map[string]any) *Sender {
	t.Helper()
	if _, ok := cfg["url"]; !ok {
		cfg["url"] = ns.url()
	}
	raw, _ := json.Marshal(cfg)
	s, err := New(raw)
	if err != nil {
		t.Fatalf("New(%s): %v", raw, err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*Sender)
}

// admin is a plain JetStream client used by the tests to look at what the
// sender stored.
func (ns *natsServer) admin(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(ns.url(), nats.Token(ns.opts.Authorization))
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func deliveries(from, n int) []destination.Delivery {
	out := make([]destination.Delivery, n)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range out {
		pos := int64(from + i)
		out[i] = destination.Delivery{
			Key:      fmt.Sprintf("crm:%d:event", pos),
			Kind:     destination.KindEvent,
			Position: pos,
			Profile:  store.ProfileID(1000 + pos),
			Payload:  json.RawMessage(fmt.Sprintf(`{"type":"track","event":"Order Completed","n":%d}`, pos)),
			At:       at.Add(time.Duration(pos) * time.Second),
		}
		if pos%3 == 0 {
			out[i].Kind = destination.KindAudienceEntered
			out[i].Audience = "vip"
			out[i].Key = fmt.Sprintf("crm:%d:audience_entered:vip", pos)
		}
	}
	return out
}

// consume reads every message of the stream in order with an ordered
// consumer.
func consume(t testing.TB, js jetstream.JetStream, stream string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	total := st.CachedInfo().State.Msgs
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for uint64(len(got)) < total {
		batch, err := c.Fetch(int(total)-len(got), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := len(got)
		for m := range batch.Messages() {
			got = append(got, m)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if len(got) == n {
			t.Fatalf("consumer stalled at %d of %d messages", n, total)
		}
	}
	return got
}

func checkOrder(t *testing.T, got []jetstream.Msg, want []destination.Delivery) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("stream holds %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		d := want[i]
		h := m.Headers()
		if h.Get(nats.MsgIdHdr) != d.Key || h.Get(HeaderKey) != d.Key {
			t.Fatalf("message %d: Nats-Msg-Id %q, want %q", i, h.Get(nats.MsgIdHdr), d.Key)
		}
		if string(m.Data()) != string(d.Payload) {
			t.Fatalf("message %d: body %s, want %s", i, m.Data(), d.Payload)
		}
		if h.Get(HeaderKind) != d.Kind || h.Get(HeaderPosition) != strconv.FormatInt(d.Position, 10) ||
			h.Get(HeaderProfile) != strconv.FormatInt(int64(d.Profile), 10) || h.Get(HeaderAudience) != d.Audience ||
			h.Get(HeaderAt) != d.At.Format(time.RFC3339Nano) || h.Get("Content-Type") != "application/json" {
			t.Fatalf("message %d: headers %v do not describe %+v", i, h, d)
		}
	}
}

func TestSendInOrderWithHeaders(t *testing.T) {
	t.Parallel()
	ns := startServer(t, nil)
	s := ns.sender(t, map[string]any{"subject": "kith.acme.crm", "stream": "KITH_ACME_CRM"})
	ctx := context.Background()
	all := deliveries(1, 250)
	for i := 0; i < len(all); i += s.MaxBatch() {
		if err := s.Send(ctx, all[i:min(i+s.MaxBatch(), len(all))]); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	js := ns.admin(t)
	checkOrder(t, consume(t, js, "KITH_ACME_CRM"), all)

	st, err := js.Stream(ctx, "KITH_ACME_CRM")
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Config; c.Storage != jetstream.FileStorage || len(c.Subjects) != 1 || c.Subjects[0] != "kith.acme.crm" {
		t.Fatalf("created stream config: %+v", c)
	}
}

func TestDuplicateKeysDropped(t *testing.T) {
	t.Parallel()
	ns := startServer(t, nil)
	s := ns.sender(t, map[string]any{"subject": "kith.acme.dup", "duplicate_window": "10m"})
	ctx := context.Background()
	first := deliveries(1, 50)
	if err := s.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A retry of the same batch, and an overlapping one: only positions
	// 51..60 are new.
	if err := s.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, deliveries(41, 20)); err != nil {
		t.Fatal(err)
	}
	checkOrder(t, consume(t, ns.admin(t), "kith_acme_dup"), deliveries(1, 60))
}

func TestServerStoppedThenRestarted(t *testing.T) {
	t.Parallel()
	ns := startServer(t, nil)
	s := ns.sender(t, map[string]any{"subject": "kith.acme.restart", "timeout": "2s"})
	ctx := context.Background()
	if err := s.Send(ctx, deliveries(1, 10)); err != nil {
		t.Fatal(err)
	}

	ns.stop()
	err := s.Send(ctx, deliveries(11, 10))
	var de *destination.Error
	if !errors.As(err, &de) || de.Permanent || de.Reject {
		t.Fatalf("Send with the server down: %v (%#v), want a retryable *destination.Error", err, de)
	}

	ns.start()
	// The connection comes back by itself; the engine would retry with
	// backoff. Bounded: 100 tries, 100 ms apart.
	for try := 0; ; try++ {
		err = s.Send(ctx, deliveries(11, 10))
		if err == nil {
			break
		}
		if !errors.As(err, &de) || de.Permanent || de.Reject {
			t.Fatalf("Send after restart: %v, want success or a retryable error", err)
		}
		if try == 100 {
			t.Fatalf("Send still failing after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Stored once each, in order, across the restart (file storage).
	checkOrder(t, consume(t, ns.admin(t), "kith_acme_restart"), deliveries(1, 20))
}

func TestNoServerIsRetryable(t *testing.T) {
	t.Parallel()
	ns := startServer(t, nil)
	url := ns.url()
	ns.stop() // nothing listens on that port now
	s := ns.sender(t, map[string]any{"subject": "kith.acme.none", "url": url, "timeout": "1s"})
	err := s.Send(context.Background(), deliveries(1, 1))
	var de *destination.Error
	if !errors.As(err, &de) || de.Permanent || de.Reject {
		t.Fatalf("Send to no server: %v, want a retryable *destination.Error", err)
	}
}

func TestAuthorizationFailureIsPermanent(t *testing.T) {
	t.Parallel()
	ns := startServer(t, func(o *server.Options) { o.Authorization = "s3cret" })

	good := ns.sender(t, map[string]any{"subject": "kith.acme.auth", "token": "s3cret"})
	if err := good.Send(context.Background(), deliveries(1, 3)); err != nil {
		t.Fatalf("Send with the right token: %v", err)
	}
	for _, cfg := range []map[string]any{
		{"subject": "kith.acme.auth", "token": "wrong"},
		{"subject": "kith.acme.auth"},
	} {
		err := ns.sender(t, cfg).Send(context.Background(), deliveries(1, 1))
		var de *destination.Error
		if !errors.As(err, &de) || !de.Permanent {
			t.Fatalf("Send with config %v: %v, want a permanent *destination.Error", cfg, err)
		}
	}
}

func TestPermissionViolationIsPermanent(t *testing.T) {
	t.Parallel()
	ns := startServer(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "kith", Password: "pw", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"kith.acme.denied"}},
		}}}
	})
	url := fmt.Sprintf("nats://kith:pw@127.0.0.1:%d", ns.opts.Port)
	s := ns.sender(t, map[string]any{"subject": "kith.acme.denied", "url": url, "timeout": "1s"})
	err := s.Send(context.Background(), deliveries(1, 1))
	var de *destination.Error
	if !errors.As(err, &de) || !de.Permanent {
		t.Fatalf("Send to a denied subject: %v, want a permanent *destination.Error", err)
	}
	if strings.Contains(de.Msg, "pw@") {
		t.Fatalf("error shows the password: %s", de.Msg)
	}
}

func TestTooLargeIsReject(t *testing.T) {
	t.Parallel()
	ns := startServer(t, func(o *server.Options) { o.MaxPayload = 8 << 10 })
	ctx := context.Background()
	big := deliveries(1, 3)
	big[1].Payload = json.RawMessage(`"` + strings.Repeat("x", 16<<10) + `"`)

	// Larger than the server's max_payload: refused by the client.
	s := ns.sender(t, map[string]any{"subject": "kith.acme.big"})
	err := s.Send(ctx, big)
	var de *destination.Error
	if !errors.As(err, &de) || !de.Reject || de.Permanent {
		t.Fatalf("Send over max_payload: %v, want Reject", err)
	}

	// Larger than the stream's max message size: refused by JetStream.
	js := ns.admin(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"kith.acme.small"}, MaxMsgSize: 1024}); err != nil {
		t.Fatal(err)
	}
	small := deliveries(1, 3)
	small[1].Payload = json.RawMessage(`"` + strings.Repeat("x", 2048) + `"`)
	s = ns.sender(t, map[string]any{"subject": "kith.acme.small", "stream": "SMALL", "create": false})
	err = s.Send(ctx, small)
	if !errors.As(err, &de) || !de.Reject || de.Permanent {
		t.Fatalf("Send over the stream's max_msg_size: %v, want Reject", err)
	}
	// The delivery before the large one is stored; the engine splits the
	// batch, dead-letters the large one and sends the rest.
	if err := s.Send(ctx, []destination.Delivery{small[0], small[2]}); err != nil {
		t.Fatal(err)
	}
	checkOrder(t, consume(t, js, "SMALL"), []destination.Delivery{small[0], small[2]})
}

func TestStreamMustExistOrFit(t *testing.T) {
	t.Parallel()
	ns := startServer(t, nil)
	ctx := context.Background()
	js := ns.admin(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WILD", Subjects: []string{"kith.*.wild"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg       map[string]any
		permanent bool
	}{
		{map[string]any{"subject": "kith.acme.missing", "stream": "MISSING", "create": false}, true},
		{map[string]any{"subject": "kith.acme.x", "stream": "OTHER"}, true},
		{map[string]any{"subject": "kith.acme.wild", "stream": "WILD", "create": false}, false},
	} {
		err := ns.sender(t, tc.cfg).Send(ctx, deliveries(1, 2))
		var de *destination.Error
		switch {
		case tc.permanent && (!errors.As(err, &de) || !de.Permanent):
			t.Errorf("config %v: %v, want a permanent error", tc.cfg, err)
		case !tc.permanent && err != nil:
			t.Errorf("config %v: %v", tc.cfg, err)
		}
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{
		`{}`,
		`{"subject":""}`,
		`{"subject":"kith.*"}`,
		`{"subject":"kith.>"}`,
		`{"subject":"kith..crm"}`,
		`{"subject":"kith crm"}`,
		`{"subject":"kith.crm","stream":"a.b"}`,
		`{"subject":"kith.crm","url":"http://127.0.0.1:4222"}`,
		`{"subject":"kith.crm","timeout":"soon"}`,
		`{"subject":"kith.crm","timeout":"-1s"}`,
		`{"subject":"kith.crm","duplicate_window":"2"}`,
		`{"subject":"kith.crm","max_batch":-1}`,
		`{"subject":"kith.crm","token":"t","credentials":"/x.creds"}`,
		`{"subject":"kith.crm","subjet":"typo"}`,
		`{"subject":"kith.crm"`,
		`[]`,
	} {
		if _, err := New(json.RawMessage(cfg)); err == nil {
			t.Errorf("New(%s) succeeded, want an error", cfg)
		}
	}
	s, err := New(json.RawMessage(`{"subject":"kith.acme.crm"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.(*Sender); got.url != DefaultURL || got.stream != "kith_acme_crm" || !got.create || got.MaxBatch() != DefaultMaxBatch {
		t.Errorf("defaults: %+v", got)
	}
}

func TestSubjectMatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"kith.acme.crm", "kith.acme.crm", true},
		{"kith.*.crm", "kith.acme.crm", true},
		{"kith.>", "kith.acme.crm", true},
		{">", "kith", true},
		{"kith.>", "kith", false},
		{"kith.*", "kith.acme.crm", false},
		{"kith.acme", "kith.acme.crm", false},
		{"kith.acme.crm.x", "kith.acme.crm", false},
	} {
		if got := subjectMatches(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("subjectMatches(%q, %q) = %v", tc.pattern, tc.subject, got)
		}
	}
}

// BenchmarkSend publishes batches of 100 deliveries to an embedded server
// (file storage), each publish awaiting its acknowledgement.
func BenchmarkSend(b *testing.B) {
	ns := startServer(b, nil)
	s := ns.sender(b, map[string]any{"subject": "kith.bench.crm"})
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := s.Send(ctx, deliveries(n, 100)); err != nil {
			b.Fatal(err)
		}
		n += 100
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
}
