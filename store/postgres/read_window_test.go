package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// TestReadWindowAcrossGaps: a cursor's pages are read through the window
// of positions after the cursor first; a gap longer than a page (events
// deleted by retention) and one across a page's end still give full pages
// in position order, and nothing at the head.
func TestReadWindowAcrossGaps(t *testing.T) {
	st := setup(t, 1)[0]
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var b store.Batch
	for i := 1; i <= 60; i++ {
		e := event("ws", fmt.Sprintf("m%d", i))
		if i > 10 && i <= 45 {
			e.ReceivedAt = now.Add(-2 * time.Hour)
		}
		b.Events = append(b.Events, e)
	}
	if _, err := st.Append(ctx, &b, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteBefore(ctx, "ws", now.Add(-time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for p := int64(1); p <= 60; p++ {
		if p <= 10 || p > 45 {
			want = append(want, p)
		}
	}
	var got []int64
	for after := int64(0); ; {
		page, err := st.Read(ctx, store.LogQuery{Workspace: "ws", After: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) != 7 && len(got)+len(page) != len(want) {
			t.Fatalf("a page of %d after %d, want 7", len(page), after)
		}
		for _, e := range page {
			got = append(got, e.Position)
		}
		after = page[len(page)-1].Position
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	page, err := st.Read(ctx, store.LogQuery{Workspace: "ws", After: 8, Limit: 7})
	if err != nil || len(page) != 7 || page[1].Position != 10 || page[2].Position != 46 {
		t.Fatalf("after 8: %d events (%v)", len(page), err)
	}
}
