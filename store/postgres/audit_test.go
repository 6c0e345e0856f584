package postgres

import (
	"context"
	"testing"

	"github.com/kithcdp/kith/store/postgres/pgtest"
	"github.com/kithcdp/kith/store/storetest"
)

// TestAuditRefusesChanges runs UPDATE, DELETE and TRUNCATE on audit_log
// through the store's pool, past its contract: the triggers refuse them.
func TestAuditRefusesChanges(t *testing.T) {
	t.Parallel()
	st, err := Open(context.Background(), pgtest.SchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	exec := func(ctx context.Context, q string) error {
		_, err := st.pool.Exec(ctx, q)
		return err
	}
	storetest.AuditRefusesChanges(t, st, exec)
	if err := exec(context.Background(), `TRUNCATE audit_log`); err == nil {
		t.Fatal("TRUNCATE audit_log succeeded, want it refused")
	}
}
