// Package export writes audience files for ad platforms — Meta Custom
// Audiences and Google Ads Customer Match — from Kith's audience entries
// and exits, for an uploader (a person in the platform's UI, or a job using
// the platform's API) to pick up.
//
// A Sender receives KindAudienceEntered and KindAudienceExited deliveries
// and writes, for each Send, incremental files per audience: the members
// added and the members removed. Members are identified by their email
// addresses and phone numbers, normalized by the platform's rules and
// hashed with SHA-256 (see NormalizeEmail, NormalizePhone), in the
// platform's upload layout:
//
//   - csv for Meta: columns "email" and "phone" (up to three of each), the
//     headers of Meta's customer list file guide.
//   - csv for Google: columns "Email" and "Phone" (up to three of each),
//     the headers of Google's Customer Match data file template.
//   - jsonl for Meta: one object per member keyed by the Marketing API's
//     schema names, {"EMAIL":[hash…],"PHONE":[hash…]}.
//   - jsonl for Google: one Google Ads API UserData object per member,
//     {"userIdentifiers":[{"hashedEmail":hash},{"hashedPhoneNumber":hash}]}.
//
// Files land in the configured directory as
//
//	<dir>/<audience>/<seq>-added.<ext>
//	<dir>/<audience>/<seq>-removed.<ext>
//	<dir>/<audience>/full.<ext>          (written by Full)
//
// where <seq> is an eight-digit number that grows with every Send that
// wrote something, so files are applied in name order. Within one Send a
// profile that entered and left again counts by its last change.
//
// For a data-subject erasure request, Delete writes the person into the
// next removed file of every audience the destination has written.
//
// Writes are crash-safe and idempotent. Each file is written to a
// temporary name and fsynced; then a small state file (".kith-export.json")
// records the delivery keys written and the renames to do, and is itself
// replaced atomically; then the files are renamed to their final names and
// the directory fsynced. A crash leaves either no trace of the batch (it is
// sent again and written once) or a committed state whose renames are
// finished on the next start or Send. A redelivered batch whose keys are
// among the last Config.Remember keys written is not written again.
//
// One directory belongs to one destination: two senders must not share it.
package export

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/store"
)

// Formats of the files written.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// Limits and defaults.
const (
	// MaxPerType is the most email addresses (and, separately, phone
	// numbers) written for one member: Meta's customer list takes up to
	// three columns of each. Further ones are left out.
	MaxPerType = 3
	// DefaultMaxBatch is Config.MaxBatch when unset.
	DefaultMaxBatch = 1000
	// DefaultRemember is Config.Remember when unset.
	DefaultRemember = 10000
	// StateFile is the name of the state file kept in Config.Dir.
	StateFile = ".kith-export.json"
)

// Config configures an export destination. It is the JSON a destination's
// settings hold.
type Config struct {
	// Dir is the directory the files are written under (required). It is
	// created if missing.
	Dir string `json:"dir"`
	// Platform is PlatformMeta or PlatformGoogle (required).
	Platform string `json:"platform"`
	// Format is FormatCSV (the default) or FormatJSONL.
	Format string `json:"format,omitempty"`
	// Audiences, if not empty, are the only audience keys exported; the
	// deliveries of others are accepted and left out.
	Audiences []string `json:"audiences,omitempty"`
	// Region is the ISO 3166 country assumed for phone numbers written
	// without a country code, e.g. "US"; empty assumes none.
	Region string `json:"region,omitempty"`
	// MaxBatch is the most deliveries one Send takes (default 1000).
	MaxBatch int `json:"max_batch,omitempty"`
	// Remember is how many of the latest delivery keys written the state
	// file keeps to skip redeliveries (default 10000).
	Remember int `json:"remember,omitempty"`
}

// Member is one profile of an audience, for Full.
type Member struct {
	Profile     store.ProfileID
	Identifiers []store.Identifier
}

// Sender writes audience files. Send is called by one goroutine at a time.
type Sender struct {
	cfg       Config
	audiences map[string]bool // nil: all
	st        state
	seen      map[string]bool // st.Keys as a set
}

var (
	_ destination.Sender  = (*Sender)(nil)
	_ destination.Deleter = (*Sender)(nil)
)

// state is the content of the state file.
type state struct {
	Version int      `json:"version"`
	Seq     int64    `json:"seq"`
	Keys    []string `json:"keys"`
	// Pending are the renames of the last committed Send, relative to
	// Dir; done again (if their temporary file is still there) when the
	// sender starts or sends.
	Pending []rename `json:"pending,omitempty"`
}

