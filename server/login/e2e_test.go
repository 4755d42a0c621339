package login_test

// End-to-end tests of the login flows through a whole gateway on loopback:
// the browser pages (/auth/login, /auth/callback, /auth/logout), the API
// login of single-page apps (AuthService) and the demo provider's form.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"

	"github.com/custodian-bff/custodian/demo"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/login"
	"github.com/custodian-bff/custodian/server/session"
)

// TestLoginFlow drives the browser login through the gateway's pages and the
// demo provider's form: the session it creates, the cookies it sets, and
// logins in parallel tabs.
func TestLoginFlow(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)

	t.Run("anonymous", func(t *testing.T) {
		t.Parallel()
		for _, p := range gt.RPCProtocols() {
			res, err := e.Browser(t).Sessions(p).GetSession(context.Background(), &custodianv1.GetSessionRequest{})
			want := &custodianv1.GetSessionResponse{EndReason: session.ReasonNoSession, LoginUrl: e.Public + "/auth/login"}
			if err != nil || !proto.Equal(res, want) {
				t.Errorf("%s: GetSession = %v, %v; want %v", p.Name, res, err, want)
			}
		}
	})

	t.Run("alice", func(t *testing.T) {
		t.Parallel()
		b := e.Browser(t)
		before := e.Clock.Now()
		authURL, start := b.StartLogin(t, "/orders?page=2#top")

		// The provider's authorization request.
		q := authURL.Query()
		if got := authURL.Scheme + "://" + authURL.Host + authURL.Path; got != e.Listen+demo.IdPPath+"authorize" {
			t.Errorf("login redirects to %s, want the provider's authorization endpoint", got)
		}
		for k, want := range map[string]string{
			"response_type":         "code",
			"client_id":             demo.ClientID,
			"redirect_uri":          e.Public + "/auth/callback",
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
		loginCookies := start.SetCookies(t)
		if len(loginCookies) != 1 {
			t.Fatalf("/auth/login set %d cookies, want 1", len(loginCookies))
		}
		lc := loginCookies[0]
		if !strings.HasPrefix(lc.Name, "__Host-custodian-login-") || !lc.HttpOnly || !lc.Secure ||
			lc.SameSite != http.SameSiteLaxMode || lc.Path != "/" || lc.Domain != "" || lc.MaxAge <= 0 || lc.MaxAge > 600 {
			t.Errorf("login cookie %q, want __Host-custodian-login-*, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Max-Age ≤ 600", start.Header.Get("Set-Cookie"))
		}
		if start.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("/auth/login Cache-Control %q", start.Header.Get("Cache-Control"))
		}

		callback := b.SignIn(t, authURL.String(), "alice")
		if got := callback.Scheme + "://" + callback.Host + callback.Path; got != e.Public+"/auth/callback" {
			t.Fatalf("provider returns to %s", got)
		}
		page := b.Get(t, callback.String())
		if page.Status != http.StatusOK {
			t.Fatalf("callback: status %d; body %.300q", page.Status, page.Body)
		}
		if got := page.ContinueURL(); got != "/orders?page=2#top" {
			t.Errorf("callback page continues to %q, want the return_to", got)
		}
		for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"} {
			if page.Header.Get(h) == "" {
				t.Errorf("callback page lacks %s", h)
			}
		}
		if page.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("callback page Cache-Control %q", page.Header.Get("Cache-Control"))
		}

		// Cookies of the callback: the session cookie, and the login
		// cookie cleared.
		var sessionSet, loginCleared bool
		for _, c := range page.SetCookies(t) {
			switch c.Name {
			case gt.SessionCookie:
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
			t.Errorf("callback: session cookie set %v, login cookie cleared %v; Set-Cookie %q", sessionSet, loginCleared, page.Header.Values("Set-Cookie"))
		}
		if b.Cookie(lc.Name) != "" {
			t.Errorf("the jar still holds the login cookie")
		}

		s := b.MustSession(t, "alice")
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
		if err != nil || logout.Scheme+"://"+logout.Host+logout.Path != e.Public+"/auth/logout" || len(logout.Query().Get("id")) < 16 {
			t.Errorf("logout_url %q, want %s/auth/logout?id=...", s.GetLogoutUrl(), e.Public)
		}
		// Every protocol sees the same session.
		for _, p := range gt.RPCProtocols() {
			res, err := b.Sessions(p).GetSession(context.Background(), &custodianv1.GetSessionRequest{})
			if err != nil || res.GetUser().GetSubject() != "alice" {
				t.Errorf("%s: GetSession = %v, %v", p.Name, res, err)
			}
		}
	})

	t.Run("bob", func(t *testing.T) {
		t.Parallel()
		b := e.Browser(t)
		b.Login(t, "bob", "")
		s := b.MustSession(t, "bob")
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
			b := e.Browser(t)
			var callbacks [2]*url.URL
			for i, rt := range []string{"/tab-one", "/tab-two"} {
				authURL, _ := b.StartLogin(t, rt)
				callbacks[i] = b.SignIn(t, authURL.String(), "alice")
			}
			for _, i := range []int{order.first, 1 - order.first} {
				page := b.Get(t, callbacks[i].String())
				want := []string{"/tab-one", "/tab-two"}[i]
				if page.Status != http.StatusOK || page.ContinueURL() != want {
					t.Fatalf("tab %d: status %d, continue %q, want 200 and %q", i+1, page.Status, page.ContinueURL(), want)
				}
				b.MustSession(t, "alice")
			}
		})
	}
}

