package tenant

import "time"

// SetClock makes r read the time from clock (to expire rotated-out
// secrets without waiting).
func SetClock(r *Registry, clock func() time.Time) { r.refresh.clock = clock }
