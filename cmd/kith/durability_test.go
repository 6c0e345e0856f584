package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kithcdp/kith/store/postgres/pgtest"
)

// asKithEnv, set to 1 in a child's environment, makes the test binary run
// as the kith binary itself (see TestMain): the tests start real kith
// processes without a separate build, and under -race the server is
// race-checked too.
const asKithEnv = "KITH_TEST_RUN_AS_KITH"

func TestMain(m *testing.M) {
	if os.Getenv(asKithEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// kithProcess is one running `kith serve`, its output going to files in
// the test's temporary directory.
type kithProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string // http://host:port
	stdout  string // path of the stdout file
	stderr  string // path of the stderr file
	exited  chan struct{}
	waitErr error
}

// kithCommand prepares the test binary to run as kith with args, with a
// clean environment (no KITH_* settings of the caller leak in).
func kithCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KITH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, asKithEnv+"=1")
	return cmd
}

var kithStarts atomic.Int64

// startKith runs `kith serve` with args on a free port, with JSON logs, and
// waits until it answers /readyz.
func startKith(t *testing.T, args ...string) *kithProcess {
	t.Helper()
	n := kithStarts.Add(1)
	dir := t.TempDir()
	p := &kithProcess{
		t:      t,
		stdout: filepath.Join(dir, fmt.Sprintf("kith-%d.stdout", n)),
		stderr: filepath.Join(dir, fmt.Sprintf("kith-%d.stderr", n)),
		exited: make(chan struct{}),
	}
	stdout, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	p.cmd = kithCommand(context.Background(), args...)
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start kith: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		// Under -race the server is race-checked too; a killed one never
		// reaches its exit code, so look at what it printed.
		if out := p.output(p.stderr); strings.Contains(out, "WARNING: DATA RACE") {
			t.Errorf("kith reported a data race; stderr:\n%s", out)
		}
	})
	p.waitReady()
	return p
}

// waitReady waits for the "kith listening" log line, then for /readyz.
func (p *kithProcess) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.t.Fatalf("kith exited before it was ready (%v); stderr:\n%s", p.waitErr, p.output(p.stderr))
		default:
		}
		if p.url == "" {
			p.url = p.listenURL()
		}
		if p.url != "" {
			resp, err := http.Get(p.url + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("kith was not ready within 20s; stderr:\n%s", p.output(p.stderr))
}

// listenURL finds the address in the "kith listening" log line, or "".
func (p *kithProcess) listenURL() string {
	sc := bufio.NewScanner(strings.NewReader(p.output(p.stderr)))
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "kith listening" && line.Addr != "" {
			return "http://" + line.Addr
		}
	}
	return ""
}

func (p *kithProcess) output(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *kithProcess) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("SIGKILL kith: %v", err)
	}
	<-p.exited
}

// stop ends the process with SIGTERM and requires a clean exit.
func (p *kithProcess) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM kith: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(25 * time.Second):
		p.t.Fatalf("kith did not stop within 25s of SIGTERM")
	}
	if p.waitErr != nil {
		p.t.Errorf("kith exited with %v after SIGTERM; stderr:\n%s", p.waitErr, p.output(p.stderr))
	}
}

// post sends body to path with key as the HTTP Basic user name.
func (p *kithProcess) post(client *http.Client, path, key string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, p.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(key, "")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// storedEvent is what the durability test reads back from the log API.
type storedEvent struct {
	Position  int64  `json:"position"`
	MessageID string `json:"messageId"`
	Type      string `json:"type"`
}

// readLog pages through a workspace's whole log with the log API.
func (p *kithProcess) readLog(workspace, token string) []storedEvent {
	p.t.Helper()
	var all []storedEvent
	next := ""
	for {
		u := p.url + "/v1/workspaces/" + workspace + "/events?limit=1000"
		if next != "" {
			u += "&next=" + url.QueryEscape(next)
		}
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			p.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			p.t.Fatalf("read the log: %v", err)
		}
		var page struct {
			Data []storedEvent `json:"data"`
			Next string        `json:"next"`
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			p.t.Fatalf("read the log: %d %s %v", resp.StatusCode, body, err)
		}
		if err := json.Unmarshal(body, &page); err != nil {
			p.t.Fatalf("read the log: %v", err)
		}
		all = append(all, page.Data...)
		if page.Next == "" {
			return all
		}
		next = page.Next
	}
}

const (
	durableWorkspace = "durable"
	durableKey       = "wk_durability_0123456789"
	durableToken     = "tok_durability_0123456789"
	durableConfig    = `workspaces:
  - slug: durable
    sources:
      - slug: load
        write_key: wk_durability_0123456789
    tokens:
      - name: reader
        token: tok_durability_0123456789
        scopes: [debug, profiles:read]
`
)

