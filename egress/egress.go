// Package egress is Kith's outbound HTTP client: the one every destination
// uses to call a URL that an admin typed into a configuration.
//
// A URL from configuration is outside input. Without a guard, a workspace
// admin could point a webhook at http://169.254.169.254/latest/meta-data/
// (the cloud metadata service, which hands out credentials), at
// http://localhost:6060/debug/pprof, at a database's HTTP port on the
// private network, or at a name whose DNS answer is one of those. This is
// server-side request forgery (SSRF); the client returned by New refuses
// it by default.
//
// # What is refused, and where
//
// The check runs at dial time, after DNS resolution, on every address the
// name resolves to; the connection is then made to the checked address
// itself, so the name is never resolved a second time (no time-of-check to
// time-of-use gap for DNS rebinding to use). A second check in the
// dialer's Control hook sees the address of every socket actually
// connected. If any address of a name is refused, the whole name is
// refused: a name that answers both a public and a private address is a
// rebinding attempt, not a misconfiguration to work around.
//
// Refused ranges (IPv4):
//
//	0.0.0.0/8        "this network"; 0.0.0.0 reaches the local host on Linux
//	10.0.0.0/8       private (RFC 1918)
//	100.64.0.0/10    carrier-grade NAT, shared address space (RFC 6598)
//	127.0.0.0/8      loopback
//	169.254.0.0/16   link-local, including 169.254.169.254, cloud metadata
//	172.16.0.0/12    private (RFC 1918)
//	192.0.0.0/24     IETF protocol assignments (RFC 6890)
//	192.0.2.0/24     documentation (TEST-NET-1), and the other two:
//	198.51.100.0/24  documentation (TEST-NET-2)
//	203.0.113.0/24   documentation (TEST-NET-3)
//	192.88.99.0/24   6to4 relay anycast (deprecated)
//	192.168.0.0/16   private (RFC 1918)
//	198.18.0.0/15    benchmarking (RFC 2544), used inside data centres
//	224.0.0.0/4      multicast
//	240.0.0.0/4      reserved, including 255.255.255.255, broadcast
//
// Refused ranges (IPv6):
//
//	::/128           unspecified
//	::1/128          loopback
//	::/96            IPv4-compatible (deprecated)
//	100::/64         discard-only
//	2001::/32        Teredo (embeds an obfuscated IPv4 address)
//	2001:db8::/32    documentation
//	64:ff9b:1::/48   local-use NAT64 (RFC 8215)
//	fc00::/7         unique local (the IPv6 private range)
//	fe80::/10        link-local
//	fec0::/10        site-local (deprecated)
//	ff00::/8         multicast
//
// IPv6 forms that carry an IPv4 address are judged by that IPv4 address:
// IPv4-mapped ::ffff:a.b.c.d (so [::ffff:127.0.0.1] is loopback and
// [::ffff:10.0.0.1] private), IPv4-translated ::ffff:0:a.b.c.d, NAT64
// 64:ff9b::a.b.c.d (a NAT64 gateway would forward to a.b.c.d) and 6to4
// 2002:aabb:ccdd::/48.
//
// Host names whose last label is a number (2130706433, 0x7f.1, 0177.0.0.1)
// are refused before any lookup: the C library's resolver reads them as
// IPv4 addresses in decimal, hex or octal (2130706433 is 127.0.0.1), while
// Go's URL and address parsers do not, so a check that trusted the parser
// and a resolver that did not would disagree. Browsers (the WHATWG URL
// standard) treat such hosts as IPv4 addresses too.
//
// # What else the client does
//
// Redirects are not followed: the client returns the 3xx response itself,
// because a redirect to http://169.254.169.254/ is the classic way around a
// check made on the first URL only, and because a destination whose URL
// moved should be reconfigured, not silently followed. Proxy settings from
// the environment (HTTP_PROXY, HTTPS_PROXY) are ignored: a proxy would make
// the connection to a checked address meaningless. Every request has a
// Timeout (10 s unless set).
//
// # Exceptions
//
// Options.AllowPrivate lists prefixes an operator has chosen to reach (a
// webhook receiver on the office network, say); an address inside one is
// allowed whatever range it is in, so list the narrowest prefix that
// works. Options.AllowLoopback allows loopback addresses, for tests whose
// receiver is an httptest server; it is never on by default.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is matched (errors.Is) by every error of a refused
// connection, however deep the HTTP client wraps it.
var ErrForbiddenAddress = errors.New("forbidden address")

