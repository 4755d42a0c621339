package idp

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestCodeExchangeRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// exchange uses the code; it may exchange it once before.
		exchange  func(t *testing.T, e *testEnv, code string, a authRequest) error
		wantError string
	}{
		{
			name: "reused code",
			exchange: func(t *testing.T, e *testEnv, code string, a authRequest) error {
				if _, err := e.oauth.Exchange(e.ctx(t), code, oauth2.VerifierOption(a.verifier)); err != nil {
					t.Fatalf("first exchange: %v", err)
				}
				_, err := e.oauth.Exchange(e.ctx(t), code, oauth2.VerifierOption(a.verifier))
				return err
			},
			wantError: "invalid_grant",
		},
		{
			name: "wrong verifier",
			exchange: func(t *testing.T, e *testEnv, code string, _ authRequest) error {
				_, err := e.oauth.Exchange(e.ctx(t), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
				return err
			},
			wantError: "invalid_grant",
		},
		{
			name: "missing verifier",
			exchange: func(t *testing.T, e *testEnv, code string, _ authRequest) error {
				_, err := e.oauth.Exchange(e.ctx(t), code)
				return err
			},
			wantError: "invalid_request",
		},
		{
			name: "wrong redirect_uri",
			exchange: func(t *testing.T, e *testEnv, code string, a authRequest) error {
				cfg := *e.oauth
				cfg.RedirectURL = e.redirect + "/other"
				_, err := cfg.Exchange(e.ctx(t), code, oauth2.VerifierOption(a.verifier))
				return err
			},
			wantError: "invalid_grant",
		},
		{
			name: "wrong client secret",
			exchange: func(t *testing.T, e *testEnv, code string, a authRequest) error {
				cfg := *e.oauth
				cfg.ClientSecret = "guessed"
				_, err := cfg.Exchange(e.ctx(t), code, oauth2.VerifierOption(a.verifier))
				return err
			},
			wantError: "invalid_client",
		},
		{
			name: "garbage code",
			exchange: func(t *testing.T, e *testEnv, _ string, a authRequest) error {
				_, err := e.oauth.Exchange(e.ctx(t), "not-a-code", oauth2.VerifierOption(a.verifier))
				return err
			},
			wantError: "invalid_grant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			code, a := e.login(t)
			err := tt.exchange(t, e, code, a)
			if err == nil {
				t.Fatal("exchange succeeded, want an error")
			}
			if got := oauthErrorCode(t, err); got != tt.wantError {
				t.Errorf("error = %q, want %q", got, tt.wantError)
			}
		})
	}
}

func TestReusedCodeRevokesItsTokens(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	code, a := e.login(t)
	tok, err := e.oauth.Exchange(e.ctx(t), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.oauth.Exchange(e.ctx(t), code, oauth2.VerifierOption(a.verifier)); err == nil {
		t.Fatal("code accepted twice")
	}
	if status, body := e.refresh(t, tok.RefreshToken); status != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
		t.Errorf("refresh after code reuse: status %d, body %v; want invalid_grant", status, body)
	}
	if e.introspect(t, tok.AccessToken) {
		t.Error("access token still active after code reuse")
	}
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	tok, _ := e.loginAndExchange(t)

	status, body := e.refresh(t, tok.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: status %d, body %v", status, body)
	}
	newRefresh, _ := body["refresh_token"].(string)
	newAccess, _ := body["access_token"].(string)
	if newRefresh == "" || newRefresh == tok.RefreshToken {
		t.Fatalf("refresh token not rotated: got %q", newRefresh)
	}
	if newAccess == "" || newAccess == tok.AccessToken {
		t.Fatalf("no new access token")
	}
	if _, ok := body["id_token"].(string); !ok {
		t.Error("no ID token on refresh")
	}
	if !e.introspect(t, newAccess) {
		t.Error("new access token inactive")
	}

	// The old refresh token is spent.
	status, body = e.refresh(t, tok.RefreshToken)
	if status != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
		t.Errorf("old refresh token: status %d, body %v; want invalid_grant", status, body)
	}
}

func TestConcurrentRefreshWithOneToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	tok, _ := e.loginAndExchange(t)
	const n = 4
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			// t.Fatal must not run off the test goroutine: no helpers here.
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.issuer+"/token", strings.NewReader(form.Encode()))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(e.client.ID, e.client.Secret)
			resp, err := e.browser.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		if s == http.StatusOK {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent refreshes succeeded, want exactly 1", ok, n)
	}
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		revoke func(t *testing.T, e *testEnv, tok *oauth2.Token)
	}{
		{
			name: "RevokeSubject",
			revoke: func(t *testing.T, e *testEnv, _ *oauth2.Token) {
				e.p.RevokeSubject(t.Context(), "alice")
			},
		},
		{
			name: "RFC 7009 refresh token",
			revoke: func(t *testing.T, e *testEnv, tok *oauth2.Token) {
				status, body := e.clientPost(t, e.issuer+"/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}})
				if status != http.StatusOK {
					t.Fatalf("revoke: status %d, body %v", status, body)
				}
			},
		},
		{
			name: "RFC 7009 access token",
			revoke: func(t *testing.T, e *testEnv, tok *oauth2.Token) {
				status, body := e.clientPost(t, e.issuer+"/revoke", url.Values{"token": {tok.AccessToken}})
				if status != http.StatusOK {
					t.Fatalf("revoke: status %d, body %v", status, body)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			tok, _ := e.loginAndExchange(t)
			if !e.introspect(t, tok.AccessToken) || !e.introspect(t, tok.RefreshToken) {
				t.Fatal("fresh tokens inactive")
			}
			tt.revoke(t, e, tok)
			if e.introspect(t, tok.AccessToken) {
				t.Error("access token still active")
			}
			if status, body := e.refresh(t, tok.RefreshToken); status != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
				t.Errorf("refresh: status %d, body %v; want invalid_grant", status, body)
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.issuer+"/userinfo", nil)
			tok.SetAuthHeader(req)
			if resp, _ := e.do(t, req); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("userinfo with revoked token: status %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestRevokeSubjectSparesOthers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	tok, _ := e.loginAndExchange(t)
	e.p.RevokeSubject(t.Context(), "bob")
	if status, body := e.refresh(t, tok.RefreshToken); status != http.StatusOK {
		t.Errorf("alice's refresh after revoking bob: status %d, body %v", status, body)
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		audience  string
		secret    string
		wantError string
	}{
		{name: "allowed audience", audience: "acme-orders"},
		{name: "no audience"},
		{name: "disallowed audience", audience: "acme-billing", wantError: "invalid_request"},
		{name: "wrong secret", audience: "acme-orders", secret: "guessed", wantError: "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			cfg := clientcredentials.Config{
				ClientID:       e.client.ID,
				ClientSecret:   e.client.Secret,
				TokenURL:       e.issuer + "/token",
				EndpointParams: url.Values{},
			}
			if tt.secret != "" {
				cfg.ClientSecret = tt.secret
			}
			if tt.audience != "" {
				cfg.EndpointParams.Set("audience", tt.audience)
			}
			tok, err := cfg.Token(e.ctx(t))
			if tt.wantError != "" {
				if err == nil {
					t.Fatal("token issued, want an error")
				}
				if got := oauthErrorCode(t, err); got != tt.wantError {
					t.Errorf("error = %q, want %q", got, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tt.audience == "" {
				_, claims := jwtParts(t, tok.AccessToken)
				if claims["sub"] != testClientID || claims["aud"] != nil {
					t.Errorf("claims = %v, want sub=%s and no aud", claims, testClientID)
				}
				return
			}
			at, err := e.verifier(t, tt.audience).Verify(e.ctx(t), tok.AccessToken)
			if err != nil {
				t.Fatalf("verify access token for %s: %v", tt.audience, err)
			}
			if at.Subject != testClientID {
				t.Errorf("sub = %q, want the client ID", at.Subject)
			}
			if len(at.Audience) != 1 || at.Audience[0] != tt.audience {
				t.Errorf("aud = %v, want [%s]", at.Audience, tt.audience)
			}
		})
	}
}

func TestAccessTokenLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []Option
		lifetime time.Duration
	}{
		{name: "default", lifetime: 5 * time.Minute},
		{name: "one second", opts: []Option{WithAccessTokenLifetime(time.Second)}, lifetime: time.Second},
		{name: "ninety seconds", opts: []Option{WithAccessTokenLifetime(90 * time.Second)}, lifetime: 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil, tt.opts...)
			tok, _ := e.loginAndExchange(t)
			check := func(what, token string) {
				_, claims := jwtParts(t, token)
				if got := numericClaim(t, claims, "exp").Sub(numericClaim(t, claims, "iat")); got != tt.lifetime {
					t.Errorf("%s: exp-iat = %v, want %v", what, got, tt.lifetime)
				}
			}
			check("authorization_code", tok.AccessToken)
			status, body := e.refresh(t, tok.RefreshToken)
			if status != http.StatusOK {
				t.Fatalf("refresh: status %d, body %v", status, body)
			}
			check("refresh_token", body["access_token"].(string))
			if got := time.Duration(body["expires_in"].(float64)) * time.Second; got > tt.lifetime || got < tt.lifetime-time.Second {
				t.Errorf("expires_in = %v, want about %v", got, tt.lifetime)
			}
		})
	}
}

func TestGrantCount(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	tok, _ := e.loginAndExchange(t)
	refreshToken, accessToken := tok.RefreshToken, tok.AccessToken
	for range 3 {
		status, body := e.refresh(t, refreshToken)
		if status != http.StatusOK {
			t.Fatalf("refresh: status %d, body %v", status, body)
		}
		refreshToken, accessToken = body["refresh_token"].(string), body["access_token"].(string)
	}
	// Failed requests are not counted.
	e.refresh(t, "garbage")
	e.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}, "audience": {"acme-billing"}})
	e.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}})
	exchange := func(subjectToken string) {
		e.tokenRequest(t, url.Values{
			"grant_type":         {grantTokenExchange},
			"subject_token":      {subjectToken},
			"subject_token_type": {tokenTypeAccessToken},
			"audience":           {"acme-orders"},
		})
	}
	exchange(tok.AccessToken) // revoked by the first refresh
	exchange(accessToken)

	want := map[string]int64{
		"authorization_code": 1,
		"refresh_token":      3,
		"client_credentials": 1,
		"urn:ietf:params:oauth:grant-type:token-exchange": 1,
		"password": 0,
	}
	for grant, n := range want {
		if got := e.p.GrantCount(grant); got != n {
			t.Errorf("GrantCount(%q) = %d, want %d", grant, got, n)
		}
	}
}
