package secret

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Sensitive traits (docs/security.md): a workspace names traits whose
// values must be encrypted at rest (config sensitive_traits). At
// ingestion, before an event is appended to the log, the value of each
// such trait in the event's "traits" and "context.traits" is replaced in
// the raw JSON by an envelope,
//
//	{"$kith_sealed":"v1:<key id>:<base64url(nonce | AES-256-GCM ciphertext | tag)>"}
//
// whose plaintext is the value's JSON. The key is derived with HKDF-SHA-256
// from the server secret and the workspace's slug, and the workspace is
// GCM's additional data, so an envelope opens only in its own workspace.
// The key id (8 hex digits, derived from the server secret) names the
// server secret that sealed it. Everything stored after ingestion — the
// log, quarantine, derived traits and their history, the outbox — holds
// the envelope; readers that must show the value call OpenJSON.

// SealedKey is the one member of an envelope.
const SealedKey = "$kith_sealed"

// sealedVersion starts an envelope's text.
const sealedVersion = "v1:"

// maxPathSegments bounds a sensitive trait path.
const maxPathSegments = 16

// keyring holds the TraitKeys of every server secret this process has
// seen, by key id, so that OpenJSON needs no key argument: readers deep in
// other packages (delivery, the access export) open envelopes without the
// key being passed down to them.
var keyring sync.Map // key id → *TraitKeys

// TraitKeys seals sensitive trait values under keys derived from one
// server secret, one key per workspace. It is safe for concurrent use.
type TraitKeys struct {
	id     string
	master []byte
	aeads  sync.Map // workspace → cipher.AEAD
}

// NewTraitKeys derives the trait keys of a server secret (at least 16
// bytes) and makes them known to OpenJSON.
func NewTraitKeys(serverSecret []byte) (*TraitKeys, error) {
	if len(serverSecret) < 16 {
		return nil, errors.New("secret: the server secret is too short")
	}
	master, err := derive(serverSecret, "kith sensitive traits v1", 32)
	if err != nil {
		return nil, err
	}
	id, err := derive(serverSecret, "kith sensitive traits v1 key id", 4)
	if err != nil {
		return nil, err
	}
	k := &TraitKeys{id: hex.EncodeToString(id), master: master}
	v, _ := keyring.LoadOrStore(k.id, k)
	return v.(*TraitKeys), nil
}

// aead returns the workspace's cipher.
func (k *TraitKeys) aead(workspace string) (cipher.AEAD, error) {
	if a, ok := k.aeads.Load(workspace); ok {
		return a.(cipher.AEAD), nil
	}
	a, err := newGCM(k.master, "workspace\x00"+workspace)
	if err != nil {
		return nil, err
	}
	k.aeads.Store(workspace, a)
	return a, nil
}

func additionalData(workspace string) []byte { return []byte("kith trait\x00" + workspace) }

