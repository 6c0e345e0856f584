package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/httpapi"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/portal"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kith serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	addr := fs.String("addr", env("KITH_ADDR", "127.0.0.1:8080"), "address to listen on (env KITH_ADDR)")
	cfgPath := fs.String("config", env("KITH_CONFIG", ""), "YAML config file declaring workspaces, sources and tokens (env KITH_CONFIG)")
	publicURL := fs.String("public-url", env("KITH_PUBLIC_URL", ""), "base URL browsers use to reach Kith, e.g. https://kith.example.com (env KITH_PUBLIC_URL; default: the request's host)")
	logFormat := fs.String("log-format", env("KITH_LOG_FORMAT", "text"), "log format: text or json (env KITH_LOG_FORMAT)")
	leaseTTL := fs.Duration("lease-ttl", envDuration("KITH_LEASE_TTL", 10*time.Second), "how long a node's hold on a workspace lasts unless renewed; another node takes over a dead node's workspaces after at most this long (env KITH_LEASE_TTL)")
	sdkDir := fs.String("sdk-dir", env("KITH_SDK_DIR", ""), "directory holding @segment/analytics-next's browser files (the npm package's dist/umd), served at the paths of Segment's CDN so that a snippet can load the library from Kith (env KITH_SDK_DIR; default: none, those paths answer 404)")
	fold := fs.Bool("fold", env("KITH_FOLD", "true") != "false", "fold the log into profiles on this node; false makes an ingest-only node, e.g. beside folding nodes on PostgreSQL (env KITH_FOLD=false)")
	deliver := fs.Bool("deliver", env("KITH_DELIVER", "true") != "false", "send to the workspaces' destinations from this node (env KITH_DELIVER=false to turn off)")
	portalFor := fs.String("portal", env("KITH_PORTAL", ""), "comma-separated workspaces whose customer portal is served at /portal/{workspace}/, or * for all (env KITH_PORTAL; default: none; docs/portal.md)")
	smtpAddr := fs.String("smtp-addr", env("KITH_SMTP_ADDR", ""), "SMTP server host:port the portal sends its one-time codes through, with STARTTLS when offered (env KITH_SMTP_ADDR; default: none, codes are written to the log)")
	smtpFrom := fs.String("smtp-from", env("KITH_SMTP_FROM", ""), "sender address of the portal's emails (env KITH_SMTP_FROM)")
	smtpUser := fs.String("smtp-user", env("KITH_SMTP_USER", ""), "SMTP user name; the password is read from env KITH_SMTP_PASSWORD (env KITH_SMTP_USER)")
	egressAllow := fs.String("egress-allow", env("KITH_EGRESS_ALLOW", ""), "comma-separated CIDR prefixes that destinations may reach although private (env KITH_EGRESS_ALLOW; default: none — loopback, private, link-local and CGNAT addresses are refused)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	allow, err := parsePrefixes(*egressAllow)
	if err != nil {
		return fmt.Errorf("--egress-allow (env KITH_EGRESS_ALLOW): %v: %w", err, errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("kith serve takes no arguments, got %q: %w", fs.Args(), errUsage)
	}
	if *leaseTTL < 500*time.Millisecond {
		return fmt.Errorf("--lease-ttl (env KITH_LEASE_TTL) must be a duration of at least 500ms: %w", errUsage)
	}
	logger, err := newLogger(stderr, *logFormat)
	if err != nil {
		return err
	}

	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, sf.store, sf.data)
	if err != nil {
		return err
	}
	defer st.Close()
	dur, err := st.CheckDurability(ctx)
	if err != nil {
		return fmt.Errorf("durability check: %w", err)
	}
	logger.Info("store opened", "backend", dur.Backend, "durability", dur.Settings)

	reg, newKeys, err := tenant.Load(ctx, st, cfg)
	if err != nil {
		return fmt.Errorf("load workspaces: %w", err)
	}
	for _, k := range newKeys {
		// Printed once: only the key's hash is stored.
		fmt.Fprintf(stdout, "New write key for workspace %q, source %q (shown only once, keep it):\n\n    %s\n\n", k.Workspace, k.Source, k.Key)
		if k.AdminToken != "" {
			fmt.Fprintf(stdout, "New admin token for workspace %q (reads the log and profiles; shown only once, keep it):\n\n    %s\n\n", k.Workspace, k.AdminToken)
		}
	}

	promReg := prometheus.NewRegistry()
	httpapi.RegisterDurability(promReg, dur)
	gc := store.NewGroupCommitter(st, store.GroupCommitOptions{
		Writers:  writersFor(dur.Backend),
		OnCommit: httpapi.CommitObserver(promReg),
	})
	defer gc.Close()

	po := processOptions(st, reg, nodeName())
	po.Wake, po.Logger, po.Metrics, po.LeaseTTL = gc.Committed, logger, promReg, *leaseTTL
	var proc *process.Processor
	var computeAPI httpapi.ComputeProcessor // nil without folding: previews answer 503
	if *fold {
		proc = process.New(po)
		computeAPI = proc
	}

	var engine *delivery.Engine
	var deliveryAPI httpapi.DeliveryEngine // nil without delivering: no last errors to show
	if *deliver {
		do := deliveryOptions(st, reg, po.Owner, allow)
		do.Logger, do.Metrics, do.LeaseTTL = logger, promReg, *leaseTTL
		engine = delivery.New(do)
		deliveryAPI = engine
	}

	// One tracker of data-subject requests serves the API, the portal and
	// the loop that moves requests on (below).
	requests := requestsFor(st, reg, po.Owner, engine, logger)
	ptl, err := newPortal(st, reg, gc, requests, logger, *portalFor, *publicURL, *smtpAddr, *smtpFrom, *smtpUser)
	if err != nil {
		return err
	}
	o := httpapi.Options{
		Store: st, Registry: reg, Committer: gc, Limits: ingest.DefaultLimits(),
		Logger: logger, Metrics: promReg, PublicURL: *publicURL, SDKDir: *sdkDir,
		Compute: computeAPI, Delivery: deliveryAPI, Requests: requests,
	}
	if ptl != nil {
		o.Intents = ptl
	}
	api := httpapi.New(o)
	handler := api.Handler()
	if ptl != nil {
		handler = portal.Mount(handler, ptl)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	logger.Info("kith listening", "addr", ln.Addr().String(), "version", version)

	go retention(ctx, logger, st, reg)
	go requests.Run(ctx)

	foldCtx, stopFolding := context.WithCancel(ctx)
	folding := make(chan struct{})
	go func() {
		defer close(folding)
		if proc == nil {
			logger.Info("not folding the log on this node (--fold=false)")
			return
		}
		proc.Run(foldCtx, workspaceSlugs(reg))
	}()
	defer func() { stopFolding(); <-folding }()

	delivering := make(chan struct{})
	go func() {
		defer close(delivering)
		if engine == nil {
			logger.Info("not delivering to destinations on this node (--deliver=false)")
			return
		}
		engine.Run(foldCtx, workspaceSlugs(reg))
	}()
	defer func() { stopFolding(); <-delivering }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("shutdown", "err", err)
	}
	if err := api.Close(shutdownCtx); err != nil {
		logger.Warn("shutdown: audit entries not flushed", "err", err)
	}
	return nil
}

