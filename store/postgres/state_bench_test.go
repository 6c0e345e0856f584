package postgres_test

import (
	"testing"

	"github.com/kithcdp/kith/store/storetest"
)

// BenchmarkCommit commits the derived state of 1,000 realistic events per
// operation (see storetest.BenchCommit) to a fresh schema.
func BenchmarkCommit(b *testing.B) {
	storetest.BenchCommit(b, setup(b, 1)[0])
}

// BenchmarkProgress applies the Progress of 1,000 deliveries per operation
// (see storetest.BenchProgress) to a fresh schema.
func BenchmarkProgress(b *testing.B) {
	storetest.BenchProgress(b, setup(b, 1)[0])
}
