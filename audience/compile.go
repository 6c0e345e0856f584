package audience

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/kithcdp/kith/trait"
)

// Compile compiles a workspace's audiences together: it parses and
// type-checks every condition, resolves the audiences and computed traits
// they read, compiles their event conditions into implicit computed
// traits, and orders the audiences so that each comes after what it
// reads. computed maps the names of the workspace's computed traits to
// their entity ("user" or "account").
//
// Every problem found is reported, with its position, in an Errors; a
// condition with a problem that this package finds (an unknown trait, a
// non-literal argument, ...) is not type-checked as well, so fixing those
// may reveal type errors.
func Compile(defs []Definition, computed map[string]string) (*Set, error) {
	var errs Errors
	byName := make(map[string]Definition, len(defs))
	valid := make([]bool, len(defs))
	for i, d := range defs {
		fail := func(field, code, format string, args ...any) {
			errs = append(errs, &Error{Audience: d.Name, Field: field, Code: code, Msg: fmt.Sprintf(format, args...)})
		}
		ok := true
		switch {
		case !nameRE.MatchString(d.Name):
			fail("name", CodeInvalid, "name %q must be 1 to 64 lowercase letters, digits and _, starting with a letter", d.Name)
			ok = false
		case byName[d.Name].Name != "":
			fail("name", CodeDuplicate, "another audience is named %q", d.Name)
			ok = false
		case computed[d.Name] != "":
			fail("name", CodeDuplicate, "%q is already the name of a computed trait (an audience is also the trait set on its members)", d.Name)
		}
		if d.Entity != "" && d.Entity != EntityUser && d.Entity != EntityAccount {
			fail("entity", CodeInvalid, "entity %q must be \"user\" (the default) or \"account\"", d.Entity)
			ok = false
		}
		if d.SuppressAll && !d.Suppression {
			fail("suppress_all", CodeInvalid, "suppress_all applies to suppression lists only: set suppression too")
		}
		if d.Suppression && d.RespectSuppressions {
			fail("respect_suppressions", CodeInvalid, "a suppression list cannot respect suppressions")
		}
		if ok {
			d.Entity = d.entity()
			byName[d.Name] = d
			valid[i] = true
		}
	}

	auds := make([]*Audience, 0, len(defs))
	refs := make(map[string]map[string]position) // audience → audiences it names → where
	for i, d := range defs {
		if !valid[i] || byName[d.Name].Condition != d.Condition {
			continue // a duplicate or invalid name
		}
		d = byName[d.Name]
		a, r, es := compileOne(d, byName, computed)
		errs = append(errs, es...)
		refs[d.Name] = r
		if d.Suppression {
			for _, n := range sortedRefs(r) {
				if !byName[n].Suppression {
					p := r[n]
					errs = append(errs, &Error{Audience: d.Name, Field: "condition", Line: p.Line, Column: p.Column, Code: CodeSuppression,
						Msg: fmt.Sprintf("a suppression list can read only other suppression lists, and %q is not one (suppression lists are decided before every other audience)", n)})
				}
			}
		}
		if a != nil {
			auds = append(auds, a)
		}
	}

	// Suppressions that apply.
	for _, a := range auds {
		if a.def.Suppression {
			continue
		}
		for _, d := range defs {
			s := byName[d.Name]
			if s.Name == d.Name && s.Suppression && s.Entity == a.def.Entity && (s.SuppressAll || a.def.RespectSuppressions) {
				a.suppressedBy = append(a.suppressedBy, s.Name)
			}
		}
		sort.Strings(a.suppressedBy)
		a.suppressedBy = dedupSorted(a.suppressedBy)
		a.reads.Audiences = dedupSorted(sortedMerge(a.reads.Audiences, a.suppressedBy))
	}

	order, cycleErrs := orderAudiences(byName, refs)
	errs = append(errs, cycleErrs...)
	if len(errs) > 0 {
		return nil, errs
	}

	s := &Set{byName: make(map[string]*Audience, len(auds))}
	for _, a := range auds {
		s.byName[a.def.Name] = a
	}
	for _, n := range order {
		s.order = append(s.order, s.byName[n])
	}
	keys := map[string]bool{}
	conds := map[string]*trait.Trait{}
	for _, a := range s.order {
		for _, k := range a.reads.Traits {
			keys[k] = true
		}
		for _, t := range a.conds {
			conds[t.Key()] = t
		}
	}
	s.traitKeys = sortedKeys(keys)
	for _, k := range sortedKeys(boolKeys(conds)) {
		s.conditions = append(s.conditions, conds[k])
	}
	return s, nil
}

