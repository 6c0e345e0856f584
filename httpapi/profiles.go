package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kithcdp/kith/secret"
	"github.com/kithcdp/kith/store"
)

// The Profile API, compatible with Segment's:
//
//	GET /v1/spaces/{workspace}/collections/{users|accounts}/profiles/{type}:{value}/{traits|events|external_ids|links|metadata}
//
// plus Kith's search for service teams:
//
//	GET /v1/spaces/{workspace}/collections/{users|accounts}/search?identifier=|trait=|trait_prefix=|q=
//
// A profile is named by any identifier it holds ("email:ada@example.com",
// "user_id:42", "anonymous_id:…", "group_id:acme" for accounts) or by its
// Kith id ("kith_id:17"). Tokens need the profiles:read scope.
func (s *Server) profileRoutes() {
	base := "GET /v1/spaces/{workspace}/collections/{collection}/"
	s.handle(base+"profiles/{id}/traits", "profile_traits", s.scoped("profiles:read", s.profile(s.handleTraits)))
	s.handle(base+"profiles/{id}/traits/{key}/history", "profile_traits", s.scoped("profiles:read", s.profile(s.handleTraitHistory)))
	s.handle(base+"profiles/{id}/events", "profile_events", s.scoped("profiles:read", s.profile(s.handleProfileEvents)))
	s.handle(base+"profiles/{id}/external_ids", "profile_external_ids", s.scoped("profiles:read", s.profile(s.handleExternalIDs)))
	s.handle(base+"profiles/{id}/links", "profile_links", s.scoped("profiles:read", s.profile(s.handleLinks)))
	s.handle(base+"profiles/{id}/metadata", "profile_metadata", s.scoped("profiles:read", s.profile(s.handleMetadata)))
	s.handle(base+"search", "profile_search", s.scoped("profiles:read", s.handleSearch))
}

// collections maps the path's collection to a profile kind.
var collections = map[string]string{"users": store.KindUser, "accounts": store.KindAccount}

// kithIDType names a profile by Kith's own id in the Profile API.
const kithIDType = "kith_id"

// profileRequest is a resolved Profile API request.
type profileRequest struct {
	ws         string
	collection string
	profile    store.Profile
	limit      int
	next       string
}

// profile resolves the path's collection and profile id, follows merges to
// the surviving profile, and reads limit and next.
func (s *Server) profile(h func(http.ResponseWriter, *http.Request, *profileRequest)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pr := &profileRequest{ws: r.PathValue("workspace"), collection: r.PathValue("collection"), next: r.URL.Query().Get("next")}
		kind, ok := collections[pr.collection]
		if !ok {
			writeError(w, http.StatusNotFound, "unknown_collection", fmt.Sprintf("no collection %q: use users or accounts", pr.collection))
			return
		}
		var err error
		if pr.limit, err = intParam(r.URL.Query().Get("limit"), 10, 1, 200, "limit"); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
			return
		}
		id, err := s.profileID(r.Context(), pr.ws, r.PathValue("id"))
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				writeError(w, http.StatusNotFound, "profile_not_found", "no profile holds "+r.PathValue("id"))
				return
			}
			var bad *badRequest
			if errors.As(err, &bad) {
				writeError(w, http.StatusBadRequest, bad.code, bad.msg)
				return
			}
			s.storeError(w, "look up the profile", err)
			return
		}
		for range 100 { // follow merges; a chain is flattened at each merge
			pr.profile, err = s.st.Profile(r.Context(), pr.ws, id)
			if err != nil || pr.profile.MergedInto == 0 {
				break
			}
			id = pr.profile.MergedInto
		}
		if errors.Is(err, store.ErrNotFound) || err == nil && pr.profile.Kind != kind {
			writeError(w, http.StatusNotFound, "profile_not_found", fmt.Sprintf("no profile %s in collection %s", r.PathValue("id"), pr.collection))
			return
		}
		if err != nil {
			s.storeError(w, "read the profile", err)
			return
		}
		h(w, r, pr)
	}
}

type badRequest struct{ code, msg string }

func (e *badRequest) Error() string { return e.msg }

// profileID resolves "type:value" to a profile id.
func (s *Server) profileID(ctx context.Context, ws, ref string) (store.ProfileID, error) {
	id, err := s.parseIdentifier(ws, ref)
	if err != nil {
		return 0, err
	}
	if id.Type == kithIDType {
		n, err := strconv.ParseInt(id.Value, 10, 64)
		if err != nil || n < 1 {
			return 0, &badRequest{"invalid_profile_id", "a kith_id is a positive whole number"}
		}
		return store.ProfileID(n), nil
	}
	return s.st.Lookup(ctx, ws, id)
}

