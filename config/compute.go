package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kithcdp/kith/audience"
	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/trait"
	"gopkg.in/yaml.v3"
)

// A workspace's computed_traits and audiences are written as the admin API
// takes them, in YAML: the same field names, checked as strictly (unknown
// fields and values of the wrong type are errors). Each item is turned into
// JSON and read by trait.Parse or audience.Parse; the workspace's whole set
// is then compiled with compute.Compile, so that an unknown computed trait,
// a cycle between audiences or a mistake inside a CEL condition is reported
// when the file is read, at its line (and column, for conditions). ${NAME}
// is not expanded inside definitions: their text is kept as written.

// DefinitionProblem is one problem of a computed trait or audience
// definition, as the config loader and the admin API report it.
type DefinitionProblem struct {
	Kind string `json:"kind,omitempty"` // store.DefinitionTrait or store.DefinitionAudience; "" when unknown
	Name string `json:"name,omitempty"` // the definition's name; "" when unknown
	// Field is the definition's field at fault by its JSON name
	// ("condition", "where", ...), or "" for the definition as a whole.
	Field string `json:"field"`
	// Line and Column (1-based) locate the problem within the field's text;
	// 0 when the problem has no position.
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// DefinitionProblems flattens an error of trait.Parse, audience.Parse or
// compute.Compile into its problems, in order. An error of another kind
// becomes one problem of code invalid_definition.
func DefinitionProblems(err error) []DefinitionProblem {
	var out []DefinitionProblem
	var walk func(err error, kind, name string)
	walk = func(err error, kind, name string) {
		switch e := err.(type) {
		case nil:
		case *compute.DefinitionError:
			walk(e.Err, e.Kind, e.Name)
		case *trait.Error:
			if kind == "" {
				kind = store.DefinitionTrait
			}
			out = append(out, DefinitionProblem{Kind: kind, Name: name, Field: e.Field, Line: e.Line, Column: e.Column, Code: e.Code, Message: e.Msg})
		case *audience.Error:
			if e.Audience != "" {
				name = e.Audience
			}
			out = append(out, DefinitionProblem{Kind: store.DefinitionAudience, Name: name, Field: e.Field, Line: e.Line, Column: e.Column, Code: e.Code, Message: e.Msg})
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				walk(err, kind, name)
			}
		default:
			out = append(out, DefinitionProblem{Kind: kind, Name: name, Code: "invalid_definition", Message: err.Error()})
		}
	}
	walk(err, "", "")
	return out
}

// definitionItem is a definition read from the file, with the nodes that
// locate its fields.
type definitionItem struct {
	def    store.Definition
	path   string
	node   *yaml.Node            // the item's mapping
	fields map[string]*yaml.Node // value node of each key
	keys   map[string]*yaml.Node // key node of each key
}

// item reads a list item of definitions: a mapping, read into a
// definitionItem, its fields as JSON values (obj) and as a JSON body. With
// env, ${NAME} in text values is expanded (as scalar does); check, when
// not nil, may refuse a field, reporting why. ok is false when the item
// had a problem, reported.
func (p *parser) item(n *yaml.Node, path string, env bool, check func(k, v *yaml.Node, fpath string) bool) (it *definitionItem, obj map[string]any, body []byte, ok bool) {
	if !p.is(n, path, yaml.MappingNode, "a mapping") {
		return nil, nil, nil, false
	}
	it = &definitionItem{path: path, node: n, fields: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	obj = map[string]any{}
	ok = true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.is(k, path, yaml.ScalarNode, "a plain key") {
			ok = false
			continue
		}
		fpath := join(path, k.Value)
		if _, dup := obj[k.Value]; dup {
			p.errorf(k, fpath, "set twice")
			ok = false
			continue
		}
		if check != nil && !check(k, v, fpath) {
			ok = false
			continue
		}
		val, good := p.jsonValueOpt(v, fpath, env)
		ok = ok && good
		obj[k.Value], it.fields[k.Value], it.keys[k.Value] = val, v, k
	}
	if !ok {
		return nil, nil, nil, false
	}
	body, err := json.Marshal(obj)
	if err != nil {
		p.errorf(n, path, "cannot be written as JSON: %v", err)
		return nil, nil, nil, false
	}
	return it, obj, body, true
}

// definitions parses a list of computed_traits (kind store.DefinitionTrait)
// or audiences.
func (p *parser) definitions(n *yaml.Node, path, kind string) []*definitionItem {
	var out []*definitionItem
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		it, _, body, ok := p.item(n, path, false, nil)
		if !ok {
			return
		}
		var perr error
		switch kind {
		case store.DefinitionTrait:
			var d trait.Definition
			if d, perr = trait.Parse(body); perr == nil {
				it.def.Name = d.Name
				body, perr = json.Marshal(d)
			}
		default:
			var d audience.Definition
			if d, perr = audience.Parse(body); perr == nil {
				it.def.Name = d.Name
				body, perr = json.Marshal(d)
			}
		}
		if perr != nil {
			for _, pr := range DefinitionProblems(perr) {
				p.definitionError(it, pr)
			}
			return
		}
		it.def.Kind, it.def.Body, it.def.Origin = kind, body, "config"
		out = append(out, it)
	})
	return out
}

