package session

import (
	"context"
	"net/http"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// Interceptor returns the interceptor that loads the caller's session from
// the cookie of every RPC's request headers. It never refuses a call
// itself: handlers that need a session call Require, anonymous ones ignore
// it, and backend clients reach the user's tokens through UserTokens.
func (m *Manager) Interceptor() connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			// Without call info (a ServerFunc run outside Server.Call)
			// there are no headers, so no cookie: the call is anonymous.
			var cookies []string
			if info, ok := connect.CallInfoForServerContext(ctx); ok {
				cookies = info.RequestHeader().Values("Cookie")
			}
			return next(m.attach(ctx, cookies), spec, stream)
		}
	}
}

// Attach returns ctx carrying the session named by header's cookie, or the
// reason there is none, for FromContext, Require and UserTokens. It is the
// interceptor's work, for plain HTTP handlers.
func (m *Manager) Attach(ctx context.Context, header http.Header) context.Context {
	return m.attach(ctx, header.Values("Cookie"))
}

func (m *Manager) attach(ctx context.Context, cookies []string) context.Context {
	spanCtx, span := telemetry.Start(ctx, "custodian.session")
	s, err := m.fromCookies(spanCtx, cookies)
	label := stateLabel(s, err)
	if span.IsRecording() {
		span.SetAttributes(telemetry.SessionState.String(label))
	}
	span.End()
	telemetry.FromContext(ctx).SetSession(label)
	return withState(ctx, &state{m: m, session: s, err: err})
}

// stateLabel says in a word what loading a session found, for spans and the
// access log: active, none, unavailable, or ended: and the reason.
func stateLabel(s *Session, err error) string {
	switch {
	case s != nil:
		return "active"
	case ReasonOf(err) == ReasonNoSession:
		return "none"
	case ReasonOf(err) != 0:
		return "ended:" + reasonLabel(ReasonOf(err))
	default:
		return "unavailable"
	}
}

// UserTokens returns the user's tokens for backend clients: those of the
// session the interceptor (or Attach) put in ctx. Without one, every call
// fails with what Require gives: an [*Error] saying why, or
// CodeUnavailable when the store could not answer. It allocates nothing.
func (m *Manager) UserTokens(ctx context.Context) UserTokens {
	if st := stateFrom(ctx); st != nil {
		return UserTokens{st: st}
	}
	return UserTokens{st: &m.anonymous}
}

// UserTokens gives backend clients the access tokens of one request's
// session, refreshing or exchanging them as the Manager's methods of the
// same names do. Get one from [Manager.UserTokens]; the zero value fails
// every call with NO_SESSION.
type UserTokens struct {
	// One pointer, so that storing a UserTokens in an interface does not
	// allocate.
	st *state
}

// AccessToken returns a valid access token of the session; see
// [Manager.AccessToken].
func (u UserTokens) AccessToken(ctx context.Context) (string, error) {
	s, err := u.st.require()
	if err != nil {
		return "", err
	}
	return u.st.m.AccessToken(ctx, s)
}

// ExchangedToken returns a token of the session for audience; see
// [Manager.ExchangedToken].
func (u UserTokens) ExchangedToken(ctx context.Context, audience string) (string, error) {
	s, err := u.st.require()
	if err != nil {
		return "", err
	}
	return u.st.m.ExchangedToken(ctx, s, audience)
}

// RenewAccessToken returns an access token other than rejected; see
// [Manager.RenewAccessToken].
func (u UserTokens) RenewAccessToken(ctx context.Context, rejected string) (string, error) {
	s, err := u.st.require()
	if err != nil {
		return "", err
	}
	return u.st.m.RenewAccessToken(ctx, s, rejected)
}

// RenewExchangedToken returns a token for audience other than rejected; see
// [Manager.RenewExchangedToken].
func (u UserTokens) RenewExchangedToken(ctx context.Context, audience, rejected string) (string, error) {
	s, err := u.st.require()
	if err != nil {
		return "", err
	}
	return u.st.m.RenewExchangedToken(ctx, s, audience, rejected)
}

// Reject ends the session because a backend kept refusing its tokens; see
// [Manager.Reject].
func (u UserTokens) Reject(ctx context.Context) error {
	s, err := u.st.require()
	if err != nil {
		return err
	}
	return u.st.m.Reject(ctx, s)
}
