package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/destination/export"
	"github.com/kithcdp/kith/destination/forward"
	"github.com/kithcdp/kith/destination/stream"
	"github.com/kithcdp/kith/destination/webhook"
	"github.com/kithcdp/kith/store"
	"gopkg.in/yaml.v3"
)

// A workspace's destinations are written as the admin API takes them
// (delivery.Definition), in YAML: the same field names, the type's
// settings under config: as a mapping (turned into the JSON the type's
// sender reads). Unlike computed traits, ${NAME} is expanded in every text
// value of a destination — secrets and URLs come from the environment —
// and an expanded value is always text. Each destination is checked with
// delivery.Parse and by making its sender once (CheckDestination), so a
// wrong URL or secret is reported when the file is read.

// CheckDestination checks a destination's type settings by making its
// sender once, as the delivery engine will (and closing it): it connects
// to nothing and sends nothing. An audience export's sender is made on a
// temporary directory, so that checking a definition never touches the
// directory a running sender writes to. d.Config holds the secrets in plain
// text.
func CheckDestination(d delivery.Definition) error {
	switch d.Type {
	case delivery.TypeWebhook:
		_, err := webhook.ParseConfig(d.Config)
		return err
	case delivery.TypeForward:
		_, err := forward.ParseConfig(d.Config)
		return err
	case delivery.TypeNATS:
		s, err := stream.New(d.Config)
		if err != nil {
			return err
		}
		return s.Close()
	case delivery.TypeAudienceExport:
		var c map[string]any
		dec := json.NewDecoder(bytes.NewReader(d.Config))
		dec.UseNumber()
		if err := dec.Decode(&c); err != nil || c == nil {
			return errors.New("export destination: config: must be a JSON object")
		}
		if dir, ok := c["dir"].(string); ok && dir != "" {
			tmp, err := os.MkdirTemp("", "kith-export-check-")
			if err != nil {
				return fmt.Errorf("export destination: check: %w", err)
			}
			defer os.RemoveAll(tmp)
			c["dir"] = tmp
		}
		cfg, _ := json.Marshal(c)
		s, err := export.New(cfg)
		if err != nil {
			return err
		}
		return s.Close()
	}
	return fmt.Errorf("type %q: want webhook, forward, nats or audience_export", d.Type)
}

// ParseDestination parses a destination definition (JSON) and checks it
// with delivery.Parse and CheckDestination. It returns the definition and
// its canonical JSON (as stored, secrets still in plain text).
func ParseDestination(body []byte) (delivery.Definition, json.RawMessage, error) {
	d, err := delivery.Parse(body)
	if err != nil {
		// Report the settings' problems too, when the type is known.
		switch d.Type {
		case delivery.TypeWebhook, delivery.TypeForward, delivery.TypeNATS, delivery.TypeAudienceExport:
			if cerr := CheckDestination(d); cerr != nil && d.Config != nil {
				err = errors.Join(err, &ConfigError{Err: cerr})
			}
		}
		return d, nil, err
	}
	if err := CheckDestination(d); err != nil {
		return d, nil, &ConfigError{Err: err}
	}
	if len(bytes.TrimSpace(d.Config)) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, d.Config); err == nil {
			d.Config = buf.Bytes()
		}
	}
	canonical, err := json.Marshal(d)
	return d, canonical, err
}

// ConfigError is a problem of a destination's type settings (its config),
// as its sender reports it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "config: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// DestinationProblems flattens an error of ParseDestination into problems
// (kind "destination", code invalid_definition), each with the field at
// fault when it can be told: a top-level field ("events", "purposes", …) or
// "config.<setting>".
func DestinationProblems(name string, err error) []DefinitionProblem {
	var out []DefinitionProblem
	var walk func(err error)
	walk = func(err error) {
		var ce *ConfigError
		switch e := err.(type) {
		case nil:
			return
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				walk(err)
			}
			return
		}
		pr := DefinitionProblem{Kind: store.DefinitionDestination, Name: name, Code: "invalid_definition", Message: err.Error()}
		if errors.As(err, &ce) {
			pr.Field, pr.Message = "config", ce.Err.Error()
			if f := configField(ce.Err.Error()); f != "" {
				pr.Field += "." + f
			}
		} else {
			pr.Field = leadingField(strings.TrimPrefix(err.Error(), "destination: "))
		}
		out = append(out, pr)
	}
	walk(err)
	return out
}

