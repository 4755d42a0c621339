package hydra

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// TestHydra runs the interop suite against one Hydra process; each subtest
// has its own gateway and client registration. They run one after the
// other: Hydra's in-memory SQLite refuses concurrent transactions ("Unable
// to serialize access"), which a real deployment's database does not.
func TestHydra(t *testing.T) {
	h := startHydra(t)
	t.Run("LoginWithPKCE", func(t *testing.T) { testLoginWithPKCE(t, h) })
	t.Run("ClientSecretPostRegistration", func(t *testing.T) { testClientSecretPost(t, h) })
	t.Run("RefreshWithRotation", func(t *testing.T) { testRefreshWithRotation(t, h) })
	t.Run("ConcurrentCallsRefreshOnce", func(t *testing.T) { testConcurrentCallsRefreshOnce(t, h) })
	t.Run("ReusedRefreshTokenEndsSession", func(t *testing.T) { testReusedRefreshTokenEndsSession(t, h) })
	t.Run("LogoutWithIDTokenHint", func(t *testing.T) { testLogoutWithIDTokenHint(t, h) })
	t.Run("LogoutWithoutIDTokenHint", func(t *testing.T) { testLogoutWithoutIDTokenHint(t, h) })
	t.Run("BackchannelLogoutFromHydra", func(t *testing.T) { testBackchannelLogout(t, h) })
	t.Run("BackchannelLogoutByAdmin", func(t *testing.T) { testBackchannelLogoutByAdmin(t, h) })
}

// withIDTokenHint is the configuration Hydra needs for RP-initiated
// logout (docs/providers.md): Hydra v2.3 refuses post_logout_redirect_uri
// without id_token_hint.
func withIDTokenHint(cfg *config.Config) { cfg.OIDC.LogoutIDTokenHint = true }

// signIn logs a new browser in and checks the session is alice's.
func signIn(t *testing.T, e *env) *browser {
	t.Helper()
	b := e.browser(t)
	b.login(t)
	s, err := b.session()
	if err != nil {
		t.Fatalf("GetSession after login: %v", err)
	}
	if s.GetUser().GetSubject() != userSubject {
		t.Fatalf("GetSession: %v, want alice", s.GetUser())
	}
	return b
}

// The authorization code flow with PKCE, through Hydra and the login app:
// the gateway sends S256 challenges and the verifier, authenticates with
// client_secret_basic, verifies Hydra's ID token and keeps the claims the
// consent app granted.
func testLoginWithPKCE(t *testing.T, h *hydra) {
	e := newEnv(t, h)
	b := e.browser(t)
	hops := b.login(t)

	auth := hops[0].Location(t)
	if got := auth.Scheme + "://" + auth.Host + auth.Path; got != h.Issuer+"/oauth2/auth" {
		t.Fatalf("login redirects to %s, want Hydra's authorization endpoint", got)
	}
	q := auth.Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             e.Client.ID,
		"redirect_uri":          e.Public + "/auth/callback",
		"code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("authorization request: %s=%q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"code_challenge", "state", "nonce"} {
		if len(q.Get(k)) < 32 {
			t.Errorf("authorization request: %s=%q, want a long random value", k, q.Get(k))
		}
	}
	if scopes := strings.Fields(q.Get("scope")); !slices.Contains(scopes, "openid") || !slices.Contains(scopes, "offline_access") {
		t.Errorf("authorization request: scope=%q, want openid and offline_access", q.Get("scope"))
	}
	if n := len(h.Login.Logins(e.Client.ID)); n != 1 {
		t.Errorf("the login app saw %d login requests for the client, want 1", n)
	}
	if b.cookie("__Host-custodian") == "" {
		t.Fatal("no session cookie after the callback")
	}

	codes := h.Tap.Grants(e.Client.ID, "authorization_code")
	if len(codes) != 1 {
		t.Fatalf("the gateway redeemed %d codes, want 1", len(codes))
	}
	code := codes[0]
	if code.Status != http.StatusOK {
		t.Fatalf("code exchange: %d %q", code.Status, code.Answer.Error)
	}
	if !code.Basic || code.Form.Get("code_verifier") == "" || code.Form.Get("redirect_uri") != e.Public+"/auth/callback" {
		t.Errorf("code exchange: basic auth %v, form %v; want client_secret_basic, the PKCE verifier and the redirect URI", code.Basic, code.Form)
	}
	if code.Answer.RefreshToken == "" || code.Answer.IDToken == "" {
		t.Errorf("Hydra issued no refresh or ID token: %+v", code.Answer)
	}

	s, err := b.session()
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if u := s.GetUser(); u.GetSubject() != userSubject || u.GetName() != userName || u.GetEmail() != userEmail {
		t.Errorf("GetSession: user %v, want %s <%s> (%s)", u, userName, userEmail, userSubject)
	}
	// A backend that takes the user's token sees one Hydra issued to the
	// gateway for alice.
	b.mustProfile(t)
	if got := e.Backend.Tokens(); len(got) != 1 || got[0] != code.Answer.AccessToken {
		t.Errorf("the backend received %d tokens, want the access token of the code exchange", len(got))
	}
}

