package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/kithcdp/kith/destination"
)

// CheckURL checks the URL an HTTP destination is configured with: https,
// or http when allowHTTP (else the error says why not: clear is what
// would travel in clear text), and a host.
func CheckURL(s string, allowHTTP bool, clear string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", s)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return nil, fmt.Errorf(`http is not allowed (%s); use https, or set "allow_http": true`, clear)
	default:
		return nil, fmt.Errorf("scheme %q: want https", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("no host")
	}
	return u, nil
}

// Post is an HTTP destination's request: it posts body to url through
// client with header's fields, giving up after timeout when it is
// positive (0 leaves it to the client). It returns what Classify makes of
// the outcome, with the time now tells after the answer; but when accept
// is not nil, a 200 answer is accept's to read (and close).
func Post(ctx context.Context, client *http.Client, url string, header http.Header, body io.Reader, timeout time.Duration,
	now func() time.Time, accept func(*http.Response) error) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return &destination.Error{Permanent: true, Msg: "build request: " + err.Error()}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err == nil && resp.StatusCode == http.StatusOK && accept != nil {
		return accept(resp)
	}
	return Classify(resp, err, now())
}
