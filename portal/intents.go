package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/store"
)

// Intentcasting: a person publishes what they are looking for; companies
// answer; the person reveals who they are only to the answer they accept.
//
// An intent is a track "Intent Published" under an anonymousId of its own,
// "intent-<uuid>", not the person's: the log, the profiles and the
// destinations see a pseudonym. The uuid is derived with a keyed hash from
// the person's email and the intent's number (0, 1, …), so that the portal
// can find the person's intents again without writing down whose they are;
// without the server secret it cannot be told from a random one.
// Responses are tracks "Intent Response" on the same anonymousId (the
// admin API below); accepting one appends an identify linking the
// anonymousId to the person's email, then a track "Intent Response
// Accepted".

// Intent event names.
const (
	EventIntentPublished = "Intent Published"
	EventIntentResponse  = "Intent Response"
	EventIntentAccepted  = "Intent Response Accepted"
)

// sourceIntents is the source of the events the portal and the intent API
// write.
const sourceIntents = "kith-portal"

// maxIntents is how many intents one person may publish in a workspace.
const maxIntents = 20

// Limits of an intent's fields, in characters.
const (
	maxLookingFor = 200
	maxField      = 100
)

// contactChannels are the ways a person may ask to be contacted.
var contactChannels = []string{"email", "phone", "post"}

// intentID is the anonymousId of the n-th intent of email in ws.
func (p *Portal) intentID(ws, email string, n int) string {
	sum := mac(p.keys.intent, ws, email, strconv.Itoa(n))
	sum[6] = sum[6]&0x0f | 0x40 // version 4
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	u, _ := uuid.FromBytes(sum[:16])
	return "intent-" + u.String()
}

// ownIntent reports whether id is the anonymousId of one of email's
// intents in ws.
func (p *Portal) ownIntent(ws, email, id string) bool {
	for n := range maxIntents {
		if p.intentID(ws, email, n) == id {
			return true
		}
	}
	return false
}

// intent is a published intent with its responses, as the page shows it.
type intent struct {
	ID                          string
	LookingFor, Budget, Contact string
	Published                   time.Time
	Responses                   []intentResponse
	Accepted                    string // the id of the accepted response, if any
}

type intentResponse struct {
	ID, From, Message string
	At                time.Time
}

// publishing remembers, per node, the intent numbers published in the
// last minutes but perhaps not folded yet, so that two quick publications
// do not take the same number.
type publishing struct {
	mu sync.Mutex
	m  map[string]time.Time // intent id → when published
}

func (pb *publishing) recent(id string, now time.Time) bool {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	t, ok := pb.m[id]
	return ok && now.Sub(t) < 10*time.Minute
}

func (pb *publishing) add(id string, now time.Time) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.m == nil {
		pb.m = map[string]time.Time{}
	}
	for k, t := range pb.m {
		if now.Sub(t) >= 10*time.Minute {
			delete(pb.m, k)
		}
	}
	pb.m[id] = now
}

// readIntents reads the person's intents, newest first, and returns the
// number the next one takes (-1 when they have maxIntents).
func (p *Portal) readIntents(ctx context.Context, v *visit) ([]intent, int, error) {
	var out []intent
	next := -1
	for n := range maxIntents {
		id := p.intentID(v.ws, v.s.Email, n)
		it, found, err := p.readIntent(ctx, v.ws, id)
		if err != nil {
			return nil, 0, err
		}
		if !found {
			if p.published.recent(id, v.now) {
				out = append(out, intent{ID: id, LookingFor: "(being published)"})
				continue
			}
			next = n
			break
		}
		out = append(out, it)
	}
	slices.Reverse(out)
	return out, next, nil
}

