package portal

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// One-time codes.
const (
	codeTTL     = 10 * time.Minute // a code expires this long after it was sent
	maxAttempts = 5                // wrong entries before a code is void
)

// Code purposes.
const (
	purposeSignIn = "sign-in"
	purposeStepUp = "step-up"
)

// challenge is what the session holds of the code sent last. The code
// itself is not held anywhere: it is derived from the challenge with a
// keyed hash (codeFor), so only someone holding both the cookie and the
// server secret can compute it, and it can be checked on any node.
type challenge struct {
	Email   string `json:"email"`
	Purpose string `json:"purpose"`        // sign-in or step-up
	Next    string `json:"next,omitempty"` // step-up: the page to open after it (download, delete)
	Nonce   string `json:"nonce"`          // random, per code
	Issued  int64  `json:"issued"`         // unix seconds
}

// codeFor is the six-digit code of challenge c in workspace ws.
func (p *Portal) codeFor(ws string, c *challenge) string {
	sum := mac(p.keys.code, ws, c.Email, c.Purpose, c.Next, c.Nonce, strconv.FormatInt(c.Issued, 10))
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(sum[:8])%1_000_000)
}

// Why a code is refused.
var (
	errNoCode       = errors.New("no code was sent to this browser, or it was for something else: ask for a new one")
	errCodeExpired  = errors.New("this code has expired (codes last 10 minutes): ask for a new one")
	errCodeUsed     = errors.New("this code was already used: ask for a new one")
	errTooMany      = errors.New("too many wrong codes: ask for a new one")
	errWrongCode    = errors.New("that is not the code we sent; check the latest email and try again")
	errMalformedPIN = errors.New("the code is the 6 digits from the email")
)

// codeBook remembers, per node, how often each code (by its challenge's
// nonce) was tried and whether it was used, until it expires. It is what
// makes a code single use and limits attempts: the challenge in the
// cookie cannot, since a browser can send an old cookie again.
type codeBook struct {
	mu sync.Mutex
	m  map[string]*codeState
}

type codeState struct {
	attempts int
	used     bool
	expires  time.Time
}

// try checks an entry of challenge c: ok says whether the code entered was
// right. It counts the attempt and, when right, uses the code up.
func (b *codeBook) try(c *challenge, ok bool, now time.Time) error {
	expires := time.Unix(c.Issued, 0).Add(codeTTL)
	if !now.Before(expires) {
		return errCodeExpired
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*codeState{}
	}
	st := b.m[c.Nonce]
	if st == nil {
		for k, s := range b.m { // forget expired codes
			if !now.Before(s.expires) {
				delete(b.m, k)
			}
		}
		st = &codeState{expires: expires}
		b.m[c.Nonce] = st
	}
	switch {
	case st.used:
		return errCodeUsed
	case st.attempts >= maxAttempts:
		return errTooMany
	}
	st.attempts++
	if !ok {
		if st.attempts >= maxAttempts {
			return errTooMany
		}
		return errWrongCode
	}
	st.used = true
	return nil
}

// checkCode checks the code a person entered against the session's
// challenge for purpose.
func (p *Portal) checkCode(ws string, s *session, purpose, entered string, now time.Time) (*challenge, error) {
	c := s.Challenge
	if c == nil || c.Purpose != purpose || (purpose == purposeStepUp && c.Email != s.Email) {
		return nil, errNoCode
	}
	if len(entered) != 6 || !digits(entered) {
		return nil, errMalformedPIN
	}
	want := p.codeFor(ws, c)
	if err := p.codes.try(c, hmac.Equal([]byte(entered), []byte(want)), now); err != nil {
		return nil, err
	}
	return c, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