// parseIdentifier reads "type:value" and normalizes the value as the
// workspace's identity rules do.
func (s *Server) parseIdentifier(ws, ref string) (store.Identifier, error) {
	typ, value, ok := strings.Cut(ref, ":")
	if !ok || typ == "" || value == "" {
		return store.Identifier{}, &badRequest{"invalid_profile_id", fmt.Sprintf("%q is not type:value, e.g. user_id:42 or email:ada@example.com", ref)}
	}
	id := store.Identifier{Type: typ, Value: value}
	if typ == kithIDType {
		return id, nil
	}
	if w, ok := s.reg.Workspace(ws); ok && w.Identity != nil {
		if norm, ok := w.Identity.Normalize(id); ok {
			return norm, nil
		}
		return id, store.ErrNotFound // a value the graph can never hold
	}
	return id, nil
}

// cursor is Segment's paging object.
type cursor struct {
	URL     string `json:"url"`
	HasMore bool   `json:"has_more"`
	Next    string `json:"next"`
}

func pageCursor(r *http.Request, next string) cursor {
	return cursor{URL: r.URL.EscapedPath(), HasMore: next != "", Next: next}
}

// traitView is a trait with where it came from (verbose=true). SourceID
// and UpdatedAt are Segment's names; Source and Timestamp Kith's.
type traitView struct {
	Value     json.RawMessage `json:"value"`
	SourceID  string          `json:"source_id"`
	UpdatedAt time.Time       `json:"updated_at"`
	Source    string          `json:"source"`
	Timestamp time.Time       `json:"timestamp"`
	Position  int64           `json:"position"`
}

func viewTrait(value json.RawMessage, source string, ts time.Time, position int64) traitView {
	return traitView{Value: value, SourceID: source, UpdatedAt: ts, Source: source, Timestamp: ts, Position: position}
}

func (s *Server) handleTraits(w http.ResponseWriter, r *http.Request, pr *profileRequest) {
	var keys []string
	if inc := r.URL.Query().Get("include"); inc != "" {
		keys = strings.Split(inc, ",")
	}
	traits, err := s.st.Traits(r.Context(), pr.ws, pr.profile.ID, keys)
	if err != nil {
		s.storeError(w, "read traits", err)
		return
	}
	openTraits(pr.ws, traits) // sensitive.go
	if traits, err = s.withComputed(r.Context(), pr, traits, keys); err != nil {
		s.storeError(w, "read computed traits", err)
		return
	}
	start := 0
	if pr.next != "" {
		start, _ = slices.BinarySearchFunc(traits, pr.next, func(t store.Trait, k string) int { return strings.Compare(t.Key, k) })
		if start < len(traits) && traits[start].Key == pr.next {
			start++
		}
	}
	page := traits[start:min(start+pr.limit, len(traits))]
	next := ""
	if start+pr.limit < len(traits) {
		next = page[len(page)-1].Key
	}
	verbose := r.URL.Query().Get("verbose") == "true"
	out := make(map[string]any, len(page))
	for _, t := range page {
		if verbose {
			out[t.Key] = viewTrait(t.Value, t.Source, t.Timestamp, t.Position)
		} else {
			out[t.Key] = t.Value
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"traits": out, "cursor": pageCursor(r, next)})
}

// computedSource is the source of computed values among a profile's
// traits.
const computedSource = "computed"

// withComputed adds the profile's computed values to its traits, as
// Segment shows computed traits and audience memberships among a profile's
// traits: each computed trait by its name, each audience by its name with
// true while the profile is a member (false after it left). A computed
// value hides a trait of the same key. keys, if not empty, limits them as
// it limits the traits. The result is sorted by key.
func (s *Server) withComputed(ctx context.Context, pr *profileRequest, traits []store.Trait, keys []string) ([]store.Trait, error) {
	vals, err := s.st.ComputedValues(ctx, pr.ws, pr.profile.ID)
	if err != nil || len(vals) == 0 {
		return traits, err
	}
	byKey := make(map[string]int, len(traits))
	for i, t := range traits {
		byKey[t.Key] = i
	}
	for _, v := range vals {
		if len(keys) > 0 && !slices.Contains(keys, v.Name) {
			continue
		}
		t := store.Trait{Key: v.Name, Value: v.Value, Source: computedSource, Timestamp: v.At, Position: v.Position}
		if i, ok := byKey[v.Name]; ok {
			traits[i] = t
			continue
		}
		traits = append(traits, t)
	}
	slices.SortFunc(traits, func(a, b store.Trait) int { return strings.Compare(a.Key, b.Key) })
	return traits, nil
}