// seal returns the envelope text of a value's JSON.
func (k *TraitKeys) seal(workspace string, plain []byte) (string, error) {
	a, err := k.aead(workspace)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	out := a.Seal(nonce, nonce, plain, additionalData(workspace))
	return sealedVersion + k.id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// open returns the JSON an envelope's text holds, if a known key of
// workspace opens it.
func open(workspace, text string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(text, sealedVersion)
	if !ok {
		return nil, false
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, false
	}
	v, ok := keyring.Load(id)
	if !ok {
		return nil, false
	}
	a, err := v.(*TraitKeys).aead(workspace)
	if err != nil {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(raw) < a.NonceSize()+a.Overhead() {
		return nil, false
	}
	n := a.NonceSize()
	plain, err := a.Open(nil, raw[:n], raw[n:], additionalData(workspace))
	if err != nil || !json.Valid(plain) {
		return nil, false
	}
	return plain, true
}

// TraitPaths are a workspace's sensitive trait paths, compiled. The zero
// value and nil match nothing.
type TraitPaths struct {
	paths [][]string
}

// ParseTraitPath checks one sensitive trait path and returns its
// segments: trait keys separated by dots ("ssn", "address.street"), where
// a segment "*" stands for any key ("health.*": every trait inside
// health). A path names object members only; the value found there is
// sealed whole, whatever its type.
func ParseTraitPath(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if len(s) > 200 {
		return nil, errors.New("longer than 200 characters")
	}
	segs := strings.Split(s, ".")
	if len(segs) > maxPathSegments {
		return nil, fmt.Errorf("more than %d segments", maxPathSegments)
	}
	for _, seg := range segs {
		switch {
		case seg == "":
			return nil, fmt.Errorf("%q has an empty segment: write trait keys separated by single dots, e.g. address.street", s)
		case strings.Contains(seg, "*") && seg != "*":
			return nil, fmt.Errorf("%q: * stands for a whole segment (health.*), not part of one", s)
		case seg == "*" && len(segs) == 1:
			return nil, fmt.Errorf("%q would seal every trait; name the sensitive ones", s)
		}
	}
	return segs, nil
}

// CompileTraitPaths compiles paths (see ParseTraitPath). An empty list
// gives nil.
func CompileTraitPaths(paths []string) (*TraitPaths, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	tp := &TraitPaths{}
	for _, p := range paths {
		segs, err := ParseTraitPath(p)
		if err != nil {
			return nil, fmt.Errorf("sensitive trait %w", err)
		}
		tp.paths = append(tp.paths, segs)
	}
	return tp, nil
}

// matches reports whether a member at path is sensitive (exactly), and
// whether a path below it could be (so the walk descends).
func (tp *TraitPaths) matches(path []string) (sealed, deeper bool) {
	for _, p := range tp.paths {
		if len(p) < len(path) {
			continue
		}
		same := true
		for i, seg := range path {
			if p[i] != "*" && p[i] != seg {
				same = false
				break
			}
		}
		if !same {
			continue
		}
		if len(p) == len(path) {
			return true, false
		}
		deeper = true
	}
	return false, deeper
}

// SealTraits returns raw (an event as JSON) with the value of every
// sensitive trait in its "traits" and "context.traits" objects (every one
// of them, with those names in any case) replaced by
// an envelope sealed for workspace, and whether it changed anything. Null
// values are kept (a null clears a trait and reveals nothing). Without
// sensitive paths, or when nothing matches, raw is returned as it is;
// otherwise the JSON is re-encoded compactly with members in their order
// and numbers as written. An envelope already in raw is sealed again like
// any value, so a client cannot plant one that readers would open. It
// fails on invalid JSON that could hold traits; what cannot is returned
// as it is, unchecked (there is nothing in it to seal).
func (k *TraitKeys) SealTraits(workspace string, raw json.RawMessage, paths *TraitPaths) (json.RawMessage, bool, error) {
	if paths == nil || len(paths.paths) == 0 {
		return raw, false, nil
	}
	if !mayHoldTraits(raw) {
		return raw, false, nil // the common case: one pass over bytes, no validation
	}
	if !json.Valid(raw) {
		return raw, false, errors.New("secret: invalid JSON")
	}
	out, changed, err := k.sealObject(workspace, raw, paths, false)
	if err != nil || !changed {
		return raw, false, err
	}
	return out, true, nil
}

// mayHoldTraits reports whether valid JSON can hold a member named
// "traits" as encoding/json matches names: the letters in any case
// (ASCII), or an escape or a long s (U+017F, which folds to s) that could
// spell them otherwise. Most events of a browser's page views have none.
func mayHoldTraits(raw []byte) bool {
	if bytes.Contains(raw, []byte(`\u`)) || bytes.Contains(raw, []byte("\u017f")) {
		return true
	}
	const word = "traits"
	for i := 0; i+len(word) <= len(raw); i++ {
		if raw[i]|0x20 == 't' && bytes.EqualFold(raw[i:i+len(word)], []byte(word)) {
			return true
		}
	}
	return false
}

// sealObject seals the sensitive traits in the "traits" members of the
// object raw (valid JSON) and, unless inContext, in those of its "context"
// members. Other members are copied as they are written.
func (k *TraitKeys) sealObject(workspace string, raw []byte, paths *TraitPaths, inContext bool) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return raw, false, err // not an object: no traits
	}
	out := append(make([]byte, 0, len(raw)+128), '{')
	changed := false
	for i := 0; dec.More(); i++ {
		kt, err := dec.Token()
		if err != nil {
			return nil, false, fmt.Errorf("secret: invalid JSON: %w", err)
		}
		key, _ := kt.(string) // the decoder only gives strings as keys
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false, fmt.Errorf("secret: invalid JSON: %w", err)
		}
		var sealed []byte
		var did bool
		switch {
		case strings.EqualFold(key, "traits"):
			sealed, did, err = k.sealTraitsObject(workspace, v, paths)
		case !inContext && strings.EqualFold(key, "context"):
			sealed, did, err = k.sealObject(workspace, v, paths, true)
		}
		if err != nil {
			return nil, false, err
		}
		if did {
			v, changed = sealed, true
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(append(append(out, encodeString(key)...), ':'), v...)
	}
	return append(out, '}'), changed, nil
}

