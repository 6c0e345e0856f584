package portal

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter rate-limits by key (an email digest, an IP address) with one
// token bucket per key, on this node. Buckets unused for an hour are
// forgotten when the map grows.
type limiter struct {
	every time.Duration // one token per every
	burst int

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxBuckets is the size past which idle buckets are swept.
const maxBuckets = 10_000

func newLimiter(every time.Duration, burst int) *limiter {
	return &limiter{every: every, burst: burst, m: map[string]*bucket{}}
}

// allow takes a token from key's bucket.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= maxBuckets {
			for k, old := range l.m {
				if now.Sub(old.seen) > time.Hour {
					delete(l.m, k)
				}
			}
		}
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.m[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
