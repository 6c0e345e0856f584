package audience

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// Limits of the language.
const (
	// CostLimit bounds the work of one evaluation (CEL cost units: about
	// one per operation, per element visited by a macro).
	CostLimit = 1_000_000
	// maxRecursion bounds the nesting of the condition's syntax.
	maxRecursion = 48
	// maxComprehensionNesting bounds exists/all/filter/map inside each other.
	maxComprehensionNesting = 3
	// maxDays bounds days(n) and hours(n/24) (about 274 years).
	maxDays = 100_000
)

var (
	eventsType        = cel.OpaqueType("kith.Events")
	audiencesRuntime  = types.NewObjectType("kith.Audiences", traits.ContainerType)
	relatedType       = cel.MapType(cel.StringType, cel.DynType)
	relatedRuntime    = types.NewObjectType("kith.Profile", traits.IndexerType)
	errNowUnset       = errors.New("Profile.Now is not set")
	envOnce           sync.Once
	userEnv, accEnv   *cel.Env
	envErr            error
	allowedVariables  = map[string]string{EntityUser: "traits, computed, audiences, events, now, accounts", EntityAccount: "traits, computed, audiences, events, now, users"}
	relatedVariable   = map[string]string{EntityUser: "accounts", EntityAccount: "users"}
	otherEntity       = map[string]string{EntityUser: EntityAccount, EntityAccount: EntityUser}
	entityPlural      = map[string]string{EntityUser: "users", EntityAccount: "accounts"}
	typeIdentifiers   = map[string]bool{"int": true, "uint": true, "double": true, "bool": true, "string": true, "bytes": true, "list": true, "map": true, "null_type": true, "type": true, "dyn": true}
	eventFunctionList = "events.count(name[, days[, filter]]), events.performed(name[, days[, filter]]), events.then(first, then, within[, days])"
)

// envs returns the CEL environments of user and account audiences; they
// are built once and shared (their functions read the receiver's value).
func envs() (user, account *cel.Env, err error) {
	envOnce.Do(func() {
		userEnv, envErr = newEnv(EntityUser)
		if envErr == nil {
			accEnv, envErr = newEnv(EntityAccount)
		}
	})
	return userEnv, accEnv, envErr
}

func envFor(entity string) (*cel.Env, error) {
	u, a, err := envs()
	if err != nil {
		return nil, fmt.Errorf("audience: build CEL environment: %w", err)
	}
	if entity == EntityAccount {
		return a, nil
	}
	return u, nil
}

func newEnv(entity string) (*cel.Env, error) {
	eventArgs := func(id string, ret *cel.Type, fn string) []cel.FunctionOpt {
		return []cel.FunctionOpt{
			cel.MemberOverload("events_"+id+"_string", []*cel.Type{eventsType, cel.StringType}, ret,
				cel.BinaryBinding(func(recv, name ref.Val) ref.Val {
					return recv.(*eventsValue).lookup(eventCall{Fn: fn, Name: string(name.(types.String))}, ret)
				})),
			cel.MemberOverload("events_"+id+"_string_int", []*cel.Type{eventsType, cel.StringType, cel.IntType}, ret,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					return args[0].(*eventsValue).lookup(eventCall{Fn: fn, Name: string(args[1].(types.String)), Days: int64(args[2].(types.Int))}, ret)
				})),
			cel.MemberOverload("events_"+id+"_string_int_string", []*cel.Type{eventsType, cel.StringType, cel.IntType, cel.StringType}, ret,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					return args[0].(*eventsValue).lookup(eventCall{Fn: fn, Name: string(args[1].(types.String)), Days: int64(args[2].(types.Int)), Filter: string(args[3].(types.String))}, ret)
				})),
		}
	}
	durationOf := func(unit time.Duration, perDay int64) func(ref.Val) ref.Val {
		return func(v ref.Val) ref.Val {
			var f float64
			switch n := v.(type) {
			case types.Int:
				f = float64(n)
			case types.Double:
				f = float64(n)
			default:
				return types.MaybeNoSuchOverloadErr(v)
			}
			if math.IsNaN(f) || math.Abs(f) > float64(maxDays*perDay) {
				return types.NewErr("duration out of range: %v", f)
			}
			return types.Duration{Duration: time.Duration(f * float64(unit))}
		}
	}
	opts := []cel.EnvOption{
		cel.Variable("traits", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("computed", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("audiences", cel.MapType(cel.StringType, cel.BoolType)),
		cel.Variable("events", eventsType),
		cel.Variable("now", cel.TimestampType),
		cel.Variable(relatedVariable[entity], cel.ListType(relatedType)),
		cel.Function("count", eventArgs("count", cel.IntType, "count")...),
		cel.Function("performed", eventArgs("performed", cel.BoolType, "count")...),
		cel.Function("then",
			cel.MemberOverload("events_then_string_string_string", []*cel.Type{eventsType, cel.StringType, cel.StringType, cel.StringType}, cel.BoolType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					return args[0].(*eventsValue).lookup(eventCall{Fn: "then", Name: string(args[1].(types.String)), Then: string(args[2].(types.String)), Within: string(args[3].(types.String))}, cel.BoolType)
				})),
			cel.MemberOverload("events_then_string_string_string_int", []*cel.Type{eventsType, cel.StringType, cel.StringType, cel.StringType, cel.IntType}, cel.BoolType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					return args[0].(*eventsValue).lookup(eventCall{Fn: "then", Name: string(args[1].(types.String)), Then: string(args[2].(types.String)), Within: string(args[3].(types.String)), Days: int64(args[4].(types.Int))}, cel.BoolType)
				})),
		),
		cel.Function("days",
			cel.Overload("days_int", []*cel.Type{cel.IntType}, cel.DurationType, cel.UnaryBinding(durationOf(24*time.Hour, 1))),
			cel.Overload("days_double", []*cel.Type{cel.DoubleType}, cel.DurationType, cel.UnaryBinding(durationOf(24*time.Hour, 1))),
		),
		cel.Function("hours",
			cel.Overload("hours_int", []*cel.Type{cel.IntType}, cel.DurationType, cel.UnaryBinding(durationOf(time.Hour, 24))),
			cel.Overload("hours_double", []*cel.Type{cel.DoubleType}, cel.DurationType, cel.UnaryBinding(durationOf(time.Hour, 24))),
		),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserRecursionLimit(maxRecursion),
		cel.ParserExpressionSizeLimit(MaxConditionLen),
		cel.ASTValidators(cel.ValidateComprehensionNestingLimit(maxComprehensionNesting)),
	}
	return cel.NewEnv(opts...)
}