// destinationFields are the top-level fields of a definition, to tell
// which one an error message names.
var destinationFields = []string{"name", "type", "events", "traits", "audiences", "purposes", "strictly_necessary", "mapping", "id_sync", "retry_for", "config"}

// leadingField returns the definition's field a message starts with
// ("events.where: …" → "events"), or the unknown field a JSON decoder
// names, or "".
func leadingField(msg string) string {
	if _, f, ok := strings.Cut(msg, `unknown field "`); ok {
		f, _, _ = strings.Cut(f, `"`)
		return f
	}
	f := msg[:strings.IndexFunc(msg+" ", func(r rune) bool { return r == ' ' || r == ':' || r == '.' || r == '[' })]
	for _, k := range destinationFields {
		if f == k {
			return f
		}
	}
	return ""
}

// configField returns the setting a sender's error names: the word after
// "config: " ("webhook config: url: …" → "url"), or "".
func configField(msg string) string {
	_, rest, ok := strings.Cut(msg, "config: ")
	if !ok {
		return ""
	}
	if _, f, ok := strings.Cut(rest, `unknown field "`); ok {
		f, _, _ = strings.Cut(f, `"`)
		return f
	}
	end := strings.IndexFunc(rest+" ", func(r rune) bool { return r == ' ' || r == ':' || r == '.' || r == '[' })
	f := rest[:end]
	for _, c := range f {
		if !(c == '_' || c >= 'a' && c <= 'z') {
			return ""
		}
	}
	return f
}

// destinations parses a workspace's destinations list.
func (p *parser) destinations(n *yaml.Node, path, ws string) []store.Definition {
	var out []store.Definition
	firstAt := map[string]string{}
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		it, obj, body, ok := p.item(n, path, true, func(k, v *yaml.Node, fpath string) bool {
			return k.Value != "config" || isNull(v) || p.is(v, fpath, yaml.MappingNode, "a mapping of the type's settings")
		})
		if !ok {
			return
		}
		name, _ := obj["name"].(string)
		d, canonical, err := ParseDestination(body)
		if err != nil {
			for _, pr := range DestinationProblems(name, err) {
				p.destinationError(it, pr)
			}
			return
		}
		if prev, dup := firstAt[d.Name]; dup {
			p.errorf(it.fields["name"], join(path, "name"), "destination %q is already declared at %s", d.Name, prev)
			return
		}
		firstAt[d.Name] = fmt.Sprintf("%s (line %d)", path, n.Line)
		out = append(out, store.Definition{Workspace: ws, Kind: store.DefinitionDestination, Name: d.Name, Body: canonical, Origin: "config"})
	})
	return out
}

// destinationError reports a problem of a destination at the line of the
// field at fault (a setting under config: when it can be told). The
// message is the sender's: it never quotes a secret.
func (p *parser) destinationError(it *definitionItem, pr DefinitionProblem) {
	at, path := it.node, it.path
	top, sub, _ := strings.Cut(pr.Field, ".")
	if top != "" {
		path = join(path, top)
		if v, ok := it.fields[top]; ok {
			at = v
		} else if k, ok := it.keys[top]; ok {
			at = k
		}
		if sub != "" && at.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(at.Content); i += 2 {
				if at.Content[i].Value == sub {
					path, at = join(path, sub), at.Content[i+1]
					break
				}
			}
		}
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: at.Line, Path: path, Msg: pr.Message})
}

// consent parses a workspace's consent settings.
func (p *parser) consent(n *yaml.Node, path string, w *Workspace) {
	var model consentModel // consent.go: purposes, store_requires
	p.fields(n, path, append([]field{
		{name: "deliver_without_consent", parse: func(n *yaml.Node, path string) {
			w.DeliverWithoutConsent = str(p, n, path, parseBool)
		}},
	}, model.fields()...))
	model.apply(p, path, w)
}

func parseBool(s string) (bool, string) {
	switch s {
	case "true":
		return true, ""
	case "false":
		return false, ""
	}
	return false, fmt.Sprintf("%q: write true or false", s)
}
