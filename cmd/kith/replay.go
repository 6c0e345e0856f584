package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

const replayUsage = `Usage: kith replay --workspace W [flags]

Deletes the derived state of workspace W (identity graph, profiles, traits,
timelines) and rebuilds it by folding the whole log again, with the identity
rules of the config file. Run it after changing identity rules. The result
equals what incremental processing builds. A running "kith serve" holding
the workspace makes the replay wait for its lease; stop the server first.

Flags:
`

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kith replay", replayUsage, stderr)
	var sf storeFlags
	sf.register(fs)
	workspace := fs.String("workspace", env("KITH_WORKSPACE", ""), "slug of the workspace to replay; required (env KITH_WORKSPACE)")
	cfgPath := fs.String("config", env("KITH_CONFIG", ""), "YAML config file with the workspace's identity rules (env KITH_CONFIG)")
	quiet := fs.Bool("quiet", env("KITH_QUIET", "") == "1", "print neither progress nor the summary (env KITH_QUIET=1)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *workspace == "" {
		fs.Usage()
		return fmt.Errorf("kith replay needs --workspace and takes no arguments: %w", errUsage)
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
	reg, _, err := tenant.Load(ctx, st, cfg)
	if err != nil {
		return fmt.Errorf("load workspaces: %w", err)
	}
	if _, ok := reg.Workspace(*workspace); !ok {
		return fmt.Errorf("no workspace %q in this store: %w", *workspace, errUsage)
	}
	p := process.New(processOptions(st, reg, "kith-replay"))
	start := time.Now()
	var last time.Time
	progress := func(pos, head int64) {
		if *quiet || time.Since(last) < time.Second && pos < head {
			return
		}
		last = time.Now()
		pct := 100.0
		if head > 0 {
			pct = 100 * float64(pos) / float64(head)
		}
		fmt.Fprintf(stderr, "\r%5.1f%%  %d of %d events  %.0f events/s\x1b[K", pct, pos, head, float64(pos)/time.Since(start).Seconds())
	}
	for {
		err = p.Replay(ctx, *workspace, progress)
		if !errors.Is(err, store.ErrLeaseHeld) {
			break
		}
		if !*quiet {
			fmt.Fprintln(stderr, "another process (kith serve?) folds this workspace; waiting for its lease")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	if err != nil {
		return fmt.Errorf("replay %s: %w", *workspace, err)
	}
	if !*quiet {
		fmt.Fprintf(stdout, "\nreplayed workspace %q in %s\n", *workspace, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