// TestSIGKILLDurability kills kith with SIGKILL in the middle of a load,
// twice, and proves after restart that every acknowledged messageId is in
// the log, that nothing is stored twice (retries before the kill and after
// the restart are reported as duplicates), and that positions are 1..N.
func TestSIGKILLDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts and kills kith processes under load")
	}
	t.Parallel()
	eachStore(t, func(t *testing.T, storeURL string) {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, durableConfig)
		args := []string{"--data", filepath.Join(dir, "data"), "--config", cfg, "--store", storeURL}
		runDurability(t, args)
	})
}

// eachStore runs test once per backend, with kith serve's --store flag:
// SQLite (the default, "") and a fresh PostgreSQL schema.
func eachStore(t *testing.T, test func(t *testing.T, storeURL string)) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string // the --store flag
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", postgresSchemaURL},
	} {
		t.Run(tc.name, func(t *testing.T) { test(t, tc.store(t)) })
	}
}

// writeConfig writes config as dir/kith.yaml and returns its path.
func writeConfig(t *testing.T, dir, config string) string {
	t.Helper()
	cfg := filepath.Join(dir, "kith.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sentBatch is one request of the load: its body and the messageIds in it.
type sentBatch struct {
	path     string
	body     []byte
	ids      []string
	attempts int  // guarded by durabilityLoad.mu
	acked    bool // answered 200 at least once; guarded by durabilityLoad.mu
}

// durabilityLoad is the bookkeeping of the load: every batch built, the
// acknowledged ones and the ones to resend after a restart.
type durabilityLoad struct {
	t   *testing.T
	run string // unique prefix of this run's messageIds

	mu             sync.Mutex
	seq            int
	types          map[string]string // every messageId sent → its event type
	acked          []*sentBatch      // acknowledged batches, for retries
	pending        []*sentBatch      // unacknowledged batches, resent after restart
	ackedEvents    int
	retriedAcked   int // retries of acknowledged batches (all must be duplicates)
	storedUnacked  int // events of unacknowledged requests found stored when resent
	resentUnacked  int // events of unacknowledged requests resent
	firstAckEvents int // events acknowledged in this round
}

func (l *durabilityLoad) newBatch(client int, single bool) *sentBatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	n := 50
	if single {
		n = 1
	}
	b := &sentBatch{path: "/v1/batch"}
	events := make([]map[string]any, n)
	for i := range events {
		id := fmt.Sprintf("%s-%d-%d-%d", l.run, client, l.seq, i)
		typ := "track"
		e := map[string]any{"messageId": id, "userId": fmt.Sprintf("user-%d", l.seq%97)}
		if i%10 == 9 {
			typ = "identify"
			e["traits"] = map[string]any{"plan": "pro", "seq": l.seq}
		} else {
			e["event"] = "Durability Checked"
			e["properties"] = map[string]any{"client": client, "seq": l.seq, "i": i}
		}
		e["type"] = typ
		events[i] = e
		b.ids = append(b.ids, id)
		l.types[id] = typ
	}
	var err error
	if single {
		b.path = "/v1/track"
		delete(events[0], "type")
		b.body, err = json.Marshal(events[0])
	} else {
		b.body, err = json.Marshal(map[string]any{"batch": events})
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// next picks a client's next request: unacknowledged batches of an earlier
// round first, then every fifth request a retry of an acknowledged batch,
// else a new batch (a single /v1/track for every fourth client).
func (l *durabilityLoad) next(client, iter int) *sentBatch {
	l.mu.Lock()
	if n := len(l.pending); n > 0 {
		b := l.pending[n-1]
		l.pending = l.pending[:n-1]
		l.mu.Unlock()
		return b
	}
	if iter%5 == 4 && len(l.acked) > 0 {
		b := l.acked[(client*7919+iter)%len(l.acked)]
		l.mu.Unlock()
		return b
	}
	l.mu.Unlock()
	return l.newBatch(client, client%4 == 0)
}

// ack checks the answer to a request that got a 200 and records it.
func (l *durabilityLoad) ack(b *sentBatch, body []byte) error {
	var resp struct {
		Success    bool              `json:"success"`
		Accepted   int               `json:"accepted"`
		Duplicates int               `json:"duplicates"`
		Rejected   []json.RawMessage `json:"rejected"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("decode the answer %s: %w", body, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b.attempts++
	n := len(b.ids)
	switch {
	case !resp.Success || len(resp.Rejected) > 0 || resp.Accepted+resp.Duplicates != n:
		return fmt.Errorf("%s with %d events answered %s", b.path, n, body)
	case b.acked && resp.Duplicates != n:
		return fmt.Errorf("retry of an acknowledged %s stored %d of %d events again (lost, or not deduplicated): %s", b.path, resp.Accepted, n, body)
	case b.attempts == 1 && resp.Duplicates != 0:
		return fmt.Errorf("first send of %d new events reported %d duplicates: %s", n, resp.Duplicates, body)
	}
	if b.acked {
		l.retriedAcked++
		return nil
	}
	if b.attempts > 1 {
		l.resentUnacked += n
		l.storedUnacked += resp.Duplicates
	}
	b.acked = true
	l.acked = append(l.acked, b)
	l.ackedEvents += n
	l.firstAckEvents += n
	return nil
}

// unacked records a request that got no answer because kith was killed.
func (l *durabilityLoad) unacked(b *sentBatch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b.attempts++
	l.pending = append(l.pending, b)
}

func (l *durabilityLoad) ackedInRound() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstAckEvents
}

func runDurability(t *testing.T, args []string) {
	const (
		rounds  = 2
		clients = 8
	)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	l := &durabilityLoad{t: t, run: "dur-" + hex.EncodeToString(suffix), types: map[string]string{}}
	client := &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: clients},
	}
	defer client.CloseIdleConnections()

	for round := 1; round <= rounds; round++ {
		started := time.Now()
		p := startKith(t, args...)
		startup := time.Since(started)
		l.mu.Lock()
		l.firstAckEvents = 0
		l.mu.Unlock()

		var killed atomic.Bool
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for iter := 0; !killed.Load(); iter++ {
					b := l.next(c, iter)
					status, body, err := p.post(client, b.path, durableKey, b.body)
					if err != nil {
						if killed.Load() {
							l.unacked(b)
							return
						}
						t.Errorf("client %d: %s failed before the kill: %v", c, b.path, err)
						return
					}
					if status != http.StatusOK {
						t.Errorf("client %d: %s answered %d: %s", c, b.path, status, body)
						return
					}
					if err := l.ack(b, body); err != nil {
						t.Errorf("client %d: %v", c, err)
						return
					}
				}
			})
		}
		// Kill once the load has run a second and some events are
		// acknowledged (or after 8 s at most).
		load := time.Now()
		for time.Since(load) < 8*time.Second && (time.Since(load) < time.Second || l.ackedInRound() < 1000) {
			time.Sleep(20 * time.Millisecond)
		}
		killed.Store(true)
		p.kill()
		wg.Wait()
		client.CloseIdleConnections()
		l.mu.Lock()
		t.Logf("round %d: started in %v, killed with SIGKILL after %v of load: %d events newly acknowledged, %d requests unanswered",
			round, startup.Round(time.Millisecond), time.Since(load).Round(time.Millisecond), l.firstAckEvents, len(l.pending))
		acked := l.firstAckEvents
		l.mu.Unlock()
		if acked == 0 {
			t.Fatalf("round %d: no event was acknowledged before the kill", round)
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	// Restart, resend what was never acknowledged, retry acknowledged
	// batches, then read the whole log back.
	started := time.Now()
	p := startKith(t, args...)
	t.Logf("restart after the last SIGKILL: ready in %v", time.Since(started).Round(time.Millisecond))
	l.mu.Lock()
	resend := append([]*sentBatch(nil), l.pending...)
	l.pending = nil
	retry := l.acked[:min(len(l.acked), 50)]
	l.mu.Unlock()
	for _, b := range append(resend, retry...) {
		status, body, err := p.post(client, b.path, durableKey, b.body)
		if err != nil || status != http.StatusOK {
			t.Fatalf("resend after restart: %d %s %v", status, body, err)
		}
		if err := l.ack(b, body); err != nil {
			t.Fatalf("resend after restart: %v", err)
		}
	}

	events := p.readLog(durableWorkspace, durableToken)
	seen := make(map[string]int64, len(events))
	var problems []string
	for i, e := range events {
		if want := int64(i + 1); e.Position != want {
			problems = append(problems, fmt.Sprintf("position %d where %d was due (a gap or disorder)", e.Position, want))
		}
		if first, dup := seen[e.MessageID]; dup {
			problems = append(problems, fmt.Sprintf("messageId %s stored twice, at positions %d and %d", e.MessageID, first, e.Position))
		}
		seen[e.MessageID] = e.Position
		typ, ok := l.types[e.MessageID]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("position %d holds messageId %q that the test never sent", e.Position, e.MessageID))
		case typ != e.Type:
			problems = append(problems, fmt.Sprintf("position %d: type %q, sent as %q", e.Position, e.Type, typ))
		}
	}
	// By now every batch has been acknowledged (the unanswered ones on
	// resend), so every messageId sent must be stored.
	for id := range l.types {
		if _, ok := seen[id]; !ok {
			problems = append(problems, fmt.Sprintf("acknowledged messageId %s is missing from the log", id))
		}
	}
	if len(problems) > 0 {
		t.Errorf("%d problems in a log of %d events, e.g.:\n  %s", len(problems), len(events),
			strings.Join(problems[:min(len(problems), 20)], "\n  "))
	}
	t.Logf("log holds %d events at positions 1..%d: %d acknowledged in total; %d events of unanswered requests resent, of which %d had been stored before the kill; %d retries of acknowledged requests all reported duplicates",
		len(events), len(events), l.ackedEvents, l.resentUnacked, l.storedUnacked, l.retriedAcked)
	p.stop()
}

// postgresSchemaURL returns the URL of a fresh schema (see
// pgtest.SchemaURL), which must be a postgres:// URL for kith serve --store.
func postgresSchemaURL(t *testing.T) string {
	t.Helper()
	dsn := pgtest.SchemaURL(t)
	if u, err := url.Parse(dsn); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("KITH_TEST_POSTGRES_URL must be a postgres:// URL for kith serve --store, got %q", redactURL(dsn))
	}
	return dsn
}

// TestServeFirstStartWriteKey starts kith without a config: the first start
// prints a write key once, the second prints none, and the key works on
// both.
func TestServeFirstStartWriteKey(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts kith processes")
	}
	t.Parallel()
	data := t.TempDir()
	client := &http.Client{Timeout: 10 * time.Second}

	first := startKith(t, "--data", data)
	out := first.output(first.stdout)
	key, token := "", ""
	for line := range strings.Lines(out) {
		k := strings.TrimSpace(line)
		if !strings.HasPrefix(line, "    ") || k == "" {
			continue
		}
		dst := &key
		if strings.HasPrefix(k, "tok_") {
			dst = &token
		}
		if *dst != "" {
			t.Fatalf("first start printed more than one key or token:\n%s", out)
		}
		*dst = k
	}
	if !strings.Contains(out, "New write key") || key == "" || token == "" {
		t.Fatalf("first start printed no write key or admin token; stdout:\n%s", out)
	}
	track := []byte(`{"userId":"u-1","event":"Signed Up"}`)
	if status, body, err := first.post(client, "/v1/track", key, track); err != nil || status != http.StatusOK {
		t.Fatalf("track with the printed key: %d %s %v", status, body, err)
	}
	first.stop()

	second := startKith(t, "--data", data)
	if out := second.output(second.stdout); strings.Contains(out, "write key") || strings.Contains(out, key) {
		t.Errorf("second start printed a write key again; stdout:\n%s", out)
	}
	if status, body, err := second.post(client, "/v1/track", key, track); err != nil || status != http.StatusOK {
		t.Errorf("track with the key after restart: %d %s %v", status, body, err)
	}
	if status, body, err := second.post(client, "/v1/track", key+"x", track); err != nil || status != http.StatusUnauthorized {
		t.Errorf("track with a wrong key: %d %s %v, want 401", status, body, err)
	}
	// The admin token printed at first start reads the log.
	req, _ := http.NewRequest("GET", second.url+"/v1/workspaces/default/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("log API with the printed admin token: %d", resp.StatusCode)
	}
	second.stop()
}

// TestBadInvocation checks that bad flags and config fail fast with a clear
// message and a non-zero exit, before anything listens.
func TestBadInvocation(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts kith processes")
	}
	t.Parallel()
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "unknown-key.yaml")
	if err := os.WriteFile(badConfig, []byte(durableConfig+"frobnicate: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		want    string // stderr must contain it
		mustNot string // stderr must not contain it (if set)
	}{
		{"log format", []string{"serve", "--log-format", "xml"}, 2, "--log-format must be text or json", ""},
		{"unknown flag", []string{"serve", "--nope"}, 2, "flag provided but not defined: -nope", ""},
		{"stray argument", []string{"serve", "extra"}, 2, "takes no arguments", ""},
		{"short lease", []string{"serve", "--lease-ttl", "10ms"}, 2, "--lease-ttl (env KITH_LEASE_TTL) must be a duration of at least 500ms", ""},
		{"replay without workspace", []string{"replay"}, 2, "kith replay needs --workspace", ""},
		{"replay unknown workspace", []string{"replay", "--workspace", "nope", "--data", filepath.Join(dir, "empty")}, 2, `no workspace "nope"`, ""},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`, ""},
		{"unknown config key", []string{"serve", "--config", badConfig}, 1, "frobnicate", ""},
		{"missing config file", []string{"serve", "--config", filepath.Join(dir, "absent.yaml")}, 1, "absent.yaml", ""},
		{"unknown store scheme", []string{"serve", "--store", "mysql://kith:s3cret@localhost/kith"}, 1, "unknown store URL", "s3cret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if args[0] == "serve" {
				// Should it start after all, it must not collide with anything.
				args = append(args, "--addr", "127.0.0.1:0", "--data", t.TempDir())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := kithCommand(ctx, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("kith %v did not exit; stderr:\n%s", tc.args, stderr.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("kith %v: %v, want exit code %d", tc.args, err, tc.code)
			}
			if exit.ExitCode() != tc.code {
				t.Errorf("kith %v exited with %d, want %d", tc.args, exit.ExitCode(), tc.code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("kith %v: stderr lacks %q:\n%s", tc.args, tc.want, stderr.String())
			}
			if tc.mustNot != "" && strings.Contains(stderr.String(), tc.mustNot) {
				t.Errorf("kith %v: stderr shows %q:\n%s", tc.args, tc.mustNot, stderr.String())
			}
		})
	}
}

// TestLeaderTakeover runs two nodes on one PostgreSQL database under load
// and SIGKILLs the one folding the log: the other takes the workspace over
// within the lease TTL and folds every event.
func TestLeaderTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts and kills kith processes")
	}
	t.Parallel()
	storeURL := postgresSchemaURL(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, durableConfig)
	args := []string{"--config", cfg, "--store", storeURL, "--lease-ttl", "2s"}
	a := startKith(t, append(args, "--data", filepath.Join(dir, "a"))...)
	waitMetric(t, a, `kith_process_leader{workspace="durable"} 1`)
	b := startKith(t, append(args, "--data", filepath.Join(dir, "b"))...)
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(p *kithProcess, n int) {
		t.Helper()
		for i := range n {
			body := fmt.Sprintf(`{"batch":[{"type":"identify","userId":"u%d","traits":{"n":%d}},{"type":"track","userId":"u%d","event":"E"}]}`, i, i, i)
			if status, resp, err := p.post(client, "/v1/batch", durableKey, []byte(body)); err != nil || status != 200 {
				t.Fatalf("send: %d %s %v", status, resp, err)
			}
		}
	}
	send(a, 200)
	send(b, 200)
	a.kill()
	killed := time.Now()
	send(b, 200)
	waitMetric(t, b, `kith_process_leader{workspace="durable"} 1`)
	takeover := time.Since(killed)
	waitMetric(t, b, `kith_process_position{workspace="durable"} 1200`)
	t.Logf("node b took over %s after node a was killed (lease TTL 2s) and folded all 1,200 events", takeover.Round(time.Millisecond))
	if takeover > 5*time.Second {
		t.Errorf("takeover took %s with a 2s lease", takeover)
	}
	b.stop()
}

// waitMetric waits up to 20s for a line of /metrics.
func waitMetric(t *testing.T, p *kithProcess, line string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "\n"+line+"\n") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("metric %q not seen within 20s", line)
}

