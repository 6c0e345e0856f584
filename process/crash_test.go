package process_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/postgres"
	"github.com/kithcdp/kith/store/postgres/pgtest"
	"github.com/kithcdp/kith/store/sqlite"
)

// foldChildEnv, set in a child's environment, makes the test binary fold
// the store named by its value (a data directory or a postgres:// URL)
// until it is killed.
const foldChildEnv = "KITH_TEST_FOLD_STORE"

func TestMain(m *testing.M) {
	if where := os.Getenv(foldChildEnv); where != "" {
		foldUntilKilled(where)
		return
	}
	os.Exit(m.Run())
}

func openAt(ctx context.Context, where string) (store.Store, error) {
	if strings.HasPrefix(where, "postgres") {
		return postgres.Open(ctx, where)
	}
	return sqlite.Open(ctx, where)
}

// foldUntilKilled is the child: it folds workspace "crash" in small
// batches, with a short lease so a killed child's successor waits little.
func foldUntilKilled(where string) {
	ctx := context.Background()
	st, err := openAt(ctx, where)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p := newProcessor(st, 37)
	p.Run(ctx, []string{"crash"})
}

// TestSIGKILLDuringFolding kills a folding process at random moments,
// lets folding finish, and requires the state to equal a clean replay.
func TestSIGKILLDuringFolding(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts processes")
	}
	t.Parallel()
	for name, where := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return t.TempDir() },
		"postgres": func(t *testing.T) string { return pgtest.SchemaURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			crashAndCompare(t, where(t))
		})
	}
}

func crashAndCompare(t *testing.T, where string) {
	ctx := context.Background()
	st, err := openAt(ctx, where)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const ws = "crash"
	rx := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	calls := syntheticCalls(12000, 7)
	for i := 0; i < len(calls); i += 500 {
		appendEvents(t, st, ws, rx.Add(time.Duration(i)*time.Second), calls[i:min(i+500, len(calls))]...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	var killedAt []int64
	for round := 0; round < 5; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), foldChildEnv+"="+where)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(1000+rng.IntN(1000)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if strings.Contains(stderr.String(), "DATA RACE") || strings.Contains(stderr.String(), "panic") {
			t.Fatalf("child failed:\n%s", stderr.String())
		}
		kills++
		cursors, err := st.Cursors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		killedAt = append(killedAt, cursors[ws])
	}
	t.Logf("%d kills, at folded positions %v of %d events", kills, killedAt, len(calls))
	// The killed children never released their lease: taking over waits
	// for it to expire, as a new node would.
	p := newProcessor(st, 1000)
	for {
		err := p.CatchUp(ctx, ws, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	incremental := digest(t, st, ws)
	if err := newProcessor(st, 1000).Replay(ctx, ws, nil); err != nil {
		t.Fatal(err)
	}
	if replayed := digest(t, st, ws); replayed != incremental {
		t.Fatalf("state after kills differs from a clean replay:\n--- after kills\n%s\n--- replay\n%s", firstLines(incremental, 40), firstLines(replayed, 40))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// syntheticCalls makes n Tracking API calls of people who browse
// anonymously on a few devices, log in, alias, join accounts and update
// traits, deterministically from seed.
func syntheticCalls(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, seed))
	calls := make([]string, 0, n)
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for len(calls) < n {
		ts = ts.Add(time.Duration(rng.IntN(60)) * time.Second)
		person := rng.IntN(n / 10)
		device := fmt.Sprintf("anon-%d-%d", person, rng.IntN(3))
		at := ts.Format(time.RFC3339Nano)
		var c string
		switch r := rng.IntN(20); {
		case r < 12:
			c = fmt.Sprintf(`{"type":"page","anonymousId":%q,"name":"Page %d","timestamp":%q}`, device, rng.IntN(9), at)
		case r < 15:
			c = fmt.Sprintf(`{"type":"identify","anonymousId":%q,"userId":"u-%d","traits":{"email":"p%d@example.com","plan":"p%d"},"timestamp":%q}`,
				device, person, person, rng.IntN(4), at)
		case r < 17:
			c = fmt.Sprintf(`{"type":"track","userId":"u-%d","event":"Order Completed","properties":{"total":%d},"timestamp":%q}`, person, rng.IntN(500), at)
		case r < 18:
			c = fmt.Sprintf(`{"type":"alias","previousId":%q,"userId":"u-%d","timestamp":%q}`, device, person, at)
		case r < 19:
			c = fmt.Sprintf(`{"type":"group","userId":"u-%d","groupId":"acct-%d","traits":{"name":"Account %d"},"timestamp":%q}`, person, person%7, person%7, at)
		default:
			// An email shared with another person: limits decide.
			c = fmt.Sprintf(`{"type":"identify","userId":"u-%d","traits":{"email":"p%d@example.com"},"timestamp":%q}`, person, (person+1)%(n/10), at)
		}
		calls = append(calls, c)
	}
	return calls
}