// The gateway authenticates with client_secret_basic, and Hydra holds a
// client to the method it registered: a registration for
// client_secret_post makes every sign-in fail at the code exchange
// (invalid_client), shown as the gateway's "sign-in failed" page.
func testClientSecretPost(t *testing.T, h *hydra) {
	e := newEnvAuth(t, h, "client_secret_post")
	b := e.browser(t)
	hops := b.follow(t, b.get(t, e.Public+"/auth/login"))
	last := hops[len(hops)-1]
	if last.URL.Path != "/auth/callback" || last.Status != http.StatusForbidden {
		t.Fatalf("login ended at %s with %d, want the gateway's callback refusing with 403", last.URL, last.Status)
	}
	codes := h.Tap.Grants(e.Client.ID, "authorization_code")
	if len(codes) != 1 || !codes[0].Basic || codes[0].Answer.Error != "invalid_client" {
		t.Fatalf("code exchange: %+v, want Basic credentials refused with invalid_client", codes)
	}
	_, err := b.session()
	wantReason(t, "GetSession", err, session.ReasonNoSession)
}

// An expired access token is renewed with the refresh token, and Hydra
// rotates it: the old one is dead, the new one live, and the backend gets
// the new access token.
func testRefreshWithRotation(t *testing.T, h *hydra) {
	e := newEnv(t, h)
	b := signIn(t, e)
	b.mustProfile(t)
	rt1 := h.Tap.RefreshToken(t, e.Client.ID)

	e.Clock.Advance(accessTokenTTL)
	b.mustProfile(t)
	refreshes := h.Tap.Grants(e.Client.ID, "refresh_token")
	if len(refreshes) != 1 {
		t.Fatalf("the gateway refreshed %d times, want 1", len(refreshes))
	}
	r := refreshes[0]
	if r.Status != http.StatusOK || r.Form.Get("refresh_token") != rt1 || !r.Basic {
		t.Fatalf("refresh: status %d, sent the login's refresh token %v, basic auth %v", r.Status, r.Form.Get("refresh_token") == rt1, r.Basic)
	}
	rt2 := r.Answer.RefreshToken
	if rt2 == "" || rt2 == rt1 {
		t.Fatal("Hydra did not rotate the refresh token")
	}
	if in := h.mustIntrospect(t, rt1); in.Active {
		t.Error("the used refresh token is still active at Hydra")
	}
	if in := h.mustIntrospect(t, rt2); !in.Active || in.Subject != userSubject {
		t.Errorf("the rotated refresh token: %+v, want active for alice", in)
	}
	tokens := e.Backend.Tokens()
	if last := tokens[len(tokens)-1]; last != r.Answer.AccessToken || last == tokens[0] {
		t.Error("the backend did not receive the refreshed access token")
	}

	// The next expiry uses the rotated token.
	e.Clock.Advance(accessTokenTTL)
	b.mustProfile(t)
	refreshes = h.Tap.Grants(e.Client.ID, "refresh_token")
	if len(refreshes) != 2 || refreshes[1].Form.Get("refresh_token") != rt2 || refreshes[1].Status != http.StatusOK {
		t.Fatalf("second refresh: %d refreshes, want 2, the second with the rotated token", len(refreshes))
	}
	if s, err := b.session(); err != nil || s.GetUser().GetSubject() != userSubject {
		t.Fatalf("GetSession after two refreshes: %v %v", s, err)
	}
}

