package egress_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/kithcdp/kith/egress"
)

// fakeResolver answers from a map, so tests can make a name resolve to any
// address without DNS.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// receiver is a local server that counts its requests.
func receiver(t *testing.T) (*httptest.Server, *int) {
	t.Helper()
	var hits int
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		hits++
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &hits
}

func port(t *testing.T, srv *httptest.Server) string {
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// TestRefused sends real requests to forbidden hosts and checks that the
// dial is refused with ErrForbiddenAddress and the address in the message.
// The port is a live local receiver's, so a request that got through would
// succeed instead of failing for another reason.
func TestRefused(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t)
	p := port(t, srv)
	client := egress.New(egress.Options{Resolver: fakeResolver{
		"localhost":        {"127.0.0.1", "::1"},
		"intranet.example": {"10.0.0.5"},
		"mixed.example":    {"93.184.216.34", "192.168.1.1"},
		"mapped.example":   {"::ffff:127.0.0.1"},
	}})
	tests := []struct {
		host string
		want string // in the error message
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.9.9.9", "loopback"},
		{"localhost", "127.0.0.1"},
		{"169.254.169.254", "169.254.169.254"},
		{"[::ffff:10.0.0.1]", "::ffff:10.0.0.1"},
		{"[::ffff:127.0.0.1]", "IPv4-mapped form of 127.0.0.1"},
		{"[::1]", "::1"},
		{"[::]", "unspecified"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"0.0.0.0", "0.0.0.0"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"192.168.0.1", "private"},
		{"[fd00::1]", "unique local"},
		{"[fe80::1]", "link-local"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"[64:ff9b::10.0.0.1]", "NAT64 form of 10.0.0.1"},
		{"[64:ff9b::7f00:1]", "NAT64 form of 127.0.0.1"},
		{"[2002:a9fe:a9fe::1]", "6to4 form of 169.254.169.254"},
		// Names ending in a number: 2130706433 is 127.0.0.1 to the C
		// resolver (inet_aton), 0177.0.0.1 and 0x7f.1 likewise.
		{"2130706433", "2130706433"},
		{"0177.0.0.1", "0177.0.0.1"},
		{"0x7f.1", "0x7f.1"},
		{"127.1", "127.1"},
		{"intranet.example", "intranet.example (10.0.0.5)"},
		{"mixed.example", "mixed.example (192.168.1.1)"},
		{"mapped.example", "mapped.example (127.0.0.1)"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			resp, err := client.Get("http://" + tt.host + ":" + p + "/")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s: got status %d, want a refused dial", tt.host, resp.StatusCode)
			}
			if !errors.Is(err, egress.ErrForbiddenAddress) {
				t.Fatalf("GET %s: error %v is not ErrForbiddenAddress", tt.host, err)
			}
			var fe *egress.ForbiddenError
			if !errors.As(err, &fe) {
				t.Fatalf("GET %s: error %v is not a *ForbiddenError", tt.host, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("GET %s: error %q does not mention %q", tt.host, err, tt.want)
			}
		})
	}
	if *hits != 0 {
		t.Errorf("the receiver was reached %d times", *hits)
	}
}

// TestLocalhostRealResolver resolves "localhost" with the system's resolver.
func TestLocalhostRealResolver(t *testing.T) {
	t.Parallel()
	srv, _ := receiver(t)
	_, err := egress.New(egress.Options{}).Get("http://localhost:" + port(t, srv) + "/")
	if !errors.Is(err, egress.ErrForbiddenAddress) {
		t.Fatalf("GET localhost: %v, want ErrForbiddenAddress", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		allowed bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"93.184.216.34", true},
		{"2606:4700:4700::1111", true},
		{"::ffff:8.8.8.8", true},
		{"64:ff9b::8.8.8.8", true},
		{"2002:808:808::1", true}, // 6to4 of 8.8.8.8
		{"172.32.0.1", true},      // just outside 172.16/12
		{"100.128.0.1", true},     // just outside 100.64/10
		{"127.0.0.1", false},
		{"0.1.2.3", false},
		{"169.254.0.1", false},
		{"198.18.0.1", false},
		{"::ffff:0:10.0.0.1", false}, // IPv4-translated
		{"::10.0.0.1", false},        // IPv4-compatible
		{"64:ff9b:1::1", false},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false}, // Teredo
		{"fe80::1%eth0", false},
		{"ff02::1", false},
		{"fec0::1", false},
	}
	var o egress.Options
	for _, tt := range tests {
		err := o.Check(netip.MustParseAddr(tt.addr))
		if (err == nil) != tt.allowed {
			t.Errorf("Check(%s) = %v, want allowed=%v", tt.addr, err, tt.allowed)
		}
		if err != nil && !errors.Is(err, egress.ErrForbiddenAddress) {
			t.Errorf("Check(%s) = %v, not ErrForbiddenAddress", tt.addr, err)
		}
	}
}