// TestLogout covers every way out of a session, and the ways that must not
// end one.
func TestLogout(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)

	t.Run("POST with the CSRF header", func(t *testing.T) {
		t.Parallel()
		e := gt.NewDemoEnv(t) // its own provider, so the token log holds this login's tokens only
		b := e.Browser(t)
		b.Login(t, "alice", "")
		old := b.Cookie(gt.SessionCookie)
		idToken := e.Tokens.Last("authorization_code", "id_token")
		refreshToken := e.Tokens.Last("authorization_code", "refresh_token")
		if idToken == "" || refreshToken == "" {
			t.Fatal("the provider issued no ID or refresh token")
		}

		req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("Origin", e.Public)
		res := b.Do(t, req)
		end := res.Location(t)
		if got := end.Scheme + "://" + end.Host + end.Path; got != e.Listen+demo.IdPPath+"end-session" {
			t.Errorf("logout redirects to %s, want the provider's end-session endpoint", got)
		}
		// The client and the provider's session, never the ID token (see
		// TestLogoutSendsNoToken).
		q := end.Query()
		if q.Has("id_token_hint") || q.Get("logout_hint") != claimOf(t, idToken, "sid") ||
			q.Get("post_logout_redirect_uri") != e.Public+"/" || q.Get("client_id") != demo.ClientID {
			t.Errorf("end-session query %v", q)
		}
		cleared := false
		for _, c := range res.SetCookies(t) {
			cleared = cleared || c.Name == gt.SessionCookie && c.MaxAge < 0 && c.Path == "/" && c.Secure && c.HttpOnly
		}
		if !cleared || b.Cookie(gt.SessionCookie) != "" {
			t.Errorf("logout did not clear the session cookie: %q", res.Header.Values("Set-Cookie"))
		}

		// The provider ends its session and sends the browser home.
		back := b.Get(t, end.String()).Location(t)
		if back.String() != e.Public+"/" {
			t.Errorf("provider's end-session returns to %q", back)
		}
		if n := e.World.IdP.LiveSessions("alice"); n != 0 {
			t.Errorf("provider sessions of alice after logout: %d, want 0", n)
		}

		b.WantNoSession(t, session.ReasonNoSession)
		_, err := e.SessionWith(gt.SessionCookie + "=" + old)
		gt.WantReason(t, "GetSession with the old cookie", err, session.ReasonSignedOut)

		// The refresh token was revoked at the provider.
		if status := refreshDirectly(t, e, refreshToken); status != http.StatusBadRequest {
			t.Errorf("refresh with the logged-out session's refresh token: status %d, want 400", status)
		}
	})

	t.Run("GET with the session's logout id", func(t *testing.T) {
		t.Parallel()
		b := e.Browser(t)
		b.Login(t, "alice", "")
		s := b.MustSession(t, "alice")
		res := b.Get(t, s.GetLogoutUrl())
		if end := res.Location(t); !strings.HasPrefix(end.String(), e.Listen+demo.IdPPath+"end-session?") {
			t.Errorf("logout link redirects to %q", end)
		}
		b.WantNoSession(t, session.ReasonNoSession)
	})

	refused := []struct {
		name   string
		req    func(other *custodianv1.GetSessionResponse) *http.Request
		status int
	}{
		{"GET without id", func(_ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, e.Public+"/auth/logout", nil)
			return req
		}, http.StatusBadRequest},
		{"GET with an empty id", func(_ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, e.Public+"/auth/logout?id=", nil)
			return req
		}, http.StatusBadRequest},
		{"GET with another session's id", func(other *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, other.GetLogoutUrl(), nil)
			return req
		}, http.StatusBadRequest},
		{"POST without X-CSRF", func(_ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
			return req
		}, http.StatusForbidden},
		{"POST with X-CSRF 0", func(_ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
			req.Header.Set("X-CSRF", "0")
			return req
		}, http.StatusForbidden},
		{"POST with a foreign Origin", func(_ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
			req.Header.Set("X-CSRF", "1")
			req.Header.Set("Origin", "https://evil.example")
			return req
		}, http.StatusForbidden},
		{"POST with the provider's Origin", func(_ *custodianv1.GetSessionResponse) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
			req.Header.Set("X-CSRF", "1")
			req.Header.Set("Origin", e.Listen)
			return req
		}, http.StatusForbidden},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			other := e.SignedIn(t, "bob")
			b := e.SignedIn(t, "alice")
			res := b.Do(t, c.req(other.MustSession(t, "bob")))
			if res.Status != c.status {
				t.Fatalf("status %d, want %d; body %.300q", res.Status, c.status, res.Body)
			}
			if !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want the HTML page", res.Header.Get("Content-Type"))
			}
			if len(res.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("refused logout sets cookies: %q", res.Header.Values("Set-Cookie"))
			}
			b.MustSession(t, "alice")
			other.MustSession(t, "bob")
		})
	}

	t.Run("without a session", func(t *testing.T) {
		t.Parallel()
		b := e.Browser(t)
		req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
		req.Header.Set("X-CSRF", "1")
		if got := b.Do(t, req).Location(t).String(); got != e.Public+"/" {
			t.Errorf("logout without a session redirects to %q, want the post-logout page", got)
		}
	})
}