type rename struct {
	Tmp   string `json:"tmp"`
	Final string `json:"final"`
}

// New returns a Sender for the JSON configuration cfg (see Config). It
// creates the directory, reads the state file and finishes the renames a
// crash interrupted.
func New(cfg json.RawMessage) (destination.Sender, error) {
	s, err := newSender(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newSender(raw json.RawMessage) (*Sender, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("export destination: config: %w", err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("export destination: config: %w", err)
	}
	s := &Sender{cfg: c, seen: map[string]bool{}}
	if len(c.Audiences) > 0 {
		s.audiences = map[string]bool{}
		for _, a := range c.Audiences {
			s.audiences[a] = true
		}
	}
	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("export destination: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, StateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.st.Version = 1
	case err != nil:
		return nil, fmt.Errorf("export destination: read state: %w", err)
	default:
		if err := json.Unmarshal(b, &s.st); err != nil {
			return nil, fmt.Errorf("export destination: state file %s: %w", filepath.Join(c.Dir, StateFile), err)
		}
	}
	for _, k := range s.st.Keys {
		s.seen[k] = true
	}
	if err := s.finishRenames(); err != nil {
		return nil, fmt.Errorf("export destination: %w", err)
	}
	if err := removeStale(c.Dir); err != nil {
		return nil, fmt.Errorf("export destination: %w", err)
	}
	return s, nil
}

// removeStale removes the temporary files of a Send or Full that a crash
// interrupted before its commit. They are hidden (".tmp-…") and never
// renamed.
func removeStale(dir string) error {
	os.Remove(filepath.Join(dir, StateFile+".tmp"))
	subs, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if !sub.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, sub.Name()))
		if err != nil {
			return err
		}
		for _, f := range files {
			if strings.HasPrefix(f.Name(), ".tmp-") {
				if err := os.Remove(filepath.Join(dir, sub.Name(), f.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (c *Config) check() error {
	if c.Dir == "" {
		return errors.New("dir is required")
	}
	if c.Platform != PlatformMeta && c.Platform != PlatformGoogle {
		return fmt.Errorf("platform %q: want %q or %q", c.Platform, PlatformMeta, PlatformGoogle)
	}
	if c.Format == "" {
		c.Format = FormatCSV
	}
	if c.Format != FormatCSV && c.Format != FormatJSONL {
		return fmt.Errorf("format %q: want %q or %q", c.Format, FormatCSV, FormatJSONL)
	}
	for _, a := range c.Audiences {
		if a == "" {
			return errors.New("audiences: empty key")
		}
	}
	if c.Region != "" && (len(c.Region) != 2 || strings.ToUpper(c.Region) != c.Region) {
		return fmt.Errorf("region %q: want an upper-case ISO 3166 code such as \"US\"", c.Region)
	}
	if c.MaxBatch < 0 || c.Remember < 0 {
		return errors.New("max_batch and remember must not be negative")
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Remember == 0 {
		c.Remember = DefaultRemember
	}
	return nil
}

// MaxBatch is the most deliveries one Send takes (Config.MaxBatch).
func (s *Sender) MaxBatch() int { return s.cfg.MaxBatch }

// Close releases nothing: every Send leaves its files complete.
func (s *Sender) Close() error { return nil }

// change is a member's last change within one Send.
type change struct {
	added bool
	ids   []store.Identifier
}

// Send writes the batch's audience changes as new files. Deliveries of
// other kinds, of audiences not configured, and already written ones (by
// key) are accepted without writing anything. On failure it returns a
// *destination.Error and nothing of the batch is visible.
func (s *Sender) Send(_ context.Context, batch []destination.Delivery) error {
	if err := s.finishRenames(); err != nil {
		return fileError("finish earlier renames", err)
	}
	byAudience := map[string]map[store.ProfileID]*change{}
	order := map[string][]store.ProfileID{}
	var keys []string
	inBatch := map[string]bool{}
	for _, d := range batch {
		if d.Kind != destination.KindAudienceEntered && d.Kind != destination.KindAudienceExited {
			continue
		}
		if d.Audience == "" {
			return &destination.Error{Reject: true, Msg: fmt.Sprintf("delivery %s: %s without an audience", d.Key, d.Kind)}
		}
		if s.audiences != nil && !s.audiences[d.Audience] {
			continue
		}
		if d.Key != "" {
			if s.seen[d.Key] || inBatch[d.Key] {
				continue
			}
			inBatch[d.Key] = true
			keys = append(keys, d.Key)
		}
		m := byAudience[d.Audience]
		if m == nil {
			m = map[store.ProfileID]*change{}
			byAudience[d.Audience] = m
		}
		c := m[d.Profile]
		if c == nil {
			c = &change{}
			m[d.Profile] = c
			order[d.Audience] = append(order[d.Audience], d.Profile)
		}
		c.added = d.Kind == destination.KindAudienceEntered
		if len(d.Identifiers) > 0 {
			c.ids = d.Identifiers
		}
	}
	if len(keys) == 0 && len(byAudience) == 0 {
		return nil
	}

	seq := s.st.Seq + 1
	var pending []rename
	cleanup := func() {
		for _, r := range pending {
			os.Remove(filepath.Join(s.cfg.Dir, r.Tmp))
		}
	}
	for _, aud := range sortedKeys(byAudience) {
		for _, added := range []bool{true, false} {
			var rows []row
			for _, p := range order[aud] {
				c := byAudience[aud][p]
				if c.added != added {
					continue
				}
				if r := makeRow(s.cfg.Platform, s.cfg.Region, c.ids); !r.empty() {
					rows = append(rows, r)
				}
			}
			if len(rows) == 0 {
				continue
			}
			op := "removed"
			if added {
				op = "added"
			}
			sub := dirName(aud)
			name := fmt.Sprintf("%08d-%s.%s", seq, op, s.cfg.Format)
			r := rename{Tmp: filepath.Join(sub, ".tmp-"+name), Final: filepath.Join(sub, name)}
			var buf bytes.Buffer
			if err := encode(&buf, s.cfg.Platform, s.cfg.Format, slices.Values(rows)); err != nil {
				cleanup()
				return fileError("encode "+r.Final, err)
			}
			if err := os.MkdirAll(filepath.Join(s.cfg.Dir, sub), 0o750); err != nil {
				cleanup()
				return fileError("create directory", err)
			}
			pending = append(pending, r)
			if err := writeSynced(filepath.Join(s.cfg.Dir, r.Tmp), buf.Bytes()); err != nil {
				cleanup()
				return fileError("write "+r.Tmp, err)
			}
		}
	}

	// Commit: the state names the keys and the renames.
	next := state{Version: 1, Seq: s.st.Seq, Keys: s.st.Keys, Pending: pending}
	if len(pending) > 0 {
		next.Seq = seq
	}
	all := append(slices.Clip(s.st.Keys), keys...)
	dropped := all[:max(0, len(all)-s.cfg.Remember)]
	next.Keys = all[len(dropped):]
	if err := s.writeState(next); err != nil {
		cleanup()
		return fileError("write state", err)
	}
	for _, k := range keys {
		s.seen[k] = true
	}
	for _, k := range dropped {
		delete(s.seen, k)
	}
	s.st = next
	if err := s.finishRenames(); err != nil {
		// Committed: the renames are done on the next Send, which skips
		// these keys.
		return fileError("rename", err)
	}
	return nil
}

// Delete removes a person from the audiences of the platform, for a
// data-subject erasure request: for every audience this destination has
// written files for (each directory under Dir, among Config.Audiences when
// set), it writes the person's hashed emails and phones into the next
// <seq>-removed file, exactly as an audience exit is written (through
// Send). The sender keeps no list of members — no personal data outside
// the files —, so the person is removed from each of those audiences, also
// those they never were in, which the platforms ignore. The keys
// "deletion:<request>:<audience>" make a retry write nothing twice
// (within Config.Remember keys). A person without an email or a phone has
// nothing to remove: Delete returns nil.
func (s *Sender) Delete(ctx context.Context, d destination.Deletion) error {
	if err := d.Check(); err != nil {
		return err
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fileError("list audiences", err)
	}
	var batch []destination.Delivery
	for _, e := range entries {
		aud, ok := audienceOf(e.Name())
		if !e.IsDir() || !ok {
			continue
		}
		batch = append(batch, destination.Delivery{
			Key: "deletion:" + d.Request + ":" + aud, Kind: destination.KindAudienceExited,
			Profile: d.Profile, Audience: aud, Identifiers: d.Identifiers,
		})
	}
	return s.Send(ctx, batch)
}

// finishRenames does the pending renames of the last committed Send and
// fsyncs the directories they are in.
func (s *Sender) finishRenames() error {
	if len(s.st.Pending) == 0 {
		return nil
	}
	dirs := map[string]bool{}
	for _, r := range s.st.Pending {
		err := os.Rename(filepath.Join(s.cfg.Dir, r.Tmp), filepath.Join(s.cfg.Dir, r.Final))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		dirs[filepath.Dir(filepath.Join(s.cfg.Dir, r.Final))] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	s.st.Pending = nil
	return nil
}

// writeState replaces the state file atomically.
func (s *Sender) writeState(st state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	path := filepath.Join(s.cfg.Dir, StateFile)
	if err := writeSynced(path+".tmp", b); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	return syncDir(s.cfg.Dir)
}

// Full writes the complete membership of audience with this sender's
// configuration; see the package function Full.
func (s *Sender) Full(audience string, members iter.Seq2[Member, error]) error {
	return full(s.cfg, audience, members)
}

// Full writes the complete membership of an audience to
// <dir>/<audience>/full.<format>, replacing an earlier one atomically: the
// rows go to a temporary file that is fsynced and renamed, so a reader
// never sees a partial file. It is for a platform's "replace the list"
// upload. Phone numbers must carry their country code (as Kith stores
// them, in E.164); members without a usable email or phone are left out.
// An error from members stops the write and is returned; the earlier file
// stays.
func Full(dir, platform, format, audience string, members iter.Seq2[Member, error]) error {
	c := Config{Dir: dir, Platform: platform, Format: format}
	if err := c.check(); err != nil {
		return fmt.Errorf("export full: %w", err)
	}
	return full(c, audience, members)
}

func full(c Config, audience string, members iter.Seq2[Member, error]) error {
	if audience == "" {
		return errors.New("export full: audience is required")
	}
	sub := filepath.Join(c.Dir, dirName(audience))
	if err := os.MkdirAll(sub, 0o750); err != nil {
		return fmt.Errorf("export full: %w", err)
	}
	final := filepath.Join(sub, "full."+c.Format)
	if err := writeFull(c, sub, final, members); err != nil {
		return fmt.Errorf("export full %s: %w", final, err)
	}
	return nil
}

func writeFull(c Config, sub, final string, members iter.Seq2[Member, error]) (err error) {
	// CSV headers depend on the most identifiers a member has, known
	// only at the end: rows go to a body file first.
	body, err := os.CreateTemp(sub, ".tmp-body-*")
	if err != nil {
		return err
	}
	defer func() {
		body.Close()
		os.Remove(body.Name())
	}()
	bw := bufio.NewWriterSize(body, 1<<16)
	var shape rowShape
	var srcErr error
	rows := func(yield func(row) bool) {
		for m, err := range members {
			if err != nil {
				srcErr = err
				return
			}
			r := makeRow(c.Platform, c.Region, m.Identifiers)
			if r.empty() {
				continue
			}
			shape.fit(r)
			if !yield(r) {
				return
			}
		}
	}
	if err := encodeRows(bw, c.Platform, c.Format, rowShape{MaxPerType, MaxPerType}, rows); err != nil {
		return err
	}
	if srcErr != nil {
		return fmt.Errorf("read members: %w", srcErr)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return err
	}

	out, err := os.CreateTemp(sub, ".tmp-full-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	ow := bufio.NewWriterSize(out, 1<<16)
	if c.Format == FormatCSV {
		if err := writeHeader(ow, c.Platform, shape); err != nil {
			return err
		}
		// The body has MaxPerType columns of each: keep those used.
		cr := csv.NewReader(bufio.NewReaderSize(body, 1<<16))
		cr.FieldsPerRecord = 2 * MaxPerType
		cr.ReuseRecord = true
		cw := csv.NewWriter(ow)
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			kept := append(rec[:shape.emails:shape.emails], rec[MaxPerType:MaxPerType+shape.phones]...)
			if err := cw.Write(kept); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	} else if _, err := io.Copy(ow, body); err != nil {
		return err
	}
	if err := ow.Flush(); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(out.Name(), final); err != nil {
		return err
	}
	return syncDir(sub)
}

// row is one member's hashed identifiers.
type row struct {
	emails, phones []string
}

func (r row) empty() bool { return len(r.emails) == 0 && len(r.phones) == 0 }

// makeRow normalizes and hashes a member's emails and phones, in the
// order held, without repeats, at most MaxPerType of each.
func makeRow(platform, region string, ids []store.Identifier) row {
	var r row
	for _, id := range ids {
		switch id.Type {
		case TypeEmail:
			if v, ok := NormalizeEmail(platform, id.Value); ok && len(r.emails) < MaxPerType {
				if h := HashSHA256(v); !slices.Contains(r.emails, h) {
					r.emails = append(r.emails, h)
				}
			}
		case TypePhone:
			if v, ok := NormalizePhone(platform, id.Value, region); ok && len(r.phones) < MaxPerType {
				if h := HashSHA256(v); !slices.Contains(r.phones, h) {
					r.phones = append(r.phones, h)
				}
			}
		}
	}
	return r
}

// rowShape is how many email and phone columns a CSV file has.
type rowShape struct{ emails, phones int }

func (s *rowShape) fit(r row) {
	s.emails = max(s.emails, len(r.emails))
	s.phones = max(s.phones, len(r.phones))
}

// columns are the CSV column names of each platform's upload template.
func columns(platform string) (email, phone string) {
	if platform == PlatformGoogle {
		return "Email", "Phone"
	}
	return "email", "phone"
}

func writeHeader(w io.Writer, platform string, shape rowShape) error {
	if shape.emails == 0 && shape.phones == 0 {
		shape.emails = 1 // an empty list still names its column
	}
	e, p := columns(platform)
	var h []string
	for range shape.emails {
		h = append(h, e)
	}
	for range shape.phones {
		h = append(h, p)
	}
	cw := csv.NewWriter(w)
	cw.Write(h)
	cw.Flush()
	return cw.Error()
}

// encode writes rows with the CSV header their shape needs.
func encode(w io.Writer, platform, format string, rows iter.Seq[row]) error {
	var shape rowShape
	for r := range rows {
		shape.fit(r)
	}
	if format == FormatCSV {
		if err := writeHeader(w, platform, shape); err != nil {
			return err
		}
	}
	return encodeRows(w, platform, format, shape, rows)
}

// encodeRows writes rows as JSON lines, or as CSV records of shape's
// columns (without a header).
func encodeRows(w io.Writer, platform, format string, shape rowShape, rows iter.Seq[row]) error {
	if format == FormatJSONL {
		enc := json.NewEncoder(w)
		for r := range rows {
			if err := enc.Encode(jsonRow(platform, r)); err != nil {
				return err
			}
		}
		return nil
	}
	cw := csv.NewWriter(w)
	rec := make([]string, 0, 2*MaxPerType)
	for r := range rows {
		rec = rec[:0]
		for i := range shape.emails {
			rec = append(rec, at(r.emails, i))
		}
		for i := range shape.phones {
			rec = append(rec, at(r.phones, i))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

// metaRow and googleRow are the JSON lines of each platform.
type metaRow struct {
	Email []string `json:"EMAIL,omitempty"`
	Phone []string `json:"PHONE,omitempty"`
}

type googleIdentifier struct {
	HashedEmail       string `json:"hashedEmail,omitempty"`
	HashedPhoneNumber string `json:"hashedPhoneNumber,omitempty"`
}

type googleRow struct {
	UserIdentifiers []googleIdentifier `json:"userIdentifiers"`
}

func jsonRow(platform string, r row) any {
	if platform == PlatformMeta {
		return metaRow{Email: r.emails, Phone: r.phones}
	}
	var g googleRow
	for _, e := range r.emails {
		g.UserIdentifiers = append(g.UserIdentifiers, googleIdentifier{HashedEmail: e})
	}
	for _, p := range r.phones {
		g.UserIdentifiers = append(g.UserIdentifiers, googleIdentifier{HashedPhoneNumber: p})
	}
	return g
}

// dirName makes an audience key a safe directory name: bytes other than
// ASCII letters, digits, '-' and '_' are written %XX.
func dirName(audience string) string {
	var b strings.Builder
	for i := 0; i < len(audience); i++ {
		c := audience[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// audienceOf is the audience key whose directory is name (see dirName);
// false for a name dirName does not make.
func audienceOf(name string) (string, bool) {
	a, err := url.PathUnescape(name)
	return a, err == nil && a != "" && dirName(a) == name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	return keys
}

// writeSynced writes b to path (truncating it) and fsyncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory so that renames in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		// Some systems cannot sync directories (EINVAL); nothing to do there.
		return err
	}
	return nil
}

// fileError classifies a file system error for the delivery engine: no
// permission or a read-only file system needs an admin (Permanent); a
// full disk is retried after a minute; anything else is retried.
func fileError(what string, err error) *destination.Error {
	msg := "export: " + what + ": " + err.Error()
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return &destination.Error{Permanent: true, Msg: msg}
	case errors.Is(err, syscall.ENOSPC):
		return &destination.Error{RetryAfter: time.Minute, Msg: msg}
	}
	return &destination.Error{Msg: msg}
}
