package session

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	"github.com/custodian-bff/custodian/clients"
)

// Interceptor returns the interceptor that loads the caller's session from
// its cookie for every RPC. It never refuses a call itself: handlers that
// need a session call Require, anonymous ones ignore it. With a session, the
// context also carries the user's tokens for backend clients.
func (m *Manager) Interceptor() connect.Interceptor {
	return &interceptor{m: m}
}

type interceptor struct {
	m *Manager
}

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		return next(i.m.Attach(ctx, req.Header()), req)
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(i.m.Attach(ctx, conn.RequestHeader()), conn)
	}
}

// Attach returns ctx carrying the session named by header's cookie, or the
// reason there is none, for FromContext and Require.
func (m *Manager) Attach(ctx context.Context, header http.Header) context.Context {
	s, err := m.FromHeader(ctx, header)
	if err != nil {
		// Backend calls that need the user's token fail with the same
		// reason, even from a handler that did not call Require first.
		return clients.WithUserTokens(withState(ctx, state{err: err}), noUser{err: err})
	}
	ctx = withState(ctx, state{session: s})
	return clients.WithUserTokens(ctx, userTokens{m: m, s: s})
}

// noUser answers for a caller without a session: every token request fails
// with the reason there is none.
type noUser struct{ err error }

func (n noUser) AccessToken(context.Context) (string, error)            { return "", n.err }
func (n noUser) ExchangedToken(context.Context, string) (string, error) { return "", n.err }
func (n noUser) RenewAccessToken(context.Context, string) (string, error) {
	return "", n.err
}
func (n noUser) RenewExchangedToken(context.Context, string, string) (string, error) {
	return "", n.err
}
func (n noUser) Reject(context.Context) error { return n.err }

// userTokens gives backend clients the session's tokens.
type userTokens struct {
	m *Manager
	s *Session
}

func (u userTokens) AccessToken(ctx context.Context) (string, error) {
	return u.m.AccessToken(ctx, u.s)
}

func (u userTokens) ExchangedToken(ctx context.Context, audience string) (string, error) {
	return u.m.ExchangedToken(ctx, u.s, audience)
}

func (u userTokens) RenewAccessToken(ctx context.Context, rejected string) (string, error) {
	return u.m.RenewAccessToken(ctx, u.s, rejected)
}

func (u userTokens) RenewExchangedToken(ctx context.Context, audience, rejected string) (string, error) {
	return u.m.RenewExchangedToken(ctx, u.s, audience, rejected)
}

func (u userTokens) Reject(ctx context.Context) error {
	return u.m.Reject(ctx, u.s)
}
