package privacy

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

// Data-subject requests (docs/privacy-requests.md): each request a person
// makes about their data is a store.PrivacyRequest record with a status
// and a legal deadline, carried out by privacy control events (Command)
// appended to the log, and — for an erasure — by deletions sent to the
// destinations that received the person's data.

// Request types: what a person asks.
const (
	RequestAccess        = "access"        // a copy of their data (Export), given at download
	RequestRectification = "rectification" // correct traits (ActionCorrect)
	RequestErasure       = "erasure"       // erase everything (ActionErase), as SUPPRESS_WITH_DELETE
	RequestRestriction   = "restriction"   // restrict processing (ActionRestrict)
	RequestUnrestriction = "unrestriction" // lift a restriction (ActionUnrestrict)
	RequestObjection     = "objection"     // object to marketing or profiling (ActionObject)
	RequestUnobjection   = "unobjection"   // withdraw an objection (ActionUnobject)
	RequestConsent       = "consent"       // give or withdraw consent per purpose (ActionConsent)
	RequestSuppression   = "suppression"   // drop their events at ingestion (SUPPRESS_ONLY)
	RequestUnsuppression = "unsuppression" // stop dropping them (UNSUPPRESS)
)

// Segment's regulation types (its Public API's regulations).
const (
	RegulationSuppressOnly       = "SUPPRESS_ONLY"
	RegulationUnsuppress         = "UNSUPPRESS"
	RegulationSuppressWithDelete = "SUPPRESS_WITH_DELETE"
	RegulationDeleteOnly         = "DELETE_ONLY"
	RegulationDeleteInternal     = "DELETE_INTERNAL"
)

// regulation is what one regulation type does.
type regulation struct {
	typ          string // the request type it is
	suppress     bool   // add the identifiers to the suppression list
	unsuppress   bool   // remove them from it
	erase        bool   // erase the profiles in Kith
	destinations bool   // send deletions to the destinations that received the data
}

// changesList reports whether reg changes the suppression list.
func (reg regulation) changesList() bool { return reg.suppress || reg.unsuppress }

var regulations = map[string]regulation{
	RegulationSuppressOnly:       {typ: RequestSuppression, suppress: true},
	RegulationUnsuppress:         {typ: RequestUnsuppression, unsuppress: true},
	RegulationSuppressWithDelete: {typ: RequestErasure, suppress: true, erase: true, destinations: true},
	RegulationDeleteOnly:         {typ: RequestErasure, erase: true, destinations: true},
	RegulationDeleteInternal:     {typ: RequestErasure, erase: true},
}

// defaultRegulations are the regulation types of the request types that
// have one, when no regulation is given.
var defaultRegulations = map[string]string{
	RequestErasure:       RegulationSuppressWithDelete,
	RequestSuppression:   RegulationSuppressOnly,
	RequestUnsuppression: RegulationUnsuppress,
}

// typeActions maps the request types carried out by one control event to
// its action.
var typeActions = map[string]string{
	RequestRectification: ActionCorrect,
	RequestRestriction:   ActionRestrict,
	RequestUnrestriction: ActionUnrestrict,
	RequestObjection:     ActionObject,
	RequestUnobjection:   ActionUnobject,
	RequestConsent:       ActionConsent,
}

// Laws, and the time each gives to answer.
const (
	LawGDPR = "gdpr" // one calendar month (article 12(3))
	LawCCPA = "ccpa" // 45 days (§ 1798.130)
)

// Deadline is when a request received at received must be answered under
// law (LawGDPR when empty).
func Deadline(law string, received time.Time) time.Time {
	if law == LawCCPA {
		return received.AddDate(0, 0, 45)
	}
	return received.AddDate(0, 1, 0)
}

// Ways a request arrives.
const (
	ViaAPI    = "api"
	ViaCLI    = "cli"
	ViaPortal = "portal"
)

// MaxSubjects is the most identifiers one request may name.
const MaxSubjects = 100

// suppressible are the identifier types the suppression list checks at
// ingestion: an event's userId and anonymousId, an identify call's
// traits.email.
var suppressible = map[string]bool{identity.UserID: true, identity.AnonymousID: true, identity.Email: true}

// Suppressible reports whether the suppression list can hold identifiers
// of type typ.
func Suppressible(typ string) bool { return suppressible[typ] }