func (s *Server) handleTraitHistory(w http.ResponseWriter, r *http.Request, pr *profileRequest) {
	before, ok := positionCursor(w, pr.next)
	if !ok {
		return
	}
	// One more than a page says whether another page follows.
	hist, err := s.st.TraitHistory(r.Context(), pr.ws, pr.profile.ID, r.PathValue("key"), before, pr.limit+1)
	if err != nil {
		s.storeError(w, "read trait history", err)
		return
	}
	next := ""
	if len(hist) > pr.limit {
		hist = hist[:pr.limit]
		next = strconv.FormatInt(hist[len(hist)-1].Position, 10)
	}
	data := make([]traitView, len(hist))
	for i, h := range hist {
		data[i] = viewTrait(secret.OpenJSON(pr.ws, h.Value), h.Source, h.Timestamp, h.Position)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "cursor": pageCursor(r, next)})
}

// positionCursor reads a next cursor that is a log position.
func positionCursor(w http.ResponseWriter, next string) (int64, bool) {
	if next == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(next, 10, 64)
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "next must be the cursor.next of an earlier page")
		return 0, false
	}
	return n, true
}

// profileEvent is an event as Segment's Profile API shows it.
type profileEvent struct {
	Type       string          `json:"type"`
	Event      string          `json:"event,omitempty"`
	Name       string          `json:"name,omitempty"`
	Properties json.RawMessage `json:"properties,omitempty"`
	Traits     json.RawMessage `json:"traits,omitempty"`
	Context    json.RawMessage `json:"context,omitempty"`
	MessageID  string          `json:"message_id"`
	SourceID   string          `json:"source_id"`
	Timestamp  time.Time       `json:"timestamp"`
	ReceivedAt time.Time       `json:"received_at"`
	Position   int64           `json:"position"`
}

func (s *Server) handleProfileEvents(w http.ResponseWriter, r *http.Request, pr *profileRequest) {
	before, ok := positionCursor(w, pr.next)
	if !ok {
		return
	}
	// One more than a page says whether another page follows.
	positions, err := s.st.Timeline(r.Context(), pr.ws, pr.profile.ID, before, pr.limit+1)
	if err != nil {
		s.storeError(w, "read the timeline", err)
		return
	}
	next := ""
	if len(positions) > pr.limit {
		positions = positions[:pr.limit]
		next = strconv.FormatInt(positions[len(positions)-1], 10)
	}
	data := []profileEvent{}
	if len(positions) > 0 {
		events, err := s.st.Read(r.Context(), store.LogQuery{Workspace: pr.ws, Positions: positions, Descending: true, Limit: len(positions)})
		if err != nil {
			s.storeError(w, "read events", err)
			return
		}
		for _, e := range events {
			var f struct {
				Properties, Traits, Context json.RawMessage
			}
			_ = json.Unmarshal(secret.OpenJSON(pr.ws, e.Raw), &f) // sensitive traits opened, as in traits
			pe := profileEvent{Type: e.Type, Properties: f.Properties, Traits: f.Traits, Context: f.Context,
				MessageID: e.MessageID, SourceID: e.Source, Timestamp: e.Timestamp, ReceivedAt: e.ReceivedAt, Position: e.Position}
			if e.Type == "track" {
				pe.Event = e.Name
			} else {
				pe.Name = e.Name
			}
			data = append(data, pe)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "cursor": pageCursor(r, next)})
}

// externalID is an identifier as Segment's Profile API shows it.
type externalID struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	SourceID   string    `json:"source_id"`
	Collection string    `json:"collection"`
	CreatedAt  time.Time `json:"created_at"`
	Encoding   string    `json:"encoding"`
	Position   int64     `json:"position"`
}

