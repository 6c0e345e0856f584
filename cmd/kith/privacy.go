package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

const privacyUsage = `Usage:
  kith privacy request --workspace W --type T --identifier type:value [flags]
  kith privacy status  [--workspace W] ID
  kith privacy list    [--workspace W] [--status S]

Data-subject requests (docs/privacy-requests.md), on the store kith serve
uses. "request" records a request and carries it out: the suppression list
and the log's control events at once, then the deletions at the
destinations that received the person's data (sent from this process).
A running kith serve folds the control events; "status" shows where a
request stands and moves it on (it sends deletions still pending and
completes the request once its events are folded). Types: access,
rectification, erasure, restriction, unrestriction, objection,
unobjection, consent, suppression, unsuppression; or a Segment regulation
type with --regulation.

Flags:
`

func runPrivacy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, privacyUsage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := newFlags("kith privacy "+sub, privacyUsage, stderr)
	var sf storeFlags
	sf.register(fs)
	workspace := fs.String("workspace", env("KITH_WORKSPACE", ""), "slug of the workspace (env KITH_WORKSPACE); required by request")
	egressAllow := fs.String("egress-allow", env("KITH_EGRESS_ALLOW", ""), "comma-separated CIDR prefixes that destinations may reach although private, as for kith serve (env KITH_EGRESS_ALLOW)")
	var s privacy.Submission
	var identifier, traits, consent string
	var status string
	switch sub {
	case "request":
		fs.StringVar(&s.Type, "type", "", "what the person asks: access, rectification, erasure, restriction, objection, consent, suppression, ...")
		fs.StringVar(&s.Regulation, "regulation", "", "a Segment regulation type instead of --type: SUPPRESS_ONLY, UNSUPPRESS, SUPPRESS_WITH_DELETE, DELETE_ONLY, DELETE_INTERNAL")
		fs.StringVar(&identifier, "identifier", "", "the person, as type:value (e.g. email:ada@example.com); required")
		fs.StringVar(&s.Law, "law", privacy.LawGDPR, "gdpr (answer within one month) or ccpa (45 days)")
		fs.StringVar(&s.Scope, "scope", "", "restriction, objection: marketing, profiling or all")
		fs.StringVar(&traits, "traits", "", `rectification: the corrected traits as a JSON object, e.g. '{"name":"Ada King"}'`)
		fs.StringVar(&consent, "consent", "", `consent: purposes as a JSON object, e.g. '{"advertising":false}'`)
		fs.StringVar(&s.Reason, "reason", "", "suppression: why (no personal data)")
	case "status":
	case "list":
		fs.StringVar(&status, "status", "", "only requests of this status: received, in_progress, completed or failed")
	case "-h", "--help", "help":
		fmt.Fprint(stdout, privacyUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown privacy command %q\n\n%s", sub, privacyUsage)
		return errUsage
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	allow, err := parsePrefixes(*egressAllow)
	if err != nil {
		return fmt.Errorf("--egress-allow: %v: %w", err, errUsage)
	}
	switch {
	case sub == "status" && fs.NArg() != 1:
		return fmt.Errorf("kith privacy status takes one request id: %w", errUsage)
	case sub != "status" && fs.NArg() > 0:
		return fmt.Errorf("kith privacy %s takes no arguments, got %q: %w", sub, fs.Args(), errUsage)
	case sub == "request" && (*workspace == "" || identifier == ""):
		return fmt.Errorf("kith privacy request needs --workspace and --identifier: %w", errUsage)
	}
	if sub == "request" {
		if err := parseSubmission(&s, identifier, traits, consent); err != nil {
			return err
		}
	}

	st, reg, err := openRegistry(ctx, sf)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, ok := reg.Workspace(*workspace); *workspace != "" && !ok {
		return fmt.Errorf("no workspace %q in this store: %w", *workspace, errUsage)
	}
	owner := "kith-privacy/" + nodeName()
	q := requestsFor(st, reg, owner, delivery.New(deliveryOptions(st, reg, owner, allow)), nil)

	switch sub {
	case "request":
		s.Workspace, s.Via, s.Actor = *workspace, privacy.ViaCLI, privacy.ViaCLI
		r, err := q.Submit(ctx, s)
		var bad *privacy.InputError
		if errors.As(err, &bad) {
			return fmt.Errorf("%s: %w", bad.Message, errUsage)
		}
		if err != nil {
			return err
		}
		if r, err = q.Advance(ctx, r); err != nil {
			return err
		}
		printRequest(stdout, r)
		return nil
	case "status":
		r, err := findRequest(ctx, q, reg, *workspace, fs.Arg(0))
		if err != nil {
			return err
		}
		printRequest(stdout, r)
		return nil
	default:
		return listRequests(ctx, stdout, q, store.RequestQuery{Workspace: *workspace, Status: status})
	}
}

// requestsFor returns the data-subject requests of st: kith privacy's, and
// kith serve's. Destination deletions go through engine; without one (a
// node that does not deliver) they are recorded unsupported.
func requestsFor(st store.Store, reg *tenant.Registry, owner string, engine *delivery.Engine, logger *slog.Logger) *privacy.Requests {
	var del privacy.DeleteFunc
	if engine != nil {
		del = engine.Delete
	}
	return privacy.NewRequests(privacy.RequestOptions{Store: st, Hash: reg.Hash, Rules: processOptions(st, reg, owner).Rules,
		Delete: del, Seal: reg.SealBatch, Logger: logger})
}

// parseSubmission fills s from the request command's flags.
func parseSubmission(s *privacy.Submission, identifier, traits, consent string) error {
	typ, value, ok := strings.Cut(identifier, ":")
	if !ok || typ == "" || value == "" {
		return fmt.Errorf("--identifier must be type:value, e.g. email:ada@example.com: %w", errUsage)
	}
	s.Identifiers = []store.Identifier{{Type: typ, Value: value}}
	if traits != "" {
		if err := json.Unmarshal([]byte(traits), &s.Traits); err != nil {
			return fmt.Errorf("--traits must be a JSON object: %w", errUsage)
		}
	}
	if consent != "" {
		if err := json.Unmarshal([]byte(consent), &s.Consent); err != nil {
			return fmt.Errorf("--consent must be a JSON object of purposes and true or false: %w", errUsage)
		}
	}
	return nil
}

// findRequest reads (and advances) request id of workspace ws, or of any
// workspace when ws is empty.
func findRequest(ctx context.Context, q *privacy.Requests, reg *tenant.Registry, ws, id string) (store.PrivacyRequest, error) {
	var slugs []string
	if ws != "" {
		slugs = []string{ws}
	} else {
		slugs = workspaceSlugs(reg)
	}
	for _, w := range slugs {
		r, err := q.Get(ctx, w, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		return r, err
	}
	return store.PrivacyRequest{}, fmt.Errorf("no request %s: %w", id, store.ErrNotFound)
}

// listRequests prints every request q selects, a page at a time.
func listRequests(ctx context.Context, w io.Writer, q *privacy.Requests, query store.RequestQuery) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKSPACE\tTYPE\tSTATUS\tRECEIVED\tDEADLINE")
	for {
		rs, err := q.List(ctx, query)
		if err != nil {
			return err
		}
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workspace, r.Type, r.Status,
				r.ReceivedAt.Format(time.RFC3339), r.Deadline.Format(time.RFC3339))
			query.After = r.Seq
		}
		if len(rs) < store.PageSize(query.Limit) {
			return tw.Flush()
		}
	}
}

// printRequest prints a request's record: digests, never identifier
// values.
func printRequest(w io.Writer, r store.PrivacyRequest) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	typ := r.Type
	if r.Regulation != "" {
		typ += " (" + r.Regulation + ")"
	}
	fmt.Fprintf(tw, "id\t%s\nworkspace\t%s\ntype\t%s\nlaw\t%s\nstatus\t%s\nreceived\t%s\ndeadline\t%s\n",
		r.ID, r.Workspace, typ, r.Law, r.Status, r.ReceivedAt.Format(time.RFC3339), r.Deadline.Format(time.RFC3339))
	if !r.CompletedAt.IsZero() {
		fmt.Fprintf(tw, "completed\t%s\n", r.CompletedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "via\t%s (%s)\n", r.Via, r.Actor)
	for _, s := range r.Subjects {
		fmt.Fprintf(tw, "subject\t%s %s\n", s.Type, s.Digest)
	}
	for _, d := range r.Destinations {
		fmt.Fprintf(tw, "destination\t%s: %s %s\n", d.Destination, d.Status, d.Detail)
	}
	if r.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", r.Error)
	}
	tw.Flush()
}