// sealTraitsObject seals the sensitive values of a traits object.
func (k *TraitKeys) sealTraitsObject(workspace string, raw []byte, paths *TraitPaths) ([]byte, bool, error) {
	root, err := parse(raw)
	if err != nil {
		return nil, false, err
	}
	changed := false
	var sealIn func(n *node, path []string) error
	sealIn = func(n *node, path []string) error {
		if n.kind != '{' {
			return nil
		}
		for i, key := range n.keys {
			p := append(path, key)
			sealed, deeper := paths.matches(p)
			v := n.vals[i]
			switch {
			case sealed && !v.isNull():
				text, err := k.seal(workspace, v.encode(nil))
				if err != nil {
					return err
				}
				n.vals[i] = envelope(text)
				changed = true
			case deeper:
				if err := sealIn(v, p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := sealIn(root, nil); err != nil || !changed {
		return nil, false, err
	}
	return root.encode(nil), true, nil
}

// OpenJSON returns raw with every envelope of workspace that a known key
// opens replaced by the value it holds. Envelopes that do not open (sealed
// under another server secret, or for another workspace) are left as they
// are, so it never fails; without envelopes raw is returned as it is.
func OpenJSON(workspace string, raw json.RawMessage) json.RawMessage {
	if !bytes.Contains(raw, []byte(SealedKey)) {
		return raw
	}
	root, err := parse(raw)
	if err != nil {
		return raw
	}
	changed := false
	var walk func(n *node) *node
	walk = func(n *node) *node {
		if text, ok := n.envelopeText(); ok {
			if plain, ok := open(workspace, text); ok {
				changed = true
				return &node{kind: 'r', lit: plain}
			}
			return n
		}
		for i, v := range n.vals {
			n.vals[i] = walk(v)
		}
		return n
	}
	root = walk(root)
	if !changed {
		return raw
	}
	return root.encode(nil)
}

// node is a parsed JSON value that keeps its members' order and its
// literals as written.
type node struct {
	kind byte     // '{', '[', 'r' (a literal: string, number, true, false, null)
	lit  []byte   // kind 'r': the compact JSON text
	keys []string // kind '{'
	vals []*node  // kind '{': members' values; kind '[': items
}

func (n *node) isNull() bool { return n.kind == 'r' && string(n.lit) == "null" }

// envelopeText returns the text of an envelope: an object whose only
// member is SealedKey with a string value.
func (n *node) envelopeText() (string, bool) {
	if n.kind != '{' || len(n.keys) != 1 || n.keys[0] != SealedKey {
		return "", false
	}
	v := n.vals[0]
	var s string
	if v.kind != 'r' || json.Unmarshal(v.lit, &s) != nil {
		return "", false
	}
	return s, true
}

func envelope(text string) *node {
	lit, _ := json.Marshal(text) // a string always encodes
	return &node{kind: '{', keys: []string{SealedKey}, vals: []*node{{kind: 'r', lit: lit}}}
}

// parse reads one JSON value and nothing after it.
func parse(raw []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("secret: data after the JSON value")
	}
	return n, nil
}

func parseValue(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("secret: invalid JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: '{'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("secret: invalid JSON: %w", err)
				}
				key, _ := kt.(string) // the decoder only gives strings as keys
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.keys, n.vals = append(n.keys, key), append(n.vals, v)
			}
			_, err := dec.Token() // '}'
			return n, err
		case '[':
			n := &node{kind: '['}
			for dec.More() {
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, v)
			}
			_, err := dec.Token() // ']'
			return n, err
		}
		return nil, errors.New("secret: invalid JSON")
	case json.Number:
		return &node{kind: 'r', lit: []byte(t)}, nil
	case string:
		return &node{kind: 'r', lit: encodeString(t)}, nil
	case bool:
		if t {
			return &node{kind: 'r', lit: []byte("true")}, nil
		}
		return &node{kind: 'r', lit: []byte("false")}, nil
	}
	return &node{kind: 'r', lit: []byte("null")}, nil
}

// encodeString encodes s as JSON without escaping <, > and &.
func encodeString(s string) []byte {
	if plainASCII(s) { // most keys and values: nothing to escape
		return append(append(append(make([]byte, 0, len(s)+2), '"'), s...), '"')
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// plainASCII reports whether s is printable ASCII without '"' or '\\',
// which JSON writes as it is.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// encode appends n's compact JSON to b.
func (n *node) encode(b []byte) []byte {
	switch n.kind {
	case '{':
		b = append(b, '{')
		for i, k := range n.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, encodeString(k)...)
			b = append(b, ':')
			b = n.vals[i].encode(b)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for i, v := range n.vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.encode(b)
		}
		return append(b, ']')
	}
	return append(b, n.lit...)
}
