package importer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/postgres"
)

// openTestStore opens an empty PostgreSQL store in a schema of its own.
// (Until the SQLite backend lands, the tests run on PostgreSQL.)
func openTestStore(t testing.TB) store.Store {
	t.Helper()
	url := os.Getenv("KITH_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("KITH_TEST_POSTGRES_URL is unset: no store to import into")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("importer_%d", rand.Int64())
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	st, err := postgres.Open(ctx, url+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
