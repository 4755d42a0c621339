package login_test

// AuthService's refusals through a whole gateway on loopback whose provider
// is a fake the test controls (gatewaytest.FakeOP): what a single-page app
// learns when FinishLogin refuses, when it calls Logout without a session,
// and when the provider is down. The login that succeeds is
// TestAPILoginEndToEnd's.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/session"
)

// providerDetail is the fake provider's own text: the description of its
// token endpoint's refusals, and the free text of a crafted callback. It
// must never reach the browser.
const providerDetail = "provider-secret-detail"

// responseCookies returns the cookies a response set, by name.
func responseCookies(t *testing.T, h *connect.Header) map[string]*http.Cookie {
	t.Helper()
	got := map[string]*http.Cookie{}
	for _, line := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		got[c.Name] = c
	}
	return got
}

// noStore reports whether the answer's Cache-Control forbids storing it:
// no-store among the directives of all its Cache-Control headers. (A call
// with the session cookie gets the gateway's "private, no-store" besides
// the handler's own "no-store".)
func noStore(h *connect.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-store") {
				return true
			}
		}
	}
	return false
}

// startAPILogin runs StartLogin and the fake provider's sign-in as subject
// in b, and returns the attempt's login cookie and the code and state the
// provider sends back to the app's callback page.
func startAPILogin(t *testing.T, b *gt.Browser, auth custodianv1connect.AuthServiceClient, subject string) (loginCookie *http.Cookie, code, state string) {
	t.Helper()
	ctx, info := connect.NewClientContext(t.Context())
	res, err := auth.StartLogin(ctx, &custodianv1.StartLoginRequest{ReturnTo: "/"})
	if err != nil {
		t.Fatalf("StartLogin: %v", err)
	}
	for name, c := range responseCookies(t, info.ResponseHeader()) {
		if strings.HasPrefix(name, "__Host-custodian-login-") {
			loginCookie = c
		}
	}
	if loginCookie == nil || b.Cookie(loginCookie.Name) == "" {
		t.Fatalf("StartLogin Set-Cookie %q: no login cookie in the jar", info.ResponseHeader().Values("Set-Cookie"))
	}
	authURL, err := url.Parse(res.GetAuthorizationUrl())
	if err != nil {
		t.Fatal(err)
	}
	q := authURL.Query()
	q.Set("login_hint", subject)
	authURL.RawQuery = q.Encode()
	back := b.SignIn(t, authURL.String(), subject).Query()
	if back.Get("code") == "" || back.Get("state") != q.Get("state") {
		t.Fatalf("the provider sent back %v", back)
	}
	return loginCookie, back.Get("code"), back.Get("state")
}

