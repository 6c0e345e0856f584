package privacy

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WriteJSON writes the report as one JSON object: the sections in the
// order of Report's fields with "trait_history" after "traits" and
// "consent_history" (newest first) after "consent", then
// "events" (newest first) and "events_no_longer_held" (timeline entries
// whose event retention deleted). Each section starts on its own line and
// each item of the streamed lists on its own line, so that a large export
// can be read with line tools too. Events are read a page at a time while
// writing.
func (r *Report) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	j := &jsonWriter{w: bw}
	j.raw("{")
	j.field("format", r.Format)
	j.field("workspace", r.Workspace)
	j.field("generated_at", r.GeneratedAt)
	j.field("profile", r.Profile)
	j.field("identifiers", r.Identifiers)
	j.field("traits", r.Traits)
	j.list("trait_history", func(item func(any)) error {
		return r.EachTraitChange(func(t Trait) error { item(t); return j.err })
	})
	j.field("computed_traits", r.ComputedTraits)
	j.field("audiences", r.Audiences)
	j.field("consent", r.Consent)
	j.list("consent_history", func(item func(any)) error {
		return r.EachConsentChange(func(c ConsentChange) error { item(c); return j.err })
	})
	j.field("linked_accounts", r.LinkedAccounts)
	j.field("merges", r.Merges)
	j.field("recipients", r.Recipients)
	j.field("purposes_and_retention", r.PurposesAndRetention)
	var missing int64
	j.list("events", func(item func(any)) error {
		var err error
		missing, err = r.EachEvent(func(e Event) error { item(e); return j.err })
		return err
	})
	j.field("events_no_longer_held", missing)
	j.raw("\n}\n")
	if j.err != nil {
		return j.err
	}
	return bw.Flush()
}

// jsonWriter writes an object's fields, keeping the first error.
type jsonWriter struct {
	w      *bufio.Writer
	fields int
	err    error
}

func (j *jsonWriter) raw(s string) {
	if j.err == nil {
		_, j.err = j.w.WriteString(s)
	}
}

