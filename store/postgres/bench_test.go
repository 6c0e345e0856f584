package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// BenchmarkAppend appends batches of 100 events of about 1 KB each, from
// one writer and from four concurrent writers on one workspace or on four,
// and reports events/s. Every Append is one durable commit.
func BenchmarkAppend(b *testing.B) {
	const batchSize = 100
	pad := strings.Repeat("x", 860)
	for _, bc := range []struct {
		name       string
		writers    int
		workspaces int
	}{
		{"writers=1", 1, 1},
		{"writers=4/one_workspace", 4, 1},
		{"writers=4/four_workspaces", 4, 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := setup(b, 1)[0]
			ctx := context.Background()
			var batches, ids atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range bc.writers {
				workspace := fmt.Sprintf("w%d", w%bc.workspaces)
				wg.Go(func() {
					for batches.Add(1) <= int64(b.N) {
						batch := &store.Batch{Events: make([]store.Event, batchSize)}
						for i := range batch.Events {
							id := fmt.Sprintf("m%d", ids.Add(1))
							e := event(workspace, id)
							e.Raw = []byte(`{"type":"track","event":"Clicked","messageId":"` + id +
								`","properties":{"pad":"` + pad + `"}}`)
							batch.Events[i] = e
						}
						if _, err := s.Append(ctx, batch, 24*time.Hour); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
