// Command kith is the Kith customer data platform: one binary that collects
// Segment-compatible events into a durable log (kith serve), imports files
// (kith import) and generates load (kith bench).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kithcdp/kith/config"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/postgres"
	"github.com/kithcdp/kith/store/sqlite"
	"github.com/kithcdp/kith/tenant"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `kith — an open-source customer data platform

Usage:
  kith serve   [flags]            run the HTTP server (Tracking API, log API, metrics)
  kith import  [flags] FILE       import a JSONL or CSV file into a workspace's log
  kith replay  [flags]            rebuild a workspace's profiles by folding its whole log again
  kith privacy request|status|list  data-subject requests: erasure, access, ... (kith privacy -h)
  kith bench   [flags]            send realistic Segment traffic to a server and report
  kith token rotate [flags]       give a token or a write key a new secret (the old one works for a grace period)
  kith version                    print the version

Run "kith <command> -h" for the flags of a command. Every flag has a KITH_*
environment twin (e.g. --data and KITH_DATA); a flag given on the command
line wins.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kith:", err)
		}
		os.Exit(exitCode(err))
	}
}

// parseFlags parses args, marking a bad flag as a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage error")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "import":
		return runImport(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "replay":
		return runReplay(ctx, rest, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr)
	case "privacy":
		return runPrivacy(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "kith", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

// env returns the KITH_* environment twin of a flag, or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// storeFlags are the flags every command that opens the store shares.
type storeFlags struct {
	data  string
	store string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", env("KITH_DATA", "./kith-data"), "data directory of the embedded store (env KITH_DATA)")
	fs.StringVar(&f.store, "store", env("KITH_STORE", ""), "store URL: empty for embedded SQLite under --data, or postgres://… (env KITH_STORE)")
}

// loadConfig reads the config file at path; an empty path means none.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, nil
	}
	return config.Load(path)
}

// openStore opens the store named by storeURL: PostgreSQL for postgres:// and
// postgresql:// URLs, else the embedded SQLite store under dataDir.
func openStore(ctx context.Context, storeURL, dataDir string) (store.Store, error) {
	switch {
	case strings.HasPrefix(storeURL, "postgres://"), strings.HasPrefix(storeURL, "postgresql://"):
		st, err := postgres.Open(ctx, storeURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return st, nil
	case storeURL == "" || storeURL == "sqlite" || strings.HasPrefix(storeURL, "sqlite:"):
		if dir, ok := strings.CutPrefix(storeURL, "sqlite:"); ok && dir != "" {
			dataDir = strings.TrimPrefix(dir, "//")
		}
		st, err := sqlite.Open(ctx, dataDir)
		if err != nil {
			return nil, fmt.Errorf("open SQLite store in %s: %w", dataDir, err)
		}
		return st, nil
	default:
		return nil, fmt.Errorf("unknown store URL %q: use postgres://… or leave it empty for embedded SQLite", redactURL(storeURL))
	}
}

// openRegistry opens the store the flags name and loads its workspaces,
// sources and tokens (for the subcommands that work beside kith serve, on
// its store). The caller closes the store.
func openRegistry(ctx context.Context, sf storeFlags) (store.Store, *tenant.Registry, error) {
	st, err := openStore(ctx, sf.store, sf.data)
	if err != nil {
		return nil, nil, err
	}
	reg, err := tenant.FromStore(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("load workspaces: %w", err)
	}
	return st, reg, nil
}

// redactURL hides a password in a URL before it is printed.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return u
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":***" + rest[at:]
}

// newFlags returns the flag set of a subcommand: errors and usage (the
// subcommand's usage text, then its flags) go to stderr.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}
