package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/destination/export"
	"github.com/kithcdp/kith/destination/forward"
	"github.com/kithcdp/kith/destination/stream"
	"github.com/kithcdp/kith/destination/webhook"
	"github.com/kithcdp/kith/egress"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/tenant"
)

// deliveryOptions configures the delivery engine: senders reach
// destinations through the egress guard (which refuses private and
// loopback addresses unless allowed) and get their secrets decrypted
// (they are stored sealed: tenant.SealDestination); identity rules and
// the consent opt-in come from the workspaces.
func deliveryOptions(st store.Store, reg *tenant.Registry, owner string, allow []netip.Prefix) delivery.Options {
	client := egress.New(egress.Options{AllowPrivate: allow})
	return delivery.Options{
		Store: st,
		Owner: owner,
		Senders: func(ws string, d delivery.Definition) (destination.Sender, error) {
			cfg, err := reg.OpenDestination(ws, d)
			if err != nil {
				return nil, err
			}
			d.Config = cfg
			switch d.Type {
			case delivery.TypeWebhook:
				return webhook.New(d.Config, client)
			case delivery.TypeForward:
				return forward.New(d.Config, client)
			case delivery.TypeNATS:
				return stream.New(d.Config)
			case delivery.TypeAudienceExport:
				return export.New(d.Config)
			}
			return nil, fmt.Errorf("unknown destination type %q", d.Type)
		},
		Rules: func(ws string) (*identity.Compiled, error) {
			w, ok := reg.Workspace(ws)
			if !ok {
				return nil, fmt.Errorf("no workspace %q", ws)
			}
			return w.Identity, nil
		},
		AllowMissingConsent: func(ws string) bool {
			w, ok := reg.Workspace(ws)
			return ok && w.DeliverWithoutConsent
		},
		Purposes: func(ws string) *consent.Catalogue {
			if w, ok := reg.Workspace(ws); ok {
				return w.Purposes
			}
			return nil
		},
	}
}

// parsePrefixes reads a comma-separated list of CIDR prefixes (or single
// addresses).
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix or an address", part)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
