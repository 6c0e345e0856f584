package tenant_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

// clock is a settable time for a registry.
type clock struct{ at atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.at.Store(time.Now().UnixNano())
	return c
}
func (c *clock) now() time.Time            { return time.Unix(0, c.at.Load()) }
func (c *clock) advance(d time.Duration)   { c.at.Add(int64(d)) }
func (c *clock) attach(r *tenant.Registry) { tenant.SetClock(r, c.now) }

func TestRotateToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg, _ := b.load(t, acmeConfig)
	clk := newClock()
	clk.attach(reg)
	other, err := tenant.FromStore(b.ctx, b.st) // a second node
	if err != nil {
		t.Fatal(err)
	}
	clk.attach(other)

	rot, err := reg.RotateToken(b.ctx, "acme", "ops", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rot.Secret, "tok_") || len(rot.Secret) != 36 {
		t.Errorf("new token %q", rot.Secret)
	}
	if want := clk.now().Add(time.Hour); rot.PreviousValidUntil.Sub(want).Abs() > time.Millisecond {
		t.Errorf("previous valid until %s, want %s", rot.PreviousValidUntil, want)
	}
	works := func(r *tenant.Registry, token string) bool {
		p, ok := r.Authenticate(token)
		return ok && p.Workspace == "acme" && p.Name == "ops" && len(p.Scopes) == 1 && p.Scopes[0] == "debug"
	}
	if !works(reg, rot.Secret) || !works(reg, "tok_ops_1234567890") {
		t.Fatal("during the grace period both the new and the old token must work")
	}
	// The other node sees the new token once it refreshes.
	if works(other, rot.Secret) {
		t.Fatal("the other node knew the new token before refreshing")
	}
	if err := other.Refresh(b.ctx); err != nil {
		t.Fatal(err)
	}
	if !works(other, rot.Secret) || !works(other, "tok_ops_1234567890") {
		t.Fatal("the other node does not accept both tokens after a refresh")
	}

	// A restart with the same config file keeps the rotation.
	again, _ := b.load(t, acmeConfig)
	clk.attach(again)
	if !works(again, rot.Secret) || !works(again, "tok_ops_1234567890") {
		t.Fatal("a restart with the same file lost the rotation")
	}
	// After the grace period only the new one works.
	clk.advance(time.Hour + time.Second)
	for _, r := range []*tenant.Registry{reg, other, again} {
		if works(r, "tok_ops_1234567890") {
			t.Fatal("the old token works after its grace period")
		}
		if !works(r, rot.Secret) {
			t.Fatal("the new token stopped working")
		}
	}

	// Grace 0 revokes at once.
	rot2, err := reg.RotateToken(b.ctx, "acme", "ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !rot2.PreviousValidUntil.IsZero() || works(reg, rot.Secret) || !works(reg, rot2.Secret) {
		t.Fatal("a rotation without grace must revoke the old token at once")
	}

	// A changed value in the file wins over the rotation.
	changed, _ := b.load(t, strings.Replace(acmeConfig, "tok_ops_1234567890", "tok_ops_changed_123", 1))
	if works(changed, rot2.Secret) || !works(changed, "tok_ops_changed_123") {
		t.Fatal("a new value in the config file must replace a rotated token")
	}

	if _, err := reg.RotateToken(b.ctx, "acme", "nobody", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotating a missing token: %v, want ErrNotFound", err)
	}
	if _, err := reg.RotateToken(b.ctx, "beta", "desk", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotating a token of another workspace: %v, want ErrNotFound", err)
	}
	for _, g := range []time.Duration{-time.Second, tenant.MaxGrace + time.Second} {
		if _, err := reg.RotateToken(b.ctx, "acme", "ops", g); !errors.Is(err, tenant.ErrGrace) {
			t.Errorf("grace %s: %v, want ErrGrace", g, err)
		}
	}
}

func TestRotateWriteKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg, _ := b.load(t, acmeConfig)
	clk := newClock()
	clk.attach(reg)
	before, _ := reg.Source("acme", "app")
	for range 3 { // empty the bucket (burst 3, nearly no refill)
		before.Allow(1)
	}

	rot, err := reg.RotateWriteKey(b.ctx, "acme", "app", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rot.Secret, "wk_") {
		t.Errorf("new write key %q", rot.Secret)
	}
	for _, key := range []string{rot.Secret, "wk_app_1234567890"} {
		if s, ok := reg.SourceForKey(key); !ok || s.Workspace != "acme" || s.Slug != "app" {
			t.Fatalf("write key %q does not find acme/app during the grace period", key)
		}
	}
	// The refresh kept the source, and so its rate-limit bucket.
	if s, _ := reg.SourceForKey(rot.Secret); s != before {
		t.Error("a refresh replaced an unchanged source (its rate limit started over)")
	}
	if ok, _ := before.Allow(1); ok {
		t.Error("the bucket was refilled by the rotation")
	}
	// A restart with the same file keeps the new key and the old one's grace.
	again, _ := b.load(t, acmeConfig)
	clk.attach(again)
	for _, key := range []string{rot.Secret, "wk_app_1234567890"} {
		if _, ok := again.SourceForKey(key); !ok {
			t.Fatalf("after a restart, write key %q does not work during the grace period", key)
		}
	}
	// So does one with the new key put into the file (the old key's grace
	// is kept: the stored key is the file's).
	edited, _ := b.load(t, strings.Replace(acmeConfig, "wk_app_1234567890", rot.Secret, 1))
	clk.attach(edited)
	for _, key := range []string{rot.Secret, "wk_app_1234567890"} {
		if _, ok := edited.SourceForKey(key); !ok {
			t.Fatalf("after a restart with the new key in the file, write key %q does not work during the grace period", key)
		}
	}
	clk.advance(10 * time.Minute)
	for _, r := range []*tenant.Registry{reg, again, edited} {
		if _, ok := r.SourceForKey("wk_app_1234567890"); ok {
			t.Error("the old write key works after its grace period")
		}
	}
	if _, err := reg.RotateWriteKey(b.ctx, "acme", "nowhere", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotating a missing source: %v, want ErrNotFound", err)
	}
}
