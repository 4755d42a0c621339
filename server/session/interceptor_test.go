package session_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/custodian-bff/custodian/clients"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/session"
)

func TestAttachWithSession(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		expiry    time.Duration
		wantToken string
		refreshes int
	}{
		{"fresh token", time.Hour, "at-secret-original", 0},
		{"expired token", -time.Minute, "at-refreshed-1", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, h, _ := e.create(t, alice, "sid-1", e.tokens(c.expiry))
			ctx := e.m.Attach(t.Context(), h)
			s, ok := session.FromContext(ctx)
			if !ok || s.User != alice {
				t.Fatalf("FromContext = %v, %v", s, ok)
			}
			if req, err := session.Require(ctx); err != nil || req != s {
				t.Errorf("Require = %v, %v", req, err)
			}
			ut, ok := clients.UserTokensFromContext(ctx)
			if !ok {
				t.Fatal("no user tokens in the context")
			}
			for range 3 {
				if tok, err := ut.AccessToken(ctx); err != nil || tok != c.wantToken {
					t.Errorf("AccessToken = %q, %v; want %q", tok, err, c.wantToken)
				}
			}
			if e.ref.Calls() != c.refreshes {
				t.Errorf("%d refreshes, want %d", e.ref.Calls(), c.refreshes)
			}
			if tok, err := ut.ExchangedToken(ctx, "orders"); tok != "" || connect.CodeOf(err) != connect.CodeUnimplemented {
				t.Errorf("ExchangedToken = %q, %v; want unimplemented", tok, err)
			}
		})
	}
}

func TestAttachWithoutSession(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		header func(t *testing.T, e *env) http.Header
		reason session.Reason
	}{
		{"no cookie", func(*testing.T, *env) http.Header { return http.Header{} }, session.ReasonNoSession},
		{"unknown cookie", func(*testing.T, *env) http.Header {
			return cookieHeader("__Host-custodian", strings.Repeat("x", 43))
		}, session.ReasonNoSession},
		{"signed out", func(t *testing.T, e *env) http.Header {
			_, h, s := e.create(t, alice, "", e.tokens(time.Hour))
			if err := e.m.End(t.Context(), s, session.ReasonSignedOut); err != nil {
				t.Fatal(err)
			}
			return h
		}, session.ReasonSignedOut},
		{"token rejected", func(t *testing.T, e *env) http.Header {
			_, h, s := e.create(t, alice, "", e.tokens(time.Hour))
			if err := e.m.End(t.Context(), s, session.ReasonTokenRejected); err != nil {
				t.Fatal(err)
			}
			return h
		}, session.ReasonTokenRejected},
		{"expired", func(t *testing.T, e *env) http.Header {
			_, h, _ := e.create(t, alice, "", e.tokens(time.Hour))
			e.clock.Advance(idle)
			return h
		}, session.ReasonExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, session.WithLoginURL("https://shop.example/auth/login"))
			ctx := e.m.Attach(t.Context(), c.header(t, e))
			if s, ok := session.FromContext(ctx); ok || s != nil {
				t.Errorf("FromContext = %v, %v", s, ok)
			}
			// Backend calls for the user fail with the same reason.
			if ut, ok := clients.UserTokensFromContext(ctx); ok {
				tok, err := ut.AccessToken(t.Context())
				if tok != "" {
					t.Errorf("a request without a session got token %q", tok)
				}
				wantRefused(t, err, c.reason)
				_, err = ut.ExchangedToken(t.Context(), "acme-loyalty")
				wantRefused(t, err, c.reason)
			} else {
				t.Error("no token source saying why there is no session")
			}
			s, err := session.Require(ctx)
			if s != nil {
				t.Errorf("Require gave a session")
			}
			wantRefused(t, err, c.reason)
			if got := loginURLOf(err); got != "https://shop.example/auth/login" {
				t.Errorf("login url %q", got)
			}
		})
	}
}

func loginURLOf(err error) string {
	ce, ok := err.(*connect.Error)
	if !ok {
		return ""
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if se, ok := v.(*custodianv1.SessionError); ok {
				return se.GetLoginUrl()
			}
		}
	}
	return ""
}

func TestRequireWithoutAttach(t *testing.T) {
	t.Parallel()
	s, err := session.Require(context.Background())
	if s != nil {
		t.Error("Require gave a session")
	}
	wantRefused(t, err, session.ReasonNoSession)
	if _, ok := session.FromContext(context.Background()); ok {
		t.Error("FromContext found a session")
	}
}

func TestInterceptorAttaches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	cases := []struct {
		name    string
		header  http.Header
		subject string
	}{
		{"with session", h, alice.Subject},
		{"without", http.Header{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			req := connect.NewRequest(&custodianv1.GetSessionRequest{})
			for k, v := range c.header {
				req.Header()[k] = v
			}
			var got string
			next := func(ctx context.Context, _ connect.AnyRequest) (connect.AnyResponse, error) {
				if s, ok := session.FromContext(ctx); ok {
					got = s.User.Subject
				} else if _, err := session.Require(ctx); err == nil {
					t.Error("Require without a session succeeded")
				}
				return nil, nil
			}
			if _, err := e.m.Interceptor().WrapUnary(next)(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			if got != c.subject {
				t.Errorf("handler saw subject %q, want %q", got, c.subject)
			}
		})
	}
}

// TestNoTokensLeave checks that what browsers get about a session, the
// user, GetSession's answer and the errors, never carries a token.
func TestNoTokensLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokens := e.tokens(time.Hour)
	_, h, _ := e.create(t, alice, "sid-1", tokens)
	ctx := e.m.Attach(t.Context(), h)
	s, err := session.Require(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := session.NewService("/auth/logout").GetSession(ctx, connect.NewRequest(&custodianv1.GetSessionRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", res.Header().Get("Cache-Control"))
	}
	user := session.PublicUser(s.User)
	want := &custodianv1.User{Subject: alice.Subject, Name: alice.Name, Email: alice.Email, Picture: alice.Picture}
	if !proto.Equal(user, want) || !proto.Equal(res.Msg.GetUser(), want) {
		t.Errorf("PublicUser = %v, GetSession user %v; want %v", user, res.Msg.GetUser(), want)
	}
	if got := res.Msg.GetLogoutUrl(); got != "/auth/logout?id="+s.LogoutID {
		t.Errorf("logout url %q", got)
	}
	if !res.Msg.GetIdleExpireTime().AsTime().Equal(s.IdleExpiry) || !res.Msg.GetAbsoluteExpireTime().AsTime().Equal(s.AbsoluteExpiry) {
		t.Errorf("expiry times %v, %v", res.Msg.GetIdleExpireTime(), res.Msg.GetAbsoluteExpireTime())
	}
	e.clock.Advance(idle)
	_, refused := session.Require(e.m.Attach(t.Context(), h))
	for name, text := range map[string]string{
		"PublicUser":  protojson.Format(user),
		"GetSession":  protojson.Format(res.Msg),
		"headers":     strings.Join(res.Header().Values("Set-Cookie"), ";"),
		"their error": refused.Error(),
	} {
		for _, secret := range []string{tokens.AccessToken, tokens.RefreshToken, tokens.IDToken} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains %q: %s", name, secret, text)
			}
		}
	}
}