// TestReplayCommand: kith replay rebuilds a stopped server's profiles with
// progress, and the Profile API serves the same profile afterwards.
func TestReplayCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts kith processes")
	}
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, durableConfig)
	args := []string{"--config", cfg, "--data", filepath.Join(dir, "data")}
	p := startKith(t, args...)
	client := &http.Client{Timeout: 10 * time.Second}
	body := `{"batch":[{"type":"page","anonymousId":"a1"},{"type":"identify","anonymousId":"a1","userId":"u1","traits":{"plan":"pro"}}]}`
	if status, resp, err := p.post(client, "/v1/batch", durableKey, []byte(body)); err != nil || status != 200 {
		t.Fatalf("send: %d %s %v", status, resp, err)
	}
	waitMetric(t, p, `kith_process_position{workspace="durable"} 2`)
	p.stop()

	out, err := kithCommand(context.Background(), append([]string{"replay", "--workspace", "durable"}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `replayed workspace "durable"`) || !strings.Contains(string(out), "100.0%") {
		t.Fatalf("kith replay: %v\n%s", err, out)
	}
	p = startKith(t, args...)
	req, _ := http.NewRequest("GET", p.url+"/v1/spaces/durable/collections/users/profiles/anonymous_id:a1/traits", nil)
	req.SetBasicAuth(durableToken, "")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(got), `"plan":"pro"`) {
		t.Fatalf("profile after replay: %d %s", resp.StatusCode, got)
	}
	p.stop()
}
