package privacy_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// hash is a server secret's HMAC, as tenant.Registry.Hash computes it.
func hash(s string) []byte {
	m := hmac.New(sha256.New, []byte("request-test-secret-0123456789abcdef"))
	m.Write([]byte(s))
	return m.Sum(nil)
}

// deleter records the deletions sent and answers each destination with
// its error.
type deleter struct {
	mu    sync.Mutex
	sent  []destination.Deletion
	dests []string
	errs  map[string]error
}

func (d *deleter) delete(_ context.Context, ws, dest string, del destination.Deletion) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent = append(d.sent, del)
	d.dests = append(d.dests, dest)
	return d.errs[dest]
}

func newRequests(t testing.TB, st store.Store, del privacy.DeleteFunc) *privacy.Requests {
	t.Helper()
	return newRequestsAt(t, st, del, nil)
}

// newRequestsAt is newRequests on the clock now (nil: time.Now).
func newRequestsAt(t testing.TB, st store.Store, del privacy.DeleteFunc, now func() time.Time) *privacy.Requests {
	t.Helper()
	rules, err := identity.DefaultRules().Compile()
	if err != nil {
		t.Fatal(err)
	}
	return privacy.NewRequests(privacy.RequestOptions{
		Store: st, Hash: hash, Delete: del, Logger: slog.New(slog.DiscardHandler), Now: now,
		Rules: func(ws string) (*identity.Compiled, error) {
			if ws != seedWS {
				return nil, fmt.Errorf("no workspace %q", ws)
			}
			return rules, nil
		},
	})
}

func digest(typ, value string) string { return hex.EncodeToString(hash(typ + ":" + value)) }