// Digest is the keyed digest of a normalized identifier under hash (the
// server secret's HMAC): the suppression list's key and a request's
// subject.
func Digest(hash func(string) []byte, id store.Identifier) []byte {
	return hash(id.Type + ":" + id.Value)
}

// DeleteFunc asks destination dest of workspace ws to delete a person's
// data: delivery.Engine.Delete. It returns nil once the destination took
// the deletion; a *destination.Error when it failed — for good if
// Permanent or Reject, else to be retried; and any other error (such as
// delivery.ErrDeleteUnsupported) when the destination cannot delete, which
// is recorded as unsupported with the error's message.
type DeleteFunc func(ctx context.Context, ws, dest string, d destination.Deletion) error

// RequestOptions configure Requests.
type RequestOptions struct {
	Store store.Store
	// Hash is the server secret's HMAC (tenant.Registry.Hash).
	Hash func(string) []byte
	// Rules returns a workspace's identity rules, which normalize the
	// identifiers named (an error: no such workspace); nil takes
	// identifiers as given.
	Rules func(ws string) (*identity.Compiled, error)
	// Delete sends deletions to destinations; nil (a node that does not
	// deliver) marks them unsupported.
	Delete DeleteFunc
	// Seal encrypts the workspace's sensitive traits in a batch before it
	// is appended (tenant.Registry.SealBatch: a correction carries trait
	// values); nil appends the batch as it is.
	Seal func(ws string, b *store.Batch) error
	// Now returns the current time; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil: slog.Default()
	// Poll is how often Run looks for requests to advance (default 1s).
	Poll time.Duration
}

// Requests receives data-subject requests, records them and carries them
// out. Several nodes may share one store: every change of a record is a
// compare-and-set, so no node sends a deletion another is sending.
type Requests struct {
	o RequestOptions
}

// NewRequests returns Requests working with o.
func NewRequests(o RequestOptions) *Requests {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	return &Requests{o: o}
}

// Submission is a data-subject request as asked.
type Submission struct {
	Workspace string
	// Type is one of the Request* types; Regulation, one of Segment's
	// types, may be given instead (or as well, if they agree).
	Type       string
	Regulation string
	// Identifiers name the person (or, for a regulation, the people):
	// "user_id", "email", ... as the Profile API names them. Values are
	// normalized by the workspace's identity rules.
	Identifiers []store.Identifier
	Law         string // LawGDPR (the default) or LawCCPA
	Via         string // ViaAPI, ViaCLI, ViaPortal
	Actor       string // the token's name; "cli" or "portal" otherwise
	// Traits (rectification): trait → corrected value (null clears it).
	Traits map[string]json.RawMessage
	// Scope (restriction, objection and their undoing): ScopeMarketing,
	// ScopeProfiling or ScopeAll.
	Scope string
	// Consent (consent): purpose → granted.
	Consent map[string]bool
	// Reason (suppression) is kept with the list entries; no personal
	// data.
	Reason string
}

// InputError is a request Submit refuses; Code is stable (the API
// answers it with 400).
type InputError struct {
	Code    string
	Message string
}

func (e *InputError) Error() string { return e.Code + ": " + e.Message }

