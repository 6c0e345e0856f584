package privacy_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// exported is a JSON export as decoded by a reader of it.
type exported struct {
	Format               string                       `json:"format"`
	Workspace            string                       `json:"workspace"`
	GeneratedAt          time.Time                    `json:"generated_at"`
	Profile              json.RawMessage              `json:"profile"`
	Identifiers          []privacy.Identifier         `json:"identifiers"`
	Traits               []privacy.Trait              `json:"traits"`
	TraitHistory         []privacy.Trait              `json:"trait_history"`
	ComputedTraits       []privacy.ComputedTrait      `json:"computed_traits"`
	Audiences            []privacy.Audience           `json:"audiences"`
	Consent              *privacy.Consent             `json:"consent"`
	ConsentHistory       []privacy.ConsentChange      `json:"consent_history"`
	LinkedAccounts       []privacy.LinkedProfile      `json:"linked_accounts"`
	Merges               []privacy.Merge              `json:"merges"`
	Recipients           []privacy.Recipient          `json:"recipients"`
	PurposesAndRetention privacy.PurposesAndRetention `json:"purposes_and_retention"`
	Events               []privacy.Event              `json:"events"`
	EventsNoLongerHeld   int64                        `json:"events_no_longer_held"`
}

// exportBoth exports profile p and returns the JSON export decoded, its
// bytes, and the CSV export's files parsed (BOM removed, cells unescaped).
func exportBoth(t *testing.T, st store.Store, ws string, p store.ProfileID, opts ...privacy.Option) (exported, []byte, map[string][][]string) {
	t.Helper()
	ctx := context.Background()
	r, err := privacy.Export(ctx, st, ws, p, seedNow, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var e exported
	dec := json.NewDecoder(bytes.NewReader(js.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("the JSON export does not decode: %v\n%s", err, js.Bytes())
	}
	// A second export writes CSV: the report can be written more than
	// once, and the two must agree.
	var zb bytes.Buffer
	if err := r.WriteCSV(&zb); err != nil {
		t.Fatal(err)
	}
	return e, js.Bytes(), readZip(t, zb.Bytes())
}

func readZip(t *testing.T, b []byte) map[string][][]string {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("the CSV export is not a ZIP: %v", err)
	}
	files := map[string][][]string{}
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "README.txt" {
			files[f.Name] = [][]string{{string(raw)}}
			continue
		}
		if !bytes.HasPrefix(raw, []byte("\uFEFF")) {
			t.Errorf("%s has no byte-order mark", f.Name)
		}
		rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\uFEFF")))).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		for _, row := range rows {
			for i := range row {
				row[i] = privacy.UnescapeCell(row[i])
			}
		}
		files[f.Name] = rows
	}
	want := []string{"README.txt"}
	for _, f := range privacy.CSVFiles {
		want = append(want, f.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("ZIP files %q, want %q", names, want)
	}
	for _, f := range privacy.CSVFiles {
		if rows := files[f.Name]; len(rows) == 0 || strings.Join(rows[0], ",") != f.Columns {
			t.Errorf("%s header %q, want %q", f.Name, rows, f.Columns)
		}
	}
	return files
}

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExportComplete exports ada, asked for by the id of the anonymous
// visitor merged into her, and checks every section holds exactly what
// was seeded: nothing missing, nothing of bob's, no destination secret.
func TestExportComplete(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		ada := lookup(t, st, seedWS, "user_id", "u-42")
		if ada != 1 {
			t.Fatalf("ada is profile %d, want 1 (the older anonymous visitor)", ada)
		}
		e, raw, files := exportBoth(t, st, seedWS, 2) // 2: a-2's profile, merged into 1
		rx := `"2026-11-24T10:00:00Z"`
		now := `"2026-11-24T12:00:00Z"`
		wants := []struct{ name, got, want string }{
			{"format", e.Format + " " + e.Workspace + " " + e.GeneratedAt.Format(time.RFC3339), "kith.privacy.export/v1 acme 2026-11-24T12:00:00Z"},
			{"profile", string(e.Profile), `{"kith_id":1,"kind":"user","requested_kith_id":2,"first_seen":"2026-11-24T09:00:00Z","last_seen":"2026-11-24T09:08:00Z","events":9}`},
			{"identifiers", js(t, e.Identifiers), `[` +
				`{"type":"anonymous_id","value":"a-1","added_at":` + rx + `,"added_by_position":1,"source":"web"},` +
				`{"type":"anonymous_id","value":"a-2","added_at":` + rx + `,"added_by_position":3,"source":"web"},` +
				`{"type":"anonymous_id","value":"a-3","added_at":` + rx + `,"added_by_position":7,"source":"web"},` +
				`{"type":"email","value":"ada@example.com","added_at":` + rx + `,"added_by_position":4,"source":"web"},` +
				`{"type":"user_id","value":"u-42","added_at":` + rx + `,"added_by_position":4,"source":"web"}]`},
			{"traits", js(t, e.Traits), `[` +
				`{"key":"email","value":"ada@example.com","source":"web","timestamp":"2026-11-24T09:03:00Z","position":4},` +
				`{"key":"name","value":"Ada \u003cLovelace\u003e \u0026 co","source":"web","timestamp":"2026-11-24T09:03:00Z","position":4},` +
				`{"key":"nickname","value":"=1+2","source":"web","timestamp":"2026-11-24T09:03:00Z","position":4},` +
				`{"key":"plan","value":"pro","source":"web","timestamp":"2026-11-24T09:04:00Z","position":5}]`},
			{"trait_history", js(t, e.TraitHistory), `[` +
				`{"key":"email","value":"ada@example.com","source":"web","timestamp":"2026-11-24T09:03:00Z","position":4},` +
				`{"key":"name","value":"Ada \u003cLovelace\u003e \u0026 co","source":"web","timestamp":"2026-11-24T09:03:00Z","position":4},` +
				`{"key":"nickname","value":"=1+2","source":"web","timestamp":"2026-11-24T09:03:00Z","position":4},` +
				`{"key":"plan","value":"pro","source":"web","timestamp":"2026-11-24T09:04:00Z","position":5},` +
				`{"key":"plan","value":"free","source":"web","timestamp":"2026-11-24T09:03:00Z","position":4}]`},
			{"computed_traits", js(t, e.ComputedTraits), `[{"name":"orders","value":2,"computed_at":` + now + `,"position":9}]`},
			// whales: never a member, so not listed.
			{"audiences", js(t, e.Audiences), `[{"name":"buyers","member":true,"computed_at":` + now + `,"position":9,` +
				`"history":[{"change":"entered","reason":"evaluated","at":` + now + `,"position":9}]}]`},
			// The later of the two consents, by timestamp.
			{"consent", js(t, e.Consent), `{"category_preferences":{"advertising":true,"analytics":true},"given_at":"2026-11-24T09:08:00Z","position":9}`},
			// Both events that carried consent, newest first.
			{"consent_history", js(t, e.ConsentHistory), `[` +
				`{"position":9,"at":"2026-11-24T09:08:00Z","how":"track Segment Consent Preference Updated","source":"web","actor":"person","category_preferences":{"advertising":true,"analytics":true}},` +
				`{"position":2,"at":"2026-11-24T09:01:00Z","how":"track Order Completed","source":"web","actor":"person","category_preferences":{"advertising":false,"analytics":true}}]`},
			{"linked_accounts", js(t, e.LinkedAccounts), `[{"kith_id":3,"kind":"account","identifiers":[{"type":"group_id","value":"acme"}],"linked_at":` + rx + `,"position":6}]`},
			{"merges", js(t, e.Merges), `[{"merged_kith_id":2,"via":{"type":"user_id","value":"u-42"},"position":5,"at":` + rx + `}]`},
			{"recipients", js(t, e.Recipients), `[` +
				`{"destination":"crm-hook","type":"webhook","day":"2026-11-24","kinds":["event"],"deliveries":2,"last":"2026-11-24T10:01:00Z","purposes":["analytics"]},` +
				`{"destination":"crm-hook","type":"webhook","day":"2026-11-25","kinds":["audience_entered","event"],"deliveries":1,"last":"2026-11-25T11:00:00Z","purposes":["analytics"]}]`},
			{"purposes", js(t, e.PurposesAndRetention.Purposes), js(t, privacy.DefaultPurposes)},
			{"retention days", strconv.Itoa(e.PurposesAndRetention.EventRetentionDays), "0"},
			{"events no longer held", strconv.FormatInt(e.EventsNoLongerHeld, 10), "0"},
		}
		for _, w := range wants {
			if w.got != w.want {
				t.Errorf("%s:\n got %s\nwant %s", w.name, w.got, w.want)
			}
		}
		// Events: every one of ada's, newest first, raw as received, with
		// the request's signals; bob's (10) is not hers.
		var positions []int64
		for _, ev := range e.Events {
			positions = append(positions, ev.Position)
			if got, want := string(ev.Raw), seedEvents[ev.Position-1]; got != want {
				t.Errorf("event %d raw %s, want as sent %s", ev.Position, got, want)
			}
			if ev.MessageID != fmt.Sprint("m-", ev.Position) || ev.Source != "web" || !ev.ReceivedAt.Equal(seedRX) ||
				ev.Signals != (privacy.Signals{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (test)"}) {
				t.Errorf("event %+v", ev)
			}
		}
		if !slices.Equal(positions, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}) {
			t.Errorf("events at %v, want ada's 9..1", positions)
		}
		for _, leak := range []string{"bob", "sealed-secret", "crm.example.com", "whales"} {
			if bytes.Contains(raw, []byte(leak)) {
				t.Errorf("the export holds %q", leak)
			}
		}
		if !bytes.Contains(raw, []byte("Ada <Lovelace> & co")) {
			t.Error("the JSON export escapes < > & (it is for people to read)")
		}
		csvAgrees(t, e, files)
		if !strings.Contains(files["README.txt"][0][0], "profile 1") {
			t.Errorf("README: %s", files["README.txt"][0][0])
		}
	})
}

