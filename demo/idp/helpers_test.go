package idp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	testClientID     = "custodian"
	testClientSecret = "custodian-secret"
	testMountPath    = "/demo/idp/"
)

// testEnv is a provider behind a real loopback HTTP server, mounted like the
// gateway mounts it, and an x/oauth2 config for its test client.
type testEnv struct {
	srv      *httptest.Server
	p        *Provider
	issuer   string
	client   Client
	oauth    *oauth2.Config
	browser  *http.Client // never follows redirects
	redirect string
}

// newTestEnv starts a server first (the issuer needs its URL), then creates
// the provider the server forwards to. mutate may adjust the test client.
func newTestEnv(t *testing.T, mutate func(*Client), opts ...Option) *testEnv {
	t.Helper()
	var current atomic.Pointer[Provider]
	mux := http.NewServeMux()
	mux.Handle(testMountPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	issuer := srv.URL + strings.TrimSuffix(testMountPath, "/")
	client := Client{
		ID:                     testClientID,
		Secret:                 testClientSecret,
		RedirectURIs:           []string{srv.URL + "/callback"},
		PostLogoutRedirectURIs: []string{srv.URL + "/signed-out"},
		Audiences:              []string{"acme-profiles", "acme-orders"},
	}
	if mutate != nil {
		mutate(&client)
	}
	p, err := New(issuer, append([]Option{WithClient(client)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	current.Store(p)

	browser := srv.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &testEnv{
		srv:    srv,
		p:      p,
		issuer: issuer,
		client: client,
		oauth: &oauth2.Config{
			ClientID:     client.ID,
			ClientSecret: client.Secret,
			Endpoint: oauth2.Endpoint{
				AuthURL:  issuer + "/authorize",
				TokenURL: issuer + "/token",
			},
			RedirectURL: client.RedirectURIs[0],
			Scopes:      []string{"openid", "profile", "email", "offline_access"},
		},
		browser:  browser,
		redirect: client.RedirectURIs[0],
	}
}

// ctx returns a test context whose HTTP client is the server's, for x/oauth2
// and go-oidc.
func (e *testEnv) ctx(t *testing.T) context.Context {
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, e.srv.Client())
	return oidc.ClientContext(ctx, e.srv.Client())
}

// authRequest is an authorization request as a browser would start it.
type authRequest struct {
	url, state, nonce, verifier string
}

// newAuthRequest builds an authorization URL with PKCE S256 and a nonce;
// opts add or override parameters.
func (e *testEnv) newAuthRequest(opts ...oauth2.AuthCodeOption) authRequest {
	a := authRequest{
		state:    "state-" + rand.Text(),
		nonce:    "nonce-" + rand.Text(),
		verifier: oauth2.GenerateVerifier(),
	}
	all := append([]oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(a.verifier),
		oauth2.SetAuthURLParam("nonce", a.nonce),
	}, opts...)
	a.url = e.oauth.AuthCodeURL(a.state, all...)
	return a
}

// get fetches a URL without following redirects.
func (e *testEnv) get(t *testing.T, rawURL string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.do(t, req)
}

// postForm posts a form without following redirects.
func (e *testEnv) postForm(t *testing.T, rawURL string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(t, req)
}

func (e *testEnv) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}

// signIn drives the login like a browser: GET the form, POST the credentials
// to the same URL. It returns the redirect's query, failing unless the
// provider redirected to the client.
func (e *testEnv) signIn(t *testing.T, a authRequest, username, password string) url.Values {
	t.Helper()
	resp, body := e.get(t, a.url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET authorize: status %d, body %q", resp.StatusCode, body)
	}
	resp, body = e.postForm(t, a.url, url.Values{"username": {username}, "password": {password}})
	return e.redirectQuery(t, resp, body)
}

// redirectQuery checks that resp redirects to the client's redirect URI and
// returns the redirect's query parameters.
func (e *testEnv) redirectQuery(t *testing.T, resp *http.Response, body string) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("want a redirect, got status %d, body %q", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != e.redirect {
		t.Fatalf("redirected to %q, want %q", got, e.redirect)
	}
	return loc.Query()
}

// login signs alice in and returns the code and the request it answers.
func (e *testEnv) login(t *testing.T, opts ...oauth2.AuthCodeOption) (string, authRequest) {
	t.Helper()
	a := e.newAuthRequest(opts...)
	q := e.signIn(t, a, "alice", "demo")
	if q.Get("state") != a.state {
		t.Fatalf("state = %q, want %q", q.Get("state"), a.state)
	}
	code := q.Get("code")
	if code == "" {
		t.Fatalf("no code in redirect: %v", q)
	}
	return code, a
}

// loginAndExchange signs alice in and exchanges the code.
func (e *testEnv) loginAndExchange(t *testing.T, opts ...oauth2.AuthCodeOption) (*oauth2.Token, authRequest) {
	t.Helper()
	code, a := e.login(t, opts...)
	tok, err := e.oauth.Exchange(e.ctx(t), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok, a
}

// tokenRequest POSTs form to the token endpoint with client_secret_basic
// and returns the status and decoded JSON body.
func (e *testEnv) tokenRequest(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	return e.clientPost(t, e.issuer+"/token", form)
}

// clientPost POSTs form to an endpoint, authenticated as the test client.
func (e *testEnv) clientPost(t *testing.T, endpoint string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(e.client.ID), url.QueryEscape(e.client.Secret))
	resp, body := e.do(t, req)
	out := map[string]any{}
	if len(strings.TrimSpace(body)) > 0 {
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("POST %s: status %d, body is not JSON: %q", endpoint, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, out
}

// refresh uses a refresh token and returns the status and body.
func (e *testEnv) refresh(t *testing.T, refreshToken string) (int, map[string]any) {
	t.Helper()
	return e.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// introspect reports whether the provider considers token active.
func (e *testEnv) introspect(t *testing.T, token string) bool {
	t.Helper()
	status, body := e.clientPost(t, e.issuer+"/introspect", url.Values{"token": {token}})
	if status != http.StatusOK {
		t.Fatalf("introspect: status %d, body %v", status, body)
	}
	active, _ := body["active"].(bool)
	return active
}

// verifier returns a go-oidc verifier for tokens with audience aud,
// discovering the provider like a relying party would.
func (e *testEnv) verifier(t *testing.T, aud string) *oidc.IDTokenVerifier {
	t.Helper()
	op, err := oidc.NewProvider(e.ctx(t), e.issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	return op.VerifierContext(e.ctx(t), &oidc.Config{ClientID: aud})
}

// oauthErrorCode returns the OAuth error code of an x/oauth2 error.
func oauthErrorCode(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want *oauth2.RetrieveError, got %T: %v", err, err)
	}
	return re.ErrorCode
}

// jwtParts decodes a JWT's header and claims without verifying it; tests
// verify signatures separately.
func jwtParts(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	decode := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decode JWT part: %v", err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("JWT part is not JSON: %v", err)
		}
		return m
	}
	return decode(parts[0]), decode(parts[1])
}

// numericClaim returns a JSON number claim as a time.
func numericClaim(t *testing.T, claims map[string]any, name string) time.Time {
	t.Helper()
	f, ok := claims[name].(float64)
	if !ok {
		t.Fatalf("claim %q = %v (%T), want a number", name, claims[name], claims[name])
	}
	return time.Unix(int64(f), 0)
}

// errorCode returns the "error" member of a JSON error body.
func errorCode(body map[string]any) string {
	s, _ := body["error"].(string)
	return s
}

func mustRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	return httptest.NewRequestWithContext(t.Context(), method, target, nil)
}
