package portal

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// jwsHeader is the protected header of the portal's signatures.
type jwsHeader struct {
	Alg string `json:"alg"` // EdDSA
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// signJWS signs payload (JSON) as a compact JWS (RFC 7515) with EdDSA
// (RFC 8037): header.payload.signature, each base64url. Ed25519 signatures
// are deterministic, so the same record always signs to the same text.
func (k *keys) signJWS(typ string, payload []byte) string {
	h, _ := json.Marshal(jwsHeader{Alg: "EdDSA", Typ: typ, Kid: k.kid})
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(payload)
	return input + "." + enc.EncodeToString(ed25519.Sign(k.signKey, []byte(input)))
}

// JWK is a public key in a JSON Web Key Set (RFC 8037 OKP key).
type JWK struct {
	Kty string `json:"kty"` // OKP
	Crv string `json:"crv"` // Ed25519
	X   string `json:"x"`   // the public key, base64url
	Kid string `json:"kid"`
	Use string `json:"use"` // sig
	Alg string `json:"alg"` // EdDSA
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

func (k *keys) jwks() JWKS {
	pub := k.signKey.Public().(ed25519.PublicKey)
	return JWKS{Keys: []JWK{{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: k.kid, Use: "sig", Alg: "EdDSA"}}}
}

// ErrBadSignature is returned by VerifyJWS for a token that is not a
// compact EdDSA JWS signed by a key of the set.
var ErrBadSignature = errors.New("not a valid signature of the portal")

// VerifyJWS checks a compact JWS against a key set (as published at
// /portal/{workspace}/.well-known/jwks.json) and returns its payload.
func VerifyJWS(token string, set JWKS) ([]byte, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrBadSignature
	}
	enc := base64.RawURLEncoding
	hb, err1 := enc.DecodeString(parts[0])
	payload, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	var h jwsHeader
	if err := errors.Join(err1, err2, err3); err != nil || json.Unmarshal(hb, &h) != nil || h.Alg != "EdDSA" {
		return nil, ErrBadSignature
	}
	for _, k := range set.Keys {
		if k.Kid != h.Kid || k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		pub, err := enc.DecodeString(k.X)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			continue
		}
		if ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			return payload, nil
		}
	}
	return nil, ErrBadSignature
}
