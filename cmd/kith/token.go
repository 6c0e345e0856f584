package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

const tokenUsage = `Usage:
  kith token rotate --workspace W --name TOKEN  [--grace 24h] [flags]
  kith token rotate --workspace W --source SLUG [--grace 24h] [flags]

Gives an access token (--name) or a source's write key (--source) a new
secret and prints it once: only its hash is stored. The old secret keeps
working for --grace (0 stops it at once), so clients can switch without
downtime. A running "kith serve" on the same store picks the change up
within 5 seconds. The rotation survives restarts with the same config file
(see docs/security.md) and is recorded in the audit log (actor "cli").

Flags:
`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		fmt.Fprint(stderr, tokenUsage)
		return fmt.Errorf("kith token needs a subcommand: rotate: %w", errUsage)
	}
	fs := newFlags("kith token rotate", tokenUsage, stderr)
	var sf storeFlags
	sf.register(fs)
	workspace := fs.String("workspace", env("KITH_WORKSPACE", ""), "slug of the workspace; required (env KITH_WORKSPACE)")
	name := fs.String("name", "", "name of the access token to rotate")
	source := fs.String("source", "", "slug of the source whose write key to rotate")
	grace := fs.Duration("grace", 24*time.Hour, "how long the old secret keeps working (0: stop it at once)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 || *workspace == "" || (*name == "") == (*source == "") {
		fs.Usage()
		return fmt.Errorf("kith token rotate needs --workspace and one of --name and --source, and takes no arguments: %w", errUsage)
	}
	st, reg, err := openRegistry(ctx, sf)
	if err != nil {
		return err
	}
	defer st.Close()
	what, action, target := "token "+*name, "token.rotate", "token:"+*name // the API's audit actions (docs/audit.md)
	var rot tenant.Rotated
	if *source != "" {
		what, action, target = "write key of source "+*source, "write_key.rotate", "source:"+*source
		rot, err = reg.RotateWriteKey(ctx, *workspace, *source, *grace)
	} else {
		rot, err = reg.RotateToken(ctx, *workspace, *name, *grace)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("workspace %q has no %s: %w", *workspace, what, errUsage)
	case errors.Is(err, tenant.ErrGrace):
		return fmt.Errorf("--grace: %w: %w", err, errUsage)
	case err != nil:
		return fmt.Errorf("rotate the %s: %w", what, err)
	}
	details, _ := json.Marshal(map[string]string{"grace": grace.String()})
	if err := st.AppendAudit(ctx, store.AuditEntry{Workspace: *workspace, Actor: "cli", Action: action, Target: target, Details: details}); err != nil {
		fmt.Fprintf(stderr, "kith: warning: the rotation is done but its audit entry was not stored: %v\n", err)
	}
	fmt.Fprintf(stdout, "New %s in workspace %q (shown only once, keep it):\n\n    %s\n\n", what, *workspace, rot.Secret)
	if rot.PreviousValidUntil.IsZero() {
		fmt.Fprintln(stdout, "The old one no longer works.")
	} else {
		fmt.Fprintf(stdout, "The old one works until %s.\n", rot.PreviousValidUntil.Format(time.RFC3339))
	}
	return nil
}
