package sqlite_test

import (
	"context"
	"sync"
	"testing"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/store/storetest"
)

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	storetest.Run(t, func(t *testing.T) store.Store {
		mu.Lock()
		defer mu.Unlock()
		st, err := sqlite.Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}