// refreshDirectly redeems refreshToken at the demo provider as the gateway's
// client would and returns the status.
func refreshDirectly(t *testing.T, e *gt.Env, refreshToken string) int {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	req, _ := http.NewRequest(http.MethodPost, e.Listen+demo.IdPPath+"token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(e.Config.OIDC.ClientID), url.QueryEscape(e.Config.OIDC.ClientSecret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// wantSessionEnd asserts err is the browser's form of the session verdict
// reason, with the gateway's login page as where to sign in.
func wantSessionEnd(t *testing.T, e *gt.Env, what string, err error, reason session.Reason) {
	t.Helper()
	gt.WantReason(t, what, err, reason)
	if got, want := gt.SessionErrorOf(err).GetLoginUrl(), e.Public+login.LoginPath; got != want {
		t.Errorf("%s: login_url %q, want %q", what, got, want)
	}
}

// TestAPILoginEndToEnd is the login of single-page apps: StartLogin, the
// provider, the app's own callback page handing its query to FinishLogin,
// and Logout, over every protocol. Cookies travel in the calls' headers,
// and the answers that set them are not to be stored.
func TestAPILoginEndToEnd(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	for _, p := range gt.RPCProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			b := e.Browser(t)
			auth := b.Auth(p)

			ctx, info := connect.NewClientContext(context.Background())
			start, err := auth.StartLogin(ctx, &custodianv1.StartLoginRequest{ReturnTo: "/cart?step=2"})
			if err != nil {
				t.Fatalf("StartLogin: %v", err)
			}
			if !noStore(info.ResponseHeader()) {
				t.Errorf("StartLogin Cache-Control %q, want no-store", info.ResponseHeader().Values("Cache-Control"))
			}
			started := responseCookies(t, info.ResponseHeader())
			var loginCookie *http.Cookie
			for name, c := range started {
				if strings.HasPrefix(name, "__Host-custodian-login-") {
					loginCookie = c
				}
			}
			if len(started) != 1 || loginCookie == nil || loginCookie.SameSite != http.SameSiteLaxMode || !loginCookie.HttpOnly || !loginCookie.Secure || loginCookie.MaxAge <= 0 {
				t.Fatalf("StartLogin Set-Cookie %q, want the Lax login cookie alone", info.ResponseHeader().Values("Set-Cookie"))
			}
			if b.Cookie(loginCookie.Name) == "" {
				t.Fatal("the jar did not keep the login cookie")
			}
			authURL, err := url.Parse(start.GetAuthorizationUrl())
			if err != nil {
				t.Fatal(err)
			}
			if got := authURL.Scheme + "://" + authURL.Host + authURL.Path; got != e.Listen+demo.IdPPath+"authorize" {
				t.Errorf("StartLogin sends the browser to %s, want the provider's authorization endpoint", got)
			}
			aq := authURL.Query()
			for k, want := range map[string]string{
				"redirect_uri":          e.Public + "/login/callback", // the app's callback page
				"client_id":             demo.ClientID,
				"code_challenge_method": "S256",
			} {
				if got := aq.Get(k); got != want {
					t.Errorf("authorization request %s=%q, want %q", k, got, want)
				}
			}
			if aq.Get("nonce") == "" {
				t.Errorf("authorization request without a nonce: %v", aq)
			}

			ctx = context.Background()
			callback := b.SignIn(t, authURL.String(), "bob")
			if got := callback.Scheme + "://" + callback.Host + callback.Path; got != e.Public+"/login/callback" {
				t.Fatalf("provider returns to %s", got)
			}
			fctx, info := connect.NewClientContext(ctx)
			finish, err := auth.FinishLogin(fctx, &custodianv1.FinishLoginRequest{CallbackQuery: "?" + callback.RawQuery})
			if err != nil {
				t.Fatalf("FinishLogin: %v", err)
			}
			if finish.GetUser().GetSubject() != "bob" || finish.GetUser().GetName() != "Bob Builder" || finish.GetReturnTo() != "/cart?step=2" {
				t.Errorf("FinishLogin = %v", finish)
			}
			if !noStore(info.ResponseHeader()) {
				t.Errorf("FinishLogin Cache-Control %q, want no-store", info.ResponseHeader().Values("Cache-Control"))
			}
			finished := responseCookies(t, info.ResponseHeader())
			if c := finished[loginCookie.Name]; c == nil || c.MaxAge >= 0 {
				t.Errorf("login cookie not cleared: %v", c)
			}
			if c := finished[gt.SessionCookie]; c == nil || c.Value == "" || !c.Secure || !c.HttpOnly {
				t.Errorf("no Secure, HttpOnly session cookie among %q", info.ResponseHeader().Values("Set-Cookie"))
			}
			// No token the provider issued (to this login or any other)
			// travels in a cookie.
			issued := e.Tokens.All()
			if len(issued) == 0 {
				t.Fatal("the token log is empty")
			}
			setCookie := strings.Join(info.ResponseHeader().Values("Set-Cookie"), "\n")
			for _, tk := range issued {
				if strings.Contains(setCookie, tk.Value) {
					t.Errorf("FinishLogin's Set-Cookie carries a %s", tk.Kind)
				}
			}
			if b.Cookie(gt.SessionCookie) == "" || b.Cookie(loginCookie.Name) != "" {
				t.Errorf("after FinishLogin: session cookie %q, login cookie %q", b.Cookie(gt.SessionCookie), b.Cookie(loginCookie.Name))
			}
			res, err := b.Sessions(p).GetSession(ctx, &custodianv1.GetSessionRequest{})
			if err != nil || res.GetUser().GetSubject() != "bob" {
				t.Fatalf("GetSession = %v, %v", res, err)
			}

			// The same callback again: the attempt is spent.
			_, err = auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery})
			if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Errorf("FinishLogin again: %v, want failed precondition", err)
			}

			old := b.Cookie(gt.SessionCookie)
			lctx, info := connect.NewClientContext(ctx)
			out, err := auth.Logout(lctx, &custodianv1.LogoutRequest{})
			if err != nil {
				t.Fatalf("Logout: %v", err)
			}
			end, err := url.Parse(out.GetEndSessionUrl())
			if err != nil || end.Scheme+"://"+end.Host+end.Path != e.Listen+demo.IdPPath+"end-session" || end.Query().Has("id_token_hint") ||
				end.Query().Get("client_id") != demo.ClientID || end.Query().Get("logout_hint") == "" ||
				end.Query().Get("post_logout_redirect_uri") != e.Public+"/" {
				t.Errorf("end_session_url %q, want client_id, logout_hint and post_logout_redirect_uri, and no id_token_hint", out.GetEndSessionUrl())
			}
			if tk, piece, found := e.Tokens.Find(out.GetEndSessionUrl()); found {
				t.Errorf("end_session_url contains %q of a %s", piece, tk.Kind)
			}
			if c := responseCookies(t, info.ResponseHeader())[gt.SessionCookie]; c == nil || c.MaxAge >= 0 {
				t.Errorf("Logout did not clear the session cookie: %v", c)
			}
			if !noStore(info.ResponseHeader()) {
				t.Errorf("Logout Cache-Control %q, want no-store", info.ResponseHeader().Values("Cache-Control"))
			}
			if b.Cookie(gt.SessionCookie) != "" {
				t.Error("Logout did not clear the session cookie in the jar")
			}
			_, err = gt.SignedOut(b.Sessions(p).GetSession(ctx, &custodianv1.GetSessionRequest{}))
			gt.WantReason(t, "GetSession after Logout", err, session.ReasonNoSession)
			_, err = e.SessionWith(gt.SessionCookie + "=" + old)
			gt.WantReason(t, "GetSession with the old cookie", err, session.ReasonSignedOut)
			_, err = auth.Logout(ctx, &custodianv1.LogoutRequest{})
			wantSessionEnd(t, e, "Logout without a session", err, session.ReasonNoSession)
			// A browser that kept the old cookie learns that it signed out.
			stale := e.Browser(t)
			stale.SetCookie(gt.SessionCookie, old)
			_, err = stale.Auth(p).Logout(ctx, &custodianv1.LogoutRequest{})
			wantSessionEnd(t, e, "Logout with the old cookie", err, session.ReasonSignedOut)
		})
	}

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := e.Browser(t)
		auth := b.Auth(gt.Connect)
		start, err := auth.StartLogin(ctx, &custodianv1.StartLoginRequest{})
		if err != nil {
			t.Fatal(err)
		}
		callback := b.SignIn(t, start.GetAuthorizationUrl(), "alice")
		q := callback.Query()
		tampered := url.Values{"code": q["code"], "state": {gt.Flip(q.Get("state"))}}
		cancelURL, err := auth.StartLogin(ctx, &custodianv1.StartLoginRequest{})
		if err != nil {
			t.Fatal(err)
		}
		canceled := b.CancelSignIn(t, cancelURL.GetAuthorizationUrl())
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
			_, err := auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: c.query})
			if connect.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %v", c.name, err, c.code)
			}
			b.WantNoSession(t, session.ReasonNoSession)
		}
		// The untampered callback still works: the refusals spent nothing.
		if _, err := auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery}); err != nil {
			t.Fatalf("FinishLogin: %v", err)
		}
		b.MustSession(t, "alice")
	})
}