// Eval decides whether p is a member. A condition that reads what p does
// not have (a missing trait or key, a value of another type than the
// condition compares it with) is false, as CEL's && and || allow; only real
// failures (the cost limit, an unset Now, an overflow, a bad timestamp
// string, ...) are returned, with false.
//
// Members of the suppression lists that apply to the audience (those with
// SuppressAll, and all of its entity's if RespectSuppressions) are not
// members, whatever the condition.
func (a *Audience) Eval(p *Profile) (bool, error) {
	if p == nil {
		p = &Profile{}
	}
	for _, s := range a.suppressedBy {
		if p.Audiences[s] {
			return false, nil
		}
	}
	if a.reads.Now && p.Now.IsZero() {
		return false, fmt.Errorf("audience %s: %w", a.def.Name, errNowUnset)
	}
	act := activation{p: p, a: a}
	v, _, err := a.prg.Eval(&act)
	if err != nil {
		if absent(err) {
			return false, nil
		}
		return false, fmt.Errorf("audience %s: evaluate: %w", a.def.Name, err)
	}
	b, ok := v.(types.Bool)
	return ok && bool(b), nil
}

// absent reports whether an evaluation error comes from data the profile
// does not have, or has with another type than the condition expects.
func absent(err error) bool {
	msg := err.Error()
	for _, p := range [...]string{"no such key", "no such attribute", "index out of bounds", "no such overload", "no matching overload", "unsupported conversion"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// activation resolves the variables of a condition from a Profile without
// building a map.
type activation struct {
	p *Profile
	a *Audience
}

func (act *activation) ResolveName(name string) (any, bool) {
	p := act.p
	switch name {
	case "traits":
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, p.Traits), true
	case "computed":
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, p.Computed), true
	case "audiences":
		return audiencesValue(p.Audiences), true
	case "events":
		return &eventsValue{conds: p.Conditions, keys: act.a.events}, true
	case "now":
		return types.Timestamp{Time: p.Now}, true
	case "accounts", "users":
		return relatedList(p.Related), true
	}
	return nil, false
}

func (act *activation) Parent() interpreter.Activation { return nil }

// eventCall is an event condition with its literal arguments. Fn is
// "count" (also for performed) or "then".
type eventCall struct {
	Fn     string
	Name   string
	Then   string
	Within string
	Days   int64
	Filter string
}

// eventsValue is the value of the variable events: the profile's implicit
// counters and the audience's map from calls to counter keys.
type eventsValue struct {
	conds map[string]any
	keys  map[eventCall]string
}

