package egress_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/egress"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                               0,
		"0":                              0,
		"-5":                             0,
		"30":                             30 * time.Second,
		" 30 ":                           30 * time.Second,
		"999999999999":                   egress.MaxRetryAfter,
		"Sun, 01 Mar 2026 12:02:00 GMT":  2 * time.Minute,
		"Sun, 01 Mar 2026 11:00:00 GMT":  0, // in the past
		"Sunday, 01-Mar-26 12:00:10 GMT": 10 * time.Second,
		"tomorrow":                       0,
	} {
		if got := egress.RetryAfter(h, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestClassifyTransportError(t *testing.T) {
	t.Parallel()
	_, err := egress.New(egress.Options{}).Get("https://user:pw@127.0.0.1/hook?token=s3cret")
	err = egress.Classify(nil, err, time.Now())
	var de *destination.Error
	if !errors.As(err, &de) || !de.Permanent {
		t.Fatalf("Classify = %#v, want a permanent *destination.Error", err)
	}
	if strings.Contains(de.Msg, "s3cret") || strings.Contains(de.Msg, "pw") {
		t.Errorf("Msg %q leaks the URL", de.Msg)
	}
}

func TestClassifyBody(t *testing.T) {
	t.Parallel()
	resp := &http.Response{StatusCode: 502, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("bad\x00gate\nway \xff" + strings.Repeat("z", 2000)))}
	err := egress.Classify(resp, nil, time.Now())
	var de *destination.Error
	if !errors.As(err, &de) || de.Permanent || de.Reject || de.Status != 502 {
		t.Fatalf("Classify = %#v", err)
	}
	if !strings.HasPrefix(de.Msg, "bad gate way \uFFFDzz") || !strings.HasSuffix(de.Msg, "…") {
		t.Errorf("Msg %q", de.Msg)
	}
}