// TestNoTokenReachesTheBrowser runs every part of login and logout with a
// browser that records each response the gateway sends it, while the demo
// provider's token endpoint records each token it issues. No token, nor any
// 20-character piece of one, may reach the browser: not even the ID token
// in the redirect to the provider's end-session endpoint, which names the
// client and the provider's session instead (the one exception,
// oidc.logout_id_token_hint, is off; TestLogoutSendsNoToken covers it).
func TestNoTokenReachesTheBrowser(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t,
		gt.WithAccessLifetime(10*time.Minute),
		gt.WithCodeExpiresIn(60),
		gt.WithConfig(func(c *config.Config) { c.Session.RefreshSkew = time.Second }),
		gt.WithProfileService(),
	)
	ctx := context.Background()
	seen := &gt.ResponseLog{}
	b := e.BrowserRecording(t, seen)
	getSessionAll := func() {
		for _, p := range gt.RPCProtocols() {
			_, _ = b.Sessions(p).GetSession(ctx, &custodianv1.GetSessionRequest{})
		}
	}
	getProfileAll := func() {
		for _, p := range gt.RPCProtocols() {
			_, _ = b.Profiles(p).GetProfile(ctx, &profilesv1.GetProfileRequest{})
		}
	}
	postLogout := func() {
		req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
		req.Header.Set("X-CSRF", "1")
		b.Do(t, req)
	}

	// Anonymous, then the page login, data calls, a refresh, error pages.
	getSessionAll()
	getProfileAll()
	b.Login(t, "alice", "/after")
	getSessionAll()
	getProfileAll()
	e.Clock.Advance(2 * time.Minute)
	getProfileAll()
	if n := e.World.IdP.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	getSessionAll()
	b.Get(t, e.Public+"/auth/callback?state=forged&code=forged")
	b.Get(t, e.Public+"/auth/nothing-here")
	b.Get(t, e.Public+"/auth/logout?id=wrong")
	b.Do(t, func() *http.Request { r, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil); return r }())
	authURL, _ := b.StartLogin(t, "")
	b.Get(t, b.CancelSignIn(t, authURL.String()).String())
	s := b.MustSession(t, "alice")
	b.Get(t, s.GetLogoutUrl())

	// The API login over each protocol, its refusals, and its logout.
	for _, p := range gt.RPCProtocols() {
		auth := b.Auth(p)
		start, err := auth.StartLogin(ctx, &custodianv1.StartLoginRequest{ReturnTo: "/spa"})
		if err != nil {
			t.Fatalf("%s: StartLogin: %v", p.Name, err)
		}
		callback := b.SignIn(t, start.GetAuthorizationUrl(), "bob")
		if _, err := auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery}); err != nil {
			t.Fatalf("%s: FinishLogin: %v", p.Name, err)
		}
		_, _ = auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery})
		getSessionAll()
		getProfileAll()
		if _, err := auth.Logout(ctx, &custodianv1.LogoutRequest{}); err != nil {
			t.Fatalf("%s: Logout: %v", p.Name, err)
		}
		_, _ = auth.Logout(ctx, &custodianv1.LogoutRequest{})
	}

	// A session whose refresh the provider refuses, and a last logout.
	b.Login(t, "alice", "")
	e.World.IdP.RevokeSubject(ctx, "alice")
	e.Clock.Advance(15 * time.Minute)
	getProfileAll()
	getSessionAll()
	b.Login(t, "bob", "")
	postLogout()
	postLogout()

	issued := e.Tokens.All()
	kinds := map[string]int{}
	for _, tk := range issued {
		kinds[tk.Grant+" "+tk.Kind]++
	}
	if kinds["authorization_code access_token"] < 7 || kinds["authorization_code refresh_token"] < 7 ||
		kinds["authorization_code id_token"] < 7 || kinds["refresh_token access_token"] < 1 {
		t.Fatalf("the provider issued too few tokens to check: %v", kinds)
	}
	responses := seen.All()
	if len(responses) < 80 {
		t.Fatalf("recorded only %d responses", len(responses))
	}

	// The scan must be able to see a token, or it proves nothing.
	if _, _, found := e.Tokens.Find("<" + e.Tokens.Last("authorization_code", "id_token") + ">"); !found {
		t.Fatal("the scan misses an ID token")
	}
	logouts := 0
	for _, r := range responses {
		if strings.Contains(r.Text, demo.IdPPath+"end-session?") {
			logouts++
		}
		if tk, piece, found := e.Tokens.Find(r.Text); found {
			t.Errorf("%s: response contains %q of a %s issued by the %s grant:\n%.2000s", r.What, piece, tk.Kind, tk.Grant, r.Text)
		}
	}
	if logouts < 6 {
		t.Errorf("found %d redirects to the provider's end-session endpoint, want one per logout (at least 6)", logouts)
	}
}