// TestFinishLoginRefusals checks FinishLogin's refusals over every
// protocol: fixed messages, nothing of the provider's, no session, and,
// once the attempt is known, its cookie cleared on the error response too
// (and in the browser), not to be stored.
func TestFinishLoginRefusals(t *testing.T) {
	t.Parallel()
	op := gt.NewFakeOP(t)
	op.SetErrorDescription(providerDetail)
	e := gt.NewFakeEnv(t, op)
	cases := []struct {
		name        string
		query       func(code, state string) string
		sendCookie  bool // false: another browser, without the attempt's cookie, finishes
		wantCode    connect.Code
		wantMessage string
		wantCleared bool
	}{
		{"query too long", func(string, string) string { return strings.Repeat("a", 4097) }, true,
			connect.CodeInvalidArgument, "callback_query: too long", false},
		{"not a query", func(string, string) string { return "%zz" }, true,
			connect.CodeInvalidArgument, "callback_query: not a query string", false},
		{"unknown state", func(code, _ string) string { return "code=" + code + "&state=forged" }, true,
			connect.CodeFailedPrecondition, "unknown, used or expired login attempt: start again", false},
		{"no login cookie", func(code, state string) string { return "code=" + code + "&state=" + state }, false,
			connect.CodeFailedPrecondition, "unknown, used or expired login attempt: start again", false},
		{"provider refused", func(_, state string) string { return "error=access_denied&state=" + state }, true,
			connect.CodePermissionDenied, "the identity provider did not sign the user in: access_denied", true},
		{"provider's free text", func(_, state string) string {
			return "error=" + url.QueryEscape("<script>"+providerDetail+"</script>") + "&state=" + state
		}, true, connect.CodePermissionDenied, "the identity provider did not sign the user in: error", true},
		{"code refused", func(_, state string) string { return "code=forged&state=" + state }, true,
			connect.CodePermissionDenied, "sign-in failed: start again", true},
	}
	for _, p := range gt.RPCProtocols() {
		for _, c := range cases {
			t.Run(p.Name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				b := e.Browser(t)
				loginCookie, code, state := startAPILogin(t, b, b.Auth(p), "alice")
				finisher := b
				if !c.sendCookie {
					finisher = e.Browser(t)
				}

				ctx, info := connect.NewClientContext(t.Context())
				res, err := finisher.Auth(p).FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: c.query(code, state)})
				if res != nil {
					t.Errorf("FinishLogin answered %v", res)
				}
				ce := gt.ConnectError(err)
				if ce == nil || ce.Code() != c.wantCode || ce.Message() != c.wantMessage {
					t.Fatalf("FinishLogin error %v, want %v %q", err, c.wantCode, c.wantMessage)
				}
				if strings.Contains(ce.Error(), providerDetail) {
					t.Errorf("error %q carries the provider's text", ce)
				}
				// The provider's refusal did carry its text, which stays
				// in the gateway's log.
				if c.name == "code refused" && !strings.Contains(e.Logs(), providerDetail) {
					t.Errorf("the gateway's log lacks the provider's description of its refusal")
				}
				set := responseCookies(t, info.ResponseHeader())
				if _, ok := set[gt.SessionCookie]; ok {
					t.Errorf("a refused login set the session cookie")
				}
				cleared := set[loginCookie.Name] != nil && set[loginCookie.Name].MaxAge < 0
				if cleared != c.wantCleared {
					t.Errorf("login cookie cleared %v, want %v (Set-Cookie %q)", cleared, c.wantCleared, info.ResponseHeader().Values("Set-Cookie"))
				}
				if c.wantCleared && !noStore(info.ResponseHeader()) {
					t.Errorf("Cache-Control %q, want no-store", info.ResponseHeader().Values("Cache-Control"))
				}
				// The browser that started the attempt keeps its cookie
				// unless the refusal cleared it.
				if kept := b.Cookie(loginCookie.Name) != ""; kept == c.wantCleared {
					t.Errorf("the jar kept the login cookie: %v, want %v", kept, !c.wantCleared)
				}
				if finisher.Cookie(gt.SessionCookie) != "" {
					t.Errorf("the jar holds a session cookie after a refused login")
				}
				finisher.WantNoSession(t, session.ReasonNoSession)
			})
		}
	}
}

// TestLogoutWithoutSession checks that Logout from a browser that never
// signed in tells it why it cannot, and where to sign in.
func TestLogoutWithoutSession(t *testing.T) {
	t.Parallel()
	e := gt.NewFakeEnv(t, gt.NewFakeOP(t))
	for _, p := range gt.RPCProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			_, err := e.Browser(t).Auth(p).Logout(context.Background(), &custodianv1.LogoutRequest{})
			wantSessionEnd(t, e, "Logout", err, session.ReasonNoSession)
		})
	}
}

// TestStartLoginProviderDown checks that an unreachable provider gives a
// fixed answer over every protocol, not the provider's address or the dial
// error, and starts no attempt.
func TestStartLoginProviderDown(t *testing.T) {
	t.Parallel()
	op := gt.NewFakeOP(t)
	e := gt.NewFakeEnv(t, op)
	op.Stop()
	for _, p := range gt.RPCProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			b := e.Browser(t)
			ctx, info := connect.NewClientContext(t.Context())
			res, err := b.Auth(p).StartLogin(ctx, &custodianv1.StartLoginRequest{})
			if res != nil {
				t.Errorf("StartLogin answered %v", res)
			}
			ce := gt.ConnectError(err)
			if ce == nil || ce.Code() != connect.CodeUnavailable || ce.Message() != "the identity provider is unavailable, try again" {
				t.Fatalf("StartLogin = %v, want unavailable", err)
			}
			for _, secret := range []string{strings.TrimPrefix(op.Issuer, "http://"), "connection refused", "discovery"} {
				if strings.Contains(ce.Error(), secret) {
					t.Errorf("error %q reveals %q", ce, secret)
				}
			}
			if got := info.ResponseHeader().Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("StartLogin set cookies %q without an attempt", got)
			}
			if got := b.CookieHeader(); got != "" {
				t.Errorf("the jar holds %q after a failed start", got)
			}
		})
	}
}
