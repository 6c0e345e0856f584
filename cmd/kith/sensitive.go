package main

import (
	"context"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

// sealingStore is a store whose appends encrypt the workspace's sensitive
// traits first (tenant.Registry.SealBatch), as the Tracking API does: an
// import stores them sealed too.
type sealingStore struct {
	store.Store
	reg *tenant.Registry
	ws  string
}

func (s sealingStore) Append(ctx context.Context, b *store.Batch, dedupWindow time.Duration) ([]store.Appended, error) {
	if err := s.reg.SealBatch(s.ws, b); err != nil {
		return nil, err
	}
	return s.Store.Append(ctx, b, dedupWindow)
}