// jsonValueOpt converts a YAML node into the value it stands for in
// JSON; with env, it expands ${NAME} in text values (as scalar does).
func (p *parser) jsonValueOpt(n *yaml.Node, path string, env bool) (any, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if !p.is(k, path, yaml.ScalarNode, "a plain key") {
				ok = false
				continue
			}
			val, good := p.jsonValueOpt(v, join(path, k.Value), env)
			m[k.Value], ok = val, ok && good
		}
		return m, ok
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		ok := true
		for i, c := range n.Content {
			val, good := p.jsonValueOpt(c, fmt.Sprintf("%s[%d]", path, i), env)
			l, ok = append(l, val), ok && good
		}
		return l, ok
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			p.errorf(n, path, "%v", err)
			return nil, false
		}
		if s, isStr := v.(string); isStr && n.Tag != "" && n.ShortTag() != "!!str" {
			p.errorf(n, path, "%q of type %s cannot be a JSON value", s, n.ShortTag())
			return nil, false
		}
		if s, isStr := v.(string); isStr && env {
			x, err := expand(s, p.lookup)
			if err != nil {
				p.errorf(n, path, "%v", err)
				return nil, false
			}
			v = x
		}
		return v, true
	}
	p.is(n, path, yaml.ScalarNode, "a value")
	return nil, false
}

// definitionError reports a problem of a definition at the line of the
// field at fault and, for a position inside a field's text (a CEL
// condition), at that position's line and column in the file when they can
// be told.
func (p *parser) definitionError(it *definitionItem, pr DefinitionProblem) {
	at, path := it.node, it.path
	if pr.Field != "" {
		path = join(path, pr.Field)
		if v, ok := it.fields[pr.Field]; ok {
			at = v
		} else if pr.Code == "unknown_field" || pr.Code == audience.CodeJSON {
			if k, ok := it.keys[pr.Field]; ok {
				at = k
			}
		}
	}
	e := &Error{File: p.file, Line: at.Line, Path: path, Msg: fmt.Sprintf("%s (%s)", pr.Message, pr.Code)}
	if pr.Line > 0 && at.Kind == yaml.ScalarNode {
		line, col, exact := p.textPosition(at, pr.Line, pr.Column)
		switch {
		case exact:
			e.Line, e.Column = line, col
		default:
			e.Msg = fmt.Sprintf("line %d, column %d of the %s: %s", pr.Line, pr.Column, pr.Field, e.Msg)
		}
	}
	p.errs = append(p.errs, e)
}

// textPosition maps a 1-based line and column (in characters) inside a
// scalar's text to the file. It knows where the text lies for a literal
// block (|) and for a one-line plain or quoted scalar written without
// escapes; otherwise exact is false.
func (p *parser) textPosition(n *yaml.Node, line, col int) (fileLine, fileCol int, exact bool) {
	switch n.Style {
	case yaml.LiteralStyle:
		// The text starts on the line after the indicator; its
		// indentation is that of its first line.
		first := n.Line + 1
		for first-1 < len(p.lines) && strings.TrimSpace(p.lines[first-1]) == "" {
			first++
		}
		if first-1 >= len(p.lines) {
			return 0, 0, false
		}
		indent := len(p.lines[first-1]) - len(strings.TrimLeft(p.lines[first-1], " "))
		fileLine = first + line - 1
		return fileLine, indent + col, fileLine-1 < len(p.lines)
	case 0, yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line != 1 || strings.Contains(n.Value, "\n") || n.Line-1 >= len(p.lines) {
			return 0, 0, false
		}
		src := p.lines[n.Line-1]
		start := runeIndex(src, n.Column) // n.Column counts characters
		if n.Style != 0 {
			start++ // the opening quote
		}
		if start > len(src) || !strings.HasPrefix(src[start:], n.Value) {
			return 0, 0, false // escapes: the text differs from the source
		}
		return n.Line, utf8.RuneCountInString(src[:start]) + col, true
	}
	return 0, 0, false
}

// runeIndex returns the byte offset of the col-th (1-based) character of s.
func runeIndex(s string, col int) int {
	i := 0
	for c := 1; c < col && i < len(s); c++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return i
}

// checkDefinitions checks a workspace's definitions as a whole: names are
// unique across computed traits and audiences, and the set compiles
// (compute.Compile). It returns the definitions to store.
func (p *parser) checkDefinitions(items []*definitionItem) []store.Definition {
	firstAt := map[string]string{}
	var defs []store.Definition
	byName := map[string]*definitionItem{}
	for _, it := range items {
		if prev, dup := firstAt[it.def.Name]; dup {
			at := it.node
			if v, ok := it.fields["name"]; ok {
				at = v
			}
			p.errorf(at, join(it.path, "name"), "%q is already the name of %s: computed traits and audiences share one namespace (duplicate)", it.def.Name, prev)
			continue
		}
		firstAt[it.def.Name] = fmt.Sprintf("%s (line %d)", it.path, it.node.Line)
		byName[it.def.Kind+"\x00"+it.def.Name] = it
		defs = append(defs, it.def)
	}
	if _, err := compute.Compile(defs); err != nil {
		for _, pr := range DefinitionProblems(err) {
			it := byName[pr.Kind+"\x00"+pr.Name]
			if it == nil {
				p.errs = append(p.errs, &Error{File: p.file, Msg: fmt.Sprintf("%s %q: %s (%s)", pr.Kind, pr.Name, pr.Message, pr.Code)})
				continue
			}
			p.definitionError(it, pr)
		}
		return nil
	}
	return defs
}
