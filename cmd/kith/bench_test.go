package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// benchServer answers every Tracking API request with status.
func benchServer(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestBench(t *testing.T) {
	t.Parallel()
	ok, failing := benchServer(t, http.StatusOK), benchServer(t, http.StatusServiceUnavailable)
	cases := []struct {
		name    string
		args    []string
		wantErr bool
		usage   bool
		stdout  string // a part of it
	}{
		{"batch json", []string{"--url", ok, "--write-key", "k", "--requests", "3", "--batch-size", "10", "--json", "--quiet"}, false, false, `"events_accepted": 30`},
		{"track text", []string{"--url", ok, "--write-key", "k", "--mode", "track", "--requests", "5", "--concurrency", "2", "--quiet"}, false, false, "requests   5 sent, 5 ok"},
		{"5xx fails", []string{"--url", failing, "--write-key", "k", "--requests", "2", "--quiet"}, true, false, "errors 503×2"},
		{"no write key", []string{"--url", ok, "--requests", "1"}, true, true, ""},
		{"bad mode", []string{"--url", ok, "--write-key", "k", "--mode", "stream"}, true, true, ""},
		{"argument", []string{"--write-key", "k", "extra"}, true, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := runBench(context.Background(), tc.args, &stdout, &stderr)
			if (err != nil) != tc.wantErr || errors.Is(err, errUsage) != tc.usage {
				t.Fatalf("err = %v, want error %v, usage error %v; stderr:\n%s", err, tc.wantErr, tc.usage, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout.String())
			}
			if slices.Contains(tc.args, "--json") {
				var rep map[string]any
				if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
					t.Errorf("the report is not JSON: %v", err)
				}
			}
		})
	}
}

// TestBenchEnv is not parallel: it sets the environment.
func TestBenchEnv(t *testing.T) {
	t.Setenv("KITH_URL", benchServer(t, http.StatusOK))
	t.Setenv("KITH_WRITE_KEY", "k")
	t.Setenv("KITH_REQUESTS", "4")
	t.Setenv("KITH_MODE", "track")
	t.Setenv("KITH_QUIET", "1")
	var stdout, stderr bytes.Buffer
	if err := runBench(context.Background(), []string{"--requests", "2", "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	var rep struct {
		Mode     string `json:"mode"`
		Requests int    `json:"requests"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Mode != "track" || rep.Requests != 2 || stderr.Len() > 0 {
		t.Errorf("report %s (%v), stderr %q: want track mode from the environment, 2 requests from the flag", stdout.String(), err, stderr.String())
	}
	t.Setenv("KITH_RATE", "fast")
	if err := runBench(context.Background(), nil, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("KITH_RATE=fast: err = %v, want a usage error", err)
	}
}
