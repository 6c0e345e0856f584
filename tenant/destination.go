package tenant

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/secret"
)

// Destination definitions hold secrets (webhook signing secrets and
// headers, a forward destination's write key, a NATS token or credentials
// path: secret.Fields). They are stored sealed — AES-256-GCM under a key
// derived from the server secret — and opened only to make a sender.

// SealDestination returns a destination definition's body (JSON of a
// delivery.Definition, secrets in plain text) with its secrets sealed for
// the workspace and destination. A value already sealed is refused.
func (r *Registry) SealDestination(ws string, body json.RawMessage) (json.RawMessage, error) {
	var d delivery.Definition
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("seal destination: %w", err)
	}
	cfg, err := r.box.SealConfig(secret.Scope(ws, d.Name), d.Type, d.Config)
	if err != nil {
		return nil, fmt.Errorf("seal destination %s: %w", d.Name, err)
	}
	d.Config = cfg
	return json.Marshal(d)
}

// OpenDestination returns a stored destination's Config with its secrets
// in plain text, for its sender.
func (r *Registry) OpenDestination(ws string, d delivery.Definition) (json.RawMessage, error) {
	cfg, err := r.box.OpenConfig(secret.Scope(ws, d.Name), d.Type, d.Config)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Name, err)
	}
	return cfg, nil
}

// RedactDestination returns a stored destination's body with every secret
// shown as "…" and its fingerprint, as the admin API shows it.
func (r *Registry) RedactDestination(body json.RawMessage) json.RawMessage {
	var d delivery.Definition
	if err := json.Unmarshal(body, &d); err != nil {
		return json.RawMessage("null")
	}
	d.Config = r.box.RedactConfig(d.Type, d.Config)
	out, _ := json.Marshal(d)
	return out
}

// StoredIfSame returns stored (a destination's stored body, secrets
// sealed) when it holds the same definition and secrets as plain (a body
// with secrets in plain text), else nil: putting the same destination
// again then changes nothing (no new version, no restarted sender).
func (r *Registry) StoredIfSame(ws string, plain, stored json.RawMessage) json.RawMessage {
	if stored == nil {
		return nil
	}
	var d delivery.Definition
	if json.Unmarshal(stored, &d) != nil {
		return nil
	}
	cfg, err := r.OpenDestination(ws, d)
	if err != nil {
		return nil
	}
	d.Config = cfg
	opened, err := json.Marshal(d)
	if err != nil || !bytes.Equal(canonicalJSON(opened), canonicalJSON(plain)) {
		return nil
	}
	return stored
}

// sealedUnlessSame returns the body to store for a destination the config
// file declares (plain): the stored body when it is the same (see
// StoredIfSame), else the plain body sealed anew.
func (r *Registry) sealedUnlessSame(ws string, plain, stored json.RawMessage) (json.RawMessage, error) {
	if same := r.StoredIfSame(ws, plain, stored); same != nil {
		return same, nil
	}
	return r.SealDestination(ws, plain)
}

// canonicalJSON re-encodes JSON with sorted keys (nil if it is not JSON).
func canonicalJSON(b []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	out, _ := json.Marshal(v)
	return out
}
