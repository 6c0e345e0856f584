package tenant

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/config"
	"github.com/kithcdp/kith/store"
)

// Names used when there is no config file.
const (
	DefaultWorkspace = "default"
	DefaultSource    = "default"
)

// SecretEnv is the environment variable that, when set, holds the server
// secret (hex or base64, at least 32 bytes) instead of the one in the store.
const SecretEnv = "KITH_SECRET"

// secretMetaKey is the store meta key of the generated server secret.
const secretMetaKey = "hmac_secret"

const minSecretBytes = 32

// Load syncs cfg into st and builds the registry from st.
//
// The config file is the source of truth for credentials: when it declares
// workspaces, Load upserts them with their sources and tokens, and deletes
// every stored source and token the file does not declare — also those of
// workspaces no longer in the file. The same goes for the computed traits
// and audiences the file declares (Origin "config"), but those created
// through the admin API (Origin "api") stay unless the file declares one of
// the same kind and name (see syncDefinitions). Workspaces themselves (and their events)
// are never deleted; one no longer declared keeps its settings but has no
// sources or tokens left.
//
// With no config (cfg == nil), or one declaring no workspaces, Load only
// makes sure a workspace "default" with a source "default" exists. When it
// creates that source it generates its write key and returns it in the
// NewKey slice: it is shown to the caller once, only its hash is stored.
// Stored sources and tokens are left as they are.
func Load(ctx context.Context, st store.Registry, cfg *config.Config) (*Registry, []NewKey, error) {
	r, err := empty(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	var keys []NewKey
	if cfg == nil || len(cfg.Workspaces) == 0 {
		keys, err = r.ensureDefault(ctx, st)
	} else {
		err = r.sync(ctx, st, cfg)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := r.fill(ctx, st); err != nil {
		return nil, nil, err
	}
	if cfg != nil {
		r.trusted = slices.Clone(cfg.TrustedProxies)
	}
	return r, keys, nil
}

// FromStore builds the registry from what st holds, without a config file
// and without changing st. It trusts no proxies: they are a fact of each
// node's network, given by its config file.
func FromStore(ctx context.Context, st store.Registry) (*Registry, error) {
	r, err := empty(ctx, st)
	if err != nil {
		return nil, err
	}
	if err := r.fill(ctx, st); err != nil {
		return nil, err
	}
	return r, nil
}

// empty returns a registry with no entries, keyed with the server secret.
func empty(ctx context.Context, st store.Registry) (*Registry, error) {
	secret, err := serverSecret(ctx, st)
	if err != nil {
		return nil, err
	}
	return newRegistry(secret, st)
}

// serverSecret returns the HMAC key: KITH_SECRET if set, else the secret in
// the store, generated and stored by the first node that needs it.
func serverSecret(ctx context.Context, st store.Registry) ([]byte, error) {
	if v := strings.TrimSpace(os.Getenv(SecretEnv)); v != "" {
		secret, ok := decodeSecret(v)
		if !ok {
			return nil, fmt.Errorf("%s must hold at least %d bytes written as hex or base64 (for example the output of `openssl rand -hex 32`)", SecretEnv, minSecretBytes)
		}
		return secret, nil
	}
	fresh := make([]byte, minSecretBytes)
	_, _ = rand.Read(fresh) // never fails (crypto/rand)
	secret, err := st.SetMetaIfAbsent(ctx, secretMetaKey, fresh)
	if err != nil {
		return nil, fmt.Errorf("load server secret: %w", err)
	}
	if len(secret) < minSecretBytes {
		return nil, fmt.Errorf("load server secret: the stored secret has %d bytes, want at least %d", len(secret), minSecretBytes)
	}
	return secret, nil
}

// decodeSecret decodes hex or base64 (standard or URL alphabet, padded or
// not) of at least minSecretBytes bytes.
func decodeSecret(s string) ([]byte, bool) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, len(b) >= minSecretBytes
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, len(b) >= minSecretBytes
		}
	}
	return nil, false
}

