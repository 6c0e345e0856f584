package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/postgres"
	"github.com/kithcdp/kith/store/postgres/pgtest"
)

// schemaURL returns the URL of a fresh schema (see pgtest.SchemaURL).
func schemaURL(t testing.TB) string { return pgtest.SchemaURL(t) }

// open opens a store on dsn, closed at cleanup. Each call is a new pool:
// one Kith node.
func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// setup returns n stores (nodes) sharing one fresh schema.
func setup(t testing.TB, n int) []*postgres.Store {
	t.Helper()
	dsn := schemaURL(t)
	nodes := make([]*postgres.Store, n)
	for i := range nodes {
		nodes[i] = open(t, dsn)
	}
	return nodes
}

func event(workspace, messageID string) store.Event {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return store.Event{
		Workspace:  workspace,
		Source:     "web",
		MessageID:  messageID,
		Type:       "track",
		Name:       "Clicked",
		UserID:     "u1",
		Timestamp:  now,
		ReceivedAt: now,
		Format:     store.FormatVersion,
		Raw:        []byte(`{"type":"track","event":"Clicked","messageId":"` + messageID + `"}`),
	}
}

func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
}

func TestCheckDurability(t *testing.T) {
	t.Parallel()
	s := setup(t, 1)[0]
	d, err := s.CheckDurability(context.Background())
	if err != nil {
		t.Fatalf("CheckDurability: %v", err)
	}
	if d.Backend != "postgres" || d.Settings["synchronous_commit"] != "on" || d.Settings["fsync"] != "on" {
		t.Errorf("CheckDurability = %+v, want postgres with synchronous_commit and fsync on", d)
	}
}

func TestSynchronousCommitRaised(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	sep := "&"
	if !strings.Contains(dsn, "://") {
		sep = " "
	}
	// The URL asks for asynchronous commits; Open must not honour that.
	s := open(t, dsn+sep+"synchronous_commit=off")
	d, err := s.CheckDurability(context.Background())
	if err != nil || d.Settings["synchronous_commit"] != "on" {
		t.Errorf("CheckDurability = %+v, %v; want synchronous_commit on", d, err)
	}
}

// TestGapFreeAcrossNodes appends from several nodes at once, in batches
// spanning one or two workspaces, while readers on every node follow the
// log: each read must continue exactly where the previous one ended, or a
// reader saw a position before an earlier one became visible.
func TestGapFreeAcrossNodes(t *testing.T) {
	t.Parallel()
	nodes := setup(t, 4)
	ctx := context.Background()
	const writers, batches = 8, 25
	workspaces := []string{"a", "b"}

	var wg sync.WaitGroup
	done := make(chan struct{})
	var mu sync.Mutex
	appended := map[string]int64{} // events appended per workspace
	for i := range writers {
		wg.Go(func() {
			s := nodes[i%len(nodes)]
			for j := range batches {
				b := &store.Batch{}
				for k := range 1 + (i+j)%7 {
					w := workspaces[i%2]
					if j%3 == 2 {
						// Mix both workspaces, starting with either, to
						// exercise the lock order.
						w = workspaces[(i+k)%2]
					}
					b.Events = append(b.Events, event(w, fmt.Sprintf("w%d-b%d-e%d", i, j, k)))
				}
				if _, err := s.Append(ctx, b, time.Hour); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				for _, e := range b.Events {
					appended[e.Workspace]++
				}
				mu.Unlock()
			}
		})
	}

	var readers sync.WaitGroup
	for i, s := range nodes {
		for _, w := range workspaces {
			readers.Go(func() {
				var last int64
				for finished := false; ; {
					select {
					case <-done:
						finished = true
					default:
					}
					evs, err := s.Read(ctx, store.LogQuery{Workspace: w, After: last, Limit: 1000})
					if err != nil {
						t.Errorf("node %d: read: %v", i, err)
						return
					}
					for _, e := range evs {
						if e.Position != last+1 {
							t.Errorf("node %d workspace %s: after position %d read %d", i, w, last, e.Position)
							return
						}
						last = e.Position
					}
					if finished && len(evs) == 0 {
						mu.Lock()
						defer mu.Unlock()
						if last != appended[w] {
							t.Errorf("node %d workspace %s: read %d events, appended %d", i, w, last, appended[w])
						}
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(done)
	readers.Wait()

	for _, w := range workspaces {
		if head, err := nodes[0].Head(ctx, w); err != nil || head != appended[w] {
			t.Errorf("Head(%s) = %d, %v; want %d", w, head, err, appended[w])
		}
	}
}

// TestConcurrentDuplicates appends the same messageIds from several nodes
// at once: each must be stored once, and every caller must get its position.
func TestConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	nodes := setup(t, 3)
	ctx := context.Background()
	const ids, callers = 40, 6
	results := make([][]store.Appended, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			b := &store.Batch{}
			for k := range ids {
				// Each caller sends the ids in a different order.
				b.Events = append(b.Events, event("w", fmt.Sprintf("m%d", (k*7+c*11)%ids)))
			}
			res, err := nodes[c%len(nodes)].Append(ctx, b, time.Hour)
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			results[c] = make([]store.Appended, ids)
			for k, r := range res {
				results[c][(k*7+c*11)%ids] = r
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for id := range ids {
		fresh := 0
		for c := range callers {
			r := results[c][id]
			if !r.Duplicate {
				fresh++
			}
			if r.Position != results[0][id].Position {
				t.Errorf("m%d: caller %d got position %d, caller 0 got %d", id, c, r.Position, results[0][id].Position)
			}
		}
		if fresh != 1 {
			t.Errorf("m%d stored %d times, want once", id, fresh)
		}
	}
	if head, err := nodes[0].Head(ctx, "w"); err != nil || head != ids {
		t.Errorf("Head = %d, %v; want %d", head, err, ids)
	}
}
