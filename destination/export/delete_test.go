package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/store"
)

// TestDelete: a deletion writes the person's hashed identifiers into a
// removed file of every audience written so far (the configured ones,
// whose directory names are decoded back to their keys), once however
// often it is retried; other directories and files are left alone; a bad
// deletion is rejected.
func TestDelete(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSender(t, map[string]any{"dir": dir, "platform": "meta", "audiences": []string{"vip", "vip.eu", "churned"}})
	ctx := context.Background()
	if err := s.Send(ctx, []destination.Delivery{
		entered(1, "vip", 1, email("ada@example.com")), entered(2, "vip.eu", 2, email("bob@example.com")),
	}); err != nil {
		t.Fatal(err)
	}
	// Not the sender's: a stray directory, an undecodable name, a file.
	for _, d := range []string{"other", "bad%zz"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	d := destination.Deletion{Request: "req-1", Workspace: "acme", Profile: 1,
		Identifiers: []store.Identifier{{Type: "user_id", Value: "u1"}, email("Ada@Example.com"), phone("+44 7700 900123")}}
	for range 2 {
		if err := s.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"notes.txt", "vip/00000001-added.csv", "vip/00000002-removed.csv",
		"vip%2Eeu/00000001-added.csv", "vip%2Eeu/00000002-removed.csv"}
	if got := files(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	row := "email,phone\n" + hAda + "," + hPhMet + "\n"
	for _, f := range []string{"vip/00000002-removed.csv", "vip%2Eeu/00000002-removed.csv"} {
		if got := read(t, filepath.Join(dir, f)); got != row {
			t.Errorf("%s: %q, want %q", f, got, row)
		}
	}

	// No email or phone: nothing to remove. No identifier: rejected.
	if err := s.Delete(ctx, destination.Deletion{Request: "req-2", Identifiers: []store.Identifier{{Type: "user_id", Value: "u2"}}}); err != nil {
		t.Fatal(err)
	}
	var de *destination.Error
	if err := s.Delete(ctx, destination.Deletion{Request: "req-3"}); !errors.As(err, &de) || !de.Reject {
		t.Fatalf("Delete naming no identifier: %v, want a Reject", err)
	}
	if got := files(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v after deletions without email or phone, want %v", got, want)
	}
}

// TestAudienceOf: directory names decode back to the keys dirName made
// them from, and names it does not make decode to nothing.
func TestAudienceOf(t *testing.T) {
	t.Parallel()
	for _, a := range []string{"vip", "../etc", "vip.eu", "a%b", "é", "100%"} {
		if got, ok := audienceOf(dirName(a)); !ok || got != a {
			t.Errorf("audienceOf(dirName(%q)) = %q, %v", a, got, ok)
		}
	}
	for _, name := range []string{"", "%", "%2", "%zz", "%2e%2e", "a.b", "%61"} {
		if got, ok := audienceOf(name); ok {
			t.Errorf("audienceOf(%q) = %q: want no audience", name, got)
		}
	}
}
