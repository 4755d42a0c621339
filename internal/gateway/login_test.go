package gateway_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/custodian-bff/custodian/demo"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// TestLoginFlow drives the browser login through the gateway's pages and the
// demo provider's form: the session it creates, the cookies it sets, and
// logins in parallel tabs.
func TestLoginFlow(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t)

	t.Run("anonymous", func(t *testing.T) {
		t.Parallel()
		for _, p := range rpcProtocols() {
			_, err := e.browser().sessions(p).GetSession(context.Background(), connect.NewRequest(&custodianv1.GetSessionRequest{}))
			wantReason(t, p.name+": GetSession", err, session.ReasonNoSession)
			var loginURL string
			for _, d := range connectError(err).Details() {
				if v, err := d.Value(); err == nil {
					if se, ok := v.(*custodianv1.SessionError); ok {
						loginURL = se.GetLoginUrl()
					}
				}
			}
			if want := e.public + "/auth/login"; loginURL != want {
				t.Errorf("%s: login_url %q, want %q", p.name, loginURL, want)
			}
		}
	})

	t.Run("alice", func(t *testing.T) {
		t.Parallel()
		b := e.browser()
		before := e.clock.Now()
		authURL, start := b.startLogin("/orders?page=2#top")

		// The provider's authorization request.
		q := authURL.Query()
		if got := authURL.Scheme + "://" + authURL.Host + authURL.Path; got != e.listen+demo.IdPPath+"authorize" {
			t.Errorf("login redirects to %s, want the provider's authorization endpoint", got)
		}
		for k, want := range map[string]string{
			"response_type":         "code",
			"client_id":             demo.ClientID,
			"redirect_uri":          e.public + "/auth/callback",
			"code_challenge_method": "S256",
		} {
			if got := q.Get(k); got != want {
				t.Errorf("authorization request %s=%q, want %q", k, got, want)
			}
		}
		for _, k := range []string{"state", "nonce", "code_challenge"} {
			if len(q.Get(k)) < 43 {
				t.Errorf("authorization request %s=%q: want at least 256 bits", k, q.Get(k))
			}
		}
		if !strings.Contains(" "+q.Get("scope")+" ", " openid ") {
			t.Errorf("scope %q lacks openid", q.Get("scope"))
		}

		// The login cookie: one per attempt, Lax so the provider's
		// redirect brings it back.
		loginCookies := start.setCookies(t)
		if len(loginCookies) != 1 {
			t.Fatalf("/auth/login set %d cookies, want 1", len(loginCookies))
		}
		lc := loginCookies[0]
		if !strings.HasPrefix(lc.Name, "__Host-custodian-login-") || !lc.HttpOnly || !lc.Secure ||
			lc.SameSite != http.SameSiteLaxMode || lc.Path != "/" || lc.Domain != "" || lc.MaxAge <= 0 || lc.MaxAge > 600 {
			t.Errorf("login cookie %q, want __Host-custodian-login-*, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Max-Age ≤ 600", start.header.Get("Set-Cookie"))
		}
		if start.header.Get("Cache-Control") != "no-store" {
			t.Errorf("/auth/login Cache-Control %q", start.header.Get("Cache-Control"))
		}

		callback := b.signIn(authURL.String(), "alice")
		if got := callback.Scheme + "://" + callback.Host + callback.Path; got != e.public+"/auth/callback" {
			t.Fatalf("provider returns to %s", got)
		}
		page := b.get(callback.String())
		if page.status != http.StatusOK {
			t.Fatalf("callback: status %d; body %.300q", page.status, page.body)
		}
		if got := page.continueURL(); got != "/orders?page=2#top" {
			t.Errorf("callback page continues to %q, want the return_to", got)
		}
		for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"} {
			if page.header.Get(h) == "" {
				t.Errorf("callback page lacks %s", h)
			}
		}
		if page.header.Get("Cache-Control") != "no-store" {
			t.Errorf("callback page Cache-Control %q", page.header.Get("Cache-Control"))
		}

		// Cookies of the callback: the session cookie, and the login
		// cookie cleared.
		var sessionSet, loginCleared bool
		for _, c := range page.setCookies(t) {
			switch c.Name {
			case sessionCookie:
				sessionSet = true
				if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 0 || !c.Expires.IsZero() {
					t.Errorf("session cookie %q, want HttpOnly, Secure, SameSite=Strict, Path=/, no Domain, no expiry", c.Raw)
				}
				if len(c.Value) != 43 {
					t.Errorf("session id %q has %d characters, want 43 (256 bits)", c.Value, len(c.Value))
				}
			case lc.Name:
				loginCleared = c.MaxAge < 0 && c.Value == ""
				if c.SameSite != http.SameSiteLaxMode || c.Path != "/" || !c.Secure {
					t.Errorf("login cookie clearing %q: attributes differ from the cookie's", c.Raw)
				}
			default:
				t.Errorf("callback sets unexpected cookie %q", c.Raw)
			}
		}
		if !sessionSet || !loginCleared {
			t.Errorf("callback: session cookie set %v, login cookie cleared %v; Set-Cookie %q", sessionSet, loginCleared, page.header.Values("Set-Cookie"))
		}
		if b.cookie(lc.Name) != "" {
			t.Errorf("the jar still holds the login cookie")
		}

		s := b.mustSession("alice")
		u := s.GetUser()
		if u.GetName() != "Alice Liddell" || u.GetEmail() != "alice@example.com" || u.GetPicture() != "https://images.example/avatars/alice.png" {
			t.Errorf("user %v", u)
		}
		idle, abs := s.GetIdleExpireTime().AsTime(), s.GetAbsoluteExpireTime().AsTime()
		if d := idle.Sub(before); d < 29*time.Minute || d > 31*time.Minute {
			t.Errorf("idle expiry %v after login, want 30m", d)
		}
		if d := abs.Sub(before); d < 11*time.Hour+59*time.Minute || d > 12*time.Hour+time.Minute {
			t.Errorf("absolute expiry %v after login, want 12h", d)
		}
		logout, err := url.Parse(s.GetLogoutUrl())
		if err != nil || logout.Scheme+"://"+logout.Host+logout.Path != e.public+"/auth/logout" || len(logout.Query().Get("id")) < 16 {
			t.Errorf("logout_url %q, want %s/auth/logout?id=...", s.GetLogoutUrl(), e.public)
		}
		// Every protocol sees the same session.
		for _, p := range rpcProtocols() {
			res, err := b.sessions(p).GetSession(context.Background(), connect.NewRequest(&custodianv1.GetSessionRequest{}))
			if err != nil || res.Msg.GetUser().GetSubject() != "alice" {
				t.Errorf("%s: GetSession = %v, %v", p.name, res, err)
			}
		}
	})

	t.Run("bob", func(t *testing.T) {
		t.Parallel()
		b := e.browser()
		b.login("bob", "")
		s := b.mustSession("bob")
		if s.GetUser().GetName() != "Bob Builder" || s.GetUser().GetEmail() != "bob@example.com" || s.GetUser().GetPicture() != "" {
			t.Errorf("user %v", s.GetUser())
		}
	})

	// Two tabs start a login each; both complete, in either order, each
	// with its own return_to.
	for _, order := range []struct {
		name  string
		first int
	}{{"first tab finishes first", 0}, {"second tab finishes first", 1}} {
		t.Run("two tabs/"+order.name, func(t *testing.T) {
			t.Parallel()
			b := e.browser()
			var callbacks [2]*url.URL
			for i, rt := range []string{"/tab-one", "/tab-two"} {
				authURL, _ := b.startLogin(rt)
				callbacks[i] = b.signIn(authURL.String(), "alice")
			}
			for _, i := range []int{order.first, 1 - order.first} {
				page := b.get(callbacks[i].String())
				want := []string{"/tab-one", "/tab-two"}[i]
				if page.status != http.StatusOK || page.continueURL() != want {
					t.Fatalf("tab %d: status %d, continue %q, want 200 and %q", i+1, page.status, page.continueURL(), want)
				}
				b.mustSession("alice")
			}
		})
	}
}

