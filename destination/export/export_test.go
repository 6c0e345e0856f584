package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/store"
)

func openSender(t testing.TB, cfg map[string]any) *Sender {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	s, err := New(raw)
	if err != nil {
		t.Fatalf("New(%s): %v", raw, err)
	}
	return s.(*Sender)
}

func email(v string) store.Identifier { return store.Identifier{Type: TypeEmail, Value: v} }
func phone(v string) store.Identifier { return store.Identifier{Type: TypePhone, Value: v} }

func entered(pos int64, aud string, p store.ProfileID, ids ...store.Identifier) destination.Delivery {
	return destination.Delivery{Key: fmt.Sprintf("ads:%d:audience_entered:%s", pos, aud), Kind: destination.KindAudienceEntered,
		Position: pos, Profile: p, Audience: aud, Identifiers: ids}
}

func exited(pos int64, aud string, p store.ProfileID, ids ...store.Identifier) destination.Delivery {
	d := entered(pos, aud, p, ids...)
	d.Kind, d.Key = destination.KindAudienceExited, fmt.Sprintf("ads:%d:audience_exited:%s", pos, aud)
	return d
}

// files lists the files under dir (relative, sorted), the state file
// excepted.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() && d.Name() != StateFile {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func read(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	hAda   = HashSHA256("ada@example.com")
	hAda2  = HashSHA256("ada@work.example")
	hBob   = HashSHA256("bob@example.com")
	hCy    = HashSHA256("cy@example.com")
	hPhMet = HashSHA256("447700900123")  // Meta: digits, country code, no '+'
	hPhGoo = HashSHA256("+447700900123") // Google: E.164
)

func TestSendWritesIncrementalFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSender(t, map[string]any{"dir": dir, "platform": "meta", "audiences": []string{"vip"}})
	batch := []destination.Delivery{
		entered(1, "vip", 1, email("Ada@Example.com "), phone("+44 7700 900123"), email("ada@work.example"), store.Identifier{Type: "user_id", Value: "u1"}),
		{Key: "ads:2:event", Kind: destination.KindEvent, Position: 2, Profile: 1},
		entered(3, "vip", 2, email("bob@example.com")),
		exited(4, "vip", 3, email("cy@example.com")),
		entered(5, "churned", 4, email("dan@example.com")), // not configured
		entered(6, "vip", 5, store.Identifier{Type: "user_id", Value: "u5"}),
		// Entered then left within the batch: its last change counts.
		entered(7, "vip", 6, email("eve@example.com")),
		exited(8, "vip", 6, email("eve@example.com")),
	}
	if err := s.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, dir), []string{"vip/00000001-added.csv", "vip/00000001-removed.csv"}; !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	wantAdded := "email,email,phone\n" + hAda + "," + hAda2 + "," + hPhMet + "\n" + hBob + ",,\n"
	if got := read(t, filepath.Join(dir, "vip/00000001-added.csv")); got != wantAdded {
		t.Errorf("added:\n%s\nwant:\n%s", got, wantAdded)
	}
	wantRemoved := "email\n" + hCy + "\n" + HashSHA256("eve@example.com") + "\n"
	if got := read(t, filepath.Join(dir, "vip/00000001-removed.csv")); got != wantRemoved {
		t.Errorf("removed:\n%s\nwant:\n%s", got, wantRemoved)
	}

	// The next batch gets the next number.
	if err := s.Send(context.Background(), []destination.Delivery{exited(9, "vip", 2, email("bob@example.com"))}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "vip/00000002-removed.csv")); got != "email\n"+hBob+"\n" {
		t.Errorf("second batch: %q", got)
	}
}

func TestRedeliveryNotWrittenTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := map[string]any{"dir": dir, "platform": "google", "format": "jsonl"}
	s := openSender(t, cfg)
	ctx := context.Background()
	first := []destination.Delivery{entered(1, "vip", 1, email("ada@example.com")), entered(2, "vip", 2, email("bob@example.com"))}
	if err := s.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The same batch again (a retry after a lost acknowledgement), and
	// after a restart: nothing new.
	if err := s.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	s = openSender(t, cfg)
	if err := s.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"vip/00000001-added.jsonl"}) {
		t.Fatalf("files after redeliveries: %v", got)
	}
	// An overlapping batch writes only what is new.
	if err := s.Send(ctx, append(first[1:], entered(3, "vip", 3, email("cy@example.com")))); err != nil {
		t.Fatal(err)
	}
	var line struct {
		UserIdentifiers []map[string]string `json:"userIdentifiers"`
	}
	got := read(t, filepath.Join(dir, "vip/00000002-added.jsonl"))
	if err := json.Unmarshal([]byte(got), &line); err != nil || len(line.UserIdentifiers) != 1 || line.UserIdentifiers[0]["hashedEmail"] != hCy {
		t.Fatalf("overlapping batch wrote %q (%v)", got, err)
	}
}