// readIntent reads intent id's events: its publication, responses and
// acceptance. found is false when the intent is not (yet) in a profile.
func (p *Portal) readIntent(ctx context.Context, ws, id string) (intent, bool, error) {
	it := intent{ID: id}
	prof, err := p.o.Store.Lookup(ctx, ws, store.Identifier{Type: identity.AnonymousID, Value: id})
	if errors.Is(err, store.ErrNotFound) {
		return it, false, nil
	}
	if err != nil {
		return it, false, err
	}
	var before int64
	found := false
	for {
		positions, err := p.o.Store.Timeline(ctx, ws, prof, before, 1000)
		if err != nil || len(positions) == 0 {
			return it, found, err
		}
		evs, err := p.o.Store.Read(ctx, store.LogQuery{Workspace: ws, Positions: positions, Limit: len(positions)})
		if err != nil {
			return it, found, err
		}
		for _, e := range evs {
			if e.AnonymousID != id || e.Type != "track" {
				continue
			}
			var raw struct {
				Properties map[string]string `json:"properties"`
			}
			_ = json.Unmarshal(e.Raw, &raw) // properties of other shapes show empty
			pr := raw.Properties
			switch e.Name {
			case EventIntentPublished:
				found = true
				it.LookingFor, it.Budget, it.Contact, it.Published = pr["looking_for"], pr["budget"], pr["contact_by"], e.Timestamp
			case EventIntentResponse:
				it.Responses = append(it.Responses, intentResponse{ID: e.MessageID, From: pr["from"], Message: pr["message"], At: e.Timestamp})
			case EventIntentAccepted:
				it.Accepted = pr["response_id"]
			}
		}
		if len(positions) < 1000 {
			return it, found, nil
		}
		before = positions[len(positions)-1]
	}
}

// intentsView is the intents page's data.
type intentsView struct {
	Intents  []intent
	CanAdd   bool
	Channels []string
}

// intentsPage lists the person's intents with their responses and the
// form to publish one.
func (p *Portal) intentsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	p.renderIntents(w, r, v, http.StatusOK, "")
}

func (p *Portal) renderIntents(w http.ResponseWriter, r *http.Request, v *visit, status int, errMsg string) {
	its, next, err := p.readIntents(r.Context(), v)
	if err != nil {
		p.storeFailed(w, v, "read your intents", err)
		return
	}
	notice := ""
	switch r.URL.Query().Get("done") {
	case "published":
		notice = "Your intent is published, without your name or email. Answers appear here."
	case "accepted":
		notice = "You accepted the answer: the company now knows it is you, and only for this intent."
	}
	p.render(w, v, status, "intents", "What you are looking for", intentsView{Intents: its, CanAdd: next >= 0, Channels: contactChannels}, notice, errMsg)
}

// publishIntent appends an intent's track under its pseudonym.
func (p *Portal) publishIntent(w http.ResponseWriter, r *http.Request, v *visit) {
	lookingFor := strings.TrimSpace(r.PostFormValue("looking_for"))
	budget := strings.TrimSpace(r.PostFormValue("budget"))
	contact := r.PostFormValue("contact_by")
	switch {
	case lookingFor == "":
		p.renderIntents(w, r, v, http.StatusBadRequest, "Say what you are looking for.")
		return
	case utf8.RuneCountInString(lookingFor) > maxLookingFor || utf8.RuneCountInString(budget) > maxField:
		p.renderIntents(w, r, v, http.StatusBadRequest, fmt.Sprintf("Keep it short: at most %d characters for what you look for, %d for the budget.", maxLookingFor, maxField))
		return
	case !slices.Contains(contactChannels, contact):
		p.renderIntents(w, r, v, http.StatusBadRequest, "Choose how you want to be contacted: "+strings.Join(contactChannels, ", ")+".")
		return
	}
	_, next, err := p.readIntents(r.Context(), v)
	if err != nil {
		p.storeFailed(w, v, "read your intents", err)
		return
	}
	if next < 0 {
		p.renderIntents(w, r, v, http.StatusConflict, fmt.Sprintf("You have %d intents, the most there can be.", maxIntents))
		return
	}
	id := p.intentID(v.ws, v.s.Email, next)
	err = p.appendCalls(r.Context(), v.ws, v.now, map[string]any{"type": "track", "event": EventIntentPublished, "anonymousId": id,
		"properties": map[string]string{"looking_for": lookingFor, "budget": budget, "contact_by": contact}})
	if err != nil {
		p.storeFailed(w, v, "publish your intent", err)
		return
	}
	p.published.add(id, v.now)
	p.redirect(w, r, v, "intents?done=published")
}