// ForbiddenError is a refused connection: Host (as asked for, possibly a
// name) resolved to, or is, Addr, which lies in a refused range.
type ForbiddenError struct {
	Host   string     // the host as given to the dialer
	Addr   netip.Addr // the refused address (invalid if Host was refused as a name)
	Reason string     // which range, e.g. "link-local (cloud metadata lives at 169.254.169.254)"
}

// Error names the host, the address and the range it lies in.
func (e *ForbiddenError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("egress: refusing to connect to %s: %s: %s", e.Host, ErrForbiddenAddress, e.Reason)
	}
	if e.Host == "" || e.Host == e.Addr.String() {
		return fmt.Sprintf("egress: refusing to connect to %s: %s: %s", e.Addr, ErrForbiddenAddress, e.Reason)
	}
	return fmt.Sprintf("egress: refusing to connect to %s (%s): %s: %s", e.Host, e.Addr, ErrForbiddenAddress, e.Reason)
}

// Is reports whether target is ErrForbiddenAddress.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbiddenAddress }

// Resolver looks host names up. *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures New. The zero value is the safe default.
type Options struct {
	// Timeout bounds each request, from dial to the end of the response
	// body. Zero means 10 s.
	Timeout time.Duration
	// AllowPrivate lists prefixes that may be reached although they lie in
	// a refused range (explicit exceptions from the configuration).
	AllowPrivate []netip.Prefix
	// AllowLoopback allows 127.0.0.0/8 and ::1 (and their IPv4-mapped
	// forms). For tests against a local server; never set it in
	// production.
	AllowLoopback bool
	// Resolver looks names up; nil means net.DefaultResolver.
	Resolver Resolver
}

// DefaultTimeout is the request timeout when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// New returns an HTTP client that refuses forbidden addresses at dial time,
// does not follow redirects, ignores proxy settings from the environment
// and times every request out after o.Timeout.
func New(o Options) *http.Client {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	t := &http.Transport{
		Proxy:                 nil, // never from the environment
		DialContext:           o.DialContext,
		ForceAttemptHTTP2:     true, // a custom DialContext turns HTTP/2 off otherwise
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// DialContext connects to address ("host:port") as net.Dialer does, but
// resolves host itself, checks every address with Check, and connects to
// the checked addresses only. Transports other than HTTP (a message
// broker's client, say) can use it as their dial function.
func (o Options) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("egress: dial %s: %w", address, err)
	}
	addrs, err := o.resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{
		Timeout:   o.dialTimeout(),
		KeepAlive: 30 * time.Second,
		// The last word: whatever address a socket is about to connect to
		// is checked, so no path around resolve can reach a refused one.
		Control: func(_, hostport string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(hostport)
			if err != nil {
				return &ForbiddenError{Host: hostport, Reason: "the dialer was given an address that is not an IP address"}
			}
			if err := o.Check(ap.Addr()); err != nil {
				return err
			}
			return nil
		},
	}
	var first error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

func (o Options) dialTimeout() time.Duration {
	if o.Timeout > 0 && o.Timeout < 30*time.Second {
		return o.Timeout
	}
	return 30 * time.Second
}

// resolve turns host into addresses, every one of them allowed, or fails
// with a *ForbiddenError naming the first refused one.
func (o Options) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if err := o.Check(a); err != nil {
			return nil, err
		}
		return []netip.Addr{a}, nil
	}
	if numericName(host) {
		return nil, &ForbiddenError{Host: host, Reason: "a host name ending in a number is an IPv4 address in decimal, hex or octal to the C resolver and to browsers"}
	}
	r := o.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ipnet := "ip"
	switch network {
	case "tcp4", "udp4":
		ipnet = "ip4"
	case "tcp6", "udp6":
		ipnet = "ip6"
	}
	addrs, err := r.LookupNetIP(ctx, ipnet, host)
	if err != nil {
		return nil, fmt.Errorf("egress: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("egress: resolve %s: no addresses", host)
	}
	for i, a := range addrs {
		// Go's resolver may answer IPv4 addresses in their IPv4-mapped
		// form; dial (and report) the plain IPv4 address.
		a = a.Unmap()
		addrs[i] = a
		if err := o.Check(a); err != nil {
			var fe *ForbiddenError
			if errors.As(err, &fe) {
				fe.Host = host
			}
			return nil, err
		}
	}
	return addrs, nil
}