// externalIDs renders identifiers, each with the source of the event that
// added it (read from the log in one query; "" once retention removed it).
func (s *Server) externalIDs(ctx context.Context, ws string, hs []store.HeldIdentifier, collection string) ([]externalID, error) {
	out := make([]externalID, len(hs))
	positions := make([]int64, 0, len(hs))
	for i, h := range hs {
		out[i] = externalID{ID: h.Value, Type: h.Type, Collection: collection, CreatedAt: h.AddedAt, Encoding: "none", Position: h.Position}
		positions = append(positions, h.Position)
	}
	slices.Sort(positions)
	positions = slices.Compact(positions)
	sources := make(map[int64]string, len(positions))
	for len(positions) > 0 {
		chunk := positions[:min(len(positions), 1000)]
		positions = positions[len(chunk):]
		events, err := s.st.Read(ctx, store.LogQuery{Workspace: ws, Positions: chunk, Limit: len(chunk)})
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			sources[e.Position] = e.Source
		}
	}
	for i := range out {
		out[i].SourceID = sources[out[i].Position]
	}
	return out, nil
}

func (s *Server) handleExternalIDs(w http.ResponseWriter, r *http.Request, pr *profileRequest) {
	ids, err := s.st.Identifiers(r.Context(), pr.ws, pr.profile.ID)
	if err != nil {
		s.storeError(w, "read identifiers", err)
		return
	}
	if inc := r.URL.Query().Get("include"); inc != "" {
		types := strings.Split(inc, ",")
		ids = slices.DeleteFunc(ids, func(h store.HeldIdentifier) bool { return !slices.Contains(types, h.Type) })
	}
	page, next, ok := pageAfter(ids, pr.next, pr.limit, store.HeldIdentifier.String)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "next must be the cursor.next of an earlier page")
		return
	}
	data, err := s.externalIDs(r.Context(), pr.ws, page, pr.collection)
	if err != nil {
		s.storeError(w, "read identifiers", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "cursor": pageCursor(r, next)})
}

// pageAfter pages a list held in memory: at most limit items after the one
// whose key is next (from the start when next is empty), and the key of the
// page's last item when more follow. ok is false when next names no item.
func pageAfter[T any](items []T, next string, limit int, key func(T) string) (page []T, cursor string, ok bool) {
	start := 0
	if next != "" {
		start = slices.IndexFunc(items, func(x T) bool { return key(x) == next }) + 1
		if start == 0 {
			return nil, "", false
		}
	}
	page = items[start:min(start+limit, len(items))]
	if start+limit < len(items) {
		cursor = key(page[len(page)-1])
	}
	return page, cursor, true
}

func (s *Server) handleLinks(w http.ResponseWriter, r *http.Request, pr *profileRequest) {
	links, err := s.st.Links(r.Context(), pr.ws, pr.profile.ID)
	if err != nil {
		s.storeError(w, "read links", err)
		return
	}
	other, to := func(l store.Link) store.ProfileID { return l.Account }, "accounts"
	if pr.profile.Kind == store.KindAccount {
		other, to = func(l store.Link) store.ProfileID { return l.User }, "users"
	}
	page, next, ok := pageAfter(links, pr.next, pr.limit, func(l store.Link) string { return strconv.FormatInt(int64(other(l)), 10) })
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "next must be the cursor.next of an earlier page")
		return
	}
	type link struct {
		ToCollection string       `json:"to_collection"`
		KithID       int64        `json:"kith_id"`
		ExternalIDs  []externalID `json:"external_ids"`
	}
	data := make([]link, 0, len(page))
	for _, l := range page {
		ids, err := s.st.Identifiers(r.Context(), pr.ws, other(l))
		if err != nil {
			s.storeError(w, "read links", err)
			return
		}
		views, err := s.externalIDs(r.Context(), pr.ws, ids, to)
		if err != nil {
			s.storeError(w, "read links", err)
			return
		}
		data = append(data, link{ToCollection: to, KithID: int64(other(l)), ExternalIDs: views})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "cursor": pageCursor(r, next)})
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request, pr *profileRequest) {
	merges, err := s.st.Merges(r.Context(), pr.ws, pr.profile.ID)
	if err != nil {
		s.storeError(w, "read merges", err)
		return
	}
	type merge struct {
		From     int64     `json:"kith_id"`
		Via      string    `json:"via"`
		Position int64     `json:"position"`
		At       time.Time `json:"at"`
	}
	mv := make([]merge, len(merges))
	for i, m := range merges {
		mv[i] = merge{From: int64(m.From), Via: m.Via.String(), Position: m.Position, At: m.At}
	}
	p := pr.profile
	writeJSON(w, http.StatusOK, map[string]any{"metadata": map[string]any{
		"kith_id": int64(p.ID), "collection": pr.collection, "created_at": p.FirstSeen, "updated_at": p.LastSeen, "expires_at": nil,
		"events": p.Events, "merged_from": mv,
	}})
}

