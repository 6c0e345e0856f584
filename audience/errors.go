package audience

import (
	"fmt"
	"strings"
)

// Error is one problem with an audience definition.
//
// Line and Column are 1-based and count characters (Unicode code points)
// within the text of Field (usually "condition"); they are 0 when the
// problem has no position (a missing field, a cycle through implicit
// suppressions, ...). Code is stable and meant for programs; Msg is for
// people and names what is allowed.
type Error struct {
	Audience string `json:"audience,omitempty"`
	Field    string `json:"field,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Code     string `json:"code"`
	Msg      string `json:"message"`
}

// Error codes.
const (
	CodeJSON            = "json"             // the body is not a JSON definition
	CodeInvalid         = "invalid"          // a field has a bad value (name, entity, flags)
	CodeDuplicate       = "duplicate"        // two audiences (or an audience and a computed trait) share a name
	CodeTooLong         = "too_long"         // the condition is longer than MaxConditionLen
	CodeSyntax          = "syntax"           // the condition does not parse
	CodeType            = "type"             // the condition does not type-check, or is not a bool
	CodeUnknownAudience = "unknown_audience" // "x" in audiences names no audience
	CodeUnknownTrait    = "unknown_trait"    // computed.x names no computed trait
	CodeUnknownVariable = "unknown_variable" // an identifier that is not one of the variables
	CodeUnknownField    = "unknown_field"    // a.x where a is an account or a user and x is not traits, computed or audiences
	CodeUnsupported     = "unsupported"      // a variable used in a way the language does not allow
	CodeNotLiteral      = "not_literal"      // an audience name, trait key or event argument that is not a literal
	CodeWrongEntity     = "wrong_entity"     // users in a user audience, a computed trait or audience of the other entity, ...
	CodeEvent           = "event"            // a bad event condition (window, filter, funnel), as reported by package trait
	CodeCycle           = "cycle"            // audiences that depend on themselves
	CodeSuppression     = "suppression"      // a suppression list that reads an audience that is not a suppression list
)

func (e *Error) Error() string {
	var b strings.Builder
	if e.Audience != "" {
		fmt.Fprintf(&b, "audience %s: ", e.Audience)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	fmt.Fprintf(&b, " (%s)", e.Code)
	return b.String()
}

// Errors is every problem found in a set of definitions, in the order of
// the definitions and, within one, of the positions.
type Errors []*Error

func (es Errors) Error() string {
	switch len(es) {
	case 0:
		return "no errors"
	case 1:
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(es))
	for _, e := range es {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap gives the errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
