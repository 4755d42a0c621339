package idp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// logoutReceiver is a relying party's back-channel logout endpoint.
type logoutReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newLogoutReceiver(t *testing.T, status int) *logoutReceiver {
	t.Helper()
	lr := &logoutReceiver{}
	lr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		lr.mu.Lock()
		lr.tokens = append(lr.tokens, r.PostForm.Get("logout_token"))
		lr.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(lr.srv.Close)
	return lr
}

func (lr *logoutReceiver) url() string { return lr.srv.URL + "/backchannel-logout" }

// received returns the logout tokens delivered so far.
func (lr *logoutReceiver) received() []string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return slices.Clone(lr.tokens)
}

// newLogoutEnv is a test environment whose client receives back-channel
// logouts at lr.
func newLogoutEnv(t *testing.T, lr *logoutReceiver) *testEnv {
	t.Helper()
	return newTestEnv(t, func(c *Client) { c.BackchannelLogoutURI = lr.url() })
}

// loginSID signs username in and returns the ID token and its sid.
func (e *testEnv) loginSID(t *testing.T, username string) (rawIDToken, sid string) {
	t.Helper()
	a := e.newAuthRequest()
	q := e.signIn(t, a, username, "demo")
	tok, err := e.oauth.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	rawIDToken, _ = tok.Extra("id_token").(string)
	idToken, err := e.verifier(t, testClientID).Verify(e.ctx(t), rawIDToken)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims struct {
		SID string `json:"sid"`
	}
	if err := idToken.Claims(&claims); err != nil || claims.SID == "" {
		t.Fatalf("ID token has no sid (err %v)", err)
	}
	return rawIDToken, claims.SID
}

// checkLogoutToken validates a logout token like a relying party must and
// returns its sid.
func (e *testEnv) checkLogoutToken(t *testing.T, token, wantSubject string) string {
	t.Helper()
	keys := oidc.NewRemoteKeySet(e.ctx(t), e.p.JWKSURL())
	payload, err := keys.VerifySignature(e.ctx(t), token)
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	header, _ := jwtParts(t, token)
	if header["typ"] != "logout+jwt" || header["alg"] != "RS256" || header["kid"] == nil {
		t.Errorf("header = %v, want typ logout+jwt, RS256 and a kid", header)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != e.issuer || claims["aud"] != testClientID || claims["sub"] != wantSubject {
		t.Errorf("iss/aud/sub = %v/%v/%v", claims["iss"], claims["aud"], claims["sub"])
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("no jti")
	}
	if got := numericClaim(t, claims, "exp").Sub(numericClaim(t, claims, "iat")).Minutes(); got != 2 {
		t.Errorf("exp-iat = %v minutes, want 2", got)
	}
	events, _ := claims["events"].(map[string]any)
	if ev, ok := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); !ok || len(ev) != 0 || len(events) != 1 {
		t.Errorf("events = %v, want exactly the back-channel logout event with {}", claims["events"])
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("logout token has a nonce")
	}
	sid, _ := claims["sid"].(string)
	if sid == "" {
		t.Error("logout token has no sid")
	}
	return sid
}

func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	lr := newLogoutReceiver(t, http.StatusOK)
	e := newLogoutEnv(t, lr)
	_, sid1 := e.loginSID(t, "alice")
	_, sid2 := e.loginSID(t, "alice")
	_, bobSID := e.loginSID(t, "bob")

	if err := e.p.BackchannelLogout(t.Context(), "alice"); err != nil {
		t.Fatalf("BackchannelLogout: %v", err)
	}
	tokens := lr.received()
	if len(tokens) != 2 {
		t.Fatalf("received %d logout tokens, want 2 (one per session)", len(tokens))
	}
	var sids []string
	for _, tok := range tokens {
		sids = append(sids, e.checkLogoutToken(t, tok, "alice"))
	}
	slices.Sort(sids)
	want := []string{sid1, sid2}
	slices.Sort(want)
	if !slices.Equal(sids, want) {
		t.Errorf("logout sids = %v, want %v", sids, want)
	}

	// The sessions ended: a second logout has nothing to deliver.
	if err := e.p.BackchannelLogout(t.Context(), "alice"); err != nil {
		t.Fatalf("second BackchannelLogout: %v", err)
	}
	if n := len(lr.received()); n != 2 {
		t.Errorf("received %d tokens after the sessions ended, want still 2", n)
	}

	// Bob's session was not touched.
	if err := e.p.BackchannelLogout(t.Context(), "bob"); err != nil {
		t.Fatalf("BackchannelLogout(bob): %v", err)
	}
	tokens = lr.received()
	if len(tokens) != 3 || e.checkLogoutToken(t, tokens[2], "bob") != bobSID {
		t.Errorf("bob's logout not delivered with his sid")
	}
}

func TestBackchannelLogoutDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		noURI   bool
		wantErr bool
	}{
		{name: "accepted", status: http.StatusOK},
		{name: "no content", status: http.StatusNoContent},
		{name: "receiver fails", status: http.StatusInternalServerError, wantErr: true},
		{name: "receiver refuses", status: http.StatusBadRequest, wantErr: true},
		{name: "receiver redirects", status: http.StatusFound, wantErr: true},
		{name: "client without logout URI", status: http.StatusOK, noURI: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lr := newLogoutReceiver(t, tt.status)
			e := newTestEnv(t, func(c *Client) {
				if !tt.noURI {
					c.BackchannelLogoutURI = lr.url()
				}
			})
			e.loginSID(t, "alice")
			err := e.p.BackchannelLogout(t.Context(), "alice")
			if tt.wantErr != (err != nil) {
				t.Fatalf("BackchannelLogout error = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), testClientID) {
				t.Errorf("error %q does not name the client", err)
			}
			wantDeliveries := 1
			if tt.noURI {
				wantDeliveries = 0
			}
			if n := len(lr.received()); n != wantDeliveries {
				t.Errorf("deliveries = %d, want %d", n, wantDeliveries)
			}
			// The session ended even if the delivery failed.
			if err := e.p.BackchannelLogout(t.Context(), "alice"); err != nil {
				t.Errorf("second BackchannelLogout: %v", err)
			}
			if n := len(lr.received()); n != wantDeliveries {
				t.Errorf("deliveries after the session ended = %d, want %d", n, wantDeliveries)
			}
		})
	}
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// params builds the query from the env and alice's sign-in: its
		// ID token and sid.
		params       func(e *testEnv, idToken, sid string) url.Values
		wantStatus   int
		wantLocation func(e *testEnv) string // "" for no redirect
		wantEnded    bool
	}{
		{
			name: "registered URI with state",
			params: func(e *testEnv, idToken, _ string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}, "state": {"s-123"}}
			},
			wantStatus:   http.StatusSeeOther,
			wantLocation: func(e *testEnv) string { return e.client.PostLogoutRedirectURIs[0] + "?state=s-123" },
			wantEnded:    true,
		},
		{
			name: "registered URI with client_id",
			params: func(e *testEnv, idToken, _ string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "client_id": {testClientID}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus:   http.StatusSeeOther,
			wantLocation: func(e *testEnv) string { return e.client.PostLogoutRedirectURIs[0] },
			wantEnded:    true,
		},
		{
			name: "unregistered URI",
			params: func(e *testEnv, idToken, _ string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {"s-123"}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "redirect URI registered as login redirect only",
			params: func(e *testEnv, idToken, _ string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {e.redirect}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "redirect URI without hint or client",
			params: func(e *testEnv, _, _ string) url.Values {
				return url.Values{"post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "no redirect URI",
			params: func(_ *testEnv, idToken, _ string) url.Values {
				return url.Values{"id_token_hint": {idToken}}
			},
			wantStatus: http.StatusOK,
			wantEnded:  true,
		},
		{
			name: "tampered hint",
			params: func(e *testEnv, idToken, _ string) url.Values {
				return url.Values{"id_token_hint": {idToken[:len(idToken)-4] + "AAAA"}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "hint for another client",
			params: func(e *testEnv, idToken, _ string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "client_id": {"other"}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus: http.StatusBadRequest,
		},
		// Without an id_token_hint (OpenID Connect RP-Initiated Logout
		// 1.0 §2: client_id with post_logout_redirect_uri), logout_hint
		// names the session by its sid.
		{
			name: "logout_hint with client_id",
			params: func(e *testEnv, _, sid string) url.Values {
				return url.Values{"client_id": {testClientID}, "logout_hint": {sid}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}, "state": {"s-9"}}
			},
			wantStatus:   http.StatusSeeOther,
			wantLocation: func(e *testEnv) string { return e.client.PostLogoutRedirectURIs[0] + "?state=s-9" },
			wantEnded:    true,
		},
		{
			name: "logout_hint with client_id, no redirect URI",
			params: func(_ *testEnv, _, sid string) url.Values {
				return url.Values{"client_id": {testClientID}, "logout_hint": {sid}}
			},
			wantStatus: http.StatusOK,
			wantEnded:  true,
		},
		{
			name: "client_id without a hint",
			params: func(e *testEnv, _, _ string) url.Values {
				return url.Values{"client_id": {testClientID}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus:   http.StatusSeeOther,
			wantLocation: func(e *testEnv) string { return e.client.PostLogoutRedirectURIs[0] },
		},
		{
			name: "logout_hint naming no session",
			params: func(e *testEnv, _, _ string) url.Values {
				return url.Values{"client_id": {testClientID}, "logout_hint": {"alice"}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus:   http.StatusSeeOther,
			wantLocation: func(e *testEnv) string { return e.client.PostLogoutRedirectURIs[0] },
		},
		{
			name: "logout_hint without client_id",
			params: func(_ *testEnv, _, sid string) url.Values {
				return url.Values{"logout_hint": {sid}}
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "logout_hint and redirect URI without client_id",
			params: func(e *testEnv, _, sid string) url.Values {
				return url.Values{"logout_hint": {sid}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "logout_hint with an unregistered URI",
			params: func(_ *testEnv, _, sid string) url.Values {
				return url.Values{"client_id": {testClientID}, "logout_hint": {sid}, "post_logout_redirect_uri": {"https://evil.example/"}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "logout_hint with an unknown client",
			params: func(e *testEnv, _, sid string) url.Values {
				return url.Values{"client_id": {"other"}, "logout_hint": {sid}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "both hints, agreeing",
			params: func(e *testEnv, idToken, sid string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "logout_hint": {sid}, "client_id": {testClientID}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus:   http.StatusSeeOther,
			wantLocation: func(e *testEnv) string { return e.client.PostLogoutRedirectURIs[0] },
			wantEnded:    true,
		},
		{
			name: "both hints, disagreeing",
			params: func(e *testEnv, idToken, _ string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "logout_hint": {"another-session"}, "post_logout_redirect_uri": {e.client.PostLogoutRedirectURIs[0]}}
			},
			wantStatus: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lr := newLogoutReceiver(t, http.StatusOK)
			e := newLogoutEnv(t, lr)
			idToken, sid := e.loginSID(t, "alice")
			if n := e.p.LiveSessions("alice"); n != 1 {
				t.Fatalf("LiveSessions after sign-in = %d, want 1", n)
			}

			resp, body := e.get(t, e.issuer+"/end-session?"+tt.params(e, idToken, sid).Encode())
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d; body %q", resp.StatusCode, tt.wantStatus, body)
			}
			wantLoc := ""
			if tt.wantLocation != nil {
				wantLoc = tt.wantLocation(e)
			}
			if got := resp.Header.Get("Location"); got != wantLoc {
				t.Errorf("Location = %q, want %q", got, wantLoc)
			}

			wantLive := 1
			if tt.wantEnded {
				wantLive = 0
			}
			if n := e.p.LiveSessions("alice"); n != wantLive {
				t.Errorf("LiveSessions = %d, want %d", n, wantLive)
			}
			// A live session still gets a back-channel logout; an ended one not.
			if err := e.p.BackchannelLogout(t.Context(), "alice"); err != nil {
				t.Fatal(err)
			}
			if ended := len(lr.received()) == 0; ended != tt.wantEnded {
				t.Errorf("session ended = %v, want %v", ended, tt.wantEnded)
			}
		})
	}
}

// TestEndSessionLogoutHintOfAnotherClient: a client that learned another
// client's sid cannot end that session with it; it is only sent back to
// its own registered URI.
func TestEndSessionLogoutHintOfAnotherClient(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, WithClient(Client{
		ID:                     "shop",
		Secret:                 "shop-secret",
		RedirectURIs:           []string{"https://shop.example/callback"},
		PostLogoutRedirectURIs: []string{"https://shop.example/bye"},
	}))
	_, sid := e.loginSID(t, "alice")

	// Another client's registered URI is refused for this client.
	resp, _ := e.get(t, e.issuer+"/end-session?"+url.Values{"client_id": {testClientID}, "logout_hint": {sid}, "post_logout_redirect_uri": {"https://shop.example/bye"}}.Encode())
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("another client's redirect URI: status %d, want 400", resp.StatusCode)
	}
	if n := e.p.LiveSessions("alice"); n != 1 {
		t.Fatalf("LiveSessions after a refused request = %d, want 1", n)
	}

	resp, body := e.get(t, e.issuer+"/end-session?"+url.Values{"client_id": {"shop"}, "logout_hint": {sid}, "post_logout_redirect_uri": {"https://shop.example/bye"}}.Encode())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://shop.example/bye" {
		t.Errorf("status %d, Location %q; want 303 to the shop's own URI; body %q", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if n := e.p.LiveSessions("alice"); n != 1 {
		t.Errorf("LiveSessions = %d: another client's logout_hint ended the session", n)
	}
}