// sync writes cfg's workspaces, sources and tokens into st and deletes the
// sources and tokens it does not declare.
//
// A declared write key or token replaces the stored one when the file's
// value changed since the file was last applied (the store keeps the hash
// of that value, ConfigHash); while it is unchanged, the stored secret is
// kept, with its previous one, so that a secret rotated through the API or
// the CLI survives a restart with the same file.
func (r *Registry) sync(ctx context.Context, st store.Registry, cfg *config.Config) error {
	srcs, err := st.Sources(ctx)
	if err != nil {
		return fmt.Errorf("sync config: list sources: %w", err)
	}
	toks, err := st.Tokens(ctx)
	if err != nil {
		return fmt.Errorf("sync config: list tokens: %w", err)
	}
	storedSrc := map[string]store.Source{}
	for _, s := range srcs {
		storedSrc[sourceID(s.Workspace, s.Slug)] = s
	}
	storedTok := map[string]store.Token{}
	for _, t := range toks {
		storedTok[tokenID(t.Workspace, t.Name)] = t
	}
	declared := map[string]bool{} // sourceID and tokenID of what cfg declares
	for _, w := range cfg.Workspaces {
		err := st.PutWorkspace(ctx, store.Workspace{Slug: w.Slug, Settings: encodeWorkspace(w)})
		if err != nil {
			return fmt.Errorf("sync config: %w", err)
		}
		for _, s := range w.Sources {
			id := sourceID(w.Slug, s.Slug)
			h := r.Hash(s.WriteKey)
			src := store.Source{Workspace: w.Slug, Slug: s.Slug, KeyHash: h, Settings: encodeSource(s), ConfigHash: h}
			if old, ok := storedSrc[id]; ok {
				src.KeyHash, src.PrevKeyHash, src.PrevUntil = kept(old.KeyHash, old.PrevKeyHash, old.PrevUntil, old.ConfigHash, h)
			}
			if err := st.PutSource(ctx, src); err != nil {
				return fmt.Errorf("sync config: %w", err)
			}
			declared[id] = true
		}
		for _, t := range w.Tokens {
			id := tokenID(w.Slug, t.Name)
			h := r.Hash(t.Token)
			tok := store.Token{Workspace: w.Slug, Name: t.Name, Hash: h, Scopes: t.Scopes, ConfigHash: h}
			if old, ok := storedTok[id]; ok {
				tok.Hash, tok.PrevHash, tok.PrevUntil = kept(old.Hash, old.PrevHash, old.PrevUntil, old.ConfigHash, h)
			}
			if err := st.PutToken(ctx, tok); err != nil {
				return fmt.Errorf("sync config: %w", err)
			}
			declared[id] = true
		}
	}
	for _, s := range srcs {
		if !declared[sourceID(s.Workspace, s.Slug)] {
			if err := st.DeleteSource(ctx, s.Workspace, s.Slug); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("sync config: %w", err)
			}
		}
	}
	for _, t := range toks {
		if !declared[tokenID(t.Workspace, t.Name)] {
			if err := st.DeleteToken(ctx, t.Workspace, t.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("sync config: %w", err)
			}
		}
	}
	return r.syncDefinitions(ctx, st, cfg)
}

