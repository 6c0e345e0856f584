package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// privacyRequest is a complete request of workspace ws.
func privacyRequest(ws, id string) store.PrivacyRequest {
	at := time.Date(2026, 12, 3, 10, 11, 12, 131415161, time.FixedZone("CET", 3600))
	return store.PrivacyRequest{
		ID: id, Workspace: ws, Type: "erasure", Regulation: "SUPPRESS_WITH_DELETE", Law: "gdpr",
		Subjects:   []store.RequestSubject{{Type: "email", Digest: "9f86d081884c7d65"}},
		Status:     store.RequestReceived,
		ReceivedAt: at, Deadline: at.AddDate(0, 1, 0), Via: "api", Actor: "dpo",
		Destinations: []store.DestinationDeletion{{Destination: "crm", Status: store.DeletionPending, At: at}},
		Details:      json.RawMessage(`{"reason":"asked by email"}`),
		Job:          json.RawMessage(`{"identifiers":[{"type":"email","value":"ada@example.com"}]}`),
	}
}

// runRequests runs the data-subject requests part of the suite
// (store/request.go).
func runRequests(t *testing.T, open func(t *testing.T) store.Store, ws func() string) {
	st := open(t)
	ctx := context.Background()

	t.Run("PrivacyRequestRoundTrip", func(t *testing.T) {
		t.Parallel()
		w := ws()
		in := privacyRequest(w, "dsr_rt_"+w)
		got, err := st.CreatePrivacyRequest(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq <= 0 || got.Version != 1 {
			t.Fatalf("seq %d, version %d", got.Seq, got.Version)
		}
		read, err := st.PrivacyRequest(ctx, w, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.Seq, want.Version = got.Seq, 1
		want.ReceivedAt = in.ReceivedAt.UTC().Truncate(time.Microsecond)
		want.Deadline = in.Deadline.UTC().Truncate(time.Microsecond)
		want.Destinations = []store.DestinationDeletion{{Destination: "crm", Status: store.DeletionPending, At: want.ReceivedAt}}
		if !sameRequest(read, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", read, want)
		}
		if !sameRequest(got, want) {
			t.Fatalf("create returned\n %+v\nwant %+v", got, want)
		}
		// Another workspace does not see it; an unknown id is not found.
		if _, err := st.PrivacyRequest(ctx, ws(), in.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other workspace: %v", err)
		}
		if _, err := st.PrivacyRequest(ctx, w, "dsr_nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		// An ID is taken once.
		if _, err := st.CreatePrivacyRequest(ctx, in); !errors.Is(err, store.ErrExists) {
			t.Fatalf("second create: %v", err)
		}
		// Minimal request: nil lists read back empty, no JSON reads back nil.
		bare := store.PrivacyRequest{ID: "dsr_bare_" + w, Workspace: w, Type: "access", Status: store.RequestReceived,
			ReceivedAt: in.ReceivedAt, Deadline: in.Deadline}
		if _, err := st.CreatePrivacyRequest(ctx, bare); err != nil {
			t.Fatal(err)
		}
		b, err := st.PrivacyRequest(ctx, w, bare.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b.Subjects == nil || len(b.Subjects) != 0 || b.Destinations == nil || len(b.Destinations) != 0 ||
			b.Details != nil || b.Job != nil || !b.CompletedAt.IsZero() || !b.LeaseUntil.IsZero() {
			t.Fatalf("bare request read back as %+v", b)
		}
		// Incomplete requests are refused.
		for _, r := range []store.PrivacyRequest{
			{Workspace: w, Type: "access", Status: store.RequestReceived},
			{ID: "dsr_x", Type: "access", Status: store.RequestReceived},
			{ID: "dsr_x", Workspace: w, Status: store.RequestReceived},
			{ID: "dsr_x", Workspace: w, Type: "access"},
			{ID: "dsr_x", Workspace: w, Type: "access", Status: store.RequestReceived, Job: json.RawMessage(`{`)},
			{ID: "dsr_x", Workspace: w, Type: "access", Status: store.RequestReceived, Details: json.RawMessage(`{`)},
		} {
			if _, err := st.CreatePrivacyRequest(ctx, r); err == nil {
				t.Errorf("created %+v", r)
			}
		}
	})

	t.Run("PrivacyRequestUpdateIsCompareAndSet", func(t *testing.T) {
		t.Parallel()
		w := ws()
		r, err := st.CreatePrivacyRequest(ctx, privacyRequest(w, "dsr_cas_"+w))
		if err != nil {
			t.Fatal(err)
		}
		// Several nodes update the same version at once: one wins.
		var won atomic.Int64
		var wg sync.WaitGroup
		nodes := []store.Store{st, open(t), open(t)}
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := r
				u.Status, u.Position = store.RequestInProgress, int64(i+1)
				u.LeaseUntil = time.Now().Add(time.Minute)
				if _, err := nodes[i%len(nodes)].UpdatePrivacyRequest(ctx, u); err == nil {
					won.Add(1)
				} else if !errors.Is(err, store.ErrStale) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d updates of version 1 won, want 1", won.Load())
		}
		cur, err := st.PrivacyRequest(ctx, w, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Version != 2 || cur.Status != store.RequestInProgress || cur.Position < 1 || cur.LeaseUntil.IsZero() {
			t.Fatalf("after the winning update: %+v", cur)
		}
		// A stale version changes nothing.
		stale := r
		stale.Status = store.RequestFailed
		if _, err := st.UpdatePrivacyRequest(ctx, stale); !errors.Is(err, store.ErrStale) {
			t.Fatalf("stale update: %v", err)
		}
		// Completing clears the job; every field updated reads back.
		done := cur
		done.Status, done.CompletedAt, done.Job, done.LeaseUntil = store.RequestCompleted, time.Now(), nil, time.Time{}
		done.Destinations = []store.DestinationDeletion{{Destination: "crm", Status: store.DeletionSent, Detail: "202", At: time.Now()}}
		done.Error = "none"
		done.Position = 99
		done.Subjects = []store.RequestSubject{{Type: "user_id", Digest: "60303ae22b998861"}}
		done.Details = json.RawMessage(`{"reason":"x"}`)
		got, err := st.UpdatePrivacyRequest(ctx, done)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 3 {
			t.Fatalf("version %d after two updates", got.Version)
		}
		read, err := st.PrivacyRequest(ctx, w, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := store.PrepareRequest(done)
		want.Version = 3
		if !sameRequest(read, want) || read.Job != nil {
			t.Fatalf("after completion:\n got %+v\nwant %+v", read, want)
		}
		// An unknown request is stale, not created.
		ghost := privacyRequest(w, "dsr_ghost_"+w)
		ghost.Version = 1
		if _, err := st.UpdatePrivacyRequest(ctx, ghost); !errors.Is(err, store.ErrStale) {
			t.Fatalf("update of an unknown request: %v", err)
		}
		if _, err := st.PrivacyRequest(ctx, w, ghost.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the unknown request exists after an update: %v", err)
		}
	})

	// Not parallel: no other subtest writes or reads while the SQLite WAL
	// is truncated and the files are searched.
	t.Run("PrivacyRequestClearedJobLeavesNoTrace", func(t *testing.T) {
		tr, ok := st.(Tracer)
		if !ok {
			t.Fatalf("%T does not implement storetest.Tracer", st)
		}
		w := ws()
		needle := "job-needle-" + w + "@example.com"
		r := privacyRequest(w, "dsr_trace_"+w)
		r.Job = json.RawMessage(`{"identifiers":[{"type":"email","value":"` + needle + `"}]}`)
		r, err := st.CreatePrivacyRequest(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if found, err := tr.Traces(ctx, []string{needle}); err != nil || len(found) == 0 {
			t.Fatalf("the job is found nowhere before it is cleared (%v): the search does not work", err)
		}
		r.Status, r.Job = store.RequestCompleted, nil
		if _, err := st.UpdatePrivacyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if found, err := tr.Traces(ctx, []string{needle}); err != nil || len(found) > 0 {
			t.Fatalf("the cleared job is still held:\n%s\n(%v)", strings.Join(found, "\n"), err)
		}
	})

	t.Run("PrivacyRequestsPage", func(t *testing.T) {
		t.Parallel()
		w, other := ws(), ws()
		var ids []string
		for i := range 7 {
			r := privacyRequest(w, fmt.Sprintf("dsr_page_%s_%d", w, i))
			if i%2 == 1 {
				r.Status = store.RequestInProgress
			}
			if _, err := st.CreatePrivacyRequest(ctx, r); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		if _, err := st.CreatePrivacyRequest(ctx, privacyRequest(other, "dsr_page_"+other)); err != nil {
			t.Fatal(err)
		}
		page := func(q store.RequestQuery) []string {
			t.Helper()
			var out []string
			for range 100 {
				rs, err := st.PrivacyRequests(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) > store.PageSize(q.Limit) {
					t.Fatalf("page of %d, limit %d", len(rs), q.Limit)
				}
				if len(rs) == 0 {
					return out
				}
				for _, r := range rs {
					if r.Seq <= q.After {
						t.Fatalf("seq %d after %d", r.Seq, q.After)
					}
					q.After = r.Seq
					out = append(out, r.ID)
				}
			}
			t.Fatal("paging does not end")
			return nil
		}
		if got := page(store.RequestQuery{Workspace: w, Limit: 3}); !reflect.DeepEqual(got, ids) {
			t.Fatalf("pages: %v, want %v", got, ids)
		}
		if got := page(store.RequestQuery{Workspace: w, Status: store.RequestInProgress, Limit: 2}); !reflect.DeepEqual(got, []string{ids[1], ids[3], ids[5]}) {
			t.Fatalf("in progress: %v", got)
		}
		// Every workspace: both are listed.
		all := page(store.RequestQuery{})
		seen := map[string]bool{}
		for _, id := range all {
			seen[id] = true
		}
		if !seen[ids[0]] || !seen["dsr_page_"+other] {
			t.Fatalf("every workspace: %v", all)
		}
	})
}

// sameRequest compares requests, times by instant.
func sameRequest(a, b store.PrivacyRequest) bool {
	norm := func(r store.PrivacyRequest) store.PrivacyRequest {
		r.ReceivedAt, r.Deadline, r.CompletedAt, r.LeaseUntil = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		r.Destinations = append([]store.DestinationDeletion{}, r.Destinations...)
		for i := range r.Destinations {
			r.Destinations[i].At = time.Time{}
		}
		if r.Subjects == nil {
			r.Subjects = []store.RequestSubject{}
		}
		return r
	}
	sameTimes := a.ReceivedAt.Equal(b.ReceivedAt) && a.Deadline.Equal(b.Deadline) && a.CompletedAt.Equal(b.CompletedAt) &&
		a.LeaseUntil.Equal(b.LeaseUntil) && len(a.Destinations) == len(b.Destinations)
	for i := range a.Destinations {
		sameTimes = sameTimes && i < len(b.Destinations) && a.Destinations[i].At.Equal(b.Destinations[i].At)
	}
	return sameTimes && reflect.DeepEqual(norm(a), norm(b))
}