// Many calls that find the access token expired share one refresh: with
// rotation, a second refresh with the same token would be reuse, and Hydra
// would end the grant.
func testConcurrentCallsRefreshOnce(t *testing.T, h *hydra) {
	e := newEnv(t, h)
	b := signIn(t, e)
	e.Clock.Advance(accessTokenTTL)

	const calls = 16
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			if _, err := b.profile(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("GetProfile during the refresh: %v", err)
	}
	if n := len(h.Tap.Grants(e.Client.ID, "refresh_token")); n != 1 {
		t.Fatalf("%d concurrent calls refreshed %d times, want once", calls, n)
	}
	b.mustProfile(t)
}

// A refresh token used twice is reuse: Hydra refuses the second use and
// revokes the whole grant, the rotated tokens included. The gateway's
// session then ends cleanly: the next call that needs a token gets
// unauthenticated with reason REFRESH_FAILED, and so does GetSession.
func testReusedRefreshTokenEndsSession(t *testing.T, h *hydra) {
	e := newEnv(t, h)
	b := signIn(t, e)
	rt1 := h.Tap.RefreshToken(t, e.Client.ID)
	e.Clock.Advance(accessTokenTTL)
	b.mustProfile(t) // the gateway rotates rt1
	rt2 := h.Tap.RefreshToken(t, e.Client.ID)
	if rt2 == rt1 {
		t.Fatal("no rotation")
	}

	// Someone who kept rt1 (a thief, a stale replica) redeems it.
	res := redeem(t, h, e.Client, rt1)
	if res.Status != http.StatusBadRequest && res.Status != http.StatusUnauthorized || res.Answer.Error != "invalid_grant" {
		t.Fatalf("Hydra answered the reused refresh token with %d %q, want invalid_grant", res.Status, res.Answer.Error)
	}
	if in := h.mustIntrospect(t, rt2); in.Active {
		t.Fatal("Hydra left the rotated refresh token active after the reuse")
	}
	tokens := e.Backend.Tokens()
	if in := h.mustIntrospect(t, tokens[len(tokens)-1]); in.Active {
		t.Fatal("Hydra left the rotated access token active after the reuse")
	}

	// The backend refuses the revoked access token; the gateway renews
	// once, Hydra refuses, and the session ends.
	_, err := b.profile()
	wantReason(t, "GetProfile after the reuse", err, session.ReasonRefreshFailed)
	_, err = b.session()
	wantReason(t, "GetSession after the reuse", err, session.ReasonRefreshFailed)
	refreshes := h.Tap.Grants(e.Client.ID, "refresh_token")
	if last := refreshes[len(refreshes)-1]; last.Form.Get("refresh_token") != rt2 || last.Answer.Error != "invalid_grant" {
		t.Errorf("the gateway's last refresh: sent rt2 %v, Hydra said %q; want rt2 refused with invalid_grant",
			last.Form.Get("refresh_token") == rt2, last.Answer.Error)
	}
	if strings.Contains(e.Logs(), "panic") {
		t.Error("the gateway logged a panic")
	}
}

