package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
)

func openLog(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func batch(ids ...string) *store.Batch {
	now := time.Now().UTC()
	b := &store.Batch{}
	for _, id := range ids {
		b.Events = append(b.Events, store.Event{Workspace: "w", Source: "s", MessageID: id, Type: "track",
			Timestamp: now, ReceivedAt: now, Format: store.FormatVersion, Raw: json.RawMessage(`{}`)})
	}
	return b
}

func TestGroupCommitterMergesAndReportsPerCaller(t *testing.T) {
	t.Parallel()
	st := openLog(t)
	g := store.NewGroupCommitter(st, store.GroupCommitOptions{})
	defer g.Close()
	const callers = 20
	res := make([][]store.Appended, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			var err error
			// Every caller sends "shared"; exactly one stores it.
			res[i], err = g.Append(context.Background(), batch(fmt.Sprint("own", i), "shared"), time.Hour)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen, stored := map[int64]bool{}, 0
	for i, r := range res {
		if len(r) != 2 || r[0].Duplicate {
			t.Fatalf("caller %d: %+v", i, r)
		}
		if seen[r[0].Position] {
			t.Fatalf("position %d handed out twice", r[0].Position)
		}
		seen[r[0].Position] = true
		if !r[1].Duplicate {
			stored++
		}
	}
	if head, _ := st.Head(context.Background(), "w"); stored != 1 || head != callers+1 {
		t.Fatalf("shared stored %d times, head %d; want 1 and %d", stored, head, callers+1)
	}
	if s := g.Stats(); s.Requests != callers || s.Events != 2*callers {
		t.Fatalf("stats %+v", s)
	}
}

// An Append after Close fails with ErrClosed at once, also when it races with
// Close: it must not wait for its context, which here never ends.
func TestGroupCommitterAppendAfterClose(t *testing.T) {
	t.Parallel()
	st := openLog(t)
	for round := range 200 {
		g := store.NewGroupCommitter(st, store.GroupCommitOptions{})
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				b := batch(fmt.Sprintf("r%d-%d", round, i))
				res, err := g.Append(context.Background(), b, time.Hour)
				switch {
				case errors.Is(err, store.ErrClosed):
				case err != nil:
					t.Error(err)
				case len(res) != 1 || res[0].Position == 0:
					t.Errorf("committed without a position: %+v", res)
				}
			})
		}
		g.Close()
		wg.Wait()
		if _, err := g.Append(context.Background(), batch("late"), time.Hour); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("append after close: %v, want ErrClosed", err)
		}
	}
}
