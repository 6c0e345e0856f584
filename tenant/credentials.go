package tenant

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kithcdp/kith/store"
)

// CredentialRefresh is how old a Registry's write keys and tokens may get
// before the next lookup reads them again from the store (in the
// background), so that a rotation or revocation made through another node
// applies here within this long. One made through this Registry applies at
// once.
const CredentialRefresh = 5 * time.Second

// MaxGrace bounds how long a rotated-out secret stays valid.
const MaxGrace = 30 * 24 * time.Hour

// credentials are the write keys and tokens of a Registry, replaced whole
// on each refresh.
type credentials struct {
	sources map[digest]sourceKey
	bySlug  map[string]*Source // "workspace/slug" → source
	tokens  map[digest]tokenKey
}

// sourceKey is a write key's source; until is zero for a source's current
// key, and for its previous key (after a rotation) the time it expires.
type sourceKey struct {
	s     *Source
	until time.Time
}

// tokenKey is a token's holder; until as for sourceKey.
type tokenKey struct {
	p     *Principal
	until time.Time
}

// valid reports whether the key is current, or a previous one not expired;
// the clock is read only for a previous one.
func (k sourceKey) valid(f *refresher) bool { return k.until.IsZero() || f.now().Before(k.until) }
func (k tokenKey) valid(f *refresher) bool  { return k.until.IsZero() || f.now().Before(k.until) }

// refresher reads a Registry's credentials again once they are older than
// CredentialRefresh.
type refresher struct {
	st     store.Registry
	clock  func() time.Time // nil: time.Now
	load   sync.Mutex       // serializes loads, so the last one started installs last
	loaded atomic.Int64     // unix nanos of the last load's start
	busy   atomic.Bool      // a background refresh is running
}

func (f *refresher) now() time.Time {
	if f.clock != nil {
		return f.clock()
	}
	return time.Now()
}

// current returns the registry's credentials, starting a background
// refresh when they are older than CredentialRefresh. A failed refresh is
// logged and the credentials in use stay.
func (r *Registry) current() *credentials {
	f := &r.refresh
	if f.now().UnixNano()-f.loaded.Load() > int64(CredentialRefresh) && f.busy.CompareAndSwap(false, true) {
		go func() {
			defer f.busy.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := r.Refresh(ctx); err != nil {
				slog.Default().Error("refresh write keys and tokens", "err", err)
			}
		}()
	}
	return r.creds.Load()
}

// Refresh reads the write keys and tokens again from the store. Sources
// whose settings did not change keep their rate-limit buckets. Those of
// workspaces this Registry does not know (created by a node started since
// with another config file) are left out: they need a restart here.
func (r *Registry) Refresh(ctx context.Context) error {
	return r.loadCredentials(ctx, false)
}

// loadCredentials reads the store's sources and tokens and installs them.
// With strict, a credential of an unknown workspace is an error.
func (r *Registry) loadCredentials(ctx context.Context, strict bool) error {
	r.refresh.load.Lock()
	defer r.refresh.load.Unlock()
	st := r.refresh.st
	start := r.refresh.now()
	srcs, err := st.Sources(ctx)
	if err != nil {
		return fmt.Errorf("load sources: %w", err)
	}
	toks, err := st.Tokens(ctx)
	if err != nil {
		return fmt.Errorf("load tokens: %w", err)
	}
	prev := r.creds.Load()
	c := &credentials{sources: map[digest]sourceKey{}, bySlug: map[string]*Source{}, tokens: map[digest]tokenKey{}}
	owner := map[digest]string{}       // hash → "source workspace/slug", to report reuse
	holders := map[string]*Principal{} // "workspace/name" → the token's holder
	known := func(kind, workspace, name string) (bool, error) {
		if _, ok := r.workspaces[workspace]; ok {
			return true, nil
		}
		if strict {
			return false, fmt.Errorf("load %s %s/%s: its workspace does not exist", kind, workspace, name)
		}
		return false, nil
	}
	for _, ss := range srcs {
		if ok, err := known("source", ss.Workspace, ss.Slug); !ok {
			if err != nil {
				return err
			}
			continue
		}
		s := prev.bySlug[ss.Workspace+"/"+ss.Slug]
		if s == nil || s.settings != string(ss.Settings) {
			if s, err = decodeSource(ss); err != nil {
				return err
			}
		}
		d, err := add(owner, ss.Workspace, ss.Slug, "source", ss.KeyHash)
		if err != nil {
			return err
		}
		c.sources[d] = sourceKey{s: s}
		c.bySlug[s.Workspace+"/"+s.Slug] = s
	}
	for _, t := range toks {
		if ok, err := known("token", t.Workspace, t.Name); !ok {
			if err != nil {
				return err
			}
			continue
		}
		d, err := add(owner, t.Workspace, t.Name, "token", t.Hash)
		if err != nil {
			return err
		}
		p := &Principal{Workspace: t.Workspace, Name: t.Name, Scopes: slices.Clone(t.Scopes)}
		c.tokens[d] = tokenKey{p: p}
		holders[t.Workspace+"/"+t.Name] = p
	}
	// Previous secrets after the current ones: one that is some credential's
	// current secret again is that credential's.
	for _, ss := range srcs {
		if s := c.bySlug[ss.Workspace+"/"+ss.Slug]; s != nil && previous(owner, ss.PrevKeyHash, ss.PrevUntil, start) {
			c.sources[digest(ss.PrevKeyHash)] = sourceKey{s: s, until: ss.PrevUntil}
		}
	}
	for _, t := range toks {
		if p := holders[t.Workspace+"/"+t.Name]; p != nil && previous(owner, t.PrevHash, t.PrevUntil, start) {
			c.tokens[digest(t.PrevHash)] = tokenKey{p: p, until: t.PrevUntil}
		}
	}
	r.creds.Store(c)
	r.refresh.loaded.Store(start.UnixNano())
	return nil
}

