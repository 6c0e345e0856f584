package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kithcdp/kith/destination"
)

// Body caps of Classify: how much of a failed answer goes into the error
// message, and how much more is read (and dropped) so that the connection
// can be reused.
const (
	MsgBodyCap   = 512
	drainBodyCap = 64 << 10
)

// MaxRetryAfter caps the wait a peer may ask for with Retry-After.
const MaxRetryAfter = 24 * time.Hour

// Classify turns the outcome of an HTTP delivery (client.Do's answer) into
// what a destination.Sender returns: nil for a 2xx answer, otherwise a
// *destination.Error classified for the delivery engine. It reads and
// closes resp's body. The classes, shared by every HTTP destination:
//
//	2xx                 delivered
//	401, 403, 410       Permanent: the credentials are wrong or the endpoint is
//	                    gone; the destination is disabled until an admin acts
//	400, 413, 422       Reject: the peer refused this batch's content
//	3xx                 Permanent: redirects are not followed, and a URL that
//	                    redirects must be corrected in the configuration
//	429, 5xx, others    retry, after the Retry-After header's wait if any
//	                    (seconds or an HTTP date, capped at MaxRetryAfter)
//	refused address     Permanent (ErrForbiddenAddress): the URL leads to a
//	                    refused address; retrying would not change that
//	timeout, transport  retry
//
// Error messages never contain the request's URL (which may hold a
// token); a failed answer's body, up to MsgBodyCap bytes, is quoted in Msg.
func Classify(resp *http.Response, err error, now time.Time) error {
	if err != nil {
		return transportError(err)
	}
	defer func() {
		io.CopyN(io.Discard, resp.Body, drainBodyCap)
		resp.Body.Close()
	}()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	e := &destination.Error{Status: code}
	switch {
	case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusGone:
		e.Permanent = true
	case code == http.StatusBadRequest, code == http.StatusRequestEntityTooLarge, code == http.StatusUnprocessableEntity:
		e.Reject = true
	case code >= 300 && code < 400:
		e.Permanent = true
		loc := resp.Header.Get("Location")
		if u, err := url.Parse(loc); err == nil {
			u.RawQuery, u.User, u.Fragment = "", nil, ""
			loc = u.String()
		}
		e.Msg = fmt.Sprintf("redirect to %q not followed: set the destination's URL to where it should go", clip(loc, 200))
	default: // 429, 5xx, 404, 408 and the rest: try again later
		e.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), now)
	}
	if body := readCapped(resp.Body, MsgBodyCap); body != "" {
		if e.Msg != "" {
			e.Msg += ": "
		}
		e.Msg += body
	}
	if e.Msg == "" {
		e.Msg = http.StatusText(code)
	}
	return e
}

// RetryAfter parses a Retry-After header: a number of seconds or an HTTP
// date. It returns 0 for an absent or unreadable header, and at most
// MaxRetryAfter.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

func transportError(err error) error {
	// url.Error names the URL, which may carry a token: keep what failed.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	e := &destination.Error{Msg: err.Error()}
	var ne net.Error
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		e.Permanent = true
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		e.Msg = "timed out: " + e.Msg
	}
	return e
}

// readCapped reads up to n bytes of r as printable text: invalid UTF-8
// and control characters are replaced, "…" marks a cut.
func readCapped(r io.Reader, n int) string {
	buf := make([]byte, n+1)
	m, _ := io.ReadFull(r, buf)
	s := clip(string(buf[:m]), n)
	return strings.TrimSpace(s)
}

func clip(s string, n int) string {
	cut := len(s) > n
	if cut {
		s = s[:n]
		// Drop a character cut in half.
		for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if cut {
		s += "…"
	}
	return s
}