func (j *jsonWriter) value(v any) {
	if j.err != nil {
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // a person reads it: keep <, > and & as they are
	if j.err = enc.Encode(v); j.err == nil {
		_, j.err = j.w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
}

func (j *jsonWriter) key(k string) {
	if j.fields > 0 {
		j.raw(",")
	}
	j.fields++
	j.raw("\n")
	j.value(k)
	j.raw(":")
}

func (j *jsonWriter) field(k string, v any) {
	j.key(k)
	j.value(v)
}

// list writes a field whose value is an array of the items each calls
// item with.
func (j *jsonWriter) list(k string, each func(item func(any)) error) {
	j.key(k)
	j.raw("[")
	n := 0
	err := each(func(v any) {
		if n > 0 {
			j.raw(",")
		}
		n++
		j.raw("\n")
		j.value(v)
	})
	if j.err == nil && err != nil {
		j.err = err
	}
	if n > 0 {
		j.raw("\n")
	}
	j.raw("]")
}

// CSVFiles are the files of the CSV export, in the order WriteCSV writes
// them, each with its columns.
var CSVFiles = []struct{ Name, Columns string }{
	{"profile.csv", "field,value"},
	{"identifiers.csv", "type,value,added_at,added_by_position,source"},
	{"traits.csv", "key,value,source,timestamp,position"},
	{"trait_history.csv", "key,value,source,timestamp,position"},
	{"computed_traits.csv", "name,value,computed_at,position"},
	{"audiences.csv", "audience,member,computed_at,position"},
	{"audience_history.csv", "audience,change,reason,at,position"},
	{"consent.csv", "category,value,given_at,position"},
	{"consent_history.csv", "position,at,how,source,actor,category_preferences,tc_string,gpc,consent,terms,scope,request"},
	{"linked_accounts.csv", "kith_id,kind,identifiers,linked_at,position"},
	{"merges.csv", "merged_kith_id,via_type,via_value,position,at"},
	{"recipients.csv", "destination,type,day,kinds,deliveries,last,purposes"},
	{"purposes_and_retention.csv", "section,name,description"},
	{"events.csv", "position,message_id,type,name,source,timestamp,received_at,ip,user_agent,origin,gpc,raw"},
}

// csvReadme opens the ZIP: what each file holds.
const csvReadme = `This archive holds everything %s held on you (profile %d) on %s,
one CSV file per kind of data, each with a header row. The files are UTF-8
with a byte-order mark, so that spreadsheets show accents correctly.

profile.csv                 your profile: its id, when it was first and last seen, its number of events
identifiers.csv             every identifier linked to you (user id, email, device and cookie ids) and the event that added it
traits.csv                  your current traits, where each came from and when
trait_history.csv           every value each of those traits has had, newest first
computed_traits.csv         values computed from your events
audiences.csv               the audiences you are in (member true) or were in
audience_history.csv        each time you entered or left an audience
consent.csv                 your current consent, per category
consent_history.csv         every change of your consent, newest first: when, how, through what, by whom
linked_accounts.csv         the accounts (companies, households) you are linked to
merges.csv                  other profiles found to be you and merged into this one
recipients.csv              who received your data: destination, day, what kinds, how many deliveries, for what purposes
purposes_and_retention.csv  what the data is used for and how long it is kept
events.csv                  every event received about you, newest first, with the request's IP address and user agent and the event exactly as received (raw, JSON)

Values that are not text (numbers, true/false, lists, objects) are written as JSON.
A value that starts with = + - @ and is not a number is written with a leading '
so that a spreadsheet does not run it as a formula. Times are UTC (RFC 3339).
The same data as one JSON document: ask for format=json.
`

// WriteCSV writes the report as a ZIP archive of one CSV file per section
// (CSVFiles) and a README.txt: a person opening the export in a
// spreadsheet gets one sheet per kind of data, each with its own columns,
// rather than one sheet of mixed rows. Events are read a page at a time
// while writing; the ZIP is streamed (nothing is held but the current
// page).
func (r *Report) WriteCSV(w io.Writer) error {
	z := zip.NewWriter(w)
	readme, err := r.create(z, "README.txt")
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(readme, csvReadme, r.Workspace, r.Profile.KithID, r.GeneratedAt.Format(time.DateOnly)); err != nil {
		return err
	}
	for _, f := range CSVFiles {
		fw, err := r.create(z, f.Name)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(fw, "\uFEFF"); err != nil {
			return err
		}
		c := csv.NewWriter(fw)
		if err := c.Write(strings.Split(f.Columns, ",")); err != nil {
			return err
		}
		if err := r.csvRows(f.Name, func(cells ...string) error {
			for i := range cells {
				cells[i] = cell(cells[i])
			}
			return c.Write(cells)
		}); err != nil {
			return fmt.Errorf("write %s: %w", f.Name, err)
		}
		if c.Flush(); c.Error() != nil {
			return c.Error()
		}
	}
	return z.Close()
}

func (r *Report) create(z *zip.Writer, name string) (io.Writer, error) {
	return z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: r.GeneratedAt})
}

