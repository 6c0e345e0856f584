// Package secret keeps the secrets of destination configurations — webhook
// signing secrets and headers, a forward destination's write key, a NATS
// token or credentials path — encrypted at rest, and out of API answers;
// and it seals the values of a workspace's sensitive traits in events
// (TraitKeys, OpenJSON; see traits.go).
//
// A Box seals a value with AES-256-GCM under a key derived with
// HKDF-SHA-256 from the server secret (the one package tenant keeps to hash
// write keys: KITH_SECRET, or the one generated into the store). A sealed
// value is text,
//
//	kith:v1:<fingerprint>:<base64url(nonce | ciphertext | tag)>
//
// bound (as GCM's additional data) to the workspace and destination it
// belongs to, so a sealed value copied into another destination does not
// open. The fingerprint is 8 hex digits of an HMAC of the plain value
// under another derived key: it tells two secrets apart, changes when the
// secret changes, and reveals nothing without the server secret. The
// admin API shows a secret only as "…" + fingerprint (Redact), and a PUT
// that sends that redacted form back keeps the stored secret it stands
// for (Resolve), so a definition read from the API can be edited and put
// back without retyping its secrets.
//
// Changing the server secret makes the stored secrets unreadable: the
// destinations then fail to start until they are put again.
package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Prefix starts every sealed value.
const Prefix = "kith:v1:"

// RedactedPrefix starts the redacted form of a secret: "…" + fingerprint.
const RedactedPrefix = "…"

// Fields are the secret fields of each destination type's configuration
// (by destination type). A string field is sealed; a list of strings has
// each item sealed; an object has each string value sealed (a webhook's
// headers, which often carry an Authorization).
var Fields = map[string][]string{
	"webhook": {"secrets", "headers"},
	"forward": {"write_key"},
	"nats":    {"token", "credentials"},
}

// Box seals and opens secrets under keys derived from the server secret.
// It is safe for concurrent use.
type Box struct {
	aead  cipher.AEAD
	fpKey []byte
}

// New derives a Box's keys from the server secret (at least 16 bytes).
func New(serverSecret []byte) (*Box, error) {
	if len(serverSecret) < 16 {
		return nil, errors.New("secret: the server secret is too short")
	}
	aead, err := newGCM(serverSecret, "kith destination secrets v1 aes-256-gcm")
	if err != nil {
		return nil, err
	}
	fpKey, err := derive(serverSecret, "kith destination secrets v1 fingerprint", 32)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, fpKey: fpKey}, nil
}

// derive returns n bytes of key derived from secret for label (HKDF-SHA-256).
func derive(secret []byte, label string, n int) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, label, n)
	if err != nil {
		return nil, fmt.Errorf("secret: derive key: %w", err)
	}
	return k, nil
}

// newGCM returns AES-256-GCM under the key derived from secret for label.
func newGCM(secret []byte, label string) (cipher.AEAD, error) {
	key, err := derive(secret, label, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return aead, nil
}

// Fingerprint returns 8 hex digits identifying a plain secret.
func (b *Box) Fingerprint(plain string) string {
	m := hmac.New(sha256.New, b.fpKey)
	m.Write([]byte(plain))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

// Seal encrypts plain for the destination named by scope (see Scope).
func (b *Box) Seal(scope, plain string) string {
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	out := b.aead.Seal(nonce, nonce, []byte(plain), []byte(scope))
	return Prefix + b.Fingerprint(plain) + ":" + base64.RawURLEncoding.EncodeToString(out)
}

// Open decrypts a value Seal made for the same scope.
func (b *Box) Open(scope, sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, Prefix)
	if !ok {
		return "", errors.New("secret: not a sealed value")
	}
	_, text, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("secret: malformed sealed value")
	}
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(raw) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", errors.New("secret: malformed sealed value")
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(scope))
	if err != nil {
		return "", errors.New("secret: cannot decrypt a stored secret (was the server secret, KITH_SECRET, changed?)")
	}
	return string(plain), nil
}

// Scope names what a sealed value belongs to: a workspace's destination.
func Scope(workspace, destination string) string {
	return "destination\x00" + workspace + "\x00" + destination
}

// IsSealed reports whether s is a sealed value.
func IsSealed(s string) bool { return strings.HasPrefix(s, Prefix) }

// fingerprintOf returns the fingerprint a sealed value carries.
func fingerprintOf(sealed string) string {
	fp, _, _ := strings.Cut(strings.TrimPrefix(sealed, Prefix), ":")
	return fp
}

