package idp

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func TestAuthorizationCodeFlow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		username    string
		wantName    string
		wantEmail   string
		wantPicture string
	}{
		{name: "alice", username: "alice", wantName: "Alice Liddell", wantEmail: "alice@example.com", wantPicture: "https://images.example/avatars/alice.png"},
		{name: "bob without picture", username: "bob", wantName: "Bob Builder", wantEmail: "bob@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			a := e.newAuthRequest(oauth2.SetAuthURLParam("audience", "acme-profiles"))
			q := e.signIn(t, a, tt.username, "demo")
			if q.Get("state") != a.state {
				t.Fatalf("state = %q, want %q", q.Get("state"), a.state)
			}
			tok, err := e.oauth.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(a.verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token despite offline_access")
			}

			rawID, _ := tok.Extra("id_token").(string)
			idToken, err := e.verifier(t, testClientID).Verify(e.ctx(t), rawID)
			if err != nil {
				t.Fatalf("verify ID token: %v", err)
			}
			if idToken.Nonce != a.nonce {
				t.Errorf("nonce = %q, want %q", idToken.Nonce, a.nonce)
			}
			if idToken.Subject != tt.username {
				t.Errorf("sub = %q, want %q", idToken.Subject, tt.username)
			}
			var claims struct {
				SID           string  `json:"sid"`
				AuthTime      float64 `json:"auth_time"`
				Name          string  `json:"name"`
				Email         string  `json:"email"`
				EmailVerified bool    `json:"email_verified"`
				Picture       *string `json:"picture"`
			}
			if err := idToken.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.SID == "" || claims.AuthTime == 0 {
				t.Errorf("sid = %q, auth_time = %v; want both set", claims.SID, claims.AuthTime)
			}
			if claims.Name != tt.wantName || claims.Email != tt.wantEmail || !claims.EmailVerified {
				t.Errorf("profile = %q %q %v, want %q %q true", claims.Name, claims.Email, claims.EmailVerified, tt.wantName, tt.wantEmail)
			}
			switch {
			case tt.wantPicture == "" && claims.Picture != nil:
				t.Errorf("picture = %q, want none", *claims.Picture)
			case tt.wantPicture != "" && (claims.Picture == nil || *claims.Picture != tt.wantPicture):
				t.Errorf("picture = %v, want %q", claims.Picture, tt.wantPicture)
			}

			// Both tokens name the key; the access token is typed (RFC 9068).
			idHeader, _ := jwtParts(t, rawID)
			header, _ := jwtParts(t, tok.AccessToken)
			if idHeader["kid"] == nil || idHeader["kid"] != header["kid"] || header["alg"] != "RS256" || header["typ"] != "at+jwt" {
				t.Errorf("ID token header = %v, access token header = %v; want the same kid, RS256, at+jwt", idHeader, header)
			}

			// The access token is a JWT a backend verifies with go-oidc.
			at, err := e.verifier(t, "acme-profiles").Verify(e.ctx(t), tok.AccessToken)
			if err != nil {
				t.Fatalf("verify access token: %v", err)
			}
			var atClaims struct {
				Scope    string `json:"scope"`
				ClientID string `json:"client_id"`
				JTI      string `json:"jti"`
			}
			if err := at.Claims(&atClaims); err != nil {
				t.Fatal(err)
			}
			if at.Subject != tt.username || atClaims.ClientID != testClientID || atClaims.JTI == "" {
				t.Errorf("access token sub=%q client_id=%q jti=%q", at.Subject, atClaims.ClientID, atClaims.JTI)
			}
			if got := strings.Fields(atClaims.Scope); !slices.Contains(got, "openid") || !slices.Contains(got, "email") {
				t.Errorf("scope = %q, want openid and email", atClaims.Scope)
			}
			if _, err := e.verifier(t, testClientID).Verify(e.ctx(t), tok.AccessToken); err == nil {
				t.Error("access token accepted for an audience it was not granted")
			}

			// Userinfo answers for the access token.
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.issuer+"/userinfo", nil)
			tok.SetAuthHeader(req)
			resp, body := e.do(t, req)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, tt.wantEmail) || !strings.Contains(body, `"sub":"`+tt.username+`"`) {
				t.Errorf("userinfo: status %d, body %s", resp.StatusCode, body)
			}
		})
	}
}

