package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// runTokens tests the rotation of tokens and write keys: the columns a
// rotation and a config sync write, and RotateToken / RotateWriteKey.
func runTokens(t *testing.T, open func(t *testing.T) store.Store, ws func() string) {
	ctx := context.Background()
	st := open(t)
	later := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC) // microsecond precision is kept

	token := func(t *testing.T, st store.Store, w, name string) store.Token {
		t.Helper()
		toks, err := st.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range toks {
			if tok.Workspace == w && tok.Name == name {
				return tok
			}
		}
		t.Fatalf("no token %s/%s", w, name)
		return store.Token{}
	}
	source := func(t *testing.T, st store.Store, w, slug string) store.Source {
		t.Helper()
		srcs, err := st.Sources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range srcs {
			if s.Workspace == w && s.Slug == slug {
				return s
			}
		}
		t.Fatalf("no source %s/%s", w, slug)
		return store.Source{}
	}

	t.Run("TokenRotation", func(t *testing.T) {
		t.Parallel()
		w := ws()
		if err := st.PutWorkspace(ctx, store.Workspace{Slug: w}); err != nil {
			t.Fatal(err)
		}
		put := store.Token{Workspace: w, Name: "ops", Hash: []byte{1}, Scopes: []string{"admin"},
			PrevHash: []byte{0}, PrevUntil: later, ConfigHash: []byte{1}}
		if err := st.PutToken(ctx, put); err != nil {
			t.Fatal(err)
		}
		got := token(t, st, w, "ops")
		if !bytes.Equal(got.PrevHash, []byte{0}) || !got.PrevUntil.Equal(later) || !bytes.Equal(got.ConfigHash, []byte{1}) {
			t.Fatalf("put and read back: %+v", got)
		}
		// A token of the same name in another workspace is not rotated.
		other := ws()
		if err := st.PutWorkspace(ctx, store.Workspace{Slug: other}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutToken(ctx, store.Token{Workspace: other, Name: "ops", Hash: []byte{9}, Scopes: []string{"admin"}}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if got := token(t, st, other, "ops"); !bytes.Equal(got.Hash, []byte{9}) || got.PrevHash != nil || !got.PrevUntil.IsZero() {
				t.Errorf("the token of the same name in another workspace was changed: %+v", got)
			}
		}()

		// Rotating with a grace period keeps the current hash as the previous one.
		if err := st.RotateToken(ctx, w, "ops", []byte{2}, later); err != nil {
			t.Fatal(err)
		}
		got = token(t, open(t), w, "ops") // another node sees it
		if !bytes.Equal(got.Hash, []byte{2}) || !bytes.Equal(got.PrevHash, []byte{1}) || !got.PrevUntil.Equal(later) ||
			!bytes.Equal(got.ConfigHash, []byte{1}) || len(got.Scopes) != 1 {
			t.Fatalf("after a rotation with grace: %+v", got)
		}
		// Without one the previous hash is dropped.
		if err := st.RotateToken(ctx, w, "ops", []byte{3}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		got = token(t, st, w, "ops")
		if !bytes.Equal(got.Hash, []byte{3}) || got.PrevHash != nil || !got.PrevUntil.IsZero() {
			t.Fatalf("after a rotation without grace: %+v", got)
		}
		if err := st.RotateToken(ctx, w, "nobody", []byte{4}, later); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rotating a missing token: %v, want ErrNotFound", err)
		}
		// A put replaces every column, the rotation's too.
		if err := st.PutToken(ctx, store.Token{Workspace: w, Name: "ops", Hash: []byte{5}, Scopes: []string{"debug"}}); err != nil {
			t.Fatal(err)
		}
		if got = token(t, st, w, "ops"); got.PrevHash != nil || got.ConfigHash != nil || !got.PrevUntil.IsZero() {
			t.Fatalf("after a put: %+v", got)
		}
	})

	t.Run("WriteKeyRotation", func(t *testing.T) {
		t.Parallel()
		w := ws()
		if err := st.PutWorkspace(ctx, store.Workspace{Slug: w}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSource(ctx, store.Source{Workspace: w, Slug: "web", KeyHash: []byte{1}, ConfigHash: []byte{1}}); err != nil {
			t.Fatal(err)
		}
		// A source of the same slug in another workspace is not rotated.
		other := ws()
		if err := st.PutWorkspace(ctx, store.Workspace{Slug: other}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSource(ctx, store.Source{Workspace: other, Slug: "web", KeyHash: []byte{9}}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if got := source(t, st, other, "web"); !bytes.Equal(got.KeyHash, []byte{9}) || got.PrevKeyHash != nil || !got.PrevUntil.IsZero() {
				t.Errorf("the source of the same slug in another workspace was changed: %+v", got)
			}
		}()
		if err := st.RotateWriteKey(ctx, w, "web", []byte{2}, later); err != nil {
			t.Fatal(err)
		}
		got := source(t, open(t), w, "web")
		if !bytes.Equal(got.KeyHash, []byte{2}) || !bytes.Equal(got.PrevKeyHash, []byte{1}) || !got.PrevUntil.Equal(later) ||
			!bytes.Equal(got.ConfigHash, []byte{1}) {
			t.Fatalf("after a rotation with grace: %+v", got)
		}
		if err := st.RotateWriteKey(ctx, w, "web", []byte{3}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if got = source(t, st, w, "web"); !bytes.Equal(got.KeyHash, []byte{3}) || got.PrevKeyHash != nil || !got.PrevUntil.IsZero() {
			t.Fatalf("after a rotation without grace: %+v", got)
		}
		if err := st.RotateWriteKey(ctx, w, "nowhere", []byte{4}, later); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rotating a missing source: %v, want ErrNotFound", err)
		}
	})
}
