package gate

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// The suppression list (docs/privacy.md): identifiers whose events are
// dropped at ingestion until they are unsuppressed. The store holds keyed
// digests only: HMAC-SHA-256(server secret, "type:value") of the
// normalized identifier (privacy.Digest).
//
// A Gate keeps each workspace's digests in memory, loaded on first use and
// reloaded every suppressRefresh so that changes made through other nodes
// (or while an import runs) arrive; Reload applies a change at once.

// suppressRefresh is how old a workspace's in-memory set may get before
// the next batch reloads it (in the background).
const suppressRefresh = 5 * time.Second

type suppressSet struct {
	load    sync.Mutex // serializes loads: the last one started installs last
	digests atomic.Pointer[map[string]struct{}]
	loaded  atomic.Int64 // unix nanos of the last load's start
	busy    atomic.Bool  // a background reload is running
}

// set returns ws's suppressSet, empty until its first load.
func (g *Gate) set(ws string) *suppressSet {
	v, ok := g.sets.Load(ws)
	if !ok {
		v, _ = g.sets.LoadOrStore(ws, &suppressSet{})
	}
	return v.(*suppressSet)
}

// Reload reads ws's suppression list from the store and applies it from
// the next batch on: the suppression API calls it after a change, so that
// the node that made it applies it at once. If it fails, the periodic
// reload catches up.
func (g *Gate) Reload(ctx context.Context, ws string) error {
	return g.reload(ctx, ws, g.set(ws))
}

// reload reads ws's list from the store and installs it in set.
func (g *Gate) reload(ctx context.Context, ws string, set *suppressSet) error {
	set.load.Lock()
	defer set.load.Unlock()
	start := time.Now()
	m := map[string]struct{}{}
	if err := g.st.ScanSuppressed(ctx, ws, func(e store.Suppression) error {
		m[string(e.Digest)] = struct{}{}
		return nil
	}); err != nil {
		return err
	}
	set.digests.Store(&m)
	set.loaded.Store(start.UnixNano())
	return nil
}

// current returns ws's digests: loaded synchronously on first use, and
// reloaded in the background once older than suppressRefresh.
func (g *Gate) current(ctx context.Context, ws string) (map[string]struct{}, error) {
	set := g.set(ws)
	m := set.digests.Load()
	if m == nil {
		if err := g.reload(ctx, ws, set); err != nil {
			return nil, err
		}
		return *set.digests.Load(), nil
	}
	if time.Now().UnixNano()-set.loaded.Load() > int64(suppressRefresh) && set.busy.CompareAndSwap(false, true) {
		go func() {
			defer set.busy.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := g.reload(ctx, ws, set); err != nil {
				g.onError(ws, err) // the previous set stays in use
			}
		}()
	}
	return *m, nil
}

// suppress removes from b the events (and quarantined entries) of ws that
// carry a suppressed identifier and returns how many events (quarantined
// entries not counted) it removed. An empty list costs one map lookup and
// no digest.
func (g *Gate) suppress(ctx context.Context, ws string, b *store.Batch) (int, error) {
	set, err := g.current(ctx, ws)
	if err != nil || len(set) == 0 {
		return 0, err
	}
	var rules *identity.Compiled
	if w, ok := g.reg.Workspace(ws); ok {
		rules = w.Identity
	}
	hit := func(typ, value string) bool {
		if value == "" {
			return false
		}
		if rules != nil {
			id, ok := rules.Normalize(store.Identifier{Type: typ, Value: value})
			if !ok {
				return false
			}
			value = id.Value
		}
		_, found := set[string(privacy.Digest(g.reg.Hash, store.Identifier{Type: typ, Value: value}))]
		return found
	}
	suppressed := func(userID, anonymousID string, raw json.RawMessage, identify bool) bool {
		if hit(identity.UserID, userID) || hit(identity.AnonymousID, anonymousID) {
			return true
		}
		// The raw JSON holds more only for an identify call (traits.email)
		// or a quarantined entry (no ids of its own): skip decoding the rest.
		if raw == nil || (!identify && (userID != "" || anonymousID != "")) {
			return false
		}
		var f struct {
			Type        string `json:"type"`
			UserID      any    `json:"userId"`
			AnonymousID any    `json:"anonymousId"`
			Traits      struct {
				Email any `json:"email"`
			} `json:"traits"`
		}
		if json.Unmarshal(raw, &f) != nil {
			return false
		}
		str := func(v any) string { s, _ := v.(string); return s }
		if userID == "" && anonymousID == "" && (hit(identity.UserID, str(f.UserID)) || hit(identity.AnonymousID, str(f.AnonymousID))) {
			return true // a quarantined entry: its ids are only in the raw JSON
		}
		return (identify || f.Type == "identify") && hit(identity.Email, str(f.Traits.Email))
	}
	return drop(b, g.suppressed, ws, func(e *store.Event) bool {
		return suppressed(e.UserID, e.AnonymousID, e.Raw, e.Type == "identify")
	}, func(raw json.RawMessage) bool {
		return suppressed("", "", raw, false)
	}), nil
}