// position is a place in a condition (1-based).
type position struct{ Line, Column int }

func sortedRefs(r map[string]position) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func boolKeys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func dedupSorted(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

func sortedMerge(a, b []string) []string {
	out := append(append([]string(nil), a...), b...)
	sort.Strings(out)
	return out
}

// orderAudiences sorts the audiences so that each comes after those it
// names, suppression lists first, ties by name; audiences on a cycle are
// reported.
func orderAudiences(byName map[string]Definition, refs map[string]map[string]position) ([]string, Errors) {
	names := sortedKeys(boolKeys(byName))
	deps := make(map[string][]string, len(names))
	for _, n := range names {
		for _, m := range sortedRefs(refs[n]) {
			if _, ok := byName[m]; ok {
				deps[n] = append(deps[n], m)
			}
		}
	}
	// Cycles, by depth-first search.
	var errs Errors
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	reported := map[string]bool{}
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range deps[n] {
			switch color[m] {
			case white:
				visit(m)
			case grey:
				i := len(stack) - 1
				for stack[i] != m {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), m)
				path := strings.Join(cycle, " → ")
				for j := 0; j < len(cycle)-1; j++ {
					a, next := cycle[j], cycle[j+1]
					if reported[a] {
						continue
					}
					reported[a] = true
					p := refs[a][next]
					errs = append(errs, &Error{Audience: a, Field: "condition", Line: p.Line, Column: p.Column, Code: CodeCycle,
						Msg: fmt.Sprintf("audiences read each other in a cycle: %s; an audience cannot depend on itself", path)})
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	for _, n := range names {
		if color[n] == white {
			visit(n)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// Topological order: repeatedly take the first ready audience,
	// suppression lists before others, then by name.
	placed := make(map[string]bool, len(names))
	order := make([]string, 0, len(names))
	ready := func(n string) bool {
		for _, m := range deps[n] {
			if !placed[m] {
				return false
			}
		}
		return true
	}
	for len(order) < len(names) {
		pick := ""
		for _, n := range names {
			if placed[n] || !ready(n) {
				continue
			}
			if pick == "" || (byName[n].Suppression && !byName[pick].Suppression) {
				pick = n
			}
			if byName[pick].Suppression {
				break
			}
		}
		placed[pick] = true
		order = append(order, pick)
	}
	return order, nil
}

// compileOne compiles one audience whose name and entity are valid. It
// returns the audience (nil on errors), the audiences its condition names
// with where, and its errors.
func compileOne(d Definition, byName map[string]Definition, computed map[string]string) (*Audience, map[string]position, Errors) {
	fail := func(line, col int, code, format string, args ...any) Errors {
		return Errors{{Audience: d.Name, Field: "condition", Line: line, Column: col, Code: code, Msg: fmt.Sprintf(format, args...)}}
	}
	if strings.TrimSpace(d.Condition) == "" {
		return nil, nil, fail(0, 0, CodeInvalid, "the condition is required, e.g. traits.plan == \"pro\"")
	}
	if len(d.Condition) > MaxConditionLen {
		return nil, nil, fail(0, 0, CodeTooLong, "the condition is %d bytes long; the limit is %d", len(d.Condition), MaxConditionLen)
	}
	env, err := envFor(d.Entity)
	if err != nil {
		return nil, nil, fail(0, 0, CodeInvalid, "%v", err)
	}
	parsed, iss := env.Parse(d.Condition)
	if iss.Err() != nil {
		return nil, nil, celErrors(d.Name, iss, CodeSyntax)
	}
	c := &checker{
		def:       d,
		src:       []rune(d.Condition),
		info:      parsed.NativeRep().SourceInfo(),
		audiences: byName,
		computed:  computed,
		traits:    map[string]bool{},
		comp:      map[string]bool{},
		refs:      map[string]position{},
		calls:     map[eventCall]callSite{},
	}
	c.walk(parsed.NativeRep().Expr(), nil)
	a := &Audience{def: d, events: map[eventCall]string{}}
	for call, site := range c.calls {
		t, errs := c.compileEvent(call, site)
		if errs != nil {
			c.errs = append(c.errs, errs...)
			continue
		}
		a.events[call] = t.Key()
		a.conds = append(a.conds, t)
	}
	if len(c.errs) > 0 {
		sortErrors(c.errs)
		return nil, c.refs, c.errs
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, c.refs, celErrors(d.Name, iss, CodeType)
	}
	if out := checked.OutputType(); !out.IsExactType(types.BoolType) {
		hint := ""
		if out.IsExactType(types.DynType) {
			hint = ": its type is only known at run time (a trait, a computed trait); compare it, e.g. traits.vip == true"
		}
		p := c.pos(parsed.NativeRep().Expr())
		return nil, c.refs, fail(p.Line, p.Column, CodeType, "the condition must be a bool, not %s%s", typeName(out), hint)
	}
	prg, err := env.Program(checked, cel.CostLimit(CostLimit))
	if err != nil {
		return nil, c.refs, fail(0, 0, CodeType, "plan the condition: %v", err)
	}
	a.prg = prg
	keys := map[string]bool{}
	for _, t := range a.conds {
		keys[t.Key()] = true
	}
	a.reads = Reads{
		Traits:     sortedKeys(c.traits),
		Computed:   sortedKeys(c.comp),
		Audiences:  sortedRefs(c.refs),
		Conditions: sortedKeys(keys),
		Now:        c.now,
		Related:    c.related,
	}
	if len(a.reads.Audiences) == 0 {
		a.reads.Audiences = nil
	}
	return a, c.refs, nil
}

func typeName(t *cel.Type) string {
	switch {
	case t.IsExactType(types.DynType):
		return "dyn"
	}
	return t.String()
}

// celErrors converts CEL's issues (0-based columns) into Errors.
func celErrors(audience string, iss *cel.Issues, code string) Errors {
	var out Errors
	for _, e := range iss.Errors() {
		line, col := 0, 0
		if e.Location != nil && e.Location.Line() > 0 {
			line, col = e.Location.Line(), e.Location.Column()+1
		}
		msg := e.Message
		if code == CodeSyntax {
			msg = strings.TrimPrefix(msg, "Syntax error: ")
		}
		out = append(out, &Error{Audience: audience, Field: "condition", Line: line, Column: col, Code: code, Msg: msg})
	}
	if len(out) == 0 {
		out = Errors{{Audience: audience, Field: "condition", Code: code, Msg: iss.String()}}
	}
	return out
}

func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
}

// checker walks a parsed condition: it finds what the condition reads and
// the misuses CEL's type checker cannot name well.
type checker struct {
	def       Definition
	src       []rune
	info      *celast.SourceInfo
	audiences map[string]Definition
	computed  map[string]string

	errs    Errors
	traits  map[string]bool
	comp    map[string]bool
	refs    map[string]position
	calls   map[eventCall]callSite
	now     bool
	related bool
}

// scope is the variables bound by the comprehensions around an expression.
type scope struct {
	name    string
	related bool // an element of accounts or users
	up      *scope
}

func (s *scope) lookup(name string) (*scope, bool) {
	for ; s != nil; s = s.up {
		if s.name == name {
			return s, true
		}
	}
	return nil, false
}

func (c *checker) fail(p position, code, format string, args ...any) {
	c.errs = append(c.errs, &Error{Audience: c.def.Name, Field: "condition", Line: p.Line, Column: p.Column, Code: code, Msg: fmt.Sprintf(format, args...)})
}

// free reports whether e is the identifier name, not bound by a
// comprehension.
func free(e celast.Expr, name string, sc *scope) bool {
	if e.Kind() != celast.IdentKind || e.AsIdent() != name {
		return false
	}
	_, bound := sc.lookup(name)
	return !bound
}

// element reports whether e is a variable bound to an account or a user.
func element(e celast.Expr, sc *scope) bool {
	if e.Kind() != celast.IdentKind {
		return false
	}
	s, ok := sc.lookup(e.AsIdent())
	return ok && s.related
}

// mapRef is traits or computed, of the profile or of a related one.
type mapRef struct {
	computed bool
	related  bool
	name     string // as written: traits, a.computed, ...
}

func (c *checker) mapRoot(e celast.Expr, sc *scope) (mapRef, bool) {
	switch {
	case free(e, "traits", sc):
		return mapRef{name: "traits"}, true
	case free(e, "computed", sc):
		return mapRef{computed: true, name: "computed"}, true
	case e.Kind() == celast.SelectKind && !e.AsSelect().IsTestOnly() && element(e.AsSelect().Operand(), sc):
		f := e.AsSelect().FieldName()
		if f == "traits" || f == "computed" {
			return mapRef{computed: f == "computed", related: true, name: e.AsSelect().Operand().AsIdent() + "." + f}, true
		}
	}
	return mapRef{}, false
}

// audiencesRoot reports whether e is audiences (own) or a.audiences
// (related).
func audiencesRoot(e celast.Expr, sc *scope) (related, ok bool) {
	if free(e, "audiences", sc) {
		return false, true
	}
	if e.Kind() == celast.SelectKind && !e.AsSelect().IsTestOnly() && element(e.AsSelect().Operand(), sc) && e.AsSelect().FieldName() == "audiences" {
		return true, true
	}
	return false, false
}

func (c *checker) entityOf(related bool) string {
	if related {
		return otherEntity[c.def.Entity]
	}
	return c.def.Entity
}

func (c *checker) readKey(m mapRef, key string, p position) {
	if !m.computed {
		c.traits[key] = true
		return
	}
	want := c.entityOf(m.related)
	switch got := c.computed[key]; {
	case got == want:
		c.comp[key] = true
	case got != "":
		c.fail(p, CodeWrongEntity, "computed trait %q is a trait of %s, and %s are of %s", key, entityPlural[got], m.name, entityPlural[want])
	default:
		c.fail(p, CodeUnknownTrait, "unknown computed trait %q; computed traits of %s: %s", key, entityPlural[want], c.computedOf(want))
	}
}

func (c *checker) computedOf(entity string) string {
	var names []string
	for n, e := range c.computed {
		if e == entity {
			names = append(names, n)
		}
	}
	return listOrNone(names)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	if len(names) > 20 {
		return strings.Join(names[:20], ", ") + fmt.Sprintf(" and %d more", len(names)-20)
	}
	return strings.Join(names, ", ")
}

func (c *checker) readAudience(name string, related bool, p position) {
	want := c.entityOf(related)
	d, ok := c.audiences[name]
	switch {
	case !ok:
		var names []string
		for n, d := range c.audiences {
			if d.Entity == want && n != c.def.Name {
				names = append(names, n)
			}
		}
		c.fail(p, CodeUnknownAudience, "unknown audience %q; audiences of %s: %s", name, entityPlural[want], listOrNone(names))
		return
	case d.Entity != want:
		how := "\"" + name + "\" in audiences"
		if d.Entity != c.def.Entity {
			how = fmt.Sprintf("%s.exists(x, %q in x.audiences)", relatedVariable[c.def.Entity], name)
		}
		c.fail(p, CodeWrongEntity, "audience %q is an audience of %s; read it with %s", name, entityPlural[d.Entity], how)
		return
	}
	if _, seen := c.refs[name]; !seen {
		c.refs[name] = p
	}
	if related {
		c.related = true
	}
}

const (
	useTraits    = `traits can only be read by key: traits.plan, traits["first name"], has(traits.plan) or "plan" in traits`
	useComputed  = `computed can only be read by name: computed.order_count, computed["order_count"] or has(computed.order_count)`
	useAudiences = `audiences can only be used as "name" in audiences, with the name of an audience as a string literal`
	useElement   = `an element of %s has traits, computed and audiences: %s.traits.plan, %s.computed.order_count, "name" in %s.audiences`
)

func (c *checker) walk(e celast.Expr, sc *scope) {
	switch e.Kind() {
	case celast.IdentKind:
		c.ident(e, sc)
	case celast.LiteralKind:
	case celast.SelectKind:
		sel := e.AsSelect()
		op := sel.Operand()
		if m, ok := c.mapRoot(op, sc); ok {
			c.readKey(m, sel.FieldName(), c.fieldPos(e))
			return
		}
		if element(op, sc) {
			v := op.AsIdent()
			switch f := sel.FieldName(); f {
			case "traits":
				c.fail(c.pos(e), CodeUnsupported, "%s.%s", v, useTraits)
			case "computed":
				c.fail(c.pos(e), CodeUnsupported, "%s.%s", v, useComputed)
			case "audiences":
				c.fail(c.pos(e), CodeUnsupported, "%s.%s", v, useAudiences)
			default:
				c.fail(c.fieldPos(e), CodeUnknownField, "%s has no field %q: "+useElement, v, f, relatedVariable[c.def.Entity], v, v, v)
			}
			return
		}
		c.walk(op, sc)
	case celast.CallKind:
		c.call(e, sc)
	case celast.ComprehensionKind:
		comp := e.AsComprehension()
		c.walk(comp.IterRange(), sc)
		inner := &scope{name: comp.IterVar(), related: free(comp.IterRange(), relatedVariable[c.def.Entity], sc), up: sc}
		if comp.HasIterVar2() {
			inner = &scope{name: comp.IterVar2(), up: inner}
		}
		accu := &scope{name: comp.AccuVar(), up: sc}
		inner = &scope{name: comp.AccuVar(), up: inner}
		c.walk(comp.AccuInit(), sc)
		c.walk(comp.LoopCondition(), inner)
		c.walk(comp.LoopStep(), inner)
		c.walk(comp.Result(), accu)
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			c.walk(el, sc)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			if en.Kind() == celast.MapEntryKind {
				c.walk(en.AsMapEntry().Key(), sc)
				c.walk(en.AsMapEntry().Value(), sc)
			}
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			if f.Kind() == celast.StructFieldKind {
				c.walk(f.AsStructField().Value(), sc)
			}
		}
	}
}

func (c *checker) ident(e celast.Expr, sc *scope) {
	name := e.AsIdent()
	if s, ok := sc.lookup(name); ok {
		if s.related {
			c.fail(c.pos(e), CodeUnsupported, useElement, relatedVariable[c.def.Entity], name, name, name)
		}
		return
	}
	switch name {
	case "traits":
		c.fail(c.pos(e), CodeUnsupported, useTraits)
	case "computed":
		c.fail(c.pos(e), CodeUnsupported, useComputed)
	case "audiences":
		c.fail(c.pos(e), CodeUnsupported, useAudiences)
	case "events":
		c.fail(c.pos(e), CodeUnsupported, "events can only be used through its functions: %s", eventFunctionList)
	case "now":
		c.now = true
	case relatedVariable[c.def.Entity]:
		c.related = true
	case relatedVariable[otherEntity[c.def.Entity]]:
		c.fail(c.pos(e), CodeWrongEntity, "%s is only available in %s audiences; this audience is of %s, whose related profiles are %s",
			name, otherEntity[c.def.Entity], entityPlural[c.def.Entity], relatedVariable[c.def.Entity])
	default:
		if !typeIdentifiers[name] {
			c.fail(c.pos(e), CodeUnknownVariable, "unknown variable %q; the variables are %s", name, allowedVariables[c.def.Entity])
		}
	}
}

func stringLit(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

func (c *checker) call(e celast.Expr, sc *scope) {
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); {
	case fn == operators.Index && len(args) == 2:
		if m, ok := c.mapRoot(args[0], sc); ok {
			if key, ok := stringLit(args[1]); ok {
				c.readKey(m, key, c.pos(args[1]))
			} else {
				c.fail(c.pos(args[1]), CodeNotLiteral, "the key of %s[...] must be a string literal, like %s[\"plan\"], so that Kith knows what the audience reads", m.name, m.name)
				c.walk(args[1], sc)
			}
			return
		}
	case fn == operators.In && len(args) == 2:
		if related, ok := audiencesRoot(args[1], sc); ok {
			if name, ok := stringLit(args[0]); ok {
				c.readAudience(name, related, c.pos(args[0]))
			} else {
				c.fail(c.pos(args[0]), CodeNotLiteral, "%s", useAudiences)
				c.walk(args[0], sc)
			}
			return
		}
		if m, ok := c.mapRoot(args[1], sc); ok {
			if key, ok := stringLit(args[0]); ok {
				c.readKey(m, key, c.pos(args[0]))
			} else {
				c.fail(c.pos(args[0]), CodeNotLiteral, "the key tested with in %s must be a string literal, like \"plan\" in %s", m.name, m.name)
				c.walk(args[0], sc)
			}
			return
		}
	case call.IsMemberFunction() && free(call.Target(), "events", sc):
		c.eventCall(e)
		return
	}
	if call.IsMemberFunction() {
		c.walk(call.Target(), sc)
	}
	for _, a := range args {
		c.walk(a, sc)
	}
}

// callSite is where an event call's arguments are, to place errors.
type callSite struct {
	call celast.Expr
	name celast.Expr // the event (first step)
	then celast.Expr
	days celast.Expr
	filt celast.Expr
	with celast.Expr
}

func (c *checker) eventCall(e celast.Expr) {
	call := e.AsCall()
	fn, args := call.FunctionName(), call.Args()
	var sig string
	var min, max int
	switch fn {
	case "count", "performed":
		sig, min, max = "events."+fn+"(name[, days[, filter]])", 1, 3
	case "then":
		sig, min, max = "events.then(first, then, within[, days])", 3, 4
	default:
		c.fail(c.pos(e), CodeUnsupported, "events has no function %q; use %s", fn, eventFunctionList)
		return
	}
	if len(args) < min || len(args) > max {
		c.fail(c.pos(e), CodeType, "%s takes %d to %d arguments, not %d", sig, min, max, len(args))
		return
	}
	site := callSite{call: e}
	ec := eventCall{Fn: "count"}
	ok := true
	str := func(a celast.Expr, what, example string) string {
		if a.Kind() != celast.LiteralKind {
			c.fail(c.pos(a), CodeNotLiteral, "the %s of %s must be a literal, like %s: event conditions are counters kept up to date as events arrive, so their arguments cannot depend on the profile", what, sig, example)
			ok = false
			return ""
		}
		s, isStr := a.AsLiteral().(types.String)
		if !isStr {
			c.fail(c.pos(a), CodeType, "the %s of %s must be a string, like %s", what, sig, example)
			ok = false
		}
		return string(s)
	}
	days := func(a celast.Expr) int64 {
		site.days = a
		if a.Kind() != celast.LiteralKind {
			c.fail(c.pos(a), CodeNotLiteral, "the window of %s must be a literal number of days, like 30: event conditions are counters kept up to date as events arrive, so their arguments cannot depend on the profile", sig)
			ok = false
			return 0
		}
		n, isInt := a.AsLiteral().(types.Int)
		if !isInt || n < 0 {
			c.fail(c.pos(a), CodeType, "the window of %s must be a whole number of days, like 30 (0: all time)", sig)
			ok = false
		}
		return int64(n)
	}
	site.name = args[0]
	ec.Name = str(args[0], "event name", `"Order Completed"`)
	if fn == "then" {
		ec.Fn = "then"
		site.then, site.with = args[1], args[2]
		ec.Then = str(args[1], "second event name", `"Order Completed"`)
		ec.Within = str(args[2], "time limit", `"1h" or "7d"`)
		if len(args) == 4 {
			ec.Days = days(args[3])
		}
	} else {
		if len(args) >= 2 {
			ec.Days = days(args[1])
		}
		if len(args) == 3 {
			site.filt = args[2]
			ec.Filter = str(args[2], "filter", `"properties.total > 100"`)
		}
	}
	if !ok {
		return
	}
	if ec.Name == "" || (fn == "then" && ec.Then == "") {
		c.fail(c.pos(args[0]), CodeEvent, "an event name cannot be empty")
		return
	}
	if _, seen := c.calls[ec]; !seen {
		c.calls[ec] = site
	}
}

// compileEvent compiles an event call into its implicit computed trait,
// placing package trait's errors in the condition.
func (c *checker) compileEvent(ec eventCall, site callSite) (*trait.Trait, Errors) {
	t, err := trait.Compile(conditionDefinition(c.def.Entity, ec))
	if err == nil {
		return t, nil
	}
	var all []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	} else {
		all = []error{err}
	}
	var out Errors
	for _, err := range all {
		e := &Error{Audience: c.def.Name, Field: "condition", Code: CodeEvent}
		p := c.pos(site.call)
		var te *trait.Error
		if !errors.As(err, &te) {
			e.Msg = "in this event condition: " + err.Error()
			e.Line, e.Column = p.Line, p.Column
			out = append(out, e)
			continue
		}
		var at celast.Expr
		switch te.Field {
		case "where":
			at = site.filt
		case "within":
			at = site.with
		case "window_days":
			at = site.days
		case "events", "types":
			at = site.name
		}
		if at != nil {
			p = c.pos(at)
			if te.Field == "where" && te.Line > 0 {
				if q, ok := c.insideLiteral(at, te.Line, te.Column); ok {
					p = q
				}
			}
		}
		what := map[string]string{"where": "filter", "within": "time limit", "window_days": "window", "events": "event name"}[te.Field]
		if what == "" {
			what = "definition"
		}
		e.Msg = fmt.Sprintf("in the %s of this event condition: %s (%s)", what, te.Msg, te.Code)
		e.Line, e.Column = p.Line, p.Column
		out = append(out, e)
	}
	return nil, out
}
