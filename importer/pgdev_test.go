package importer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/postgres"
)

// TEMPORARY: until store/sqlite exists.
func openTestStore(t testing.TB) store.Store {
	ctx := context.Background()
	url := "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	schema := fmt.Sprintf("imp_%d", rand.Int64())
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	st, err := postgres.Open(ctx, url+"&search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