func TestRememberBoundsState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSender(t, map[string]any{"dir": dir, "platform": "meta", "remember": 3})
	for i := range int64(5) {
		if err := s.Send(context.Background(), []destination.Delivery{entered(i, "vip", store.ProfileID(i), email("a@b.c"))}); err != nil {
			t.Fatal(err)
		}
	}
	var st state
	if err := json.Unmarshal([]byte(read(t, filepath.Join(dir, StateFile))), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Keys) != 3 || st.Keys[2] != entered(4, "vip", 4).Key || st.Seq != 5 || len(s.seen) != 3 {
		t.Fatalf("state %+v, %d seen", st, len(s.seen))
	}
}

// TestCrash simulates the two crash points of a Send: before its state
// commit (temporary files only) and after it (renames not done).
func TestCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	batch := []destination.Delivery{entered(1, "vip", 1, email("ada@example.com"))}

	t.Run("before commit", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		// A crashed Send left a temporary file, possibly partial.
		os.MkdirAll(filepath.Join(dir, "vip"), 0o750)
		os.WriteFile(filepath.Join(dir, "vip", ".tmp-00000001-added.csv"), []byte("email\nabc"), 0o640)
		os.WriteFile(filepath.Join(dir, StateFile+".tmp"), []byte("{"), 0o640)
		s := openSender(t, map[string]any{"dir": dir, "platform": "meta"})
		if got := files(t, dir); len(got) != 0 {
			t.Fatalf("stale temporary files kept: %v", got)
		}
		if err := s.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(dir, "vip/00000001-added.csv")); got != "email\n"+hAda+"\n" {
			t.Fatalf("after redelivery: %q", got)
		}
	})

	t.Run("after commit", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := openSender(t, map[string]any{"dir": dir, "platform": "meta"})
		if err := s.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
		// Undo the rename and record it as pending, as a crash right
		// after the commit leaves things.
		final := filepath.Join(dir, "vip/00000001-added.csv")
		tmp := filepath.Join(dir, "vip/.tmp-00000001-added.csv")
		if err := os.Rename(final, tmp); err != nil {
			t.Fatal(err)
		}
		st := s.st
		st.Pending = []rename{{Tmp: "vip/.tmp-00000001-added.csv", Final: "vip/00000001-added.csv"}}
		if err := s.writeState(st); err != nil {
			t.Fatal(err)
		}
		s = openSender(t, map[string]any{"dir": dir, "platform": "meta"})
		if got := files(t, dir); !slices.Equal(got, []string{"vip/00000001-added.csv"}) {
			t.Fatalf("after restart: %v", got)
		}
		// The redelivered batch is not written again.
		if err := s.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if got := files(t, dir); len(got) != 1 {
			t.Fatalf("after redelivery: %v", got)
		}
	})
}

func TestGoogleCSVAndJSONL(t *testing.T) {
	t.Parallel()
	batch := []destination.Delivery{entered(1, "vip", 1, email("ada@example.com"), phone("+447700900123"))}
	dir := t.TempDir()
	if err := openSender(t, map[string]any{"dir": dir, "platform": "google"}).Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, filepath.Join(dir, "vip/00000001-added.csv")), "Email,Phone\n"+hAda+","+hPhGoo+"\n"; got != want {
		t.Errorf("google csv %q, want %q", got, want)
	}
	dir = t.TempDir()
	if err := openSender(t, map[string]any{"dir": dir, "platform": "google", "format": "jsonl"}).Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := `{"userIdentifiers":[{"hashedEmail":"` + hAda + `"},{"hashedPhoneNumber":"` + hPhGoo + `"}]}` + "\n"
	if got := read(t, filepath.Join(dir, "vip/00000001-added.jsonl")); got != want {
		t.Errorf("google jsonl %q, want %q", got, want)
	}
	dir = t.TempDir()
	if err := openSender(t, map[string]any{"dir": dir, "platform": "meta", "format": "jsonl"}).Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want = `{"EMAIL":["` + hAda + `"],"PHONE":["` + hPhMet + `"]}` + "\n"
	if got := read(t, filepath.Join(dir, "vip/00000001-added.jsonl")); got != want {
		t.Errorf("meta jsonl %q, want %q", got, want)
	}
}

func TestAudienceDirNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSender(t, map[string]any{"dir": dir, "platform": "meta"})
	if err := s.Send(context.Background(), []destination.Delivery{entered(1, "../etc", 1, email("a@b.c")), entered(2, "vip.eu", 2, email("a@b.c"))}); err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, dir), []string{"%2E%2E%2Fetc/00000001-added.csv", "vip%2Eeu/00000001-added.csv"}; !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
}

func TestMissingAudienceIsReject(t *testing.T) {
	t.Parallel()
	s := openSender(t, map[string]any{"dir": t.TempDir(), "platform": "meta"})
	d := entered(1, "", 1, email("a@b.c"))
	err := s.Send(context.Background(), []destination.Delivery{d})
	var de *destination.Error
	if !errors.As(err, &de) || !de.Reject {
		t.Fatalf("Send without an audience: %v, want Reject", err)
	}
}

func members(ms ...Member) iter.Seq2[Member, error] {
	return func(yield func(Member, error) bool) {
		for _, m := range ms {
			if !yield(m, nil) {
				return
			}
		}
	}
}

func TestFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	err := Full(dir, PlatformMeta, FormatCSV, "vip", members(
		Member{1, []store.Identifier{email("ada@example.com"), email("ada@work.example")}},
		Member{2, []store.Identifier{{Type: "user_id", Value: "u2"}}}, // nothing to match: left out
		Member{3, []store.Identifier{email("bob@example.com")}},
	))
	if err != nil {
		t.Fatal(err)
	}
	want := "email,email\n" + hAda + "," + hAda2 + "\n" + hBob + ",\n"
	if got := read(t, filepath.Join(dir, "vip/full.csv")); got != want {
		t.Fatalf("full:\n%s\nwant:\n%s", got, want)
	}

	// A failing source leaves the earlier file as it was, and no
	// temporary file.
	boom := errors.New("store closed")
	err = Full(dir, PlatformMeta, FormatCSV, "vip", func(yield func(Member, error) bool) {
		if yield(Member{4, []store.Identifier{email("cy@example.com")}}, nil) {
			yield(Member{}, boom)
		}
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Full with a failing source: %v", err)
	}
	if got := read(t, filepath.Join(dir, "vip/full.csv")); got != want {
		t.Fatalf("earlier full file changed: %q", got)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"vip/full.csv"}) {
		t.Fatalf("files %v", got)
	}

	// Replaced atomically; Google JSONL; an empty audience.
	if err := Full(dir, PlatformGoogle, FormatJSONL, "vip", members(Member{5, []store.Identifier{phone("+447700900123")}})); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "vip/full.jsonl")); got != `{"userIdentifiers":[{"hashedPhoneNumber":"`+hPhGoo+`"}]}`+"\n" {
		t.Fatalf("google full: %q", got)
	}
	if err := Full(dir, PlatformGoogle, FormatCSV, "empty", members()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "empty/full.csv")); got != "Email\n" {
		t.Fatalf("empty full: %q", got)
	}
	if err := Full(dir, "tiktok", FormatCSV, "vip", members()); err == nil {
		t.Fatal("Full with an unknown platform succeeded")
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, cfg := range []string{
		`{}`,
		`{"dir":"` + dir + `"}`,
		`{"dir":"` + dir + `","platform":"tiktok"}`,
		`{"dir":"` + dir + `","platform":"meta","format":"xlsx"}`,
		`{"dir":"` + dir + `","platform":"meta","audiences":[""]}`,
		`{"dir":"` + dir + `","platform":"meta","region":"usa"}`,
		`{"dir":"` + dir + `","platform":"meta","max_batch":-1}`,
		`{"dir":"` + dir + `","platform":"meta","plaform":"typo"}`,
		`{"platform":"meta"}`,
		`{"dir":"` + dir + `","platform":"meta"`,
	} {
		if _, err := New(json.RawMessage(cfg)); err == nil {
			t.Errorf("New(%s) succeeded, want an error", cfg)
		}
	}
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o640)
	if _, err := New(json.RawMessage(`{"dir":"` + filepath.Join(dir, "file") + `","platform":"meta"}`)); err == nil {
		t.Error("New with a file as dir succeeded")
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, StateFile), []byte("not json"), 0o640)
	if _, err := New(json.RawMessage(`{"dir":"` + bad + `","platform":"meta"}`)); err == nil || !strings.Contains(err.Error(), "state file") {
		t.Errorf("New with a corrupt state file: %v", err)
	}
}

func TestFileErrorClasses(t *testing.T) {
	t.Parallel()
	wrap := func(e error) error { return &fs.PathError{Op: "open", Path: "/x", Err: e} }
	if e := fileError("write", wrap(syscall.EACCES)); !e.Permanent {
		t.Error("EACCES not permanent")
	}
	if e := fileError("write", wrap(syscall.EROFS)); !e.Permanent {
		t.Error("EROFS not permanent")
	}
	if e := fileError("write", wrap(syscall.ENOSPC)); e.Permanent || e.Reject || e.RetryAfter == 0 {
		t.Errorf("ENOSPC: %+v", e)
	}
	if e := fileError("write", wrap(syscall.EIO)); e.Permanent || e.Reject {
		t.Errorf("EIO: %+v", e)
	}
}

// BenchmarkSend writes batches of 1000 audience entries (one email and
// one phone each, Meta CSV), each batch a new fsynced file and state.
func BenchmarkSend(b *testing.B) {
	s := openSender(b, map[string]any{"dir": b.TempDir(), "platform": "meta", "region": "GB"})
	ctx := context.Background()
	var pos int64
	b.ReportAllocs()
	for b.Loop() {
		batch := make([]destination.Delivery, 1000)
		for i := range batch {
			pos++
			batch[i] = entered(pos, "vip", store.ProfileID(pos), email(fmt.Sprintf("user%d@example.com", pos)), phone(fmt.Sprintf("+4477009%05d", pos%100000)))
		}
		if err := s.Send(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(pos)/b.Elapsed().Seconds(), "deliveries/s")
}