func (e *eventsValue) lookup(c eventCall, ret *cel.Type) ref.Val {
	n := numberOf(e.conds[e.keys[c]])
	if ret == cel.BoolType {
		return types.Bool(n > 0)
	}
	return types.Int(n)
}

// numberOf reads a counter value: a Go number, JSON (as trait.Value
// gives it: json.RawMessage), json.Number or a bool.
func numberOf(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case uint64:
		if n > math.MaxInt64 {
			return math.MaxInt64
		}
		return int64(n)
	case float64:
		return int64(n)
	case json.RawMessage:
		return numberOf(json.Number(strings.TrimSpace(string(n))))
	case []byte:
		return numberOf(json.Number(strings.TrimSpace(string(n))))
	case string:
		return numberOf(json.Number(n))
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i
		}
		f, _ := n.Float64()
		return int64(f)
	case bool:
		if n {
			return 1
		}
	}
	return 0
}

func (e *eventsValue) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("events cannot be converted")
}
func (e *eventsValue) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("events cannot be converted")
}
func (e *eventsValue) Equal(other ref.Val) ref.Val { return types.Bool(e == other) }
func (e *eventsValue) Type() ref.Type              { return eventsType }
func (e *eventsValue) Value() any                  { return e }

// audiencesValue is the value of audiences: membership by name, true
// members only.
type audiencesValue map[string]bool

func (m audiencesValue) Contains(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return types.Bool(m[string(s)])
}
func (m audiencesValue) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("audiences cannot be converted")
}
func (m audiencesValue) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("audiences cannot be converted")
}
func (m audiencesValue) Equal(ref.Val) ref.Val { return types.False }
func (m audiencesValue) Type() ref.Type        { return audiencesRuntime }
func (m audiencesValue) Value() any            { return map[string]bool(m) }

// relatedList is the value of accounts or users.
type relatedList []*Profile

func (l relatedList) Add(ref.Val) ref.Val {
	return types.NewErr("accounts and users cannot be added to")
}
func (l relatedList) Contains(ref.Val) ref.Val {
	return types.NewErr("accounts and users cannot be searched with in")
}
func (l relatedList) Get(i ref.Val) ref.Val {
	n, ok := i.(types.Int)
	if !ok || n < 0 || int(n) >= len(l) {
		return types.NewErr("index out of bounds: %v", i)
	}
	return relatedValue{l[n]}
}
func (l relatedList) Iterator() traits.Iterator { return &relatedIterator{l: l} }
func (l relatedList) Size() ref.Val             { return types.Int(len(l)) }
func (l relatedList) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("accounts and users cannot be converted")
}
func (l relatedList) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return types.ListType
	}
	return types.NewErr("accounts and users cannot be converted")
}
func (l relatedList) Equal(ref.Val) ref.Val { return types.False }
func (l relatedList) Type() ref.Type        { return types.ListType }
func (l relatedList) Value() any            { return []*Profile(l) }

type relatedIterator struct {
	l relatedList
	i int
}

func (it *relatedIterator) HasNext() ref.Val { return types.Bool(it.i < len(it.l)) }
func (it *relatedIterator) Next() ref.Val {
	if it.i >= len(it.l) {
		return nil
	}
	v := relatedValue{it.l[it.i]}
	it.i++
	return v
}
func (it *relatedIterator) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("iterator cannot be converted")
}
func (it *relatedIterator) ConvertToType(ref.Type) ref.Val { return types.NewErr("iterator") }
func (it *relatedIterator) Equal(ref.Val) ref.Val          { return types.False }
func (it *relatedIterator) Type() ref.Type                 { return types.IteratorType }
func (it *relatedIterator) Value() any                     { return it }

// relatedValue is one account (of a user) or user (of an account): it has
// traits, computed and audiences.
type relatedValue struct{ p *Profile }

func (r relatedValue) Get(field ref.Val) ref.Val {
	s, _ := field.(types.String)
	switch s {
	case "traits":
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, r.p.Traits)
	case "computed":
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, r.p.Computed)
	case "audiences":
		return audiencesValue(r.p.Audiences)
	}
	return types.NewErr("no such key: %v", field)
}
func (r relatedValue) IsSet(field ref.Val) ref.Val {
	s, _ := field.(types.String)
	return types.Bool(s == "traits" || s == "computed" || s == "audiences")
}
func (r relatedValue) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("a profile cannot be converted")
}
func (r relatedValue) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("a profile cannot be converted")
}
func (r relatedValue) Equal(o ref.Val) ref.Val {
	ov, ok := o.(relatedValue)
	return types.Bool(ok && ov.p == r.p)
}
func (r relatedValue) Type() ref.Type { return relatedRuntime }
func (r relatedValue) Value() any     { return r.p }