// csvAgrees checks that every CSV file holds what the JSON export holds.
func csvAgrees(t *testing.T, e exported, files map[string][][]string) {
	t.Helper()
	ts := func(x time.Time) string {
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(time.RFC3339Nano)
	}
	val := func(v json.RawMessage) string {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
		var b bytes.Buffer
		_ = json.Compact(&b, v)
		return b.String()
	}
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	var prof privacy.ProfileSummary
	if err := json.Unmarshal(e.Profile, &prof); err != nil {
		t.Fatal(err)
	}
	want := map[string][][]string{
		"profile.csv": {{"workspace", e.Workspace}, {"kith_id", i64(prof.KithID)}, {"kind", prof.Kind}, {"first_seen", ts(prof.FirstSeen)},
			{"last_seen", ts(prof.LastSeen)}, {"events", i64(prof.Events)}, {"generated_at", ts(e.GeneratedAt)}, {"format", e.Format}},
	}
	if prof.RequestedKithID != 0 {
		want["profile.csv"] = append(want["profile.csv"], []string{"requested_kith_id", i64(prof.RequestedKithID)})
	}
	add := func(file string, cells ...string) { want[file] = append(want[file], cells) }
	for _, x := range e.Identifiers {
		add("identifiers.csv", x.Type, x.Value, ts(x.AddedAt), i64(x.Position), x.Source)
	}
	for _, x := range e.Traits {
		add("traits.csv", x.Key, val(x.Value), x.Source, ts(x.Timestamp), i64(x.Position))
	}
	for _, x := range e.TraitHistory {
		add("trait_history.csv", x.Key, val(x.Value), x.Source, ts(x.Timestamp), i64(x.Position))
	}
	for _, x := range e.ComputedTraits {
		add("computed_traits.csv", x.Name, val(x.Value), ts(x.ComputedAt), i64(x.Position))
	}
	for _, a := range e.Audiences {
		add("audiences.csv", a.Name, strconv.FormatBool(a.Member), ts(a.ComputedAt), i64(a.Position))
		for _, h := range a.History {
			add("audience_history.csv", a.Name, h.Change, h.Reason, ts(h.At), i64(h.Position))
		}
	}
	if c := e.Consent; c != nil {
		for _, k := range []string{"advertising", "analytics"} { // the seed's, sorted
			add("consent.csv", k, val(c.CategoryPreferences[k]), ts(c.GivenAt), i64(c.Position))
		}
	}
	for _, c := range e.ConsentHistory {
		cells := []string{i64(c.Position), ts(c.At), c.How, c.Source, c.Actor, "", c.TCString, "", "", "", c.Scope, c.Request}
		if c.CategoryPreferences != nil {
			cells[5] = js(t, c.CategoryPreferences)
		}
		if c.GPC {
			cells[7] = "true"
		}
		if c.Consent != nil {
			cells[8] = js(t, c.Consent)
		}
		if c.Terms != nil {
			cells[9] = js(t, c.Terms)
		}
		add("consent_history.csv", cells...)
	}
	for _, l := range e.LinkedAccounts {
		var ids []string
		for _, id := range l.Identifiers {
			ids = append(ids, id.String())
		}
		add("linked_accounts.csv", i64(l.KithID), l.Kind, strings.Join(ids, " "), ts(l.LinkedAt), i64(l.Position))
	}
	for _, m := range e.Merges {
		add("merges.csv", i64(m.MergedKithID), m.Via.Type, m.Via.Value, i64(m.Position), ts(m.At))
	}
	for _, r := range e.Recipients {
		add("recipients.csv", r.Destination, r.Type, r.Day, strings.Join(r.Kinds, " "), i64(r.Deliveries), ts(r.Last), strings.Join(r.Purposes, " "))
	}
	for _, p := range e.PurposesAndRetention.Purposes {
		add("purposes_and_retention.csv", "purpose", p.Name, p.Description)
	}
	for _, p := range e.PurposesAndRetention.Retention {
		add("purposes_and_retention.csv", "retention", p.Name, p.Description)
	}
	for _, ev := range e.Events {
		s := ev.Signals
		add("events.csv", i64(ev.Position), ev.MessageID, ev.Type, ev.Name, ev.Source, ts(ev.Timestamp), ts(ev.ReceivedAt),
			s.IP, s.UserAgent, s.Origin, strconv.FormatBool(s.GPC), string(ev.Raw))
	}
	if e.EventsNoLongerHeld > 0 {
		note := make([]string, 12)
		note[3] = fmt.Sprintf("%d more events no longer held (deleted by retention)", e.EventsNoLongerHeld)
		add("events.csv", note...)
	}
	for _, f := range privacy.CSVFiles {
		got := files[f.Name]
		if len(got) > 0 {
			got = got[1:] // the header, checked by readZip
		}
		if js(t, got) != js(t, want[f.Name]) && !(len(got) == 0 && len(want[f.Name]) == 0) {
			t.Errorf("%s disagrees with the JSON export:\n got %q\nwant %q", f.Name, got, want[f.Name])
		}
	}
}

