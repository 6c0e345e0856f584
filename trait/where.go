package trait

import (
	"fmt"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// whereCostLimit caps the evaluation cost of a Where condition
// (cel.CostLimit): a condition that costs more on an event does not match
// it. Simple comparisons cost a few units; a comprehension over a list
// costs a few units per element.
const whereCostLimit = 10_000

// whereEnv is the CEL environment of Where conditions, built once.
var whereEnv = sync.OnceValues(func() (*cel.Env, error) {
	obj := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
		cel.Variable("type", cel.StringType),
		cel.Variable("event", cel.StringType),
		cel.Variable("properties", obj),
		cel.Variable("context", obj),
		cel.Variable("traits", obj),
		cel.Variable("timestamp", cel.TimestampType),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(maxWhere),
		ext.Strings(),
	)
})

// checkWhere parses and type-checks a Where condition; "" gives nil.
func checkWhere(src string) (*cel.Ast, []error) {
	if src == "" {
		return nil, nil
	}
	if len(src) > maxWhere {
		return nil, []error{&Error{Field: "where", Code: "invalid_where", Msg: fmt.Sprintf("where is at most %d bytes", maxWhere)}}
	}
	env, err := whereEnv()
	if err != nil {
		return nil, []error{&Error{Field: "where", Code: "invalid_where", Msg: "CEL environment: " + err.Error()}}
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		var errs []error
		for _, e := range iss.Errors() {
			we := &Error{Field: "where", Code: "invalid_where", Msg: e.Message}
			if l := e.Location; l != nil && l.Line() > 0 {
				we.Line, we.Column = l.Line(), l.Column()+1
			}
			errs = append(errs, we)
		}
		if len(errs) == 0 {
			errs = append(errs, &Error{Field: "where", Code: "invalid_where", Msg: iss.Err().Error()})
		}
		return nil, errs
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, []error{&Error{Field: "where", Code: "invalid_where", Msg: fmt.Sprintf("where must be a condition (bool), not %s", t)}}
	}
	return ast, nil
}

// program turns a checked condition into a program with a cost limit.
func program(ast *cel.Ast) (cel.Program, error) {
	env, err := whereEnv()
	if err != nil {
		return nil, err
	}
	return env.Program(ast, cel.CostLimit(whereCostLimit), cel.EvalOptions(cel.OptOptimize))
}

// match evaluates the condition on e; errors (a missing key, the cost
// limit, a type mismatch) do not match.
func match(prg cel.Program, e *Event) bool {
	out, _, err := prg.Eval((*activation)(e))
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// activation gives a Where condition the event's variables, decoding
// properties, context and traits on first use.
type activation Event

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	e := (*Event)(a)
	switch name {
	case "type":
		return e.ev.Type, true
	case "event":
		return e.ev.Name, true
	case "timestamp":
		return e.ev.Timestamp, true
	case "properties":
		return e.object(objProperties), true
	case "context":
		return e.object(objContext), true
	case "traits":
		return e.object(objTraits), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }
