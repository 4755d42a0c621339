// Package session holds the browsers' sessions with the gateway on the
// server: an opaque cookie names a record in a Store that keeps the user's
// claims and the provider's tokens, sealed with the key ring. Expiry slides
// in the store, so data calls never need to set a cookie, and held access
// tokens are refreshed once per session however many calls need them.
package session

import (
	"context"
	"sync"
	"time"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
)

// User is the subset of the provider's claims a session keeps.
type User struct {
	Subject string `json:"sub"`
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
	Picture string `json:"picture,omitempty"`
}

// Tokens are what the provider issued for a session.
type Tokens struct {
	AccessToken  string    `json:"at"`
	RefreshToken string    `json:"rt,omitempty"`
	IDToken      string    `json:"it,omitempty"`
	AccessExpiry time.Time `json:"exp"`
}

// Session is a live session as loaded for one request.
type Session struct {
	key            string
	User           User
	SID            string // the provider's session id, for back-channel logout
	LogoutID       string // proves a GET logout comes from the session's own page
	Created        time.Time
	IdleExpiry     time.Time
	AbsoluteExpiry time.Time

	mu     sync.Mutex // guards tokens: one request's fan-out shares the session
	tokens Tokens
}

// Tokens returns the tokens the session holds. They must never be put into
// a response; the login package needs them to revoke and to end the
// provider's session.
func (s *Session) Tokens() Tokens {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens
}

func (s *Session) setTokens(t Tokens) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = t
}

// Reason says why a request has no usable session.
type Reason = custodianv1.SessionEndReason

// Reasons, re-exported from custodian.v1 for brevity.
const (
	ReasonNoSession     = custodianv1.SessionEndReason_SESSION_END_REASON_NO_SESSION
	ReasonExpired       = custodianv1.SessionEndReason_SESSION_END_REASON_SESSION_EXPIRED
	ReasonSignedOut     = custodianv1.SessionEndReason_SESSION_END_REASON_SIGNED_OUT
	ReasonRefreshFailed = custodianv1.SessionEndReason_SESSION_END_REASON_REFRESH_FAILED
	ReasonTokenRejected = custodianv1.SessionEndReason_SESSION_END_REASON_TOKEN_REJECTED
)

type contextKey struct{}

// state is what Attach learned about the caller's session: the session, or
// why there is none. Attach makes one per request; the context carries a
// pointer to it, and so does UserTokens.
type state struct {
	m       *Manager
	session *Session
	err     error // why there is no session; set when session is nil
}

func withState(ctx context.Context, st *state) context.Context {
	return context.WithValue(ctx, contextKey{}, st)
}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(contextKey{}).(*state)
	return st
}

// FromContext returns the caller's session, if the request carried a usable
// one.
func FromContext(ctx context.Context) (*Session, bool) {
	if st := stateFrom(ctx); st != nil && st.session != nil {
		return st.session, true
	}
	return nil, false
}

// Require returns the caller's session, or the error to give a caller
// without one: an [*Error] saying why (or CodeUnavailable when the session
// store could not answer).
func Require(ctx context.Context) (*Session, error) {
	return stateFrom(ctx).require()
}

// require returns the session of st, or why there is none. A nil st (no
// Attach) and a Manager's placeholder (no session, no error) mean the
// request carried no session at all.
func (st *state) require() (*Session, error) {
	switch {
	case st == nil:
		return nil, Unauthenticated(ReasonNoSession, "")
	case st.session != nil:
		return st.session, nil
	case st.err != nil:
		return nil, st.err
	default:
		return nil, Unauthenticated(ReasonNoSession, st.m.loginURL)
	}
}