// TestCSVFormulaGuard: a trait value a spreadsheet would run as a formula
// is written with a leading quote; numbers are left alone.
func TestCSVFormulaGuard(t *testing.T) {
	t.Parallel()
	st := backends(t)["sqlite"](t)
	seed(t, st)
	r, err := privacy.Export(context.Background(), st, seedWS, 1, seedNow)
	if err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	if err := r.WriteCSV(&zb); err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(zb.Bytes()), int64(zb.Len()))
	if err != nil {
		t.Fatal(err)
	}
	f, err := z.Open("traits.csv")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(f)
	if !bytes.Contains(raw, []byte("\nnickname,'=1+2,web,")) {
		t.Errorf("traits.csv does not guard =1+2:\n%s", raw)
	}
	for in, want := range map[string]string{"=1+2": "'=1+2", "-5": "-5", "-x": "'-x", "@SUM(A1)": "'@SUM(A1)", "a=b": "a=b", "": ""} {
		if got := privacy.UnescapeCell(want); got != in {
			t.Errorf("UnescapeCell(%q) = %q, want %q", want, got, in)
		}
	}
}

// TestExportNotFound: an unknown profile and another workspace's profile
// are store.ErrNotFound.
func TestExportNotFound(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		for _, c := range []struct {
			ws string
			p  store.ProfileID
		}{{seedWS, 99}, {"globex", 1}} {
			if _, err := privacy.Export(context.Background(), st, c.ws, c.p, seedNow); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("export %s/%d: %v, want ErrNotFound", c.ws, c.p, err)
			}
		}
	})
}

