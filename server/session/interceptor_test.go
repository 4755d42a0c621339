package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
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
			ut := e.m.UserTokens(ctx)
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
			wantTokensRefused(t, e.m.UserTokens(ctx), c.reason, "https://shop.example/auth/login")
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

// wantTokensRefused fails unless every method of ut fails with reason and
// loginURL, giving no token.
func wantTokensRefused(t *testing.T, ut session.UserTokens, reason session.Reason, loginURL string) {
	t.Helper()
	ctx := t.Context()
	calls := map[string]func() (string, error){
		"AccessToken":      func() (string, error) { return ut.AccessToken(ctx) },
		"ExchangedToken":   func() (string, error) { return ut.ExchangedToken(ctx, "acme-loyalty") },
		"RenewAccessToken": func() (string, error) { return ut.RenewAccessToken(ctx, "at-secret-original") },
		"RenewExchangedToken": func() (string, error) {
			return ut.RenewExchangedToken(ctx, "acme-loyalty", "at-secret-original")
		},
		"Reject": func() (string, error) { return "", ut.Reject(ctx) },
	}
	for name, call := range calls {
		tok, err := call()
		if tok != "" {
			t.Errorf("%s without a session gave token %q", name, tok)
		}
		wantRefused(t, err, reason)
		if got := loginURLOf(err); got != loginURL {
			t.Errorf("%s: login url %q, want %q", name, got, loginURL)
		}
	}
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
	// Backend calls outside a request with a session are refused too,
	// with the manager's login URL, and so is the zero UserTokens.
	e := newEnv(t, session.WithLoginURL("https://shop.example/auth/login"))
	wantTokensRefused(t, e.m.UserTokens(context.Background()), session.ReasonNoSession, "https://shop.example/auth/login")
	wantTokensRefused(t, session.UserTokens{}, session.ReasonNoSession, "")
	if e.ref.Calls() != 0 {
		t.Errorf("%d refreshes without a session", e.ref.Calls())
	}
}

// TestUserTokensActsForAttachedSession checks that the tokens handed to
// backend clients are those of the session the request carried, not of
// another one, and that later calls share what earlier ones renewed.
func TestUserTokensActsForAttachedSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, hAlice, _ := e.create(t, alice, "sid-1", e.tokens(-time.Minute))
	bob := session.User{Subject: "bob-sub"}
	bobTokens := e.tokens(time.Hour)
	bobTokens.AccessToken = "at-secret-bob"
	_, hBob, _ := e.create(t, bob, "sid-2", bobTokens)
	ctxAlice := e.m.Attach(t.Context(), hAlice)
	ctxBob := e.m.Attach(t.Context(), hBob)
	if tok, err := e.m.UserTokens(ctxBob).AccessToken(t.Context()); err != nil || tok != "at-secret-bob" {
		t.Errorf("bob's AccessToken = %q, %v", tok, err)
	}
	for range 2 {
		if tok, err := e.m.UserTokens(ctxAlice).AccessToken(t.Context()); err != nil || tok != "at-refreshed-1" {
			t.Errorf("alice's AccessToken = %q, %v; want at-refreshed-1", tok, err)
		}
	}
	if tok, err := e.m.UserTokens(ctxAlice).RenewAccessToken(t.Context(), "at-refreshed-1"); err != nil || tok != "at-refreshed-2" {
		t.Errorf("alice's RenewAccessToken = %q, %v; want at-refreshed-2", tok, err)
	}
	if e.ref.Calls() != 2 {
		t.Errorf("%d refreshes, want 2", e.ref.Calls())
	}
	wantRefused(t, e.m.UserTokens(ctxAlice).Reject(t.Context()), session.ReasonTokenRejected)
	e.wantEnded(t, hAlice, session.ReasonTokenRejected)
	if tok, err := e.m.UserTokens(ctxBob).AccessToken(t.Context()); err != nil || tok != "at-secret-bob" {
		t.Errorf("bob's AccessToken after alice's session ended = %q, %v", tok, err)
	}
}

// probe is a SessionService that records what the session interceptor
// gave it.
type probe struct {
	custodianv1connect.UnimplementedSessionServiceHandler
	subject chan string
}

func (p probe) GetSession(ctx context.Context, _ *custodianv1.GetSessionRequest) (*custodianv1.GetSessionResponse, error) {
	s, ok := session.FromContext(ctx)
	_, err := session.Require(ctx)
	switch {
	case ok && err == nil:
		p.subject <- s.User.Subject
	case !ok && err != nil:
		p.subject <- ""
	default:
		p.subject <- fmt.Sprintf("FromContext %v and Require %v disagree", ok, err)
	}
	return &custodianv1.GetSessionResponse{}, nil
}

// edge stands for the gateway's edge interceptor: it turns the session
// verdict into the browser's answer.
func edge(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		err := next(ctx, spec, stream)
		if se, ok := errors.AsType[*session.Error](err); ok {
			return se.ConnectError()
		}
		return err
	}
}

// serve serves svc behind the edge and m's interceptor on a loopback
// listener and returns a client of it.
func serve(t *testing.T, m *session.Manager, svc custodianv1connect.SessionServiceHandler) custodianv1connect.SessionServiceClient {
	t.Helper()
	srv := connect.NewServer(edge, m.Interceptor())
	custodianv1connect.RegisterSessionServiceHandler(srv, svc)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return custodianv1connect.NewSessionServiceClient(connect.NewClient(connecthttp.NewTransport(ts.Client(), ts.URL)))
}

// withHeader returns ctx for a call that sends header, and the call's info.
func withHeader(ctx context.Context, header http.Header) (context.Context, *connect.CallInfo) {
	ctx, info := connect.NewClientContext(ctx)
	for k, vv := range header {
		for _, v := range vv {
			info.RequestHeader().Add(k, v)
		}
	}
	return ctx, info
}

func TestInterceptorAttaches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	twoLines := cookieHeader("theme", "dark")
	twoLines.Add("Cookie", h.Get("Cookie"))
	cases := []struct {
		name    string
		header  http.Header
		subject string
	}{
		{"with session", h, alice.Subject},
		{"session on the second cookie line", twoLines, alice.Subject},
		{"without", http.Header{}, ""},
		{"unknown cookie", cookieHeader("__Host-custodian", strings.Repeat("x", 43)), ""},
	}
	p := probe{subject: make(chan string, 1)}
	client := serve(t, e.m, p)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, _ := withHeader(t.Context(), c.header)
			if _, err := client.GetSession(ctx, &custodianv1.GetSessionRequest{}); err != nil {
				t.Fatal(err)
			}
			if got := <-p.subject; got != c.subject {
				t.Errorf("handler saw subject %q, want %q", got, c.subject)
			}
		})
	}
}

// TestInterceptorWithoutCallInfo checks that a ServerFunc run outside
// Server.Call (no headers at all) is anonymous.
func TestInterceptorWithoutCallInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.WithLoginURL("https://shop.example/auth/login"))
	var err error
	next := func(ctx context.Context, _ connect.Spec, _ connect.ServerStream) error {
		_, err = session.Require(ctx)
		return nil
	}
	if ierr := e.m.Interceptor()(next)(t.Context(), connect.Spec{}, nil); ierr != nil {
		t.Fatal(ierr)
	}
	wantRefused(t, err, session.ReasonNoSession)
	if got := loginURLOf(err); got != "https://shop.example/auth/login" {
		t.Errorf("login url %q", got)
	}
}