// csvRows writes the rows of one file.
func (r *Report) csvRows(file string, row func(cells ...string) error) error {
	p := r.Profile
	switch file {
	case "profile.csv":
		rows := [][2]string{
			{"workspace", r.Workspace}, {"kith_id", itoa(p.KithID)}, {"kind", p.Kind},
			{"first_seen", ts(p.FirstSeen)}, {"last_seen", ts(p.LastSeen)}, {"events", itoa(p.Events)},
			{"generated_at", ts(r.GeneratedAt)}, {"format", r.Format},
		}
		if p.RequestedKithID != 0 {
			rows = append(rows, [2]string{"requested_kith_id", itoa(p.RequestedKithID)})
		}
		for _, kv := range rows {
			if err := row(kv[0], kv[1]); err != nil {
				return err
			}
		}
	case "identifiers.csv":
		for _, id := range r.Identifiers {
			if err := row(id.Type, id.Value, ts(id.AddedAt), itoa(id.Position), id.Source); err != nil {
				return err
			}
		}
	case "traits.csv":
		for _, t := range r.Traits {
			if err := row(t.Key, jsonCell(t.Value), t.Source, ts(t.Timestamp), itoa(t.Position)); err != nil {
				return err
			}
		}
	case "trait_history.csv":
		return r.EachTraitChange(func(t Trait) error {
			return row(t.Key, jsonCell(t.Value), t.Source, ts(t.Timestamp), itoa(t.Position))
		})
	case "computed_traits.csv":
		for _, c := range r.ComputedTraits {
			if err := row(c.Name, jsonCell(c.Value), ts(c.ComputedAt), itoa(c.Position)); err != nil {
				return err
			}
		}
	case "audiences.csv":
		for _, a := range r.Audiences {
			if err := row(a.Name, strconv.FormatBool(a.Member), ts(a.ComputedAt), itoa(a.Position)); err != nil {
				return err
			}
		}
	case "audience_history.csv":
		for _, a := range r.Audiences {
			for _, h := range a.History {
				if err := row(a.Name, h.Change, h.Reason, ts(h.At), itoa(h.Position)); err != nil {
					return err
				}
			}
		}
	case "consent.csv":
		if c := r.Consent; c != nil {
			for _, k := range sortedKeys(c.CategoryPreferences) {
				if err := row(k, jsonCell(c.CategoryPreferences[k]), ts(c.GivenAt), itoa(c.Position)); err != nil {
					return err
				}
			}
		}
	case "consent_history.csv":
		return r.EachConsentChange(func(c ConsentChange) error { return row(consentChangeRow(c)...) })
	case "linked_accounts.csv":
		for _, l := range r.LinkedAccounts {
			ids := make([]string, len(l.Identifiers))
			for i, id := range l.Identifiers {
				ids[i] = id.String()
			}
			if err := row(itoa(l.KithID), l.Kind, strings.Join(ids, " "), ts(l.LinkedAt), itoa(l.Position)); err != nil {
				return err
			}
		}
	case "merges.csv":
		for _, m := range r.Merges {
			if err := row(itoa(m.MergedKithID), m.Via.Type, m.Via.Value, itoa(m.Position), ts(m.At)); err != nil {
				return err
			}
		}
	case "recipients.csv":
		for _, rc := range r.Recipients {
			purposes := strings.Join(rc.Purposes, " ")
			if rc.StrictlyNecessary {
				purposes = "strictly_necessary"
			}
			if err := row(rc.Destination, rc.Type, rc.Day, strings.Join(rc.Kinds, " "), itoa(rc.Deliveries), ts(rc.Last), purposes); err != nil {
				return err
			}
		}
	case "purposes_and_retention.csv":
		for _, pp := range r.PurposesAndRetention.Purposes {
			if err := row("purpose", pp.Name, pp.Description); err != nil {
				return err
			}
		}
		for _, rt := range r.PurposesAndRetention.Retention {
			if err := row("retention", rt.Name, rt.Description); err != nil {
				return err
			}
		}
	case "events.csv":
		missing, err := r.EachEvent(func(e Event) error {
			s := e.Signals
			return row(itoa(e.Position), e.MessageID, e.Type, e.Name, e.Source, ts(e.Timestamp), ts(e.ReceivedAt),
				s.IP, s.UserAgent, s.Origin, strconv.FormatBool(s.GPC), string(e.Raw))
		})
		if err != nil {
			return err
		}
		if missing > 0 {
			// Said in the file itself, where the person looks for them.
			note := make([]string, 12) // as wide as the header, for strict CSV readers
			note[3] = fmt.Sprintf("%d more events no longer held (deleted by retention)", missing)
			return row(note...)
		}
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// ts formats a time for CSV ("" for none).
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// jsonCell writes a JSON value for a spreadsheet: a string as its text,
// anything else as compact JSON.
func jsonCell(v json.RawMessage) string {
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return string(v)
	}
	return buf.String()
}

// cell guards a spreadsheet against formula injection: event data is
// written by anyone who can send events, and a cell starting with = + - @
// (or a tab or carriage return) is run as a formula by Excel and
// LibreOffice. Such a cell, unless it is a number, gets a leading '
// (OWASP's advice), which spreadsheets show as text.
func cell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return "'" + s
}

// UnescapeCell undoes cell's guard, for programs that read the CSV
// export.
func UnescapeCell(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