// Redact returns the form in which a secret is shown: "…" and the
// fingerprint. A sealed value needs no key to be redacted.
func (b *Box) Redact(v string) string {
	if IsSealed(v) {
		return RedactedPrefix + fingerprintOf(v)
	}
	return RedactedPrefix + b.Fingerprint(v)
}

// ErrSealedInput is returned for a configuration that holds a sealed value
// where a plain secret belongs.
var ErrSealedInput = errors.New("a secret must be given in plain text, not in its stored (encrypted) form")

// SealConfig returns a destination type's configuration (JSON) with every
// secret field sealed for scope. A value already sealed is refused
// (ErrSealedInput): sealed values come only from this Box. Values that are
// not secret are kept as they are (numbers exactly).
func (b *Box) SealConfig(scope, typ string, cfg json.RawMessage) (json.RawMessage, error) {
	return rewrite(typ, cfg, func(path, v string) (string, error) {
		if IsSealed(v) {
			return "", fmt.Errorf("%s: %w", path, ErrSealedInput)
		}
		return b.Seal(scope, v), nil
	})
}

// OpenConfig returns a configuration with every sealed secret field
// opened; plain values are kept (a configuration stored before secrets were
// sealed still works).
func (b *Box) OpenConfig(scope, typ string, cfg json.RawMessage) (json.RawMessage, error) {
	return rewrite(typ, cfg, func(path, v string) (string, error) {
		if !IsSealed(v) {
			return v, nil
		}
		p, err := b.Open(scope, v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	})
}

// RedactConfig returns a configuration with every secret field replaced by
// its redacted form. It never fails: a configuration that is not a JSON
// object is replaced by null.
func (b *Box) RedactConfig(typ string, cfg json.RawMessage) json.RawMessage {
	out, err := rewrite(typ, cfg, func(_, v string) (string, error) { return b.Redact(v), nil })
	if err != nil {
		return json.RawMessage("null")
	}
	return out
}

// Resolve prepares a configuration sent to the admin API: a secret field
// holding the redacted form of a secret ("…" + fingerprint) gets the
// plain value of the stored secret with that fingerprint (from old, the
// stored configuration of the same destination, opened with scope); a
// sealed value is refused. It returns the plain configuration.
func (b *Box) Resolve(scope, typ string, cfg, old json.RawMessage) (json.RawMessage, error) {
	stored := map[string]string{} // fingerprint → sealed value
	if len(old) > 0 {
		_, _ = rewrite(typ, old, func(_, v string) (string, error) {
			if IsSealed(v) {
				stored[fingerprintOf(v)] = v
			} else {
				stored[b.Fingerprint(v)] = b.Seal(scope, v)
			}
			return v, nil
		})
	}
	return rewrite(typ, cfg, func(path, v string) (string, error) {
		switch {
		case IsSealed(v):
			return "", fmt.Errorf("%s: %w", path, ErrSealedInput)
		case strings.HasPrefix(v, RedactedPrefix):
			sealed, ok := stored[strings.TrimPrefix(v, RedactedPrefix)]
			if !ok {
				return "", fmt.Errorf("%s: %q is the redacted form of a secret this destination does not hold: give the secret itself", path, v)
			}
			return b.Open(scope, sealed)
		}
		return v, nil
	})
}

// rewrite applies f to every string in the secret fields of a
// configuration and returns it re-encoded; without secret fields, or when
// cfg is empty, cfg is returned as it is.
func rewrite(typ string, cfg json.RawMessage, f func(path, v string) (string, error)) (json.RawMessage, error) {
	fields := Fields[typ]
	if len(fields) == 0 || len(bytes.TrimSpace(cfg)) == 0 {
		return cfg, nil
	}
	dec := json.NewDecoder(bytes.NewReader(cfg))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, errors.New("config: must be a JSON object")
	}
	changed := false
	for _, name := range fields {
		v, ok := obj[name]
		if !ok {
			continue
		}
		nv, err := rewriteValue(name, v, f)
		if err != nil {
			return nil, err
		}
		obj[name], changed = nv, true
	}
	if !changed {
		return cfg, nil
	}
	return json.Marshal(obj)
}

func rewriteValue(path string, v any, f func(path, v string) (string, error)) (any, error) {
	switch v := v.(type) {
	case string:
		return f(path, v)
	case []any:
		out := slices.Clone(v)
		for i, item := range v {
			nv, err := rewriteValue(fmt.Sprintf("%s[%d]", path, i), item, f)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			nv, err := rewriteValue(path+"."+k, item, f)
			if err != nil {
				return nil, err
			}
			out[k] = nv
		}
		return out, nil
	}
	return v, nil // numbers, booleans, null: the sender's parser reports them
}
