package login_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"github.com/go-jose/go-jose/v4"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server/keyring"
	"github.com/custodian-bff/custodian/server/login"
	"github.com/custodian-bff/custodian/server/session"
)

const publicURL = "https://shop.example"

// provider is an OpenID provider that knows just enough for
// AuthService: discovery, keys, and a token endpoint that redeems the
// codes the test grants with grant.
type provider struct {
	issuer string
	key    *ecdsa.PrivateKey

	mu     sync.Mutex
	grants map[string]url.Values // code → the authorization request
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{key: key, grants: map[string]url.Values{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                p.issuer,
			"authorization_endpoint":                p.issuer + "/authorize",
			"token_endpoint":                        p.issuer + "/token",
			"jwks_uri":                              p.issuer + "/jwks",
			"end_session_endpoint":                  p.issuer + "/end-session",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", p.token)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	p.issuer = ts.URL
	return p
}

// grant signs alice in for the authorization request authURL describes and
// returns the code the provider sends back.
func (p *provider) grant(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	code = rand.Text()
	p.mu.Lock()
	p.grants[code] = q
	p.mu.Unlock()
	return code, q.Get("state")
}

func (p *provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "authorization_code" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	p.mu.Lock()
	q, ok := p.grants[r.PostForm.Get("code")]
	delete(p.grants, r.PostForm.Get("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || q.Get("redirect_uri") != r.PostForm.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "provider-secret-detail"})
		return
	}
	now := time.Now()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p.key, KeyID: "k1"}}, nil)
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(map[string]any{
		"iss": p.issuer, "sub": "alice", "aud": q.Get("client_id"), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": q.Get("nonce"), "sid": "sid-1", "name": "Alice Example",
	})
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	idToken, _ := jws.CompactSerialize()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": "at-secret", "token_type": "Bearer", "expires_in": 300, "refresh_token": "rt-secret", "id_token": idToken,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
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

// serveAuth serves the AuthService of a flow with issuer as its provider
// on a loopback listener, behind the edge and the session interceptor.
func serveAuth(t *testing.T, issuer string) (custodianv1connect.AuthServiceClient, *session.Manager) {
	t.Helper()
	keys, err := keyring.New([][]byte{bytes.Repeat([]byte{1}, keyring.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := session.NewMemoryStore(100, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := login.NewProvider(login.ProviderConfig{Issuer: issuer, ClientID: "custodian-test", ClientSecret: "s", Scopes: []string{"openid"}}, nil)
	sessions := session.NewManager(store, keys, p, session.WithLoginURL(publicURL+login.LoginPath))
	flow := login.NewFlow(login.Config{PublicURL: publicURL}, p, sessions, keys)
	srv := connect.NewServer(edge, sessions.Interceptor())
	custodianv1connect.RegisterAuthServiceHandler(srv, flow)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return custodianv1connect.NewAuthServiceClient(connect.NewClient(connecthttp.NewTransport(ts.Client(), ts.URL))), sessions
}

// call returns a context for one call sending cookies, and its info.
func call(ctx context.Context, cookies ...*http.Cookie) (context.Context, *connect.CallInfo) {
	ctx, info := connect.NewClientContext(ctx)
	for _, c := range cookies {
		info.RequestHeader().Add("Cookie", (&http.Cookie{Name: c.Name, Value: c.Value}).String())
	}
	return ctx, info
}

// setCookies returns the cookies a response set, by name.
func setCookies(t *testing.T, h *connect.Header) map[string]*http.Cookie {
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

// start runs StartLogin and returns the login cookie and the provider's
// answer to the authorization request.
func start(t *testing.T, client custodianv1connect.AuthServiceClient, p *provider, returnTo string) (*http.Cookie, string, string) {
	t.Helper()
	ctx, info := call(t.Context())
	res, err := client.StartLogin(ctx, &custodianv1.StartLoginRequest{ReturnTo: returnTo})
	if err != nil {
		t.Fatalf("StartLogin: %v", err)
	}
	if !strings.HasPrefix(res.GetAuthorizationUrl(), p.issuer+"/authorize?") {
		t.Fatalf("authorization url %q", res.GetAuthorizationUrl())
	}
	if got := info.ResponseHeader().Get("Cache-Control"); got != "no-store" {
		t.Errorf("StartLogin Cache-Control %q", got)
	}
	cookies := setCookies(t, info.ResponseHeader())
	if len(cookies) != 1 {
		t.Fatalf("StartLogin set %d cookies, want the login cookie", len(cookies))
	}
	var cookie *http.Cookie
	for _, c := range cookies {
		cookie = c
	}
	if !strings.HasPrefix(cookie.Name, "__Host-custodian-login-") || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.MaxAge <= 0 {
		t.Errorf("login cookie %v", cookie)
	}
	u, _ := url.Parse(res.GetAuthorizationUrl())
	if q := u.Query(); q.Get("redirect_uri") != publicURL+"/login/callback" || q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("client_id") != "custodian-test" {
		t.Errorf("authorization request %v", q)
	}
	code, state := p.grant(t, res.GetAuthorizationUrl())
	return cookie, code, state
}

// TestAPILogin runs the API-driven login over the wire: StartLogin,
// FinishLogin with the provider's answer, then Logout; cookies travel in
// the calls' headers.
func TestAPILogin(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	client, _ := serveAuth(t, p.issuer)
	loginCookie, code, state := start(t, client, p, "/cart?step=2")

	ctx, info := call(t.Context(), loginCookie)
	finish, err := client.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: "?" + url.Values{"code": {code}, "state": {state}}.Encode()})
	if err != nil {
		t.Fatalf("FinishLogin: %v", err)
	}
	if finish.GetUser().GetSubject() != "alice" || finish.GetUser().GetName() != "Alice Example" || finish.GetReturnTo() != "/cart?step=2" {
		t.Errorf("FinishLogin = %v", finish)
	}
	if got := info.ResponseHeader().Get("Cache-Control"); got != "no-store" {
		t.Errorf("FinishLogin Cache-Control %q", got)
	}
	cookies := setCookies(t, info.ResponseHeader())
	if c := cookies[loginCookie.Name]; c == nil || c.MaxAge >= 0 {
		t.Errorf("login cookie not cleared: %v", c)
	}
	sessionCookie := cookies["__Host-custodian"]
	if sessionCookie == nil || sessionCookie.Value == "" || !sessionCookie.Secure || !sessionCookie.HttpOnly {
		t.Fatalf("no session cookie among %v", info.ResponseHeader().Values("Set-Cookie"))
	}
	for _, secret := range []string{"at-secret", "rt-secret"} {
		if strings.Contains(strings.Join(info.ResponseHeader().Values("Set-Cookie"), ";"), secret) {
			t.Errorf("FinishLogin's headers carry %q", secret)
		}
	}

	ctx, info = call(t.Context(), sessionCookie)
	logout, err := client.Logout(ctx, &custodianv1.LogoutRequest{})
	if err != nil {
		t.Fatalf("Logout: %v", err)
	}
	end, err := url.Parse(logout.GetEndSessionUrl())
	if err != nil || !strings.HasPrefix(logout.GetEndSessionUrl(), p.issuer+"/end-session?") || end.Query().Get("id_token_hint") == "" ||
		end.Query().Get("post_logout_redirect_uri") != publicURL+"/" {
		t.Errorf("end-session url %q", logout.GetEndSessionUrl())
	}
	if c := setCookies(t, info.ResponseHeader())["__Host-custodian"]; c == nil || c.MaxAge >= 0 {
		t.Errorf("session cookie not cleared: %v", c)
	}
	if got := info.ResponseHeader().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Logout Cache-Control %q", got)
	}

	// The session has ended: the browser learns why.
	ctx, _ = call(t.Context(), sessionCookie)
	_, err = client.Logout(ctx, &custodianv1.LogoutRequest{})
	wantSessionError(t, err, session.ReasonSignedOut)
}

func wantSessionError(t *testing.T, err error, reason session.Reason) {
	t.Helper()
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok || ce.Code() != connect.CodeUnauthenticated {
		t.Fatalf("error %v, want unauthenticated", err)
	}
	for _, d := range ce.Details() {
		if v, err := connectproto.UnmarshalErrorDetail(d); err == nil {
			if se, ok := v.(*custodianv1.SessionError); ok {
				if se.GetReason() != reason || se.GetLoginUrl() != publicURL+login.LoginPath {
					t.Errorf("SessionError %v, want reason %v", se, reason)
				}
				return
			}
		}
	}
	t.Errorf("error %v has no SessionError detail", err)
}

func TestLogoutWithoutSession(t *testing.T) {
	t.Parallel()
	client, _ := serveAuth(t, newProvider(t).issuer)
	_, err := client.Logout(t.Context(), &custodianv1.LogoutRequest{})
	wantSessionError(t, err, session.ReasonNoSession)
}

// TestFinishLoginRefusals checks FinishLogin's refusals: fixed messages,
// nothing of the provider's, and, once the attempt is known, its cookie
// cleared on the error response too.
func TestFinishLoginRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		query       func(code, state string) string
		sendCookie  bool
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
			return "error=" + url.QueryEscape("<script>provider-secret-detail</script>") + "&state=" + state
		}, true, connect.CodePermissionDenied, "the identity provider did not sign the user in: error", true},
		{"code refused", func(_, state string) string { return "code=forged&state=" + state }, true,
			connect.CodePermissionDenied, "sign-in failed: start again", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			client, _ := serveAuth(t, p.issuer)
			loginCookie, code, state := start(t, client, p, "/")
			var cookies []*http.Cookie
			if c.sendCookie {
				cookies = append(cookies, loginCookie)
			}
			ctx, info := call(t.Context(), cookies...)
			res, err := client.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: c.query(code, state)})
			if res != nil {
				t.Errorf("FinishLogin answered %v", res)
			}
			ce, ok := errors.AsType[*connect.Error](err)
			if !ok || ce.Code() != c.wantCode || ce.Message() != c.wantMessage {
				t.Fatalf("FinishLogin error %v, want %v %q", err, c.wantCode, c.wantMessage)
			}
			if strings.Contains(ce.Error(), "provider-secret-detail") {
				t.Errorf("error %q carries the provider's text", ce)
			}
			set := setCookies(t, info.ResponseHeader())
			if _, ok := set["__Host-custodian"]; ok {
				t.Errorf("a refused login set the session cookie")
			}
			cleared := set[loginCookie.Name] != nil && set[loginCookie.Name].MaxAge < 0
			if cleared != c.wantCleared {
				t.Errorf("login cookie cleared %v, want %v (Set-Cookie %q)", cleared, c.wantCleared, info.ResponseHeader().Values("Set-Cookie"))
			}
			if c.wantCleared && info.ResponseHeader().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", info.ResponseHeader().Get("Cache-Control"))
			}
		})
	}
}

// TestStartLoginProviderDown checks that an unreachable provider gives a
// fixed answer, not the provider's address or the dial error.
func TestStartLoginProviderDown(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.NotFoundHandler())
	issuer := down.URL
	down.Close()
	client, _ := serveAuth(t, issuer)
	ctx, info := call(t.Context())
	_, err := client.StartLogin(ctx, &custodianv1.StartLoginRequest{})
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok || ce.Code() != connect.CodeUnavailable || ce.Message() != "the identity provider is unavailable, try again" {
		t.Fatalf("StartLogin = %v, want unavailable", err)
	}
	if strings.Contains(ce.Error(), strings.TrimPrefix(issuer, "http://")) {
		t.Errorf("error %q reveals the provider's address", ce)
	}
	if got := info.ResponseHeader().Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("StartLogin set cookies %q without an attempt", got)
	}
}