// TestLogout covers every way out of a session, and the ways that must not
// end one.
func TestLogout(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t)

	t.Run("POST with the CSRF header", func(t *testing.T) {
		t.Parallel()
		e := newDemoEnv(t) // its own provider, so the token log holds this login's tokens only
		b := e.browser()
		b.login("alice", "")
		old := b.cookie(sessionCookie)
		idToken := e.tokens.last("authorization_code", "id_token")
		refreshToken := e.tokens.last("authorization_code", "refresh_token")
		if idToken == "" || refreshToken == "" {
			t.Fatal("the provider issued no ID or refresh token")
		}

		req, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil)
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("Origin", e.public)
		res := b.do(req)
		end := res.location(t)
		if got := end.Scheme + "://" + end.Host + end.Path; got != e.listen+demo.IdPPath+"end-session" {
			t.Errorf("logout redirects to %s, want the provider's end-session endpoint", got)
		}
		q := end.Query()
		if q.Get("id_token_hint") != idToken || q.Get("post_logout_redirect_uri") != e.public+"/" || q.Get("client_id") != demo.ClientID {
			t.Errorf("end-session query %v", q)
		}
		cleared := false
		for _, c := range res.setCookies(t) {
			cleared = cleared || c.Name == sessionCookie && c.MaxAge < 0 && c.Path == "/" && c.Secure && c.HttpOnly
		}
		if !cleared || b.cookie(sessionCookie) != "" {
			t.Errorf("logout did not clear the session cookie: %q", res.header.Values("Set-Cookie"))
		}

		// The provider accepts the hint and sends the browser home.
		back := b.get(end.String()).location(t)
		if back.String() != e.public+"/" {
			t.Errorf("provider's end-session returns to %q", back)
		}

		b.wantNoSession(session.ReasonNoSession)
		_, err := e.sessionWith(sessionCookie + "=" + old)
		wantReason(t, "GetSession with the old cookie", err, session.ReasonSignedOut)

		// The refresh token was revoked at the provider.
		if status := refreshDirectly(t, e, refreshToken); status != http.StatusBadRequest {
			t.Errorf("refresh with the logged-out session's refresh token: status %d, want 400", status)
		}
	})

	t.Run("GET with the session's logout id", func(t *testing.T) {
		t.Parallel()
		b := e.browser()
		b.login("alice", "")
		s := b.mustSession("alice")
		res := b.get(s.GetLogoutUrl())
		if end := res.location(t); !strings.HasPrefix(end.String(), e.listen+demo.IdPPath+"end-session?") {
			t.Errorf("logout link redirects to %q", end)
		}
		b.wantNoSession(session.ReasonNoSession)
	})

	refused := []struct {
		name   string
		req    func(b *browser, other *custodianv1.GetSessionResponse) *http.Request
		status int
	}{
		{"GET without id", func(b *browser, _ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, e.public+"/auth/logout", nil)
			return req
		}, http.StatusBadRequest},
		{"GET with an empty id", func(b *browser, _ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, e.public+"/auth/logout?id=", nil)
			return req
		}, http.StatusBadRequest},
		{"GET with another session's id", func(b *browser, other *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, other.GetLogoutUrl(), nil)
			return req
		}, http.StatusBadRequest},
		{"POST without X-CSRF", func(b *browser, _ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil)
			return req
		}, http.StatusForbidden},
		{"POST with X-CSRF 0", func(b *browser, _ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil)
			req.Header.Set("X-CSRF", "0")
			return req
		}, http.StatusForbidden},
		{"POST with a foreign Origin", func(b *browser, _ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil)
			req.Header.Set("X-CSRF", "1")
			req.Header.Set("Origin", "https://evil.example")
			return req
		}, http.StatusForbidden},
		{"POST with the provider's Origin", func(b *browser, _ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil)
			req.Header.Set("X-CSRF", "1")
			req.Header.Set("Origin", e.listen)
			return req
		}, http.StatusForbidden},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			other := e.browser()
			other.login("bob", "")
			b := e.browser()
			b.login("alice", "")
			res := b.do(c.req(b, other.mustSession("bob")))
			if res.status != c.status {
				t.Fatalf("status %d, want %d; body %.300q", res.status, c.status, res.body)
			}
			if !strings.Contains(res.header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want the HTML page", res.header.Get("Content-Type"))
			}
			if len(res.header.Values("Set-Cookie")) != 0 {
				t.Errorf("refused logout sets cookies: %q", res.header.Values("Set-Cookie"))
			}
			b.mustSession("alice")
			other.mustSession("bob")
		})
	}

	t.Run("without a session", func(t *testing.T) {
		t.Parallel()
		b := e.browser()
		req, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil)
		req.Header.Set("X-CSRF", "1")
		if got := b.do(req).location(t).String(); got != e.public+"/" {
			t.Errorf("logout without a session redirects to %q, want the post-logout page", got)
		}
	})
}

