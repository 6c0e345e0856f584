package importer

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kithcdp/kith/ingest"
)

// Mapping turns the columns of a CSV file into the fields of identify
// calls. Build one with ParseMapping or DefaultMapping.
type Mapping struct {
	fields []mapField
}

// mapField maps one column to one field of the identify call.
type mapField struct {
	column string
	target string // userId, anonymousId, messageId, timestamp, or traits
	trait  string // the trait's name when target is traits
	kind   string // string, number or bool
}

// The fields a column can map to besides traits, in the order they are
// written into the event.
var idTargets = []string{"userId", "anonymousId", "messageId", "timestamp"}

// ParseMapping reads a mapping of the form
//
//	column=target,column=target,...
//
// where target is userId, anonymousId, messageId, timestamp or
// traits.<name>, and a trait may end in :number or :bool to store the cell
// as a JSON number or boolean rather than a string (the default). A column
// may be mapped more than once (email=userId,email=traits.email); a target
// only once. Column names are matched exactly and cannot contain a comma.
func ParseMapping(spec string) (*Mapping, error) {
	m := &Mapping{}
	seen := map[string]bool{}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		i := strings.LastIndexByte(item, '=')
		if i <= 0 {
			return nil, fmt.Errorf("mapping %q: want column=target", item)
		}
		f := mapField{column: item[:i], kind: "string"}
		target := item[i+1:]
		if t, kind, ok := strings.Cut(target, ":"); ok {
			if kind != "number" && kind != "bool" && kind != "string" {
				return nil, fmt.Errorf("mapping %q: unknown type %q: use number, bool or string", item, kind)
			}
			target, f.kind = t, kind
		}
		if name, ok := strings.CutPrefix(target, "traits."); ok && name != "" {
			f.target, f.trait = "traits", name
		} else if slices.Contains(idTargets, target) && f.kind == "string" {
			f.target = target
		} else {
			return nil, fmt.Errorf("mapping %q: the target must be userId, anonymousId, messageId, timestamp or traits.<name> (only traits take :number or :bool)", item)
		}
		if seen[target] {
			return nil, fmt.Errorf("mapping %q: %s is mapped twice", item, target)
		}
		seen[target] = true
		m.fields = append(m.fields, f)
	}
	return m, nil
}

// DefaultMapping is the mapping used when none is given, read from a CSV
// header: a column named userId or user_id becomes userId, anonymousId or
// anonymous_id becomes anonymousId, messageId or message_id becomes
// messageId, and timestamp becomes timestamp (names matched without regard
// to case); every other column becomes a string trait of the same name. If
// there is no userId column, email is also the userId. The header needs a
// userId, anonymousId or email column.
func DefaultMapping(header []string) (*Mapping, error) {
	m := &Mapping{}
	var hasID, email string
	for _, col := range header {
		f := mapField{column: col, target: "traits", trait: col, kind: "string"}
		switch strings.ToLower(col) {
		case "userid", "user_id":
			f = mapField{column: col, target: "userId"}
			hasID = col
		case "anonymousid", "anonymous_id":
			f = mapField{column: col, target: "anonymousId"}
			hasID = col
		case "messageid", "message_id":
			f = mapField{column: col, target: "messageId"}
		case "timestamp":
			f = mapField{column: col, target: "timestamp"}
		case "email":
			email = col
		}
		m.fields = append(m.fields, f)
	}
	switch {
	case hasID != "":
	case email != "":
		m.fields = append(m.fields, mapField{column: email, target: "userId"})
	default:
		return nil, errors.New("the CSV header has no userId, user_id, anonymousId or email column: name one, or give a mapping")
	}
	return m, nil
}

// maxRowBytes bounds one CSV row (with the reader's look-ahead), so that an
// unclosed quote cannot pull the rest of a large file into memory.
const maxRowBytes = 4 << 20

// errRowTooLarge stops an import whose CSV row exceeds maxRowBytes.
var errRowTooLarge = fmt.Errorf("a CSV row exceeds %d MiB (is a quote left open?)", maxRowBytes>>20)