// TestExportRetention: the stated retention, and events retention deleted
// are counted, not silently dropped; identify, alias and group calls stay.
func TestExportRetention(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		if _, err := st.DeleteBefore(context.Background(), seedWS, seedRX.Add(time.Second), []string{"identify", "alias", "group"}); err != nil {
			t.Fatal(err)
		}
		e, _, files := exportBoth(t, st, seedWS, 1, privacy.WithRetention(90*24*time.Hour))
		var positions []int64
		for _, ev := range e.Events {
			positions = append(positions, ev.Position)
		}
		if !slices.Equal(positions, []int64{7, 6, 5, 4}) || e.EventsNoLongerHeld != 5 {
			t.Errorf("events %v, %d no longer held; want 7 6 5 4 and 5", positions, e.EventsNoLongerHeld)
		}
		if e.Identifiers[0].Value != "a-1" || e.Identifiers[0].Source != "" || e.Identifiers[0].Position != 1 {
			t.Errorf("a-1's event is gone; its source should be empty: %+v", e.Identifiers[0])
		}
		pr := e.PurposesAndRetention
		if pr.EventRetentionDays != 90 || !strings.HasPrefix(pr.Retention[0].Description, "Events are deleted 90 days after they are received, except identify, alias and group calls, which carry identity") {
			t.Errorf("retention %+v", pr)
		}
		csvAgrees(t, e, files)
	})
}