// controls returns the privacy control events of the log.
func controls(t *testing.T, st store.Store) []privacy.Command {
	t.Helper()
	evs, err := st.Read(context.Background(), store.LogQuery{Workspace: seedWS, Type: store.TypePrivacy, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []privacy.Command
	for _, e := range evs {
		var c privacy.Command
		if err := json.Unmarshal(e.Raw, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// An erasure (SUPPRESS_WITH_DELETE) of ada by her user id: every
// identifier she held is suppressed, the erasure command appended, the
// deletion sent to the webhook that received her data, and once the
// processor folded the command the request is completed, its job cleared
// and ada gone.
func TestRequestErasure(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		seed(t, st)
		ada := lookup(t, st, seedWS, "user_id", "u-42")
		del := &deleter{}
		q := newRequests(t, st, del.delete)
		r, err := q.Submit(ctx, privacy.Submission{Workspace: seedWS, Regulation: privacy.RegulationSuppressWithDelete,
			Identifiers: []store.Identifier{{Type: "user_id", Value: "u-42"}}, Via: privacy.ViaAPI, Actor: "dpo"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != privacy.RequestErasure || r.Status != store.RequestInProgress || r.Law != privacy.LawGDPR ||
			len(r.Subjects) != 1 || r.Subjects[0] != (store.RequestSubject{Type: "user_id", Digest: digest("user_id", "u-42")}) ||
			!r.Deadline.Equal(r.ReceivedAt.AddDate(0, 1, 0)) || r.Position <= 10 || r.Job == nil ||
			len(r.Destinations) != 1 || r.Destinations[0].Destination != hookWS || r.Destinations[0].Status != store.DeletionPending {
			t.Fatalf("submitted: %+v", r)
		}
		// Suppressed: every user_id, anonymous_id and email ada held.
		var listed []string
		if err := st.ScanSuppressed(ctx, seedWS, func(s store.Suppression) error {
			listed = append(listed, hex.EncodeToString(s.Digest))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := []string{digest("user_id", "u-42"), digest("email", "ada@example.com"), digest("anonymous_id", "a-1"),
			digest("anonymous_id", "a-2"), digest("anonymous_id", "a-3")}
		slices.Sort(want)
		if !slices.Equal(listed, want) {
			t.Fatalf("suppression list %v, want %v", listed, want)
		}
		cmds := controls(t, st)
		if len(cmds) != 2 || cmds[0].Action != privacy.ActionSuppress || len(cmds[0].Digests) != 5 ||
			cmds[1].Action != privacy.ActionErase || cmds[1].Identifier != (store.Identifier{Type: "user_id", Value: "u-42"}) ||
			cmds[1].Request != r.ID || cmds[1].Actor != "token:dpo" || cmds[1].Via != "api" {
			t.Fatalf("control events: %+v", cmds)
		}

		// Not folded yet: the deletion is sent, the request stays in progress.
		r, err = q.Get(ctx, seedWS, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != store.RequestInProgress || r.Destinations[0].Status != store.DeletionSent || len(del.sent) != 1 {
			t.Fatalf("before folding: %+v, sent %+v", r, del.sent)
		}
		d := del.sent[0]
		if d.Request != r.ID || d.Workspace != seedWS || d.Profile != ada ||
			!slices.Contains(d.Identifiers, store.Identifier{Type: "email", Value: "ada@example.com"}) || len(d.Identifiers) != 5 {
			t.Fatalf("deletion sent: %+v", d)
		}

		fold(t, st, seedWS)
		r, err = q.Get(ctx, seedWS, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != store.RequestCompleted || r.Job != nil || r.CompletedAt.IsZero() || len(del.sent) != 1 {
			t.Fatalf("after folding: %+v", r)
		}
		if _, err := st.Lookup(ctx, seedWS, store.Identifier{Type: "user_id", Value: "u-42"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ada is still held: %v", err)
		}
		if len(controls(t, st)) != 1 {
			t.Fatalf("the erasure command naming ada is still in the log: %+v", controls(t, st))
		}
		lookup(t, st, seedWS, "user_id", "bob")
		// The audit log: received (by the token) and completed, digests only.
		entries, err := st.Audit(ctx, seedWS, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range entries {
			actions = append(actions, e.Actor+" "+e.Action+" "+e.Target)
			if strings.Contains(string(e.Details), "u-42") || strings.Contains(string(e.Details), "ada@") {
				t.Errorf("audit entry holds personal data: %s", e.Details)
			}
		}
		wantActions := []string{"dpo privacy.request.received request:" + r.ID, "system privacy.request.completed request:" + r.ID}
		if !slices.Equal(actions, wantActions) {
			t.Fatalf("audit %v, want %v", actions, wantActions)
		}
	})
}

// Several nodes advance the same request at once: the deletion is sent
// once.
func TestRequestDeletionSentOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		seed(t, st)
		var calls atomic.Int64
		del := func(context.Context, string, string, destination.Deletion) error {
			calls.Add(1)
			return nil
		}
		r, err := newRequests(t, st, del).Submit(ctx, privacy.Submission{Workspace: seedWS, Type: privacy.RequestErasure,
			Identifiers: []store.Identifier{{Type: "email", Value: " Ada@Example.com"}}, Via: privacy.ViaCLI, Actor: "cli"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Subjects[0].Digest != digest("email", "ada@example.com") {
			t.Fatalf("the subject is not the normalized email's digest: %+v", r.Subjects)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := newRequests(t, st, del).Get(ctx, seedWS, r.ID); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if calls.Load() != 1 {
			t.Fatalf("the deletion was sent %d times", calls.Load())
		}
		got, err := st.PrivacyRequest(ctx, seedWS, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Destinations[0].Status != store.DeletionSent || !got.LeaseUntil.IsZero() {
			t.Fatalf("after the nodes: %+v", got)
		}
	})
}

// What a destination answers decides the deletion's status, and a failed
// deletion fails the request (after Kith's own erasure).
func TestRequestDeletionOutcomes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		del       func(*deleter) privacy.DeleteFunc
		err       error
		status    string // the deletion's, after one Advance
		request   string // the request's, once folded
		detailHas string
	}{
		{"no delivery on this node", func(*deleter) privacy.DeleteFunc { return nil }, nil, store.DeletionUnsupported, store.RequestCompleted, "not running"},
		{"unsupported", (*deleter).fn, errors.New("the destination cannot delete: forward"), store.DeletionUnsupported, store.RequestCompleted, "forward"},
		{"refused", (*deleter).fn, &destination.Error{Status: 403, Permanent: true, Msg: "forbidden"}, store.DeletionFailed, store.RequestFailed, "403"},
		{"to retry", (*deleter).fn, &destination.Error{Status: 503, Msg: "busy"}, store.DeletionPending, store.RequestInProgress, "will retry"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := backends(t)["sqlite"](t)
			seed(t, st)
			d := &deleter{errs: map[string]error{hookWS: c.err}}
			q := newRequests(t, st, c.del(d))
			r, err := q.Submit(ctx, privacy.Submission{Workspace: seedWS, Regulation: privacy.RegulationDeleteOnly,
				Identifiers: []store.Identifier{{Type: "user_id", Value: "u-42"}}, Via: privacy.ViaAPI, Actor: "dpo"})
			if err != nil {
				t.Fatal(err)
			}
			fold(t, st, seedWS)
			r, err = q.Get(ctx, seedWS, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			dd := r.Destinations[0]
			if dd.Status != c.status || !strings.Contains(dd.Detail, c.detailHas) || r.Status != c.request {
				t.Fatalf("request %s, deletion %+v; want %s, %s with %q", r.Status, dd, c.request, c.status, c.detailHas)
			}
			if (r.Status == store.RequestInProgress) == (r.Job == nil) {
				t.Fatalf("job %s with status %s", r.Job, r.Status)
			}
			// A deletion to retry is not tried again at once.
			tries := len(d.sent)
			if r, err = q.Get(ctx, seedWS, r.ID); err != nil || len(d.sent) != tries {
				t.Fatalf("read again: %d deletions sent, was %d (%v)", len(d.sent), tries, err)
			}
			// DELETE_ONLY suppresses nothing.
			n := 0
			if err := st.ScanSuppressed(ctx, seedWS, func(store.Suppression) error { n++; return nil }); err != nil || n != 0 {
				t.Fatalf("DELETE_ONLY suppressed %d (%v)", n, err)
			}
		})
	}
}

func (d *deleter) fn() privacy.DeleteFunc { return d.delete }

// A deletion to retry is tried again once retryEvery (a minute) has
// passed, and sent if the destination then takes it; one still refused
// when the law's deadline has passed fails, and fails the request.
func TestRequestDeletionRetried(t *testing.T) {
	t.Parallel()
	for _, recovers := range []bool{true, false} {
		t.Run(fmt.Sprint("recovers=", recovers), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := backends(t)["sqlite"](t)
			seed(t, st)
			var mu sync.Mutex
			clock := time.Now()
			now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
			later := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); clock = clock.Add(d) }
			d := &deleter{errs: map[string]error{hookWS: &destination.Error{Status: 503, Msg: "busy"}}}
			q := newRequestsAt(t, st, d.delete, now)
			r, err := q.Submit(ctx, privacy.Submission{Workspace: seedWS, Regulation: privacy.RegulationDeleteOnly,
				Identifiers: []store.Identifier{{Type: "user_id", Value: "u-42"}}, Via: privacy.ViaAPI, Actor: "dpo"})
			if err != nil {
				t.Fatal(err)
			}
			fold(t, st, seedWS)
			get := func() store.PrivacyRequest {
				t.Helper()
				r, err := q.Get(ctx, seedWS, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			tries := func() int { d.mu.Lock(); defer d.mu.Unlock(); return len(d.sent) }
			if r := get(); r.Destinations[0].Status != store.DeletionPending || tries() != 1 {
				t.Fatalf("after the first try: %+v, %d tries", r.Destinations, tries())
			}
			later(30 * time.Second)
			if r := get(); r.Destinations[0].Status != store.DeletionPending || tries() != 1 {
				t.Fatalf("30s later: %+v, %d tries; want no new try", r.Destinations, tries())
			}
			if recovers {
				d.mu.Lock()
				d.errs = nil
				d.mu.Unlock()
				later(31 * time.Second)
				if r := get(); r.Destinations[0].Status != store.DeletionSent || r.Status != store.RequestCompleted || tries() != 2 {
					t.Fatalf("a minute later, the destination back: request %s, %+v, %d tries", r.Status, r.Destinations, tries())
				}
				return
			}
			later(32 * 24 * time.Hour) // past any one-month deadline
			r = get()
			if r.Destinations[0].Status != store.DeletionFailed || r.Status != store.RequestFailed ||
				!strings.Contains(r.Error, hookWS) || r.Job != nil || tries() != 2 {
				t.Fatalf("past the deadline: request %s (%q), %+v, %d tries", r.Status, r.Error, r.Destinations, tries())
			}
		})
	}
}

// DELETE_INTERNAL sends nothing; SUPPRESS_ONLY and UNSUPPRESS complete at
// once; access completes at download; rectification, restriction and
// consent append their commands and complete once folded.
func TestRequestTypes(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		seed(t, st)
		q := newRequests(t, st, (&deleter{}).delete)
		submit := func(s privacy.Submission) store.PrivacyRequest {
			t.Helper()
			s.Workspace, s.Via, s.Actor = seedWS, privacy.ViaAPI, "dpo"
			r, err := q.Submit(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		bob := []store.Identifier{{Type: "user_id", Value: "bob"}}
		internal := submit(privacy.Submission{Regulation: privacy.RegulationDeleteInternal, Identifiers: bob, Law: privacy.LawCCPA})
		if len(internal.Destinations) != 0 || !internal.Deadline.Equal(internal.ReceivedAt.AddDate(0, 0, 45)) {
			t.Fatalf("DELETE_INTERNAL: %+v", internal)
		}
		sup := submit(privacy.Submission{Regulation: privacy.RegulationSuppressOnly, Identifiers: []store.Identifier{{Type: "anonymous_id", Value: "x-1"}}})
		unsup := submit(privacy.Submission{Type: privacy.RequestUnsuppression, Identifiers: []store.Identifier{{Type: "anonymous_id", Value: "x-1"}}})
		for _, r := range []store.PrivacyRequest{sup, unsup} {
			if r.Status != store.RequestCompleted || r.Job != nil || r.Position == 0 {
				t.Fatalf("%s: %+v", r.Regulation, r)
			}
		}
		access := submit(privacy.Submission{Type: privacy.RequestAccess, Identifiers: []store.Identifier{{Type: "email", Value: "ada@example.com"}}})
		rect := submit(privacy.Submission{Type: privacy.RequestRectification, Identifiers: []store.Identifier{{Type: "user_id", Value: "u-42"}},
			Traits: map[string]json.RawMessage{"name": json.RawMessage(`"Ada King"`)}})
		restrict := submit(privacy.Submission{Type: privacy.RequestRestriction, Identifiers: []store.Identifier{{Type: "user_id", Value: "u-42"}}, Scope: privacy.ScopeMarketing})
		consent := submit(privacy.Submission{Type: privacy.RequestConsent, Identifiers: []store.Identifier{{Type: "user_id", Value: "u-42"}}, Consent: map[string]bool{"advertising": false}})
		if string(rect.Details) != `{"traits":["name"]}` {
			t.Fatalf("rectification details %s: the trait names only", rect.Details)
		}
		var actions []string
		for _, c := range controls(t, st) {
			actions = append(actions, c.Action)
		}
		if want := []string{"erase", "suppress", "unsuppress", "correct", "restrict", "consent"}; !slices.Equal(actions, want) {
			t.Fatalf("control events %v, want %v", actions, want)
		}
		fold(t, st, seedWS)
		for _, r := range []store.PrivacyRequest{internal, rect, restrict, consent} {
			got, err := q.Get(ctx, seedWS, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != store.RequestCompleted || got.Job != nil {
				t.Fatalf("%s: %+v", r.Type, got)
			}
		}
		traits, err := st.Traits(ctx, seedWS, lookup(t, st, seedWS, "user_id", "u-42"), []string{"name"})
		if err != nil || len(traits) != 1 || string(traits[0].Value) != `"Ada King"` {
			t.Fatalf("rectified traits %+v %v", traits, err)
		}
		// Access: in progress until downloaded.
		got, err := q.Get(ctx, seedWS, access.ID)
		if err != nil || got.Status != store.RequestInProgress {
			t.Fatalf("access before download: %+v %v", got, err)
		}
		r, id, err := q.AccessIdentifier(ctx, seedWS, access.ID)
		if err != nil || id != (store.Identifier{Type: "email", Value: "ada@example.com"}) {
			t.Fatalf("access identifier %v %v", id, err)
		}
		if r, err = q.Accessed(ctx, r); err != nil || r.Status != store.RequestCompleted || r.Job != nil {
			t.Fatalf("accessed: %+v %v", r, err)
		}
		if _, _, err := q.AccessIdentifier(ctx, seedWS, access.ID); !errors.Is(err, privacy.ErrNotAccess) {
			t.Fatalf("a completed access request: %v", err)
		}
		if _, _, err := q.AccessIdentifier(ctx, seedWS, rect.ID); !errors.Is(err, privacy.ErrNotAccess) {
			t.Fatalf("a rectification as access: %v", err)
		}
	})
}

// Bad requests are refused with a stable code and record nothing.
func TestRequestRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := backends(t)["sqlite"](t)
	seed(t, st)
	q := newRequests(t, st, nil)
	u42 := []store.Identifier{{Type: "user_id", Value: "u-42"}}
	many := make([]store.Identifier, privacy.MaxSubjects+1)
	for i := range many {
		many[i] = store.Identifier{Type: "user_id", Value: fmt.Sprint("u-", i)}
	}
	head, _ := st.Head(ctx, seedWS)
	for _, c := range []struct {
		s    privacy.Submission
		code string
	}{
		{privacy.Submission{Type: "forget", Identifiers: u42}, "invalid_type"},
		{privacy.Submission{Regulation: "DELETE_EVERYTHING", Identifiers: u42}, "invalid_regulation"},
		{privacy.Submission{Regulation: privacy.RegulationSuppressOnly, Type: privacy.RequestErasure, Identifiers: u42}, "invalid_type"},
		{privacy.Submission{Type: privacy.RequestErasure, Identifiers: u42, Law: "lgpd"}, "invalid_law"},
		{privacy.Submission{Type: privacy.RequestErasure}, "invalid_identifier"},
		{privacy.Submission{Type: privacy.RequestErasure, Identifiers: []store.Identifier{{Type: "email", Value: "not-an-email"}}}, "invalid_identifier"},
		{privacy.Submission{Type: privacy.RequestErasure, Identifiers: []store.Identifier{{Type: "phone", Value: "+15551234567"}}}, "invalid_identifier"},
		{privacy.Submission{Type: privacy.RequestErasure, Identifiers: []store.Identifier{{Type: "kith_id", Value: "1"}}}, "invalid_identifier"},
		{privacy.Submission{Type: privacy.RequestErasure, Identifiers: []store.Identifier{{Type: "user_id", Value: ""}}}, "invalid_identifier"},
		{privacy.Submission{Regulation: privacy.RegulationDeleteOnly, Identifiers: many}, "too_many_subjects"},
		{privacy.Submission{Type: privacy.RequestAccess, Identifiers: append(slices.Clone(u42), store.Identifier{Type: "user_id", Value: "bob"})}, "too_many_subjects"},
		{privacy.Submission{Type: privacy.RequestRectification, Identifiers: u42}, "invalid_traits"},
		{privacy.Submission{Type: privacy.RequestRectification, Identifiers: u42, Traits: map[string]json.RawMessage{"name": json.RawMessage(`{`)}}, "invalid_traits"},
		{privacy.Submission{Type: privacy.RequestRestriction, Identifiers: u42, Scope: "everything"}, "invalid_scope"},
		{privacy.Submission{Type: privacy.RequestConsent, Identifiers: u42}, "invalid_consent"},
		{privacy.Submission{Type: privacy.RequestRectification, Identifiers: u42, Traits: map[string]json.RawMessage{"": json.RawMessage(`"x"`)}}, "invalid_traits"},
		{privacy.Submission{Type: privacy.RequestObjection, Identifiers: u42}, "invalid_scope"},
		{privacy.Submission{Type: privacy.RequestErasure, Identifiers: u42, Scope: privacy.ScopeAll}, "invalid_arguments"},
		{privacy.Submission{Type: privacy.RequestConsent, Identifiers: u42, Consent: map[string]bool{"advertising": false},
			Traits: map[string]json.RawMessage{"name": json.RawMessage(`"Ada"`)}}, "invalid_arguments"},
		{privacy.Submission{Type: privacy.RequestRestriction, Identifiers: u42, Scope: privacy.ScopeAll, Consent: map[string]bool{"advertising": false}}, "invalid_arguments"},
		{privacy.Submission{Type: privacy.RequestUnsuppression, Identifiers: []store.Identifier{{Type: "phone", Value: "+15551234567"}}}, "invalid_identifier"},
		{privacy.Submission{Type: privacy.RequestSuppression, Identifiers: u42, Reason: string(make([]byte, 201))}, "invalid_reason"},
		{privacy.Submission{Workspace: "globex", Type: privacy.RequestErasure, Identifiers: u42}, "unknown_workspace"},
	} {
		s := c.s
		if s.Workspace == "" {
			s.Workspace = seedWS
		}
		s.Via, s.Actor = privacy.ViaAPI, "dpo"
		_, err := q.Submit(ctx, s)
		var ie *privacy.InputError
		if !errors.As(err, &ie) || ie.Code != c.code {
			t.Errorf("%+v: %v, want %s", c.s, err, c.code)
		}
	}
	if rs, err := st.PrivacyRequests(ctx, store.RequestQuery{}); err != nil || len(rs) != 0 {
		t.Fatalf("refused requests were recorded: %+v %v", rs, err)
	}
	if h, _ := st.Head(ctx, seedWS); h != head {
		t.Fatalf("refused requests appended: head %d -> %d", head, h)
	}
}

// Run advances requests in progress in the background.
func TestRequestsRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := backends(t)["sqlite"](t)
	seed(t, st)
	q := newRequests(t, st, nil)
	r, err := q.Submit(ctx, privacy.Submission{Workspace: seedWS, Regulation: privacy.RegulationDeleteInternal,
		Identifiers: []store.Identifier{{Type: "user_id", Value: "bob"}}, Via: privacy.ViaAPI, Actor: "dpo"})
	if err != nil {
		t.Fatal(err)
	}
	fold(t, st, seedWS)
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx) }()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		got, err := st.PrivacyRequest(ctx, seedWS, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == store.RequestCompleted {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if got, err := st.PrivacyRequest(context.Background(), seedWS, r.ID); err != nil || got.Status != store.RequestCompleted {
		t.Fatalf("Run did not complete the request: %+v %v", got, err)
	}
}

// A request left received by a Submit that stopped half-way (its node
// died) is failed by the next Advance after a minute, and its job cleared;
// a recent one is left to its Submit.
func TestRequestInterrupted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := backends(t)["sqlite"](t)
	q := newRequests(t, st, nil)
	for _, c := range []struct {
		age    time.Duration
		status string
	}{{2 * time.Minute, store.RequestFailed}, {time.Second, store.RequestReceived}} {
		r, err := st.CreatePrivacyRequest(ctx, store.PrivacyRequest{ID: fmt.Sprint("dsr_interrupted_", c.age), Workspace: seedWS,
			Type: privacy.RequestErasure, Status: store.RequestReceived, ReceivedAt: time.Now().Add(-c.age),
			Job: json.RawMessage(`{"identifiers":[{"type":"email","value":"ada@example.com"}]}`)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Advance(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != c.status || (got.Job == nil) != (c.status == store.RequestFailed) {
			t.Fatalf("received %s ago: %+v", c.age, got)
		}
	}
}
