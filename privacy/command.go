package privacy

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/store"
)

// Command is the JSON of a store.TypePrivacy control event: one decision a
// person (through the portal) or an admin (through the API or the CLI) made
// about a profile's data. The processor folds it at its place in the log.
//
// A command names the person by an identifier, resolved to the profile
// that holds it when the command is folded (not when it was asked), so a
// replay of a log from which an erased person's events are gone applies it
// to the same person. Suppression commands name only a keyed digest.
type Command struct {
	Action string `json:"action"`
	// Identifier names the person (every action but suppress/unsuppress).
	Identifier store.Identifier `json:"identifier,omitzero"`
	// Consent (ActionConsent): purpose → granted. Purposes not named keep
	// their state.
	Consent map[string]bool `json:"consent,omitempty"`
	// Traits (ActionCorrect): trait → corrected value (JSON null clears it).
	Traits map[string]json.RawMessage `json:"traits,omitempty"`
	// Scope (ActionRestrict, ActionObject and their undoing): what the
	// person restricts or objects to: ScopeMarketing, ScopeProfiling, or
	// ScopeAll (restriction of all processing but storage).
	Scope string `json:"scope,omitempty"`
	// Terms (ActionTerms): the personal terms the person chose (names of
	// the catalogue in package consent); empty withdraws them.
	Terms []string `json:"terms,omitempty"`
	// Digests (ActionSuppress, ActionUnsuppress): hex keyed digests of the
	// identifiers, never their values.
	Digests []string `json:"digests,omitempty"`
	// Request is the data-subject request this command carries out, if any.
	Request string `json:"request,omitempty"`
	// Actor is who asked: "token:<name>" for an API token, "portal" for the
	// person themself, "cli" for an operator. Never personal data.
	Actor string `json:"actor"`
	// Via is how it was asked: "api", "portal", "cli".
	Via string `json:"via,omitempty"`
}

// Command actions.
const (
	ActionConsent    = "consent"    // set consent per purpose
	ActionCorrect    = "correct"    // rectify traits (versioned: the trait history keeps the old values)
	ActionRestrict   = "restrict"   // restrict processing (Scope)
	ActionUnrestrict = "unrestrict" // lift a restriction (Scope)
	ActionObject     = "object"     // object to marketing or profiling (Scope)
	ActionUnobject   = "unobject"   // withdraw an objection (Scope)
	ActionTerms      = "terms"      // the person's own terms (IEEE 7012 in spirit)
	ActionErase      = "erase"      // erase the profile physically, everywhere
	ActionSuppress   = "suppress"   // digests added to the suppression list
	ActionUnsuppress = "unsuppress" // digests removed from it
)

// Restriction and objection scopes: the consent model's (package
// consent), which evaluates them.
const (
	ScopeMarketing = consent.ScopeMarketing // activation for marketing and advertising
	ScopeProfiling = consent.ScopeProfiling // audiences and computed traits
	ScopeAll       = consent.ScopeAll       // everything but storage
)

// validScope reports whether scope is one of the scopes.
func validScope(scope string) bool {
	return scope == ScopeMarketing || scope == ScopeProfiling || scope == ScopeAll
}

// SourceControl is the source recorded on privacy control events.
const SourceControl = "kith-privacy"

// ErrInvalidCommand is returned by Validate for a command that cannot be
// folded; its message says why.
var ErrInvalidCommand = errors.New("invalid privacy command")

// Validate checks that c is complete for its action.
func (c *Command) Validate() error {
	bad := func(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidCommand, msg) }
	switch c.Action {
	case ActionSuppress, ActionUnsuppress:
		if len(c.Digests) == 0 {
			return bad(c.Action + " needs digests")
		}
		return nil
	case ActionConsent:
		if len(c.Consent) == 0 {
			return bad("consent needs at least one purpose")
		}
	case ActionCorrect:
		if len(c.Traits) == 0 {
			return bad("correct needs at least one trait")
		}
	case ActionRestrict, ActionUnrestrict, ActionObject, ActionUnobject:
		if !validScope(c.Scope) {
			return bad("scope must be marketing, profiling or all")
		}
	case ActionTerms, ActionErase:
	default:
		return bad(fmt.Sprintf("unknown action %q", c.Action))
	}
	if c.Identifier.Type == "" || c.Identifier.Value == "" {
		return bad(c.Action + " needs an identifier")
	}
	return nil
}

// Event returns the control event that records c in workspace ws at now,
// ready to append. It fails if c is not valid.
func (c *Command) Event(ws string, now time.Time) (store.Event, error) {
	if err := c.Validate(); err != nil {
		return store.Event{}, err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return store.Event{}, fmt.Errorf("encode privacy command: %w", err)
	}
	now = now.UTC()
	return store.Event{Workspace: ws, Source: SourceControl, MessageID: uuid.NewString(), Type: store.TypePrivacy,
		Timestamp: now, ReceivedAt: now, Format: store.FormatVersion, Raw: raw}, nil
}