// syncDefinitions applies the file's computed traits and audiences: each
// is stored with Origin "config" (a definition of the same kind and name
// created through the admin API is taken over by the file), and stored
// Origin-"config" definitions the file no longer declares are deleted, in
// every workspace. Definitions created through the admin API that the
// file does not name are left as they are. Each workspace's resulting set
// must compile (compute.Compile): the config's definitions are checked
// alone when the file is read, and here together with the API's; on a
// problem nothing of that workspace is changed and Load fails.
//
// Destinations are applied the same way (their names are a namespace of
// their own); their secrets are sealed before they are stored (see
// SealDestination), and one whose definition and secrets did not change is
// left as stored.
func (r *Registry) syncDefinitions(ctx context.Context, st store.Registry, cfg *config.Config) error {
	declared := map[string][]store.Definition{}
	for _, w := range cfg.Workspaces {
		declared[w.Slug] = append(slices.Clone(w.Definitions), w.Destinations...)
	}
	wss, err := st.Workspaces(ctx)
	if err != nil {
		return fmt.Errorf("sync definitions: list workspaces: %w", err)
	}
	for _, w := range wss {
		stored, err := st.Definitions(ctx, w.Slug)
		if err != nil {
			return fmt.Errorf("sync definitions of %s: %w", w.Slug, err)
		}
		want := declared[w.Slug]
		named := map[string]bool{}
		for _, d := range want {
			named[d.Kind+"\x00"+d.Name] = true
		}
		var remove []store.Definition
		result := slices.Clone(want)
		for _, d := range stored {
			switch {
			case named[d.Kind+"\x00"+d.Name]:
			case d.Origin == "config":
				remove = append(remove, d)
			default:
				result = append(result, d)
			}
		}
		if len(want) == 0 && len(remove) == 0 {
			continue
		}
		if _, err := compute.Compile(result); err != nil {
			return fmt.Errorf("sync definitions of workspace %s: the config file's computed traits and audiences do not compile with those created through the admin API: %w", w.Slug, err)
		}
		for _, d := range remove {
			if err := st.DeleteDefinition(ctx, d.Workspace, d.Kind, d.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("sync definitions of %s: %w", w.Slug, err)
			}
		}
		for _, d := range want {
			d.Workspace, d.Origin = w.Slug, "config"
			if d.Kind == store.DefinitionDestination {
				var prev json.RawMessage
				if i := slices.IndexFunc(stored, func(s store.Definition) bool { return s.Kind == d.Kind && s.Name == d.Name }); i >= 0 {
					prev = stored[i].Body
				}
				if d.Body, err = r.sealedUnlessSame(w.Slug, d.Body, prev); err != nil {
					return fmt.Errorf("sync definitions of %s: %w", w.Slug, err)
				}
			}
			if _, err := st.PutDefinition(ctx, d); err != nil {
				return fmt.Errorf("sync definitions of %s: %w", w.Slug, err)
			}
		}
	}
	return nil
}

// kept returns the hash (and previous hash) a declared secret is stored
// with, given what is stored and the hash of the file's value: the stored
// ones while the file's value is the one last applied (a rotation since
// then is kept), else the file's — keeping the previous hash only if the
// file now holds the stored secret (an operator who put the rotated secret
// into the file).
func kept(hash, prev []byte, until time.Time, configHash, file []byte) ([]byte, []byte, time.Time) {
	if bytes.Equal(configHash, file) || bytes.Equal(hash, file) {
		return hash, prev, until
	}
	return file, nil, time.Time{}
}

func sourceID(workspace, slug string) string { return "source " + workspace + "/" + slug }
func tokenID(workspace, name string) string  { return "token " + workspace + "/" + name }

// ensureDefault creates the default workspace and source if they are
// missing, and returns the source's write key if it generated one.
func (r *Registry) ensureDefault(ctx context.Context, st store.Registry) ([]NewKey, error) {
	wss, err := st.Workspaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("ensure default workspace: %w", err)
	}
	if !slices.ContainsFunc(wss, func(w store.Workspace) bool { return w.Slug == DefaultWorkspace }) {
		err := st.PutWorkspace(ctx, store.Workspace{Slug: DefaultWorkspace, Settings: encodeWorkspace(config.Workspace{DedupWindow: config.DefaultDedupWindow})})
		if err != nil {
			return nil, fmt.Errorf("ensure default workspace: %w", err)
		}
	}
	srcs, err := st.Sources(ctx)
	if err != nil {
		return nil, fmt.Errorf("ensure default source: %w", err)
	}
	if slices.ContainsFunc(srcs, func(s store.Source) bool { return s.Workspace == DefaultWorkspace && s.Slug == DefaultSource }) {
		return nil, nil
	}
	key := newWriteKey()
	added, err := st.AddSource(ctx, store.Source{Workspace: DefaultWorkspace, Slug: DefaultSource, KeyHash: r.Hash(key), Settings: encodeSource(config.Source{})})
	if err != nil {
		return nil, fmt.Errorf("ensure default source: %w", err)
	}
	if !added {
		return nil, nil // another node starting at the same time created it and printed its key
	}
	token := newToken()
	err = st.PutToken(ctx, store.Token{Workspace: DefaultWorkspace, Name: "admin", Hash: r.Hash(token), Scopes: []string{config.ScopeAdmin}})
	if err != nil {
		return nil, fmt.Errorf("ensure default admin token: %w", err)
	}
	return []NewKey{{Workspace: DefaultWorkspace, Source: DefaultSource, Key: key, AdminToken: token}}, nil
}

// newWriteKey returns "wk_" and 32 lowercase base32 characters (160 random
// bits).
func newWriteKey() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "wk_" + strings.ToLower(base32.StdEncoding.EncodeToString(b))
}