// previous reports whether a previous secret's hash is still to be
// accepted: well formed, not expired, and no other credential's.
func previous(owner map[digest]string, hash []byte, until, now time.Time) bool {
	if len(hash) != sha256.Size || until.IsZero() || !now.Before(until) {
		return false
	}
	_, taken := owner[digest(hash)]
	return !taken
}

// add checks a stored source's or token's hash, and that no other one has
// the same hash.
func add(owner map[digest]string, workspace, name, kind string, hash []byte) (digest, error) {
	id := workspace + "/" + name
	if len(hash) != sha256.Size {
		return digest{}, fmt.Errorf("load %s %s: stored hash has %d bytes, want %d", kind, id, len(hash), sha256.Size)
	}
	d := digest(hash)
	if prev, dup := owner[d]; dup {
		return digest{}, fmt.Errorf("load %s %s: it has the same secret as %s; give each write key and token its own", kind, id, prev)
	}
	owner[d] = kind + " " + id
	return d, nil
}

// ErrGrace is returned for a grace period that is negative or longer than
// MaxGrace.
var ErrGrace = fmt.Errorf("the grace period must be from 0 to %s", MaxGrace)

// Rotated is the result of a rotation.
type Rotated struct {
	// Secret is the new token or write key. Only its hash is stored: it
	// is shown once.
	Secret string
	// PreviousValidUntil is when the old secret stops working; zero when
	// it stopped at once.
	PreviousValidUntil time.Time
}

// RotateToken gives a workspace's token a new secret. The old one stays
// valid for grace (0 revokes it at once). The change applies to this
// Registry at once and to other nodes within CredentialRefresh; it
// survives restarts, also for a token the config file declares (see
// Load). It fails with store.ErrNotFound when there is no such token.
func (r *Registry) RotateToken(ctx context.Context, workspace, name string, grace time.Duration) (Rotated, error) {
	secret := newToken()
	return r.rotate(ctx, grace, secret, func(until time.Time) error {
		return r.refresh.st.RotateToken(ctx, workspace, name, r.Hash(secret), until)
	})
}

// RotateWriteKey gives a source a new write key, as RotateToken does for a
// token.
func (r *Registry) RotateWriteKey(ctx context.Context, workspace, source string, grace time.Duration) (Rotated, error) {
	secret := newWriteKey()
	return r.rotate(ctx, grace, secret, func(until time.Time) error {
		return r.refresh.st.RotateWriteKey(ctx, workspace, source, r.Hash(secret), until)
	})
}

func (r *Registry) rotate(ctx context.Context, grace time.Duration, secret string, store func(until time.Time) error) (Rotated, error) {
	if grace < 0 || grace > MaxGrace {
		return Rotated{}, ErrGrace
	}
	out := Rotated{Secret: secret}
	if grace > 0 {
		out.PreviousValidUntil = r.refresh.now().Add(grace).UTC().Truncate(time.Microsecond)
	}
	if err := store(out.PreviousValidUntil); err != nil {
		return Rotated{}, err
	}
	if err := r.Refresh(ctx); err != nil {
		return Rotated{}, fmt.Errorf("the new secret is stored but not loaded yet (it works within %s): %w", CredentialRefresh, err)
	}
	return out, nil
}

// newToken returns "tok_" and 32 lowercase base32 characters (160 random
// bits).
func newToken() string {
	return "tok_" + strings.TrimPrefix(newWriteKey(), "wk_")
}
