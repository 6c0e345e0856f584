package privacy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
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
func backends(t *testing.T) map[string]func(t testing.TB) store.Store {
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

// Seed is the seeded workspace: ada's story (positions 1-9), bob's order
// (10), and the times the events were received and folded.
const (
	seedWS = "acme"
	hookWS = "crm-hook"
)

var (
	seedRX  = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) // receivedAt of every event
	seedNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) // the processor's clock
)

// seedEvents: ada visits as two anonymous visitors (a-1, a-2), buys as
// a-1 with consent to analytics only, identifies as u-42 from a-2, then
// from a-1 (which merges the two visitors), joins the account acme, is
// aliased from a third visitor id, buys again, and updates her consent.
// Bob buys once.
var seedEvents = []string{
	`{"type":"page","anonymousId":"a-1","name":"Pricing","timestamp":"2026-11-24T09:00:00Z","messageId":"m-1"}`,
	`{"type":"track","anonymousId":"a-1","event":"Order Completed","properties":{"total":100},"context":{"consent":{"categoryPreferences":{"analytics":true,"advertising":false}}},"timestamp":"2026-11-24T09:01:00Z","messageId":"m-2"}`,
	`{"type":"page","anonymousId":"a-2","name":"Home","timestamp":"2026-11-24T09:02:00Z","messageId":"m-3"}`,
	`{"type":"identify","anonymousId":"a-2","userId":"u-42","traits":{"email":"ada@example.com","name":"Ada <Lovelace> & co","plan":"free","nickname":"=1+2"},"timestamp":"2026-11-24T09:03:00Z","messageId":"m-4"}`,
	`{"type":"identify","anonymousId":"a-1","userId":"u-42","traits":{"plan":"pro"},"timestamp":"2026-11-24T09:04:00Z","messageId":"m-5"}`,
	`{"type":"group","userId":"u-42","groupId":"acme","traits":{"name":"Acme"},"timestamp":"2026-11-24T09:05:00Z","messageId":"m-6"}`,
	`{"type":"alias","previousId":"a-3","userId":"u-42","timestamp":"2026-11-24T09:06:00Z","messageId":"m-7"}`,
	`{"type":"track","userId":"u-42","event":"Order Completed","properties":{"total":20},"timestamp":"2026-11-24T09:07:00Z","messageId":"m-8"}`,
	`{"type":"track","userId":"u-42","event":"Segment Consent Preference Updated","context":{"consent":{"categoryPreferences":{"analytics":true,"advertising":true}}},"timestamp":"2026-11-24T09:08:00Z","messageId":"m-9"}`,
	`{"type":"track","userId":"bob","event":"Order Completed","properties":{"total":5},"timestamp":"2026-11-24T09:09:00Z","messageId":"m-10"}`,
}

// seedDefs: a computed trait, an audience ada is in and one she is not.
var seedDefs = []struct{ kind, name, body string }{
	{store.DefinitionTrait, "orders", `{"name":"orders","kind":"count","events":["Order Completed"]}`},
	{store.DefinitionAudience, "buyers", `{"name":"buyers","condition":"computed.orders >= 2"}`},
	{store.DefinitionAudience, "whales", `{"name":"whales","condition":"computed.orders >= 50"}`},
	{store.DefinitionDestination, hookWS, `{"name":"crm-hook","type":"webhook","events":{"types":["track"]},"purposes":["analytics"],"config":{"url":"https://crm.example.com/hook","secrets":["sealed-secret-must-not-leak"]}}`},
}

// seed appends the events, defines the computed trait and audiences, folds
// the log with the processor, and records deliveries to crm-hook in the
// ledger: ada's data on two days, bob's on one.
func seed(t testing.TB, st store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, d := range seedDefs {
		if _, err := st.PutDefinition(ctx, store.Definition{Workspace: seedWS, Kind: d.kind, Name: d.name, Body: json.RawMessage(d.body), Origin: "api"}); err != nil {
			t.Fatal(err)
		}
	}
	appendEvents(t, st, seedWS, seedEvents...)
	fold(t, st, seedWS)
	ada := lookup(t, st, seedWS, "user_id", "u-42")
	bob := lookup(t, st, seedWS, "user_id", "bob")
	cur, err := st.AcquireDelivery(ctx, seedWS, hookWS, "test", time.Minute, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Progress(ctx, &store.DeliveryProgress{
		Workspace: seedWS, Destination: hookWS, Epoch: cur.Epoch, Log: 10,
		Ledger: []store.LedgerEntry{
			{Profile: ada, Day: seedRX, Deliveries: 2, Kinds: []string{"event"}, Last: seedRX.Add(time.Minute)},
			{Profile: ada, Day: seedRX.Add(24 * time.Hour), Deliveries: 1, Kinds: []string{"audience_entered", "event"}, Last: seedRX.Add(25 * time.Hour)},
			{Profile: bob, Day: seedRX, Deliveries: 1, Kinds: []string{"event"}, Last: seedRX.Add(2 * time.Minute)},
		},
	}); err != nil {
		t.Fatal(err)
	}
}

// appendEvents decodes Tracking API calls as one batch from source web
// and appends them, received at seedRX.
func appendEvents(t testing.TB, st store.Store, ws string, calls ...string) {
	t.Helper()
	body := `{"batch":[` + strings.Join(calls, ",") + `]}`
	out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: []byte(body), ReceivedAt: seedRX, KeepTimes: true,
		Signals: store.Signals{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (test)"}}, ingest.DefaultLimits())
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

// fold folds the workspace's log to its head with the default identity
// rules, at seedNow.
func fold(t testing.TB, st store.Store, ws string) {
	t.Helper()
	rules, err := identity.DefaultRules().Compile()
	if err != nil {
		t.Fatal(err)
	}
	p := process.New(process.Options{
		Store: st, Batch: 500, Owner: fmt.Sprintf("privacy-test-%d", os.Getpid()), LeaseTTL: time.Second,
		Rules: func(string) (*identity.Compiled, error) { return rules, nil },
		Now:   func() time.Time { return seedNow },
	})
	if err := p.CatchUp(context.Background(), ws, nil); err != nil {
		t.Fatal(err)
	}
}

func lookup(t testing.TB, st store.Store, ws, typ, value string) store.ProfileID {
	t.Helper()
	p, err := st.Lookup(context.Background(), ws, store.Identifier{Type: typ, Value: value})
	if err != nil {
		t.Fatalf("lookup %s:%s: %v", typ, value, err)
	}
	return p
}