// acceptResponse reveals the person to one response of their intent: an
// identify links the intent's anonymousId to their email, and a track
// records the acceptance.
func (p *Portal) acceptResponse(w http.ResponseWriter, r *http.Request, v *visit) {
	id, resp := r.PostFormValue("intent"), r.PostFormValue("response")
	if !p.ownIntent(v.ws, v.s.Email, id) {
		p.renderIntents(w, r, v, http.StatusNotFound, "There is no intent of yours with this id.")
		return
	}
	it, found, err := p.readIntent(r.Context(), v.ws, id)
	if err != nil {
		p.storeFailed(w, v, "read your intent", err)
		return
	}
	if !found || !slices.ContainsFunc(it.Responses, func(x intentResponse) bool { return x.ID == resp }) {
		p.renderIntents(w, r, v, http.StatusNotFound, "There is no such answer to your intent.")
		return
	}
	if it.Accepted != "" {
		p.renderIntents(w, r, v, http.StatusConflict, "You already accepted an answer to this intent.")
		return
	}
	err = p.appendCalls(r.Context(), v.ws, v.now,
		map[string]any{"type": "identify", "anonymousId": id, "traits": map[string]string{"email": v.s.Email}},
		map[string]any{"type": "track", "event": EventIntentAccepted, "anonymousId": id, "properties": map[string]string{"response_id": resp}})
	if err != nil {
		p.storeFailed(w, v, "accept the answer", err)
		return
	}
	p.redirect(w, r, v, "intents?done=accepted")
}

// appendCalls validates Tracking API calls as a batch would be and appends
// them to ws's log from the portal's source.
func (p *Portal) appendCalls(ctx context.Context, ws string, now time.Time, calls ...map[string]any) error {
	body, err := json.Marshal(map[string]any{"batch": calls})
	if err != nil {
		return err
	}
	out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: body, ReceivedAt: now}, ingest.DefaultLimits())
	if err != nil {
		return err
	}
	if len(out.Quarantine) > 0 {
		return fmt.Errorf("the events were refused: %+v", out.Rejected)
	}
	for i := range out.Events {
		out.Events[i].Workspace, out.Events[i].Source = ws, sourceIntents
	}
	_, err = p.o.Append(ctx, &store.Batch{Events: out.Events})
	return err
}

// RespondIntent records a company's answer to an intent (the admin API's
// side of intentcasting, httpapi.IntentResponder): a track "Intent
// Response" on the intent's anonymousId. found is false when workspace ws
// serves no portal or holds no such intent.
func (p *Portal) RespondIntent(ctx context.Context, ws, intent, from, message string) (string, bool, error) {
	if !p.enabled(ws) || !strings.HasPrefix(intent, "intent-") {
		return "", false, nil
	}
	if _, err := uuid.Parse(strings.TrimPrefix(intent, "intent-")); err != nil {
		return "", false, nil
	}
	if _, found, err := p.readIntent(ctx, ws, intent); err != nil || !found {
		return "", false, err
	}
	mid := "intent-response-" + uuid.NewString()
	err := p.appendCalls(ctx, ws, p.o.Now().UTC(), map[string]any{"type": "track", "event": EventIntentResponse, "anonymousId": intent, "messageId": mid,
		"properties": map[string]string{"from": from, "message": message}})
	if err != nil {
		return "", false, fmt.Errorf("append the answer to an intent: %w", err)
	}
	return mid, true, nil
}
