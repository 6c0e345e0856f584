package portal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzValidEmail: any input is refused or turned into one plain,
// lower-case address without line breaks.
func FuzzValidEmail(f *testing.F) {
	for _, s := range []string{"ada@example.com", " Ada@Example.COM ", "a <b@c.d>", "a@b.c\r\nBcc: x@y.z", "\"a b\"@c.de", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := validEmail(s)
		if err != nil {
			return
		}
		if got != strings.ToLower(got) || strings.ContainsAny(got, "\r\n<>,; ") || len(got) > 254 || !strings.Contains(got, "@") {
			t.Errorf("validEmail(%q) = %q", s, got)
		}
	})
}

// FuzzSessionCookie: any cookie value gives a usable session — the one
// sealed, or a fresh anonymous one — and never a signed-in session that
// the portal's key did not seal.
func FuzzSessionCookie(f *testing.F) {
	k, err := newKeys([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	p := &Portal{keys: k}
	sealed := k.sealValue([]byte(`{"sid":"s1","email":"ada@example.com","start":1,"seen":1}`), "session:acme")
	for _, s := range []string{"", "x", sealed, sealed[:len(sealed)-1], strings.Repeat("A", 100)} {
		f.Add(s)
	}
	now := time.Unix(100, 0)
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest("GET", "/portal/acme/", nil)
		r.AddCookie(&http.Cookie{Name: cookieName, Value: value})
		s, _ := p.loadSession(r, "acme", now)
		if s == nil || s.SID == "" {
			t.Fatalf("no session for %q", value)
		}
		if _, err := k.openValue(value, "session:acme"); s.signedIn() && err != nil {
			t.Errorf("cookie %q, not sealed by the portal, signed in as %q", value, s.Email)
		}
	})
}