// searchResult is a profile summary in search results.
type searchResult struct {
	KithID    int64                      `json:"kith_id"`
	FirstSeen time.Time                  `json:"first_seen"`
	LastSeen  time.Time                  `json:"last_seen"`
	Events    int64                      `json:"events"`
	Traits    map[string]json.RawMessage `json:"traits"`
}

// summaryTraits are the traits a search result shows.
var summaryTraits = []string{"name", "first_name", "last_name", "email", "phone", "company"}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	ws, coll := r.PathValue("workspace"), r.PathValue("collection")
	kind, ok := collections[coll]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_collection", fmt.Sprintf("no collection %q: use users or accounts", coll))
		return
	}
	qv := r.URL.Query()
	limit, err := intParam(qv.Get("limit"), 10, 1, 200, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_limit", err.Error())
		return
	}
	q, err := s.searchQuery(ws, kind, qv)
	if err != nil {
		var bad *badRequest
		if errors.As(err, &bad) {
			writeError(w, http.StatusBadRequest, bad.code, bad.msg)
		} else {
			writeJSON(w, http.StatusOK, map[string]any{"data": []searchResult{}, "cursor": pageCursor(r, "")})
		}
		return
	}
	q.Limit = limit + 1 // one more than a page says whether another page follows
	if n := qv.Get("next"); n != "" {
		after, err := strconv.ParseInt(n, 10, 64)
		if err != nil || after < 1 {
			writeError(w, http.StatusBadRequest, "invalid_cursor", "next must be the cursor.next of an earlier page")
			return
		}
		q.After = store.ProfileID(after)
	}
	found, err := s.st.Search(r.Context(), q)
	if err != nil {
		s.storeError(w, "search profiles", err)
		return
	}
	next := ""
	if len(found) > limit {
		found = found[:limit]
		next = strconv.FormatInt(int64(found[len(found)-1].ID), 10)
	}
	data := make([]searchResult, 0, len(found))
	for _, p := range found {
		traits, err := s.st.Traits(r.Context(), ws, p.ID, summaryTraits)
		if err != nil {
			s.storeError(w, "search profiles", err)
			return
		}
		res := searchResult{KithID: int64(p.ID), FirstSeen: p.FirstSeen, LastSeen: p.LastSeen, Events: p.Events, Traits: map[string]json.RawMessage{}}
		for _, t := range traits {
			res.Traits[t.Key] = t.Value
		}
		data = append(data, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "cursor": pageCursor(r, next)})
}

// searchQuery reads the one search mode of a search request.
func (s *Server) searchQuery(ws, kind string, qv url.Values) (store.ProfileSearch, error) {
	q := store.ProfileSearch{Workspace: ws, Kind: kind}
	var modes []string
	for _, m := range []string{"identifier", "trait", "trait_prefix", "q"} {
		if qv.Has(m) {
			modes = append(modes, m)
		}
	}
	if len(modes) != 1 {
		return q, &badRequest{"invalid_search", "give exactly one of identifier=type:value, trait=key:value, trait_prefix=key:prefix or q=text"}
	}
	v := qv.Get(modes[0])
	switch modes[0] {
	case "identifier":
		id, err := s.parseIdentifier(ws, v)
		if err != nil {
			return q, err
		}
		q.Identifier = &id
	case "trait", "trait_prefix":
		key, val, ok := strings.Cut(v, ":")
		if !ok || key == "" || val == "" {
			return q, &badRequest{"invalid_search", modes[0] + " must be key:value"}
		}
		q.TraitKey = key
		if modes[0] == "trait_prefix" {
			q.TraitPrefix = val
			break
		}
		// A value that is JSON (a number, true) is matched as such;
		// anything else as a string.
		if json.Valid([]byte(val)) && !strings.HasPrefix(val, `"`) {
			q.TraitValue = json.RawMessage(val)
		} else {
			q.TraitValue, _ = json.Marshal(val)
		}
	case "q":
		if strings.TrimSpace(v) == "" {
			return q, &badRequest{"invalid_search", "q must not be empty"}
		}
		q.Text = v
	}
	return q, nil
}