// writersFor is the number of group commits in flight at once: SQLite has
// one writer; PostgreSQL overlaps commits of different workspaces.
func writersFor(backend string) int {
	if backend == "postgres" {
		return 4
	}
	return 1
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	default:
		return nil, fmt.Errorf("--log-format must be text or json, not %q: %w", format, errUsage)
	}
}

// retention deletes events past each workspace's retention, and forgets
// messageIds past the longest dedup window, once an hour.
func retention(ctx context.Context, logger *slog.Logger, st store.Store, reg *tenant.Registry) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		now := time.Now()
		var window time.Duration
		for _, ws := range reg.Workspaces() {
			window = max(window, ws.DedupWindow)
			if ws.Retention <= 0 {
				continue
			}
			n, err := st.DeleteBefore(ctx, ws.Slug, now.Add(-ws.Retention), slices.Clone(privacy.KeptOnRetention))
			if err != nil {
				logger.Warn("retention failed", "workspace", ws.Slug, "err", err)
				continue
			}
			if n > 0 {
				logger.Info("retention deleted events", "workspace", ws.Slug, "events", n)
			}
		}
		if window > 0 {
			if _, err := st.PruneDedup(ctx, now.Add(-window)); err != nil {
				logger.Warn("pruning messageIds failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// processOptions configures the processor with the workspaces' identity
// rules and sources' trait priorities.
func processOptions(st store.Store, reg *tenant.Registry, owner string) process.Options {
	return process.Options{
		Store: st,
		Owner: owner,
		Rules: func(ws string) (*identity.Compiled, error) {
			w, ok := reg.Workspace(ws)
			if !ok {
				return nil, fmt.Errorf("no workspace %q", ws)
			}
			return w.Identity, nil
		},
		TraitPriority: func(ws, source string) int {
			if s, ok := reg.Source(ws, source); ok {
				return s.TraitPriority
			}
			return 0
		},
	}
}

func workspaceSlugs(reg *tenant.Registry) []string {
	var slugs []string
	for _, w := range reg.Workspaces() {
		slugs = append(slugs, w.Slug)
	}
	return slugs
}

// nodeName names this process in leases: host, process id and a random
// suffix, so two nodes never share a name.
func nodeName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

// newPortal returns the customer portal of the workspaces named in
// portalFor (comma-separated, or *); none: nil.
func newPortal(st store.Store, reg *tenant.Registry, gc *store.GroupCommitter, requests *privacy.Requests, logger *slog.Logger, portalFor, publicURL, smtpAddr, smtpFrom, smtpUser string) (*portal.Portal, error) {
	var slugs []string
	for s := range strings.SplitSeq(portalFor, ",") {
		if s = strings.TrimSpace(s); s != "" {
			slugs = append(slugs, s)
		}
	}
	if len(slugs) == 0 {
		return nil, nil
	}
	o := portal.Options{Store: st, Registry: reg, Append: portal.CommitterAppend(gc, reg), Workspaces: slugs, Requests: requests,
		Logger: logger, SecureCookies: strings.HasPrefix(publicURL, "https://")}
	if smtpAddr != "" {
		if smtpFrom == "" {
			return nil, fmt.Errorf("--smtp-addr needs --smtp-from (env KITH_SMTP_FROM): %w", errUsage)
		}
		o.Mailer = &portal.SMTP{Addr: smtpAddr, From: smtpFrom, User: smtpUser, Password: os.Getenv("KITH_SMTP_PASSWORD")}
	} else {
		logger.Warn("portal: no --smtp-addr: sign-in codes are written to this log (development mode)")
	}
	p, err := portal.New(o)
	if err != nil {
		return nil, err
	}
	logger.Info("customer portal served", "workspaces", slugs)
	return p, nil
}
