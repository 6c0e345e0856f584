package sqlite_test

import (
	"context"
	"testing"

	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/store/storetest"
)

// BenchmarkCommit commits the derived state of 1,000 realistic events per
// operation (see storetest.BenchCommit) to a fresh state.db.
func BenchmarkCommit(b *testing.B) {
	st, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	storetest.BenchCommit(b, st)
}

// BenchmarkProgress applies the Progress of 1,000 deliveries per operation
// (see storetest.BenchProgress) to a fresh state.db.
func BenchmarkProgress(b *testing.B) {
	st, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	storetest.BenchProgress(b, st)
}
