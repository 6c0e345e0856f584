package audience

import (
	"unicode"

	celast "cel.dev/cel-go/common/ast"
)

// offset is where the node e itself starts in the condition, in code
// points (CEL's offsets), or -1.
func (c *checker) offset(e celast.Expr) int {
	r, ok := c.info.GetOffsetRange(e.ID())
	if !ok || r.Start < 0 || int(r.Start) > len(c.src) {
		return -1
	}
	return int(r.Start)
}

// start is where the text of e starts: the smallest offset in its subtree.
func (c *checker) start(e celast.Expr) int {
	best := c.offset(e)
	min := func(o int) {
		if o >= 0 && (best < 0 || o < best) {
			best = o
		}
	}
	switch e.Kind() {
	case celast.SelectKind:
		min(c.start(e.AsSelect().Operand()))
	case celast.CallKind:
		call := e.AsCall()
		if call.IsMemberFunction() {
			min(c.start(call.Target()))
		} else if o := best; o > 0 && o < len(c.src) && c.src[o] == '(' {
			// A global call is placed at its parenthesis: back up over
			// the function's name.
			for o > 0 && unicode.IsSpace(c.src[o-1]) {
				o--
			}
			for o > 0 && (c.src[o-1] == '_' || c.src[o-1] == '.' || unicode.IsLetter(c.src[o-1]) || unicode.IsDigit(c.src[o-1])) {
				o--
			}
			best = o
		}
		for _, a := range call.Args() {
			min(c.start(a))
		}
	case celast.ComprehensionKind:
		min(c.start(e.AsComprehension().IterRange()))
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			min(c.start(el))
		}
	}
	return best
}

// pos is the position of the start of e's text.
func (c *checker) pos(e celast.Expr) position { return c.at(c.start(e)) }

// fieldPos is the position of the field name of a select expression.
func (c *checker) fieldPos(e celast.Expr) position {
	o := c.offset(e)
	if o >= 0 && o < len(c.src) && c.src[o] == '.' {
		o++
		for o < len(c.src) && unicode.IsSpace(c.src[o]) {
			o++
		}
		return c.at(o)
	}
	// A select made by a macro (has): find the field after the operand.
	from := c.start(e.AsSelect().Operand())
	field := []rune(e.AsSelect().FieldName())
	for i := max(from, 0); i+len(field) <= len(c.src); i++ {
		if string(c.src[i:i+len(field)]) == string(field) && i > from {
			return c.at(i)
		}
	}
	return c.pos(e)
}

// at converts an offset into a 1-based line and column.
func (c *checker) at(o int) position {
	if o < 0 {
		return position{}
	}
	o = min(o, len(c.src))
	line, col := 1, 1
	for _, r := range c.src[:o] {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return position{line, col}
}

// insideLiteral maps a 1-based line and column within the value of the
// string literal lit to a position in the condition, following the
// literal's quotes and escapes.
func (c *checker) insideLiteral(lit celast.Expr, line, col int) (position, bool) {
	o := c.offset(lit)
	if o < 0 {
		return position{}, false
	}
	offs, ok := literalOffsets(c.src, o)
	if !ok {
		return position{}, false
	}
	// The value's runes are offs[:len(offs)-1]; find the line and column.
	value := decodedRunes(c.src, offs)
	i, l := 0, 1
	for l < line && i < len(value) {
		if value[i] == '\n' {
			l++
		}
		i++
	}
	i += col - 1
	if l != line || i < 0 || i >= len(offs) {
		return position{}, false
	}
	return c.at(offs[i]), true
}

func decodedRunes(src []rune, offs []int) []rune {
	// Only newlines matter for lines: a rune is '\n' if its source is a
	// newline or the escape \n.
	out := make([]rune, len(offs)-1)
	for i := range out {
		switch {
		case src[offs[i]] == '\n':
			out[i] = '\n'
		case src[offs[i]] == '\\' && offs[i]+1 < len(src) && src[offs[i]+1] == 'n' && offs[i+1]-offs[i] == 2:
			out[i] = '\n'
		default:
			out[i] = src[offs[i]]
		}
	}
	return out
}

// literalOffsets reads the CEL string literal starting at src[start] and
// returns, for each code point of its value, the offset of its source
// text, followed by the offset of the closing quote.
func literalOffsets(src []rune, start int) ([]int, bool) {
	i := start
	raw := false
	if i < len(src) && (src[i] == 'r' || src[i] == 'R') {
		raw = true
		i++
	}
	if i >= len(src) || (src[i] != '"' && src[i] != '\'') {
		return nil, false
	}
	q := src[i]
	triple := i+2 < len(src) && src[i+1] == q && src[i+2] == q
	if triple {
		i += 3
	} else {
		i++
	}
	closing := func(j int) bool {
		if triple {
			return j+2 < len(src) && src[j] == q && src[j+1] == q && src[j+2] == q
		}
		return src[j] == q
	}
	var offs []int
	for i < len(src) {
		if closing(i) {
			return append(offs, i), true
		}
		offs = append(offs, i)
		if src[i] != '\\' || raw {
			i++
			continue
		}
		if i+1 >= len(src) {
			return nil, false
		}
		switch e := src[i+1]; {
		case e == 'x' || e == 'X':
			i += 4
		case e == 'u':
			i += 6
		case e == 'U':
			i += 10
		case e >= '0' && e <= '7':
			i += 4
		default:
			i += 2
		}
	}
	return nil, false
}
