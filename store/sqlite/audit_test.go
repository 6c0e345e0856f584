package sqlite

import (
	"context"
	"testing"

	"github.com/kithcdp/kith/store/storetest"
)

// TestAuditRefusesChanges runs UPDATE and DELETE on audit_log through the
// writer connection, past the store's contract: the triggers refuse them.
func TestAuditRefusesChanges(t *testing.T) {
	t.Parallel()
	st, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	storetest.AuditRefusesChanges(t, st, func(ctx context.Context, q string) error {
		_, err := st.w.ExecContext(ctx, q)
		return err
	})
}