// refreshDirectly redeems refreshToken at the demo provider as the gateway's
// client would and returns the status.
func refreshDirectly(t *testing.T, e *env, refreshToken string) int {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	req, _ := http.NewRequest(http.MethodPost, e.listen+demo.IdPPath+"token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(e.cfg.OIDC.ClientID), url.QueryEscape(e.cfg.OIDC.ClientSecret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestAPILogin is the login of single-page apps: StartLogin, the provider,
// the app's own callback page handing its query to FinishLogin, and Logout,
// over every protocol.
func TestAPILogin(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t)
	for _, p := range rpcProtocols() {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := e.browser()
			auth := b.auth(p)

			start, err := auth.StartLogin(ctx, connect.NewRequest(&custodianv1.StartLoginRequest{ReturnTo: "/cart?step=2"}))
			if err != nil {
				t.Fatalf("StartLogin: %v", err)
			}
			var loginCookie *http.Cookie
			for _, line := range start.Header().Values("Set-Cookie") {
				c, err := http.ParseSetCookie(line)
				if err == nil && strings.HasPrefix(c.Name, "__Host-custodian-login-") {
					loginCookie = c
				}
			}
			if loginCookie == nil || loginCookie.SameSite != http.SameSiteLaxMode || !loginCookie.HttpOnly || !loginCookie.Secure {
				t.Fatalf("StartLogin Set-Cookie %q, want the Lax login cookie", start.Header().Values("Set-Cookie"))
			}
			if b.cookie(loginCookie.Name) == "" {
				t.Fatal("the jar did not keep the login cookie")
			}
			authURL, err := url.Parse(start.Msg.GetAuthorizationUrl())
			if err != nil {
				t.Fatal(err)
			}
			if got := authURL.Query().Get("redirect_uri"); got != e.public+"/login/callback" {
				t.Errorf("redirect_uri %q, want the app's callback page", got)
			}

			callback := b.signIn(authURL.String(), "bob")
			if got := callback.Scheme + "://" + callback.Host + callback.Path; got != e.public+"/login/callback" {
				t.Fatalf("provider returns to %s", got)
			}
			finish, err := auth.FinishLogin(ctx, connect.NewRequest(&custodianv1.FinishLoginRequest{CallbackQuery: "?" + callback.RawQuery}))
			if err != nil {
				t.Fatalf("FinishLogin: %v", err)
			}
			if finish.Msg.GetUser().GetSubject() != "bob" || finish.Msg.GetUser().GetName() != "Bob Builder" || finish.Msg.GetReturnTo() != "/cart?step=2" {
				t.Errorf("FinishLogin = %v", finish.Msg)
			}
			if b.cookie(sessionCookie) == "" || b.cookie(loginCookie.Name) != "" {
				t.Errorf("after FinishLogin: session cookie %q, login cookie %q", b.cookie(sessionCookie), b.cookie(loginCookie.Name))
			}
			res, err := b.sessions(p).GetSession(ctx, connect.NewRequest(&custodianv1.GetSessionRequest{}))
			if err != nil || res.Msg.GetUser().GetSubject() != "bob" {
				t.Fatalf("GetSession = %v, %v", res, err)
			}

			// The same callback again: the attempt is spent.
			_, err = auth.FinishLogin(ctx, connect.NewRequest(&custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery}))
			if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Errorf("FinishLogin again: %v, want failed precondition", err)
			}

			old := b.cookie(sessionCookie)
			out, err := auth.Logout(ctx, connect.NewRequest(&custodianv1.LogoutRequest{}))
			if err != nil {
				t.Fatalf("Logout: %v", err)
			}
			end, err := url.Parse(out.Msg.GetEndSessionUrl())
			if err != nil || end.Scheme+"://"+end.Host+end.Path != e.listen+demo.IdPPath+"end-session" || end.Query().Get("id_token_hint") == "" {
				t.Errorf("end_session_url %q", out.Msg.GetEndSessionUrl())
			}
			if b.cookie(sessionCookie) != "" {
				t.Error("Logout did not clear the session cookie")
			}
			_, err = b.sessions(p).GetSession(ctx, connect.NewRequest(&custodianv1.GetSessionRequest{}))
			wantReason(t, "GetSession after Logout", err, session.ReasonNoSession)
			_, err = e.sessionWith(sessionCookie + "=" + old)
			wantReason(t, "GetSession with the old cookie", err, session.ReasonSignedOut)
			_, err = auth.Logout(ctx, connect.NewRequest(&custodianv1.LogoutRequest{}))
			wantReason(t, "Logout without a session", err, session.ReasonNoSession)
		})
	}

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := e.browser()
		auth := b.auth(rpc{name: "connect"})
		start, err := auth.StartLogin(ctx, connect.NewRequest(&custodianv1.StartLoginRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		callback := b.signIn(start.Msg.GetAuthorizationUrl(), "alice")
		q := callback.Query()
		tampered := url.Values{"code": q["code"], "state": {flip(q.Get("state"))}}
		cancelURL, err := auth.StartLogin(ctx, connect.NewRequest(&custodianv1.StartLoginRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		canceled := b.cancelSignIn(cancelURL.Msg.GetAuthorizationUrl())
		cases := []struct {
			name  string
			query string
			code  connect.Code
		}{
			{"not a query", "%zz", connect.CodeInvalidArgument},
			{"too long", strings.Repeat("a", 5000), connect.CodeInvalidArgument},
			{"no state", "code=" + url.QueryEscape(q.Get("code")), connect.CodeFailedPrecondition},
			{"tampered state", tampered.Encode(), connect.CodeFailedPrecondition},
			{"provider refused", canceled.RawQuery, connect.CodePermissionDenied},
		}
		for _, c := range cases {
			_, err := auth.FinishLogin(ctx, connect.NewRequest(&custodianv1.FinishLoginRequest{CallbackQuery: c.query}))
			if connect.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %v", c.name, err, c.code)
			}
			b.wantNoSession(session.ReasonNoSession)
		}
		// The untampered callback still works: the refusals spent nothing.
		if _, err := auth.FinishLogin(ctx, connect.NewRequest(&custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery})); err != nil {
			t.Fatalf("FinishLogin: %v", err)
		}
		b.mustSession("alice")
	})
}

