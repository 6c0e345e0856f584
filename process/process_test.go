package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/postgres"
	"github.com/kithcdp/kith/store/postgres/pgtest"
	"github.com/kithcdp/kith/store/sqlite"
)

// backends opens each store the tests run against: SQLite always,
// PostgreSQL when KITH_TEST_POSTGRES_URL is set.
func backends(t testing.TB) map[string]func(t testing.TB) store.Store {
	b := map[string]func(t testing.TB) store.Store{
		"sqlite": func(t testing.TB) store.Store {
			st, err := sqlite.Open(context.Background(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
	if os.Getenv(pgtest.EnvURL) != "" {
		b["postgres"] = func(t testing.TB) store.Store {
			st, err := postgres.Open(context.Background(), pgtest.SchemaURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	} else {
		t.Log("KITH_TEST_POSTGRES_URL is not set: PostgreSQL runs of this test are skipped")
	}
	return b
}

// eachBackend runs test on a fresh store of each backend, in parallel.
func eachBackend(t *testing.T, test func(t *testing.T, st store.Store)) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
}

// foldAll folds a workspace up to its head.
func foldAll(t *testing.T, st store.Store, ws string) {
	t.Helper()
	if err := newProcessor(st, 100).CatchUp(context.Background(), ws, nil); err != nil {
		t.Fatal(err)
	}
}

func newProcessor(st store.Store, batch int) *process.Processor {
	rules, err := identity.DefaultRules().Compile()
	if err != nil {
		panic(err)
	}
	return process.New(process.Options{
		Store: st, Batch: batch, Owner: fmt.Sprintf("test-%d", os.Getpid()), LeaseTTL: time.Second,
		Rules: func(string) (*identity.Compiled, error) { return rules, nil },
	})
}

// appendEvents decodes Tracking API calls as one batch and appends them.
func appendEvents(t testing.TB, st store.Store, ws string, rx time.Time, calls ...string) {
	t.Helper()
	body := `{"batch":[` + strings.Join(calls, ",") + `]}`
	out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: []byte(body), ReceivedAt: rx, KeepTimes: true}, ingest.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Quarantine) > 0 {
		t.Fatalf("quarantined: %+v", out.Rejected)
	}
	for i := range out.Events {
		out.Events[i].Workspace, out.Events[i].Source = ws, "web"
	}
	if _, err := st.Append(context.Background(), &store.Batch{Events: out.Events}, time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestAnonymousThenIdentifyThenAlias(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			ctx := context.Background()
			ws := "acme"
			rx := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
			appendEvents(t, st, ws, rx,
				`{"type":"page","anonymousId":"anon-1","name":"Home","timestamp":"2026-11-24T09:00:00Z"}`,
				`{"type":"track","anonymousId":"anon-1","event":"Product Viewed","timestamp":"2026-11-24T09:01:00Z"}`,
				`{"type":"identify","anonymousId":"anon-1","userId":"u-42","traits":{"email":" Ada@Example.com ","name":"Ada","plan":"free"},"timestamp":"2026-11-24T09:02:00Z"}`,
				`{"type":"page","anonymousId":"anon-2","name":"Pricing","timestamp":"2026-11-24T09:03:00Z"}`,
				`{"type":"alias","previousId":"anon-2","userId":"u-42","timestamp":"2026-11-24T09:04:00Z"}`,
				`{"type":"identify","userId":"u-42","traits":{"plan":"pro"},"timestamp":"2026-11-24T09:05:00Z"}`,
				`{"type":"identify","userId":"u-42","traits":{"plan":"stale"},"timestamp":"2026-11-24T08:00:00Z"}`,
				`{"type":"group","userId":"u-42","groupId":"acme-inc","traits":{"name":"Acme Inc","employees":42},"timestamp":"2026-11-24T09:06:00Z"}`,
			)
			if err := newProcessor(st, 3).CatchUp(ctx, ws, nil); err != nil {
				t.Fatal(err)
			}
			p := owner(t, st, ws, "user_id", "u-42")
			if p == 0 {
				t.Fatal("no profile holds user_id:u-42")
			}
			for _, id := range [][2]string{{"anonymous_id", "anon-1"}, {"anonymous_id", "anon-2"}, {"email", "ada@example.com"}} {
				if got := owner(t, st, ws, id[0], id[1]); got != p {
					t.Errorf("%s:%s is on profile %d, want %d", id[0], id[1], got, p)
				}
			}
			prof, err := st.Profile(ctx, ws, p)
			if err != nil {
				t.Fatal(err)
			}
			if prof.Events != 8 || prof.Kind != store.KindUser {
				t.Errorf("profile %+v: want 8 events", prof)
			}
			traits := traitMap(t, st, ws, p)
			want := map[string]string{"email": `" Ada@Example.com "`, "name": `"Ada"`, "plan": `"pro"`}
			if fmt.Sprint(traits) != fmt.Sprint(want) {
				t.Errorf("traits %v, want %v (last-updated wins by timestamp, not arrival)", traits, want)
			}
			tl, err := st.Timeline(ctx, ws, p, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tl, []int64{8, 7, 6, 5, 4, 3, 2, 1}) {
				t.Errorf("timeline %v", tl)
			}
			acct := owner(t, st, ws, "group_id", "acme-inc")
			if acct == 0 {
				t.Fatal("no account for group_id:acme-inc")
			}
			if a, _ := st.Profile(ctx, ws, acct); a.Kind != store.KindAccount {
				t.Errorf("account %+v", a)
			}
			if got := traitMap(t, st, ws, acct); got["name"] != `"Acme Inc"` || got["employees"] != "42" {
				t.Errorf("account traits %v", got)
			}
			links, err := st.Links(ctx, ws, p)
			if err != nil || len(links) != 1 || links[0].Account != acct {
				t.Errorf("links %+v %v", links, err)
			}
		})
	}
}

func traitMap(t *testing.T, st store.Store, ws string, p store.ProfileID) map[string]string {
	t.Helper()
	tr, err := st.Traits(context.Background(), ws, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, x := range tr {
		m[x.Key] = string(x.Value)
	}
	return m
}

// digest renders a workspace's derived state as text, for comparing a
// state built incrementally with one built by a replay.
func digest(t *testing.T, st store.Store, ws string) string {
	t.Helper()
	ctx := context.Background()
	var ids []store.HeldIdentifier
	if err := st.ScanIdentifiers(ctx, ws, func(h store.HeldIdentifier) error {
		ids = append(ids, h)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ids, func(a, b store.HeldIdentifier) int { return strings.Compare(a.String(), b.String()) })
	var sb strings.Builder
	seen := map[store.ProfileID]bool{}
	for _, h := range ids {
		fmt.Fprintf(&sb, "%s → %d @%d\n", h.String(), h.Profile, h.Position)
		seen[h.Profile] = true
	}
	profiles := make([]store.ProfileID, 0, len(seen))
	for p := range seen {
		profiles = append(profiles, p)
	}
	slices.Sort(profiles)
	for _, p := range profiles {
		prof, err := st.Profile(ctx, ws, p)
		if err != nil {
			t.Fatal(err)
		}
		tr, _ := st.Traits(ctx, ws, p, nil)
		trj, _ := json.Marshal(tr)
		tl, _ := st.Timeline(ctx, ws, p, 0, 1000)
		fmt.Fprintf(&sb, "%d %s %s %s %d traits=%s timeline=%v\n", p, prof.Kind,
			prof.FirstSeen.Format(time.RFC3339Nano), prof.LastSeen.Format(time.RFC3339Nano), prof.Events, trj, tl)
	}
	return sb.String()
}
