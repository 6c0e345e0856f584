package delivery

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kithcdp/kith/store"
)

// foldStore answers Cursors with a folded position it counts the reads
// of; the rest of store.Store is not used.
type foldStore struct {
	store.Store
	fold  int64
	err   error
	reads int
}

func (s *foldStore) Cursors(context.Context) (map[string]int64, error) {
	s.reads++
	return map[string]int64{"acme": s.fold}, s.err
}

// TestFolded: a page stops before its first privacy control event past
// the folded position; the folded position is read only for a control
// event past the one the caches were checked at, and the caches are
// emptied when it moved.
func TestFolded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &foldStore{fold: 2}
	w := &worker{e: &Engine{o: Options{Store: st}}, ws: "acme"}
	page := []store.Event{
		{Position: 1, Type: "track"},
		{Position: 2, Type: store.TypePrivacy},
		{Position: 3, Type: "track"},
		{Position: 4, Type: store.TypePrivacy},
		{Position: 5, Type: "track"},
	}
	positions := func(evs []store.Event) (ps []int64) {
		for _, ev := range evs {
			ps = append(ps, ev.Position)
		}
		return ps
	}
	step := func(what string, want []int64, reads int) {
		t.Helper()
		got, err := w.folded(ctx, page)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !slices.Equal(positions(got), want) {
			t.Errorf("%s: page %v, want %v", what, positions(got), want)
		}
		if st.reads != reads {
			t.Errorf("%s: %d reads of the folded position, want %d", what, st.reads, reads)
		}
	}

	// Position 4 is not folded: the page stops before it.
	step("first", []int64{1, 2, 3}, 1)
	w.owners["u1"] = 7 // a cached owner
	// Nothing was folded since: the page is read again, and so is the
	// folded position (4 is past it), which has not moved.
	step("again", []int64{1, 2, 3}, 2)
	if w.owners["u1"] != 7 {
		t.Error("the caches were emptied though the folded position did not move")
	}
	// Folded: the whole page goes, and the caches are emptied.
	st.fold = 4
	step("folded", []int64{1, 2, 3, 4, 5}, 3)
	if _, ok := w.owners["u1"]; ok {
		t.Error("the caches were kept past a newly folded control event")
	}
	// The control events are within the position the caches were checked
	// at: no read.
	step("within", []int64{1, 2, 3, 4, 5}, 3)
	page = []store.Event{{Position: 6, Type: "track"}}
	step("no control event", []int64{6}, 3)

	// A position that cannot be read fails the step.
	page = []store.Event{{Position: 7, Type: store.TypePrivacy}}
	st.err = errors.New("down")
	if _, err := w.folded(ctx, page); err == nil {
		t.Error("folded with an unreadable folded position: no error")
	}
}