func invalid(code, format string, args ...any) error {
	return &InputError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// job is what a request keeps to finish: personal data, cleared when it
// ends.
type job struct {
	Identifiers []store.Identifier `json:"identifiers"` // the subjects, normalized
	People      []person           `json:"people,omitempty"`
	Positions   []int64            `json:"positions,omitempty"` // erasure control events
}

// identifiers are the subjects and, for an erasure, every identifier the
// people found held.
func (j *job) identifiers() []store.Identifier {
	ids := slices.Clone(j.Identifiers)
	for _, p := range j.People {
		ids = append(ids, p.Identifiers...)
	}
	return ids
}

// person is a profile an erasure found, as it was at submission.
type person struct {
	Profile      store.ProfileID    `json:"profile"`
	Identifiers  []store.Identifier `json:"identifiers"`
	Destinations []string           `json:"destinations,omitempty"` // that received its data (the ledger)
}

// details is what a request asked beyond the person; no personal data.
type details struct {
	Scope   string          `json:"scope,omitempty"`
	Traits  []string        `json:"traits,omitempty"` // names only, never the values
	Consent map[string]bool `json:"consent,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

// Submit validates s, records the request and carries it out as far as it
// can at once: suppression and control events are written before it
// returns; the rest (folding, destination deletions) is done by Advance.
// A refused request is an *InputError and records nothing.
func (q *Requests) Submit(ctx context.Context, s Submission) (store.PrivacyRequest, error) {
	reg, err := q.validate(&s)
	if err != nil {
		return store.PrivacyRequest{}, err
	}
	now := q.o.Now().UTC()
	r := store.PrivacyRequest{
		ID: "dsr_" + uuid.NewString(), Workspace: s.Workspace, Type: s.Type, Regulation: s.Regulation, Law: s.Law,
		Status: store.RequestReceived, ReceivedAt: now, Deadline: Deadline(s.Law, now), Via: s.Via, Actor: s.Actor,
	}
	for _, id := range s.Identifiers {
		r.Subjects = append(r.Subjects, store.RequestSubject{Type: id.Type, Digest: hex.EncodeToString(Digest(q.o.Hash, id))})
	}
	d := details{Scope: s.Scope, Consent: s.Consent, Reason: s.Reason}
	for k := range s.Traits {
		d.Traits = append(d.Traits, k)
	}
	slices.Sort(d.Traits)
	if r.Details, err = json.Marshal(d); err != nil {
		return r, fmt.Errorf("submit: %w", err)
	}
	j := job{Identifiers: s.Identifiers}
	if reg.erase {
		if j.People, err = q.people(ctx, s.Workspace, s.Identifiers); err != nil {
			return r, fmt.Errorf("submit: %w", err)
		}
		if reg.destinations {
			r.Destinations = pendingDeletions(j.People, now)
		}
	}
	if r.Job, err = json.Marshal(j); err != nil {
		return r, fmt.Errorf("submit: %w", err)
	}
	if r, err = q.o.Store.CreatePrivacyRequest(ctx, r); err != nil {
		return r, fmt.Errorf("submit: %w", err)
	}
	if err := q.carryOut(ctx, &r, reg, s, &j); err != nil {
		if _, ferr := q.fail(ctx, r, "the request could not be carried out; submit it again"); ferr != nil {
			q.o.Logger.Error("privacy request: record the failure", "request", r.ID, "err", ferr)
		}
		return r, fmt.Errorf("submit %s: %w", r.ID, err)
	}
	q.audit(ctx, r, "privacy.request.received")
	if r.Status == store.RequestCompleted {
		q.audit(ctx, r, "privacy.request.completed")
	}
	return r, nil
}

// validate checks and completes s, returning what its regulation does.
func (q *Requests) validate(s *Submission) (regulation, error) {
	var reg regulation
	switch {
	case s.Regulation != "":
		var ok bool
		if reg, ok = regulations[s.Regulation]; !ok {
			return reg, invalid("invalid_regulation", "regulation type %q: use SUPPRESS_ONLY, UNSUPPRESS, SUPPRESS_WITH_DELETE, DELETE_ONLY or DELETE_INTERNAL", s.Regulation)
		}
		if s.Type != "" && s.Type != reg.typ {
			return reg, invalid("invalid_type", "type %q does not match regulation %s (a %s)", s.Type, s.Regulation, reg.typ)
		}
		s.Type = reg.typ
	case defaultRegulations[s.Type] != "":
		s.Regulation = defaultRegulations[s.Type]
		reg = regulations[s.Regulation]
	case s.Type == RequestAccess || typeActions[s.Type] != "":
	default:
		return reg, invalid("invalid_type", "type %q: use access, rectification, erasure, restriction, unrestriction, objection, unobjection, consent, suppression or unsuppression", s.Type)
	}
	if s.Law == "" {
		s.Law = LawGDPR
	}
	if s.Law != LawGDPR && s.Law != LawCCPA {
		return reg, invalid("invalid_law", "law %q: use gdpr (one month) or ccpa (45 days)", s.Law)
	}
	if s.Via == "" || s.Actor == "" {
		return reg, errors.New("submit: a request needs Via and Actor")
	}
	if err := q.checkSubjects(s, reg); err != nil {
		return reg, err
	}
	return reg, checkArguments(s)
}

// checkSubjects normalizes s's identifiers and checks their number and
// types.
func (q *Requests) checkSubjects(s *Submission, reg regulation) error {
	switch n := len(s.Identifiers); {
	case n == 0:
		return invalid("invalid_identifier", "name the person by at least one identifier")
	case n > MaxSubjects:
		return invalid("too_many_subjects", "at most %d identifiers per request, not %d", MaxSubjects, n)
	case n > 1 && s.Regulation == "":
		return invalid("too_many_subjects", "a %s request names one person by one identifier", s.Type)
	}
	var rules *identity.Compiled
	if q.o.Rules != nil {
		var err error
		if rules, err = q.o.Rules(s.Workspace); err != nil {
			return invalid("unknown_workspace", "no workspace %q", s.Workspace)
		}
	}
	seen := map[store.Identifier]bool{}
	ids := s.Identifiers[:0:0]
	for _, id := range s.Identifiers {
		if id.Type == "" || id.Type == "kith_id" {
			return invalid("invalid_identifier", "name an identifier the person left (user_id, email, anonymous_id, ...), not a Kith id")
		}
		if reg.changesList() && !suppressible[id.Type] {
			return invalid("invalid_identifier", "the suppression list holds user_id, anonymous_id and email identifiers, not %s", id.Type)
		}
		if rules != nil {
			n, ok := rules.Normalize(id)
			if !ok {
				return invalid("invalid_identifier", "a value is not a valid %s under the workspace's identity rules", id.Type)
			}
			id = n
		}
		if id.Value == "" {
			return invalid("invalid_identifier", "an identifier of type %s has no value", id.Type)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	s.Identifiers = ids
	return nil
}

// scopedTypes are the request types that take a Scope.
var scopedTypes = []string{RequestRestriction, RequestUnrestriction, RequestObjection, RequestUnobjection}

// checkArguments checks what s's type needs beyond the person.
func checkArguments(s *Submission) error {
	scoped := slices.Contains(scopedTypes, s.Type)
	switch {
	case s.Type == RequestRectification:
		if len(s.Traits) == 0 {
			return invalid("invalid_traits", "a rectification names at least one trait and its corrected value")
		}
		for k, v := range s.Traits {
			if k == "" || !json.Valid(v) {
				return invalid("invalid_traits", "traits: a JSON object of trait names and values")
			}
		}
	case scoped:
		if !validScope(s.Scope) {
			return invalid("invalid_scope", "scope %q: use marketing, profiling or all", s.Scope)
		}
	case s.Type == RequestConsent:
		if len(s.Consent) == 0 {
			return invalid("invalid_consent", "consent: a JSON object of purposes and true or false")
		}
	}
	if len(s.Reason) > 200 {
		return invalid("invalid_reason", "reason: at most 200 bytes, and no personal data")
	}
	if s.Type != RequestConsent && len(s.Consent) > 0 || s.Type != RequestRectification && len(s.Traits) > 0 || s.Scope != "" && !scoped {
		return invalid("invalid_arguments", "traits, scope and consent belong to rectification, restriction/objection and consent requests")
	}
	return nil
}

// people returns the profiles holding ids, each with the identifiers it
// holds and the destinations that received its data.
func (q *Requests) people(ctx context.Context, ws string, ids []store.Identifier) ([]person, error) {
	var out []person
	seen := map[store.ProfileID]bool{}
	for _, id := range ids {
		p, err := q.o.Store.Lookup(ctx, ws, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up the profile: %w", err)
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		held, err := q.o.Store.Identifiers(ctx, ws, p)
		if err != nil {
			return nil, fmt.Errorf("read the profile's identifiers: %w", err)
		}
		pe := person{Profile: p}
		for _, h := range held {
			pe.Identifiers = append(pe.Identifiers, h.Identifier)
		}
		ledger, err := q.o.Store.Ledger(ctx, ws, p)
		if err != nil {
			return nil, fmt.Errorf("read the delivery ledger: %w", err)
		}
		for _, e := range ledger {
			if !slices.Contains(pe.Destinations, e.Destination) {
				pe.Destinations = append(pe.Destinations, e.Destination)
			}
		}
		slices.Sort(pe.Destinations)
		out = append(out, pe)
	}
	return out, nil
}

// pendingDeletions lists each destination that received some person's
// data, pending.
func pendingDeletions(people []person, now time.Time) []store.DestinationDeletion {
	var names []string
	for _, p := range people {
		names = append(names, p.Destinations...)
	}
	slices.Sort(names)
	var out []store.DestinationDeletion
	for _, n := range slices.Compact(names) {
		out = append(out, store.DestinationDeletion{Destination: n, Status: store.DeletionPending, At: now})
	}
	return out
}

// carryOut writes what r does — suppression entries, control events —
// and moves it to in progress (completed for a suppression change, which
// nothing folds).
func (q *Requests) carryOut(ctx context.Context, r *store.PrivacyRequest, reg regulation, s Submission, j *job) error {
	var cmds []Command
	base := Command{Request: r.ID, Actor: commandActor(s.Via, s.Actor), Via: s.Via}
	if reg.changesList() {
		c, _, err := q.changeList(ctx, s.Workspace, j.identifiers(), reg.suppress, cmp.Or(s.Reason, "regulation "+s.Regulation))
		if err != nil {
			return err
		}
		c.Request, c.Actor, c.Via = base.Request, base.Actor, base.Via
		cmds = append(cmds, c)
	}
	switch {
	case reg.erase:
		for _, id := range s.Identifiers {
			c := base
			c.Action, c.Identifier = ActionErase, id
			cmds = append(cmds, c)
		}
	case typeActions[s.Type] != "":
		c := base
		c.Action, c.Identifier = typeActions[s.Type], s.Identifiers[0]
		c.Traits, c.Scope, c.Consent = s.Traits, s.Scope, s.Consent
		cmds = append(cmds, c)
	}
	positions, err := q.appendCommands(ctx, s.Workspace, cmds)
	if err != nil {
		return err
	}
	for i, c := range cmds {
		if c.Action == ActionErase {
			j.Positions = append(j.Positions, positions[i])
		}
		r.Position = max(r.Position, positions[i])
	}
	r.Status = store.RequestInProgress
	if r.Job, err = json.Marshal(j); err != nil {
		return err
	}
	if reg.changesList() && !reg.erase { // a suppression change
		r.Status, r.CompletedAt, r.Job = store.RequestCompleted, q.o.Now(), nil
	}
	*r, err = q.o.Store.UpdatePrivacyRequest(ctx, *r)
	return err
}

// changeList adds the suppressible identifiers among ids to ws's
// suppression list (or removes them from it) and returns the command of
// the control event that records the change and, for a removal, how many
// entries it removed.
func (q *Requests) changeList(ctx context.Context, ws string, ids []store.Identifier, add bool, reason string) (Command, int64, error) {
	var digests [][]byte
	seen := map[string]bool{}
	for _, id := range ids {
		d := Digest(q.o.Hash, id)
		if suppressible[id.Type] && !seen[string(d)] {
			seen[string(d)] = true
			digests = append(digests, d)
		}
	}
	c := Command{Action: ActionSuppress}
	for _, d := range digests {
		c.Digests = append(c.Digests, hex.EncodeToString(d))
	}
	if !add {
		c.Action = ActionUnsuppress
		n, err := q.o.Store.Unsuppress(ctx, ws, digests)
		return c, n, err
	}
	entries := make([]store.Suppression, len(digests))
	now := q.o.Now().UTC()
	for i, d := range digests {
		entries[i] = store.Suppression{Workspace: ws, Digest: d, Reason: reason, At: now}
	}
	return c, 0, q.o.Store.Suppress(ctx, entries)
}

// Suppress adds an identifier (normalized) to ws's suppression list and
// appends the control event recording it, outside any tracked request
// (the suppression API). It returns the digest.
func (q *Requests) Suppress(ctx context.Context, ws string, id store.Identifier, reason, actor string) ([]byte, error) {
	if _, err := q.changeListByAPI(ctx, ws, id, true, reason, actor); err != nil {
		return nil, err
	}
	return Digest(q.o.Hash, id), nil
}

// Unsuppress removes an identifier (normalized) from ws's suppression list,
// appends the control event recording it, and returns how many entries it
// removed.
func (q *Requests) Unsuppress(ctx context.Context, ws string, id store.Identifier, actor string) (int64, error) {
	return q.changeListByAPI(ctx, ws, id, false, "", actor)
}

// changeListByAPI is changeList of one identifier through the suppression
// API, followed by the append of its control event.
func (q *Requests) changeListByAPI(ctx context.Context, ws string, id store.Identifier, add bool, reason, actor string) (int64, error) {
	c, n, err := q.changeList(ctx, ws, []store.Identifier{id}, add, reason)
	if err != nil {
		return 0, err
	}
	c.Actor, c.Via = commandActor(ViaAPI, actor), ViaAPI
	_, err = q.appendCommands(ctx, ws, []Command{c})
	return n, err
}

// commandActor is a command's Actor: "token:<name>" through the API.
func commandActor(via, actor string) string {
	if via == ViaAPI {
		return "token:" + actor
	}
	return actor
}

// appendCommands appends cmds as control events, in one durable write,
// and returns their positions.
func (q *Requests) appendCommands(ctx context.Context, ws string, cmds []Command) ([]int64, error) {
	if len(cmds) == 0 {
		return nil, nil
	}
	now := q.o.Now()
	b := &store.Batch{}
	for _, c := range cmds {
		ev, err := c.Event(ws, now)
		if err != nil {
			return nil, err
		}
		b.Events = append(b.Events, ev)
	}
	if q.o.Seal != nil {
		if err := q.o.Seal(ws, b); err != nil {
			return nil, err
		}
	}
	res, err := q.o.Store.Append(ctx, b, 0)
	if err != nil {
		return nil, fmt.Errorf("append privacy control events: %w", err)
	}
	positions := make([]int64, len(res))
	for i, a := range res {
		positions[i] = a.Position
	}
	return positions, nil
}

// Get returns a request of ws (store.ErrNotFound if none), advanced first
// if it is in progress.
func (q *Requests) Get(ctx context.Context, ws, id string) (store.PrivacyRequest, error) {
	r, err := q.o.Store.PrivacyRequest(ctx, ws, id)
	if err != nil {
		return r, err
	}
	return q.Advance(ctx, r)
}

// List pages through requests (store.RequestQuery), as stored.
func (q *Requests) List(ctx context.Context, query store.RequestQuery) ([]store.PrivacyRequest, error) {
	return q.o.Store.PrivacyRequests(ctx, query)
}

// leaseFor is how long a node may send a request's deletions alone.
const leaseFor = time.Minute

// Advance moves an in-progress request on and returns it as it is now:
// it sends the pending destination deletions (unless another node holds
// the request's lease), and once the workspace's folding cursor has
// passed the request's control events and no deletion is pending, it
// finishes the request — for an erasure, it erases what the processor
// could not reach (quarantined events and dead letters holding the
// identifiers, a control event no profile answered) — and clears its job.
// An access request is completed by Accessed, not here. A request still
// received after leaseFor was left by a Submit that stopped half-way (its
// node died): it is failed, and its job cleared. When another node
// changed the request first, Advance returns it as that node left it.
func (q *Requests) Advance(ctx context.Context, r store.PrivacyRequest) (store.PrivacyRequest, error) {
	return q.advance(ctx, r, q.o.Store.Cursors)
}

// advance is Advance reading the folding cursors with cursors.
func (q *Requests) advance(ctx context.Context, r store.PrivacyRequest, cursors func(context.Context) (map[string]int64, error)) (store.PrivacyRequest, error) {
	if r.Status == store.RequestReceived && q.o.Now().Sub(r.ReceivedAt) > leaseFor {
		return q.fail(ctx, r, "interrupted before it was carried out; submit it again")
	}
	if r.Status != store.RequestInProgress || r.Type == RequestAccess {
		return r, nil
	}
	var j job
	if err := json.Unmarshal(r.Job, &j); err != nil {
		return r, fmt.Errorf("advance %s: read its job: %w", r.ID, err)
	}
	now := q.o.Now()
	if slices.ContainsFunc(r.Destinations, q.due) && !r.LeaseUntil.After(now) {
		nr, err := q.sendDeletions(ctx, r, j)
		if err != nil {
			return q.current(ctx, r, err)
		}
		r = nr
	}
	if hasPending(r) {
		return r, nil
	}
	folded, err := cursors(ctx)
	if err != nil {
		return r, fmt.Errorf("advance %s: %w", r.ID, err)
	}
	if folded[r.Workspace] < r.Position {
		return r, nil
	}
	if r.Type == RequestErasure {
		if _, err := q.o.Store.Erase(ctx, store.Erasure{Workspace: r.Workspace, Identifiers: j.identifiers(), Positions: j.Positions}); err != nil {
			return r, fmt.Errorf("advance %s: erase: %w", r.ID, err)
		}
	}
	r.Status, r.CompletedAt, r.Job, r.LeaseUntil = store.RequestCompleted, q.o.Now(), nil, time.Time{}
	if failed := failedDeletions(r); failed != "" {
		r.Status, r.Error = store.RequestFailed, "deletion failed at "+failed
	}
	nr, err := q.o.Store.UpdatePrivacyRequest(ctx, r)
	if err != nil {
		return q.current(ctx, r, err)
	}
	q.audit(ctx, nr, "privacy.request."+nr.Status)
	return nr, nil
}

// current returns r as stored when err says another node changed it,
// else err.
func (q *Requests) current(ctx context.Context, r store.PrivacyRequest, err error) (store.PrivacyRequest, error) {
	if errors.Is(err, store.ErrStale) {
		return q.o.Store.PrivacyRequest(ctx, r.Workspace, r.ID)
	}
	return r, fmt.Errorf("advance %s: %w", r.ID, err)
}

func hasPending(r store.PrivacyRequest) bool {
	return slices.ContainsFunc(r.Destinations, func(d store.DestinationDeletion) bool { return d.Status == store.DeletionPending })
}

// retryEvery is the least time between two tries of a deletion that
// failed in a way worth retrying.
const retryEvery = time.Minute

// due reports whether a deletion is to be sent now: pending, and never
// tried or last tried retryEvery ago.
func (q *Requests) due(d store.DestinationDeletion) bool {
	return d.Status == store.DeletionPending && (d.Detail == "" || q.o.Now().Sub(d.At) >= retryEvery)
}

// failedDeletions names the destinations whose deletion failed.
func failedDeletions(r store.PrivacyRequest) string {
	var out []string
	for _, d := range r.Destinations {
		if d.Status == store.DeletionFailed {
			out = append(out, d.Destination)
		}
	}
	return strings.Join(out, ", ")
}

// sendDeletions claims r (a compare-and-set of its lease), sends each
// deletion due and stores the outcomes. A deletion that fails in a way
// worth retrying stays pending, to be tried again retryEvery later, until
// the deadline passes.
func (q *Requests) sendDeletions(ctx context.Context, r store.PrivacyRequest, j job) (store.PrivacyRequest, error) {
	r.LeaseUntil = q.o.Now().Add(leaseFor)
	r, err := q.o.Store.UpdatePrivacyRequest(ctx, r)
	if err != nil {
		return r, err
	}
	r.Destinations = slices.Clone(r.Destinations)
	for i, d := range r.Destinations {
		if !q.due(d) {
			continue
		}
		d.Status, d.Detail = q.deleteAt(ctx, r, j, d.Destination)
		if d.Status == store.DeletionPending && q.o.Now().After(r.Deadline) {
			d.Status = store.DeletionFailed
		}
		d.At = q.o.Now()
		r.Destinations[i] = d
	}
	r.LeaseUntil = time.Time{}
	return q.o.Store.UpdatePrivacyRequest(ctx, r)
}

// deleteAt sends the deletion of every person of j that dest received to
// dest, and returns the status and detail to record.
func (q *Requests) deleteAt(ctx context.Context, r store.PrivacyRequest, j job, dest string) (string, string) {
	if q.o.Delete == nil {
		return store.DeletionUnsupported, "delivery is not running on this node"
	}
	for i, p := range j.People {
		if !slices.Contains(p.Destinations, dest) {
			continue
		}
		key := r.ID
		if len(j.People) > 1 {
			key = fmt.Sprintf("%s.%d", r.ID, i+1) // one idempotency key per person
		}
		err := q.o.Delete(ctx, r.Workspace, dest, destination.Deletion{Request: key, Workspace: r.Workspace,
			Profile: p.Profile, Identifiers: p.Identifiers})
		var de *destination.Error
		switch {
		case err == nil:
		case errors.As(err, &de) && (de.Permanent || de.Reject):
			return store.DeletionFailed, err.Error()
		case errors.As(err, &de) || ctx.Err() != nil:
			return store.DeletionPending, "will retry: " + err.Error()
		default:
			return store.DeletionUnsupported, err.Error()
		}
	}
	return store.DeletionSent, ""
}

// ErrNotAccess is returned by AccessIdentifier for a request that is not
// an access request in progress.
var ErrNotAccess = errors.New("not an access request in progress")

// AccessIdentifier returns the identifier an access request in progress
// names, to export the person's data (Export) at download.
func (q *Requests) AccessIdentifier(ctx context.Context, ws, id string) (store.PrivacyRequest, store.Identifier, error) {
	r, err := q.o.Store.PrivacyRequest(ctx, ws, id)
	if err != nil {
		return r, store.Identifier{}, err
	}
	var j job
	if r.Type != RequestAccess || r.Status != store.RequestInProgress || json.Unmarshal(r.Job, &j) != nil || len(j.Identifiers) == 0 {
		return r, store.Identifier{}, ErrNotAccess
	}
	return r, j.Identifiers[0], nil
}

// Accessed completes an access request whose export was downloaded.
func (q *Requests) Accessed(ctx context.Context, r store.PrivacyRequest) (store.PrivacyRequest, error) {
	r.Status, r.CompletedAt, r.Job = store.RequestCompleted, q.o.Now(), nil
	nr, err := q.o.Store.UpdatePrivacyRequest(ctx, r)
	if err != nil {
		return q.current(ctx, r, err)
	}
	q.audit(ctx, nr, "privacy.request.completed")
	return nr, nil
}

// fail marks r failed, after an error carrying it out; its job is
// cleared.
func (q *Requests) fail(ctx context.Context, r store.PrivacyRequest, why string) (store.PrivacyRequest, error) {
	r.Status, r.CompletedAt, r.Job, r.Error = store.RequestFailed, q.o.Now(), nil, why
	nr, err := q.o.Store.UpdatePrivacyRequest(context.WithoutCancel(ctx), r)
	if err != nil {
		return q.current(ctx, r, err)
	}
	q.audit(ctx, nr, "privacy.request.failed")
	return nr, nil
}

// audit records a step of r in the workspace's audit log: digests, never
// identifier values.
func (q *Requests) audit(ctx context.Context, r store.PrivacyRequest, action string) {
	d, _ := json.Marshal(map[string]any{"type": r.Type, "regulation": r.Regulation, "law": r.Law, "via": r.Via,
		"status": r.Status, "subjects": r.Subjects, "deadline": r.Deadline, "destinations": r.Destinations})
	actor := r.Actor
	if action != "privacy.request.received" {
		actor = store.AuditActorSystem
	}
	e := store.AuditEntry{Workspace: r.Workspace, Actor: actor, Action: action, Target: "request:" + r.ID, Details: d}
	if err := q.o.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		q.o.Logger.Error("privacy request: audit", "request", r.ID, "err", err)
	}
}

// Run advances the requests received or in progress of every workspace
// every Poll until ctx ends.
func (q *Requests) Run(ctx context.Context) {
	t := time.NewTicker(q.o.Poll)
	defer t.Stop()
	for {
		q.advanceAll(ctx, store.RequestInProgress)
		q.advanceAll(ctx, store.RequestReceived)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// advanceAll advances every request of a status, a page at a time,
// reading the folding cursors once for them all: a request whose events
// are folded after that read finishes at the next pass.
func (q *Requests) advanceAll(ctx context.Context, status string) {
	var folded map[string]int64
	cursors := func(ctx context.Context) (map[string]int64, error) {
		if folded == nil {
			c, err := q.o.Store.Cursors(ctx)
			if err != nil {
				return nil, err
			}
			folded = c
		}
		return folded, nil
	}
	var after int64
	for {
		rs, err := q.o.Store.PrivacyRequests(ctx, store.RequestQuery{Status: status, After: after, Limit: 100})
		if err != nil {
			if ctx.Err() == nil {
				q.o.Logger.Error("privacy requests: list them", "status", status, "err", err)
			}
			return
		}
		for _, r := range rs {
			if _, err := q.advance(ctx, r, cursors); err != nil && ctx.Err() == nil {
				q.o.Logger.Error("privacy request: advance", "request", r.ID, "workspace", r.Workspace, "err", err)
			}
			after = r.Seq
		}
		if len(rs) < 100 {
			return
		}
	}
}
