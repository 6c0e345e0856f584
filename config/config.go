// Package config reads Kith's YAML config file, which declares the
// workspaces, their sources (write keys), access tokens, identity rules,
// computed traits and audiences, destinations and consent settings, and the
// proxies whose X-Forwarded-For
// header is trusted.
//
// Parsing is strict: unknown keys, wrong types and invalid values are errors,
// each reported with its file, line and field path, for example
//
//	kith.yaml:7: workspaces[0].sources[1].write_key: empty
//
// Scalar values may reference environment variables as ${NAME}; "$$" stands
// for a literal dollar sign. Every field is described in docs/configuration.md.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

// Scopes an access token may hold.
const (
	// ScopeProfilesRead allows reading profiles (the Profile API).
	ScopeProfilesRead = "profiles:read"
	// ScopeDebug allows reading the event log and the quarantine.
	ScopeDebug = "debug"
	// ScopePrivacy allows answering data-subject requests: exporting
	// everything held on one person (the right of access and
	// portability). It grants no other read: a privacy officer's token
	// need not read the log or browse profiles.
	ScopePrivacy = "privacy"
	// ScopeAdmin implies every other scope, and allows changing state
	// (replaying or discarding quarantined events).
	ScopeAdmin = "admin"
)

// Defaults and limits.
const (
	// DefaultDedupWindow is how long a workspace remembers messageIds
	// when dedup_window is not set.
	DefaultDedupWindow = 7 * 24 * time.Hour
	// MinWriteKeyLen is the shortest accepted write key. Write keys are
	// public in browser pages, so their length only guards against typos
	// and guessing of server-side keys; tokens guard personal data.
	MinWriteKeyLen = 8
	// MinTokenLen is the shortest accepted access token.
	MinTokenLen = 16
	// MaxSecretLen is the longest accepted write key or token.
	MaxSecretLen = 256
)

// Config is a parsed and validated config file.
type Config struct {
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// honoured when finding a client's address. Single addresses are held
	// as full-length prefixes.
	TrustedProxies []netip.Prefix
	// Workspaces are the declared workspaces, in file order.
	Workspaces []Workspace
}

// Workspace is a declared workspace.
type Workspace struct {
	Slug string
	// DedupWindow is how long a messageId is remembered to drop
	// duplicates (DefaultDedupWindow unless set; always positive).
	DedupWindow time.Duration
	// Retention is how long events are kept; 0 keeps them forever.
	Retention time.Duration
	Sources   []Source
	Tokens    []Token
	// Identity are the workspace's identity rules; nil means
	// identity.DefaultRules.
	Identity *identity.Rules
	// Definitions are the workspace's computed traits (computed_traits)
	// and audiences (audiences), in file order, as the store keeps them:
	// Workspace, Kind, Name, Body (the definition as JSON) and Origin
	// "config". They compile together (compute.Compile).
	Definitions []store.Definition
	// Destinations are the workspace's destinations (destinations), in
	// file order, as the store keeps them: Workspace, Kind
	// store.DefinitionDestination, Name, Body (a delivery.Definition as
	// JSON) and Origin "config". Their secrets are in plain text here;
	// tenant.Load encrypts them before they are stored.
	Destinations []store.Definition
	// DeliverWithoutConsent (consent.deliver_without_consent) opts into
	// Segment's behaviour of delivering events and changes that carry no
	// consent at all to destinations that need consent purposes. Off by
	// default: what records no consent for a purpose is not delivered.
	DeliverWithoutConsent bool
	// Purposes (consent.purposes) is the workspace's purpose catalogue:
	// the default purposes with the workspace's overrides and additions.
	// nil means consent.Default().
	Purposes *consent.Catalogue
	// StoreRequires (consent.store_requires) are the purposes an event's
	// own consent must not deny for the event to be stored; empty (the
	// default) stores every event.
	StoreRequires []string
	// SensitiveTraits (sensitive_traits) are the trait paths whose values
	// are encrypted at rest: "ssn", "address.street", "health.*" (see
	// secret.ParseTraitPath).
	SensitiveTraits []string
}

// Source is a declared source of events.
type Source struct {
	Slug     string
	WriteKey string
	// AllowedOrigins are the browser origins the source accepts, in the
	// normalized form browsers send (lowercase scheme and host, no default
	// port). Empty, or containing "*", means any origin.
	AllowedOrigins []string
	RateLimit      RateLimit
	// TraitPriority ranks the source's trait values: a value from a source
	// of higher priority wins over a later value from a lower one (default
	// 0; from -1000 to 1000).
	TraitPriority int
}

// RateLimit is a token bucket counting events.
type RateLimit struct {
	// EventsPerSecond is the sustained rate; 0 means unlimited.
	EventsPerSecond float64
	// Burst is the bucket size: how many events may arrive at once. It
	// defaults to EventsPerSecond rounded up (at least 1) when a rate is set.
	Burst int
}

// Token is a declared access token.
type Token struct {
	Name   string
	Token  string
	Scopes []string
}

// Load reads and parses the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parse(data, path, os.LookupEnv)
}

// Parse parses a config file's contents. Errors name lines but no file.
func Parse(data []byte) (*Config, error) {
	return parse(data, "", os.LookupEnv)
}

// Error is one problem found in a config file.
type Error struct {
	File string // as passed to Load; empty for Parse
	Line int    // 1-based; 0 when unknown
	// Column is 1-based, in characters; 0 when the line is all that is
	// known (it is given for problems inside a definition's condition).
	Column int
	Path   string // the field, e.g. workspaces[0].sources[1].write_key
	Msg    string
}

// Error formats the problem as "file:line: path: message" (or
// "file:line:column: …"), leaving out the parts that are unknown.
func (e *Error) Error() string {
	s := ""
	at := ""
	if e.Line > 0 {
		at = fmt.Sprint(e.Line)
		if e.Column > 0 {
			at += fmt.Sprintf(":%d", e.Column)
		}
	}
	switch {
	case e.File != "" && at != "":
		s = fmt.Sprintf("%s:%s: ", e.File, at)
	case e.File != "":
		s = e.File + ": "
	case at != "":
		s = fmt.Sprintf("line %s: ", at)
	}
	if e.Path != "" {
		s += e.Path + ": "
	}
	return s + e.Msg
}