// rowLimiter fails a read once more than maxRowBytes were read since the
// last reset.
type rowLimiter struct {
	r    io.Reader
	left int
}

func (l *rowLimiter) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errRowTooLarge
	}
	n, err := l.r.Read(p[:min(len(p), l.left)])
	l.left -= n
	return n, err
}

// csv imports the rows of a CSV file as identify calls.
func (im *importer) csv() error {
	lim := &rowLimiter{r: im.in, left: maxRowBytes}
	cr := csv.NewReader(lim)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("import: the CSV file is empty: it needs a header row")
	}
	if err != nil {
		return fmt.Errorf("import: read the CSV header: %w", err)
	}
	header = slices.Clone(header)
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	m := im.opts.Mapping
	if m == nil {
		if m, err = DefaultMapping(header); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	cols, err := m.columns(header)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	var body bytes.Buffer
	for {
		lim.left = maxRowBytes
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return fmt.Errorf("import: read CSV row %d: %w", im.sum.Lines+1, err)
		}
		im.line()
		if pe != nil {
			err = im.reject(int64(pe.StartLine), "invalid_csv", pe.Err.Error(), csvRow(rec))
		} else {
			line, _ := cr.FieldPos(0)
			err = im.row(int64(line), m, cols, rec, &body)
		}
		if err != nil {
			return err
		}
		if err := im.ctx.Err(); err != nil {
			return fmt.Errorf("import: stopped at row %d: %w", im.sum.Lines, err)
		}
	}
}

// columns returns the header index of each of m's fields.
func (m *Mapping) columns(header []string) ([]int, error) {
	cols := make([]int, len(m.fields))
	for i, f := range m.fields {
		cols[i] = slices.Index(header, f.column)
		if cols[i] < 0 {
			return nil, fmt.Errorf("the mapping names column %q, which the CSV header lacks (it has %s)", f.column, strings.Join(header, ", "))
		}
		if slices.Index(header[cols[i]+1:], f.column) >= 0 {
			return nil, fmt.Errorf("the CSV header has column %q more than once", f.column)
		}
	}
	return cols, nil
}

// row imports one CSV row, which starts at line.
func (im *importer) row(line int64, m *Mapping, cols []int, rec []string, body *bytes.Buffer) error {
	body.Reset()
	body.WriteString(`{"type":"identify"`)
	for _, target := range idTargets {
		for i, f := range m.fields {
			if f.target == target && rec[cols[i]] != "" {
				writeMember(body, target, rec[cols[i]])
			}
		}
	}
	traits := 0
	for i, f := range m.fields {
		cell := rec[cols[i]]
		if f.target != "traits" || cell == "" {
			continue
		}
		if traits == 0 {
			body.WriteString(`,"traits":{`)
		} else {
			body.WriteByte(',')
		}
		traits++
		writeString(body, f.trait)
		body.WriteByte(':')
		switch v := strings.TrimSpace(cell); f.kind {
		case "number":
			if v == "" || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) || !json.Valid([]byte(v)) {
				return im.reject(line, ingest.CodeInvalidValue, fmt.Sprintf("column %q: %q is not a number", f.column, cell), csvRow(rec))
			}
			body.WriteString(v)
		case "bool":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return im.reject(line, ingest.CodeInvalidValue, fmt.Sprintf("column %q: %q is not a boolean (true, false, 1, 0, t, f)", f.column, cell), csvRow(rec))
			}
			body.WriteString(strconv.FormatBool(b))
		default:
			writeString(body, cell)
		}
	}
	if traits > 0 {
		body.WriteByte('}')
	}
	body.WriteByte('}')
	return im.add(line, body.Bytes())
}

// csvRow renders a row for the rejects file (nil for none).
func csvRow(rec []string) []byte {
	if rec == nil {
		return nil
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(rec) // a bytes.Buffer does not fail
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// writeMember writes ,"name":"value".
func writeMember(b *bytes.Buffer, name, value string) {
	b.WriteString(`,"`)
	b.WriteString(name)
	b.WriteString(`":`)
	writeString(b, value)
}

// writeString writes s as a JSON string.
func writeString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}