// TestGetSessionSignedOut checks GetSession's answer, on the wire, to a
// caller without a usable session: not an error but a signed-out answer
// with the reason and the login URL, and nothing of the session; while the
// service's other method keeps refusing with the typed error.
func TestGetSessionSignedOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.WithLoginURL("https://shop.example/auth/login"))
	tokens := e.tokens(time.Hour)
	_, h, s := e.create(t, alice, "sid-1", tokens)
	if err := e.m.End(t.Context(), s, session.ReasonSignedOut); err != nil {
		t.Fatal(err)
	}
	_, hExpired, _ := e.create(t, alice, "sid-2", tokens)
	client := serve(t, e.m, session.NewService("/auth/logout"))
	for _, c := range []struct {
		name    string
		header  http.Header
		reason  session.Reason
		advance time.Duration // clock advance before the case
	}{
		{"no cookie", http.Header{}, session.ReasonNoSession, 0},
		{"junk cookie", cookieHeader(e.m.CookieName(), "junk"), session.ReasonNoSession, 0},
		{"signed out", h, session.ReasonSignedOut, 0},
		{"expired", hExpired, session.ReasonExpired, idle + time.Second},
	} {
		e.clock.Advance(c.advance)
		t.Run(c.name, func(t *testing.T) {
			ctx, _ := withHeader(t.Context(), c.header)
			res, err := client.GetSession(ctx, &custodianv1.GetSessionRequest{})
			if err != nil {
				t.Fatalf("GetSession: %v, want a signed-out answer", err)
			}
			want := &custodianv1.GetSessionResponse{EndReason: c.reason, LoginUrl: "https://shop.example/auth/login"}
			if !proto.Equal(res, want) {
				t.Errorf("GetSession answered %v, want %v", res, want)
			}
			for _, secret := range []string{tokens.AccessToken, tokens.RefreshToken, tokens.IDToken} {
				if strings.Contains(protojson.Format(res), secret) {
					t.Errorf("answer %v contains %q", res, secret)
				}
			}
			ctx, _ = withHeader(t.Context(), c.header)
			_, err = client.SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{})
			ce, ok := errors.AsType[*connect.Error](err)
			if !ok || ce.Code() != connect.CodeUnauthenticated || !ce.IsRemote() {
				t.Fatalf("SignOutEverywhere error %v, want a remote unauthenticated *connect.Error", err)
			}
			if d := detailOf(t, ce); d.GetReason() != c.reason || d.GetLoginUrl() != "https://shop.example/auth/login" {
				t.Errorf("SessionError detail %v, want reason %v", d, c.reason)
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
	client := serve(t, e.m, session.NewService("/auth/logout"))
	callCtx, info := withHeader(t.Context(), h)
	res, err := client.GetSession(callCtx, &custodianv1.GetSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.ResponseHeader().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", info.ResponseHeader().Get("Cache-Control"))
	}
	user := session.PublicUser(s.User)
	want := &custodianv1.User{Subject: alice.Subject, Name: alice.Name, Email: alice.Email, Picture: alice.Picture}
	if !proto.Equal(user, want) || !proto.Equal(res.GetUser(), want) {
		t.Errorf("PublicUser = %v, GetSession user %v; want %v", user, res.GetUser(), want)
	}
	if got := res.GetLogoutUrl(); got != "/auth/logout?id="+s.LogoutID {
		t.Errorf("logout url %q", got)
	}
	if !res.GetIdleExpireTime().AsTime().Equal(s.IdleExpiry) || !res.GetAbsoluteExpireTime().AsTime().Equal(s.AbsoluteExpiry) {
		t.Errorf("expiry times %v, %v", res.GetIdleExpireTime(), res.GetAbsoluteExpireTime())
	}
	e.clock.Advance(idle)
	_, refused := session.Require(e.m.Attach(t.Context(), h))
	expiredCtx, expiredInfo := withHeader(t.Context(), h)
	onTheWire, wireErr := client.GetSession(expiredCtx, &custodianv1.GetSessionRequest{})
	wantRefused(t, refused, session.ReasonExpired)
	var headers []string
	for _, i := range []*connect.CallInfo{info, expiredInfo} {
		for k, vv := range i.ResponseHeader().All() {
			headers = append(headers, k+": "+strings.Join(vv, ", "))
		}
	}
	for name, text := range map[string]string{
		"PublicUser":          protojson.Format(user),
		"GetSession":          protojson.Format(res),
		"headers":             strings.Join(headers, "\n"),
		"their error":         refused.Error(),
		"their browser error": refused.(*session.Error).ConnectError().Error(),
		"the wire answer":     fmt.Sprint(onTheWire, wireErr),
	} {
		for _, secret := range []string{tokens.AccessToken, tokens.RefreshToken, tokens.IDToken} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains %q: %s", name, secret, text)
			}
		}
	}
	if wireErr != nil || onTheWire.GetSignedIn() || onTheWire.GetEndReason() != session.ReasonExpired {
		t.Errorf("GetSession after expiry: %v, %v; want signed out, expired", onTheWire, wireErr)
	}
}
