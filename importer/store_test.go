package importer_test

import (
	"context"
	"testing"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
)

// openTestStore opens an empty SQLite store in a directory of its own.
func openTestStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