func TestLoginPage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	a := e.newAuthRequest()
	resp, body := e.get(t, a.url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	wantHeaders := map[string]string{
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range wantHeaders {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	u, _ := url.Parse(a.url)
	m := regexp.MustCompile(`<form method="post" action="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no POST form in:\n%s", body)
	}
	if got := html.UnescapeString(m[1]); got != u.RequestURI() {
		t.Errorf("form action = %q, want the same URL %q", got, u.RequestURI())
	}
	for _, field := range []string{`name="username"`, `name="password"`, `name="cancel"`} {
		if !strings.Contains(body, field) {
			t.Errorf("form lacks %s", field)
		}
	}
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		username string
		password string
	}{
		{name: "wrong password", username: "alice", password: "wrong"},
		{name: "unknown user", username: "mallory", password: "demo"},
		{name: "empty password", username: "alice", password: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			a := e.newAuthRequest()
			resp, body := e.postForm(t, a.url, url.Values{"username": {tt.username}, "password": {tt.password}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", resp.StatusCode)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("redirected to %q, want the form again", loc)
			}
			if !strings.Contains(body, `name="password"`) || !strings.Contains(body, "Wrong username or password") {
				t.Errorf("form not re-rendered with an error:\n%s", body)
			}
		})
	}
}

func TestLoginCancel(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	a := e.newAuthRequest()
	resp, body := e.postForm(t, a.url, url.Values{"cancel": {"1"}})
	q := e.redirectQuery(t, resp, body)
	if q.Get("error") != "access_denied" || q.Get("state") != a.state || q.Has("code") {
		t.Errorf("redirect query = %v, want error=access_denied, the state and no code", q)
	}
}

func TestAuthorizeRedirectedErrors(t *testing.T) {
	t.Parallel()
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name      string
		opts      []oauth2.AuthCodeOption
		plainPKCE bool
		wantError string
	}{
		{name: "missing PKCE", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", ""), oauth2.SetAuthURLParam("code_challenge_method", "")}, wantError: "invalid_request"},
		{name: "plain PKCE", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain")}, wantError: "invalid_request"},
		{name: "challenge without method", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge_method", "")}, wantError: "invalid_request"},
		{name: "disallowed audience", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("audience", "acme-billing")}, wantError: "invalid_request"},
		{name: "unknown scope", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("scope", "openid admin")}, wantError: "invalid_scope"},
		{name: "implicit flow", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("response_type", "token")}, wantError: "unsupported_response_type"},
		{name: "prompt none", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}, wantError: "login_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			a := e.newAuthRequest(tt.opts...)
			resp, body := e.get(t, a.url)
			q := e.redirectQuery(t, resp, body)
			if q.Get("error") != tt.wantError || q.Get("state") != a.state || q.Has("code") {
				t.Errorf("redirect query = %v, want error=%s, the state and no code", q, tt.wantError)
			}
			// Submitting credentials anyway yields no code either.
			resp, body = e.postForm(t, a.url, url.Values{"username": {"alice"}, "password": {"demo"}})
			if q := e.redirectQuery(t, resp, body); q.Has("code") {
				t.Errorf("code issued for an invalid request: %v", q)
			}
		})
	}
}

func TestAuthorizeErrorPages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(e *testEnv, q url.Values)
	}{
		{name: "unknown client", mutate: func(_ *testEnv, q url.Values) { q.Set("client_id", "intruder") }},
		{name: "unregistered redirect_uri", mutate: func(_ *testEnv, q url.Values) { q.Set("redirect_uri", "https://evil.example/callback") }},
		{name: "redirect_uri on another loopback port", mutate: func(e *testEnv, q url.Values) {
			u, _ := url.Parse(e.redirect)
			u.Host = "127.0.0.1:1"
			q.Set("redirect_uri", u.String())
		}},
		{name: "redirect_uri with extra path", mutate: func(e *testEnv, q url.Values) { q.Set("redirect_uri", e.redirect+"/more") }},
		{name: "missing redirect_uri", mutate: func(_ *testEnv, q url.Values) { q.Del("redirect_uri") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			u, _ := url.Parse(e.newAuthRequest().url)
			q := u.Query()
			tt.mutate(e, q)
			u.RawQuery = q.Encode()
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				var resp *http.Response
				var body string
				if method == http.MethodGet {
					resp, body = e.get(t, u.String())
				} else {
					resp, body = e.postForm(t, u.String(), url.Values{"username": {"alice"}, "password": {"demo"}})
				}
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("%s: status %d, want 400", method, resp.StatusCode)
				}
				if loc := resp.Header.Get("Location"); loc != "" {
					t.Errorf("%s: redirected to %q, want an error page", method, loc)
				}
				if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || strings.Contains(body, `name="password"`) {
					t.Errorf("%s: want an HTML error page without a form, got %q", method, body)
				}
			}
		})
	}
}