// flip changes the last character of s.
func flip(s string) string {
	if s == "" {
		return "x"
	}
	last := s[len(s)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return s[:len(s)-1] + string(repl)
}

// TestNoTokenReachesTheBrowser runs every part of login and logout with a
// browser that records each response the gateway sends it, while the demo
// provider's token endpoint records each token it issues. No token, nor any
// 20-character piece of one, may reach the browser; the one exception the
// protocol requires is the ID token as id_token_hint in the redirect to the
// provider's end-session endpoint.
func TestNoTokenReachesTheBrowser(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t,
		withAccessLifetime(10*time.Minute),
		withCodeExpiresIn(60),
		withConfig(func(c *config.Config) { c.Session.RefreshSkew = time.Second }),
		withProfileService(),
	)
	ctx := context.Background()
	seen := &responseLog{}
	b := e.browserRecording(seen)
	getSessionAll := func() {
		for _, p := range rpcProtocols() {
			_, _ = b.sessions(p).GetSession(ctx, connect.NewRequest(&custodianv1.GetSessionRequest{}))
		}
	}
	getProfileAll := func() {
		for _, p := range rpcProtocols() {
			_, _ = b.profiles(p).GetProfile(ctx, connect.NewRequest(&profilesv1.GetProfileRequest{}))
		}
	}
	postLogout := func() {
		req, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil)
		req.Header.Set("X-CSRF", "1")
		b.do(req)
	}

	// Anonymous, then the page login, data calls, a refresh, error pages.
	getSessionAll()
	getProfileAll()
	b.login("alice", "/after")
	getSessionAll()
	getProfileAll()
	e.clock.Advance(2 * time.Minute)
	getProfileAll()
	if n := e.world.IdP.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	getSessionAll()
	b.get(e.public + "/auth/callback?state=forged&code=forged")
	b.get(e.public + "/auth/nothing-here")
	b.get(e.public + "/auth/logout?id=wrong")
	b.do(func() *http.Request { r, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil); return r }())
	authURL, _ := b.startLogin("")
	b.get(b.cancelSignIn(authURL.String()).String())
	s := b.mustSession("alice")
	b.get(s.GetLogoutUrl())

	// The API login over each protocol, its refusals, and its logout.
	for _, p := range rpcProtocols() {
		auth := b.auth(p)
		start, err := auth.StartLogin(ctx, connect.NewRequest(&custodianv1.StartLoginRequest{ReturnTo: "/spa"}))
		if err != nil {
			t.Fatalf("%s: StartLogin: %v", p.name, err)
		}
		callback := b.signIn(start.Msg.GetAuthorizationUrl(), "bob")
		if _, err := auth.FinishLogin(ctx, connect.NewRequest(&custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery})); err != nil {
			t.Fatalf("%s: FinishLogin: %v", p.name, err)
		}
		_, _ = auth.FinishLogin(ctx, connect.NewRequest(&custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery}))
		getSessionAll()
		getProfileAll()
		if _, err := auth.Logout(ctx, connect.NewRequest(&custodianv1.LogoutRequest{})); err != nil {
			t.Fatalf("%s: Logout: %v", p.name, err)
		}
		_, _ = auth.Logout(ctx, connect.NewRequest(&custodianv1.LogoutRequest{}))
	}

	// A session whose refresh the provider refuses, and a last logout.
	b.login("alice", "")
	e.world.IdP.RevokeSubject(ctx, "alice")
	e.clock.Advance(15 * time.Minute)
	getProfileAll()
	getSessionAll()
	b.login("bob", "")
	postLogout()
	postLogout()

	issued := e.tokens.all()
	kinds := map[string]int{}
	for _, tk := range issued {
		kinds[tk.grant+" "+tk.kind]++
	}
	if kinds["authorization_code access_token"] < 7 || kinds["authorization_code refresh_token"] < 7 ||
		kinds["authorization_code id_token"] < 7 || kinds["refresh_token access_token"] < 1 {
		t.Fatalf("the provider issued too few tokens to check: %v", kinds)
	}
	responses := seen.all()
	if len(responses) < 80 {
		t.Fatalf("recorded only %d responses", len(responses))
	}

	// Every 20-character window of every token.
	const window = 20
	pieces := map[string]issuedToken{}
	for _, tk := range issued {
		for i := 0; i+window <= len(tk.value); i++ {
			pieces[tk.value[i:i+window]] = tk
		}
	}
	scan := func(text string) (issuedToken, string, bool) {
		for i := 0; i+window <= len(text); i++ {
			if tk, ok := pieces[text[i:i+window]]; ok {
				return tk, text[i : i+window], true
			}
		}
		return issuedToken{}, "", false
	}

	hints := 0
	for _, r := range responses {
		text := r.text
		for _, tk := range issued {
			if tk.kind == "id_token" && strings.Contains(text, "id_token_hint="+tk.value) {
				// The scan must see the hint before it is taken out,
				// or it could not see anything.
				if _, _, found := scan(text); !found {
					t.Fatalf("%s: the scan misses an ID token", r.what)
				}
				hints++
				text = strings.ReplaceAll(text, "id_token_hint="+tk.value, "id_token_hint=[the end-session hint]")
			}
		}
		if tk, piece, found := scan(text); found {
			t.Errorf("%s: response contains %q of a %s issued by the %s grant:\n%.2000s", r.what, piece, tk.kind, tk.grant, text)
		}
	}
	if hints < 6 {
		t.Errorf("found %d end-session hints, want one per logout (at least 6)", hints)
	}
}