// redeem posts a refresh token grant to Hydra as the gateway's client,
// through the wiretap (which records it under the client's id).
func redeem(t testing.TB, h *hydra, c client, refreshToken string) exchange {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.Issuer+"/oauth2/token", strings.NewReader(url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	before := len(h.Tap.Exchanges(c.ID, "/oauth2/token"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	exs := h.Tap.Exchanges(c.ID, "/oauth2/token")
	if len(exs) != before+1 {
		t.Fatal("the wiretap did not record the refresh")
	}
	return exs[len(exs)-1]
}

// Logout with the configuration Hydra needs (id_token_hint): the gateway
// ends its session, revokes the refresh token at Hydra (introspection
// then says inactive), and sends the browser to Hydra's end-session
// endpoint with the ID token of the last refresh; Hydra asks the logout
// app, ends its own session, sends the gateway a back-channel logout
// (which it accepts, with no session left to end), and sends the browser
// back to the gateway's post-logout page. The next login must sign in
// again.
func testLogoutWithIDTokenHint(t *testing.T, h *hydra) {
	e := newEnv(t, h, withIDTokenHint)
	b := signIn(t, e)
	sid := hydraSID(t, h, e)
	// A refresh first: the hint is then the ID token Hydra issued with
	// it, which must name the same Hydra session.
	e.Clock.Advance(accessTokenTTL)
	b.mustProfile(t)
	refreshes := h.Tap.Grants(e.Client.ID, "refresh_token")
	if len(refreshes) != 1 || refreshes[0].Answer.IDToken == "" {
		t.Fatalf("refresh: %d refreshes, want one answered with an ID token", len(refreshes))
	}
	idToken := refreshes[0].Answer.IDToken
	var claims struct {
		SID string `json:"sid"`
	}
	jwtClaims(t, idToken, &claims)
	if claims.SID != sid {
		t.Fatalf("the refreshed ID token's sid is %q, want the login's %q", claims.SID, sid)
	}
	rt := h.Tap.RefreshToken(t, e.Client.ID)
	tokens := e.Backend.Tokens()
	at := tokens[len(tokens)-1]
	if in := h.mustIntrospect(t, rt); !in.Active {
		t.Fatal("the refresh token is not active before logout")
	}

	out := b.logout(t)
	if out.Status != http.StatusSeeOther {
		t.Fatalf("POST /auth/logout: %d, want 303", out.Status)
	}
	revokes := h.Tap.Exchanges(e.Client.ID, "/oauth2/revoke")
	if len(revokes) != 1 || revokes[0].Status != http.StatusOK || revokes[0].Form.Get("token") != rt || !revokes[0].Basic {
		t.Fatalf("revocation at logout: %+v, want the refresh token revoked with client_secret_basic", revokes)
	}
	if in := h.mustIntrospect(t, rt); in.Active {
		t.Error("Hydra says the refresh token is still active after logout")
	}
	if in := h.mustIntrospect(t, at); in.Active {
		t.Error("Hydra says the access token is still active after logout")
	}
	_, err := b.session()
	wantReason(t, "GetSession after logout", err, session.ReasonNoSession)

	end := out.Location(t)
	if got := end.Scheme + "://" + end.Host + end.Path; got != h.Issuer+"/oauth2/sessions/logout" {
		t.Fatalf("logout redirects to %s, want Hydra's end-session endpoint", got)
	}
	q := end.Query()
	if q.Get("post_logout_redirect_uri") != e.Public+"/" || q.Get("id_token_hint") != idToken {
		t.Fatalf("end-session request %v, want post_logout_redirect_uri and the refreshed ID token as id_token_hint", q)
	}
	hops := b.follow(t, out)
	last := hops[len(hops)-1]
	if last.URL.String() != e.Public+"/" {
		t.Fatalf("logout ended at %s, want the gateway's post-logout page; hops:\n%s", last.URL, strings.Join(urls(hops), "\n"))
	}
	logouts := h.Login.LogoutsOf(sid)
	if len(logouts) != 1 || !logouts[0].RPInitiated || logouts[0].Subject != userSubject || logouts[0].ClientID != e.Client.ID {
		t.Fatalf("the logout app saw %+v, want one RP-initiated logout of alice by the gateway", logouts)
	}
	e.waitLog(t, `msg="back-channel logout" subject="" sid=`+sid+" sessions=0")

	// Hydra's session is over: the next login asks the login app again
	// instead of skipping it.
	b.login(t)
	logins := h.Login.Logins(e.Client.ID)
	if len(logins) != 2 || logins[1].Skip {
		t.Fatalf("second login: %+v, want a login request Hydra does not skip", logins)
	}
	b.mustProfile(t)
}

// hydraSID returns the login session id (sid) of the ID token Hydra issued
// the gateway's client at its first login.
func hydraSID(t testing.TB, h *hydra, e *env) string {
	t.Helper()
	codes := h.Tap.Grants(e.Client.ID, "authorization_code")
	if len(codes) == 0 {
		t.Fatal("no login")
	}
	var claims struct {
		SID string `json:"sid"`
	}
	jwtClaims(t, codes[0].Answer.IDToken, &claims)
	if claims.SID == "" {
		t.Fatal("Hydra's ID token has no sid")
	}
	return claims.SID
}

// With the default configuration the gateway's logout redirect carries no
// ID token (client_id, post_logout_redirect_uri, logout_hint), which
// Hydra v2.3 refuses: its end-session endpoint requires id_token_hint
// whenever post_logout_redirect_uri is set. The gateway's own session
// ends and the refresh token is revoked all the same; Hydra's session
// lives on. This pins the provider difference docs/providers.md states.
func testLogoutWithoutIDTokenHint(t *testing.T, h *hydra) {
	e := newEnv(t, h)
	b := signIn(t, e)
	rt := h.Tap.RefreshToken(t, e.Client.ID)

	out := b.logout(t)
	end := out.Location(t)
	q := end.Query()
	if q.Get("id_token_hint") != "" || q.Get("client_id") != e.Client.ID || q.Get("post_logout_redirect_uri") != e.Public+"/" {
		t.Fatalf("end-session request %v, want client_id and post_logout_redirect_uri without id_token_hint", q)
	}
	if in := h.mustIntrospect(t, rt); in.Active {
		t.Error("the refresh token is still active after logout")
	}
	_, err := b.session()
	wantReason(t, "GetSession after logout", err, session.ReasonNoSession)

	hops := b.follow(t, out)
	last := hops[len(hops)-1]
	if !strings.HasPrefix(last.URL.String(), h.Login.URL+"/error") || last.URL.Query().Get("error") != "invalid_request" {
		t.Fatalf("Hydra accepted a logout without id_token_hint (ended at %s): update docs/providers.md and this test", last.URL)
	}
	if logouts := h.Login.LogoutsOf(hydraSID(t, h, e)); len(logouts) != 0 {
		t.Fatalf("the logout app saw %+v, want none", logouts)
	}
	// Hydra's session lives on: the next login is skipped.
	b.login(t)
	if logins := h.Login.Logins(e.Client.ID); len(logins) != 2 || !logins[1].Skip {
		t.Fatalf("second login: %+v, want Hydra to skip the login it remembers", logins)
	}
}

// Logout at Hydra itself (the user signs out at the provider, from another
// application's page): Hydra asks the logout app, then POSTs a logout
// token naming its session (sid, no sub, and no exp: docs/providers.md) to
// the gateway's back-channel route, and the gateway's session ends.
func testBackchannelLogout(t *testing.T, h *hydra) {
	e := newEnv(t, h)
	b := signIn(t, e)
	other := signIn(t, e) // another browser, another Hydra session
	sid := hydraSID(t, h, e)

	hops := b.follow(t, b.get(t, h.Issuer+"/oauth2/sessions/logout"))
	if last := hops[len(hops)-1]; !strings.HasPrefix(last.URL.String(), h.Login.URL+"/logged-out") {
		t.Fatalf("logout at Hydra ended at %s; hops:\n%s", last.URL, strings.Join(urls(hops), "\n"))
	}
	logouts := h.Login.LogoutsOf(sid)
	if len(logouts) != 1 || logouts[0].RPInitiated || logouts[0].Subject != userSubject {
		t.Fatalf("the logout app saw %+v, want one logout of alice not initiated by a client", logouts)
	}

	// Hydra sends the logout token in the background after the redirect.
	e.waitLog(t, `msg="back-channel logout" subject="" sid=`+sid+" sessions=1")
	_, err := b.session()
	wantReason(t, "GetSession after the back-channel logout", err, session.ReasonSignedOut)
	// The session's tokens are of no use to anyone now.
	_, err = b.profile()
	wantReason(t, "GetProfile after the back-channel logout", err, session.ReasonSignedOut)
	// Alice's session in the other browser is another Hydra session.
	other.mustProfile(t)
}

// Hydra's admin API ends a login session (as an account console or a
// support tool would): Hydra sends the back-channel logout, and the
// gateway's session ends.
func testBackchannelLogoutByAdmin(t *testing.T, h *hydra) {
	e := newEnv(t, h)
	b := signIn(t, e)
	sid := hydraSID(t, h, e)
	h.adminJSON(t, http.MethodDelete, "/admin/oauth2/auth/sessions/login?sid="+url.QueryEscape(sid), nil, nil, http.StatusNoContent)
	e.waitLog(t, `msg="back-channel logout" subject="" sid=`+sid+" sessions=1")
	_, err := b.session()
	wantReason(t, "GetSession after the back-channel logout", err, session.ReasonSignedOut)
}

// waitLog waits until the gateway has logged want, failing the test on a
// refused back-channel logout or after 15 seconds: Hydra sends back-channel
// logouts in the background.
func (e *env) waitLog(t testing.TB, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		logs := e.Logs()
		if strings.Contains(logs, want) {
			return
		}
		if strings.Contains(logs, "back-channel logout refused") {
			t.Fatal("the gateway refused Hydra's back-channel logout")
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the gateway never logged %q: no back-channel logout arrived", want)
		case <-time.After(25 * time.Millisecond):
		}
	}
}
