package portal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/kithcdp/kith/config"
)

// rootLabel is hashed with the server secret (tenant.Registry.Hash, an
// HMAC-SHA-256 under it) to give the portal's root key. It is longer than
// any write key or token may be (config.MaxSecretLen), so the root key can
// never equal the stored hash of a credential.
var rootLabel = "kith portal root key v1 " + strings.Repeat(".", config.MaxSecretLen)

// keys are the portal's keys, each derived with HKDF-SHA-256 from the root
// key under its own label, so that one never serves two purposes.
type keys struct {
	seal    cipher.AEAD        // AES-256-GCM: the session cookie
	code    []byte             // HMAC: one-time codes
	csrf    []byte             // HMAC: CSRF tokens
	digest  []byte             // HMAC: the email digest written to logs and limiters
	link    []byte             // HMAC: capability links to request status pages
	intent  []byte             // HMAC: intent pseudonyms
	signKey ed25519.PrivateKey // receipts and terms records (JWS EdDSA)
	kid     string             // the signing key's id in the JWKS
}

// newKeys derives the portal's keys from root (at least 16 bytes).
func newKeys(root []byte) (*keys, error) {
	if len(root) < 16 {
		return nil, errors.New("portal: the root key is too short")
	}
	derive := func(label string) ([]byte, error) {
		k, err := hkdf.Key(sha256.New, root, nil, "kith portal v1 "+label, 32)
		if err != nil {
			return nil, fmt.Errorf("portal: derive the %s key: %w", label, err)
		}
		return k, nil
	}
	var k keys
	for _, d := range []struct {
		label string
		dst   *[]byte
	}{{"code", &k.code}, {"csrf", &k.csrf}, {"digest", &k.digest}, {"link", &k.link}, {"intent", &k.intent}} {
		v, err := derive(d.label)
		if err != nil {
			return nil, err
		}
		*d.dst = v
	}
	sealKey, err := derive("session aes-256-gcm")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	if k.seal, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	seed, err := derive("receipt ed25519")
	if err != nil {
		return nil, err
	}
	k.signKey = ed25519.NewKeyFromSeed(seed)
	sum := sha256.Sum256(k.signKey.Public().(ed25519.PublicKey))
	k.kid = "kith-portal-" + hex.EncodeToString(sum[:8])
	return &k, nil
}

// mac is HMAC-SHA-256 of the parts under key, each part prefixed by its
// length so that no two lists of parts hash alike.
func mac(key []byte, parts ...string) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// emailDigest is the short keyed digest of an email that logs and rate
// limiters use in its place (16 hex digits).
func (k *keys) emailDigest(ws, email string) string {
	return hex.EncodeToString(mac(k.digest, ws, email)[:8])
}

// sealValue encrypts plain bound to aad, as base64url text.
func (k *keys) sealValue(plain []byte, aad string) string {
	nonce := make([]byte, k.seal.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	out := k.seal.Seal(nonce, nonce, plain, []byte(aad))
	return base64.RawURLEncoding.EncodeToString(out)
}

// openValue decrypts what sealValue sealed under the same aad.
func (k *keys) openValue(text, aad string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(raw) < k.seal.NonceSize()+k.seal.Overhead() {
		return nil, errors.New("not a sealed value")
	}
	n := k.seal.NonceSize()
	return k.seal.Open(nil, raw[:n], raw[n:], []byte(aad))
}

// randomID returns 16 random bytes as base64url text.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