func TestAllowLoopback(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t)
	client := egress.New(egress.Options{AllowLoopback: true})
	for _, u := range []string{srv.URL + "/", "http://localhost:" + port(t, srv) + "/", "http://[::ffff:127.0.0.1]:" + port(t, srv) + "/"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", u, resp.StatusCode)
		}
	}
	if *hits != 3 {
		t.Errorf("hits = %d, want 3", *hits)
	}
	// Loopback only: private ranges stay refused.
	o := egress.Options{AllowLoopback: true}
	if err := o.Check(netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("AllowLoopback allowed 10.0.0.1")
	}
	if err := o.Check(netip.MustParseAddr("169.254.169.254")); err == nil {
		t.Error("AllowLoopback allowed 169.254.169.254")
	}
}

func TestAllowPrivate(t *testing.T) {
	t.Parallel()
	o := egress.Options{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd12::/16")}}
	for addr, allowed := range map[string]bool{
		"10.20.3.4":          true,
		"::ffff:10.20.3.4":   true, // the exception holds for the mapped form
		"fd12::1":            true,
		"10.21.0.1":          false,
		"fd13::1":            false,
		"127.0.0.1":          false,
		"169.254.169.254":    false,
		"::ffff:10.21.0.1":   false,
		"64:ff9b::a14:304":   true, // NAT64 of 10.20.3.4
		"192.168.10.10":      false,
		"8.8.8.8":            true,
		"::ffff:192.168.0.1": false,
	} {
		if err := o.Check(netip.MustParseAddr(addr)); (err == nil) != allowed {
			t.Errorf("Check(%s) = %v, want allowed=%v", addr, err, allowed)
		}
	}

	// A real request to a name that resolves into an allowed prefix.
	srv, hits := receiver(t)
	client := egress.New(egress.Options{
		AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Resolver:     fakeResolver{"office.example": {"127.0.0.1"}},
	})
	resp, err := client.Get("http://office.example:" + port(t, srv) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if *hits != 1 {
		t.Errorf("hits = %d, want 1", *hits)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t)
	resp, err := egress.New(egress.Options{AllowLoopback: true}).Get(srv.URL + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status %d, want 302 returned as is", resp.StatusCode)
	}
	if resp.Header.Get("Location") != "/" {
		t.Errorf("Location %q", resp.Header.Get("Location"))
	}
	if *hits != 0 {
		t.Errorf("the redirect was followed")
	}
}

func TestNoProxyFromEnvironment(t *testing.T) {
	t.Parallel()
	c := egress.New(egress.Options{})
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T", c.Transport)
	}
	if tr.Proxy != nil {
		t.Error("the transport has a proxy function; proxies from the environment must be ignored")
	}
	if c.Timeout != egress.DefaultTimeout {
		t.Errorf("timeout %v, want %v", c.Timeout, egress.DefaultTimeout)
	}
}

func TestDialContextDirect(t *testing.T) {
	t.Parallel()
	var o egress.Options
	_, err := o.DialContext(context.Background(), "tcp", "169.254.169.254:80")
	if !errors.Is(err, egress.ErrForbiddenAddress) || !strings.Contains(err.Error(), "169.254.169.254") {
		t.Fatalf("DialContext: %v", err)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "8.8.8.8", "fe80::1%lo"} {
		f.Add(s)
	}
	var o egress.Options
	f.Fuzz(func(t *testing.T, s string) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		err = o.Check(a)
		// Any form of a refused IPv4 address is refused.
		if a.Is4() && err != nil {
			if o.Check(netip.AddrFrom16(a.As16())) == nil {
				t.Errorf("%s refused but its mapped form allowed", a)
			}
		}
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
			if err == nil {
				t.Errorf("%s allowed", a)
			}
		}
	})
}