// TestExportPages: a profile with more events and more values of one
// trait than a page holds is exported whole, in order, without repeats.
func TestExportPages(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		const identifies, pages = 1005, 1100
		calls := make([]string, 0, identifies+pages)
		for i := range identifies {
			calls = append(calls, fmt.Sprintf(`{"type":"identify","userId":"carol","traits":{"n":%d},"timestamp":"2026-11-24T08:%02d:%02d.%03dZ"}`, i, i/1000, (i/10)%60, i%1000))
		}
		for i := range pages {
			calls = append(calls, fmt.Sprintf(`{"type":"page","userId":"carol","name":"P%d","timestamp":"2026-11-24T09:00:00Z"}`, i))
		}
		for len(calls) > 0 { // a batch holds at most 2,500 events
			n := min(len(calls), 500)
			appendEvents(t, st, "big", calls[:n]...)
			calls = calls[n:]
		}
		fold(t, st, "big")
		e, _, files := exportBoth(t, st, "big", lookup(t, st, "big", "user_id", "carol"))
		if len(e.Events) != identifies+pages || len(files["events.csv"]) != identifies+pages+1 {
			t.Fatalf("%d events in JSON, %d rows in events.csv; want %d", len(e.Events), len(files["events.csv"])-1, identifies+pages)
		}
		for i, ev := range e.Events {
			if want := int64(identifies + pages - i); ev.Position != want {
				t.Fatalf("event %d at position %d, want %d (newest first, each once)", i, ev.Position, want)
			}
		}
		if len(e.TraitHistory) != identifies {
			t.Fatalf("%d values of n, want %d", len(e.TraitHistory), identifies)
		}
		for i, h := range e.TraitHistory {
			if want := strconv.Itoa(identifies - 1 - i); string(h.Value) != want {
				t.Fatalf("history entry %d is %s, want %s (newest first)", i, h.Value, want)
			}
		}
		csvAgrees(t, e, files)
	})
}