// numericName reports whether host's last dot-separated label is a number
// in decimal, or hex with 0x (the WHATWG URL standard's "ends in a number"
// test). Such a host is an IPv4 address to inet_aton and to browsers.
func numericName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") || strings.HasPrefix(last, "0X") {
		last = last[2:]
		for i := 0; i < len(last); i++ {
			c := last[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return true
}

// Check returns nil if a may be connected to under o, and a
// *ForbiddenError (matching ErrForbiddenAddress) if not.
func (o Options) Check(a netip.Addr) error {
	a = a.WithZone("")
	if !a.IsValid() {
		return &ForbiddenError{Reason: "not an IP address"}
	}
	for _, p := range o.AllowPrivate {
		if p.Contains(a) {
			return nil
		}
	}
	reason, loopback := refused(a)
	if reason == "" {
		return nil
	}
	if loopback && o.AllowLoopback {
		return nil
	}
	if v4, ok := embedded(a); ok {
		// An exception for the IPv4 address holds for its IPv6 forms.
		for _, p := range o.AllowPrivate {
			if p.Contains(v4) {
				return nil
			}
		}
	}
	return &ForbiddenError{Addr: a, Reason: reason}
}

type rng struct {
	p      netip.Prefix
	reason string
}

var (
	loop4 = netip.MustParsePrefix("127.0.0.0/8")
	loop6 = netip.MustParsePrefix("::1/128")

	refused4 = []rng{
		{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (0.0.0.0 reaches the local host)"},
		{netip.MustParsePrefix("10.0.0.0/8"), "private network (RFC 1918)"},
		{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT shared space (RFC 6598)"},
		{loop4, "loopback"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata lives at 169.254.169.254)"},
		{netip.MustParsePrefix("172.16.0.0/12"), "private network (RFC 1918)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation (TEST-NET-1)"},
		{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
		{netip.MustParsePrefix("192.168.0.0/16"), "private network (RFC 1918)"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation (TEST-NET-2)"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation (TEST-NET-3)"},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	}
	refused6 = []rng{
		{netip.MustParsePrefix("::/128"), "unspecified address"},
		{loop6, "loopback"},
		{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 (deprecated)"},
		{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
		{netip.MustParsePrefix("2001::/32"), "Teredo tunnel (embeds an obfuscated IPv4 address)"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
		{netip.MustParsePrefix("fc00::/7"), "unique local (IPv6 private network)"},
		{netip.MustParsePrefix("fe80::/10"), "link-local"},
		{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
		{netip.MustParsePrefix("ff00::/8"), "multicast"},
	}

	translated = netip.MustParsePrefix("::ffff:0:0:0/96")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// embedded returns the IPv4 address an IPv6 address stands for, if it is
// of a form that carries one: IPv4-mapped, IPv4-translated, NAT64 or 6to4.
func embedded(a netip.Addr) (netip.Addr, bool) {
	if a.Is4In6() {
		return a.Unmap(), true
	}
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case translated.Contains(a), nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// refused returns why a is refused ("" if it is not) and whether the
// reason is loopback.
func refused(a netip.Addr) (reason string, loopback bool) {
	if v4, ok := embedded(a); ok {
		r, l := refused(v4)
		if r == "" {
			return "", false
		}
		form := "IPv6 form"
		switch {
		case a.Is4In6():
			form = "IPv4-mapped form"
		case nat64.Contains(a):
			form = "NAT64 form"
		case sixToFour.Contains(a):
			form = "6to4 form"
		case translated.Contains(a):
			form = "IPv4-translated form"
		}
		return fmt.Sprintf("%s of %s, %s", form, v4, r), l
	}
	list := refused6
	if a.Is4() {
		list = refused4
	}
	for _, r := range list {
		if r.p.Contains(a) {
			return r.reason, r.p == loop4 || r.p == loop6
		}
	}
	return "", false
}
