package postgres_test

import (
	"testing"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/storetest"
)

// TestConformance runs the shared store suite; every opened store is a new
// pool (a Kith node) on one fresh schema.
func TestConformance(t *testing.T) {
	dsn := schemaURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, dsn) })
}
