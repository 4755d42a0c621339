package idp

import (
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	op, err := oidc.NewProvider(e.ctx(t), e.issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	var meta map[string]any
	if err := op.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	wantStrings := map[string]string{
		"issuer":                 e.issuer,
		"authorization_endpoint": e.issuer + "/authorize",
		"token_endpoint":         e.issuer + "/token",
		"userinfo_endpoint":      e.issuer + "/userinfo",
		"jwks_uri":               e.p.JWKSURL(),
		"revocation_endpoint":    e.issuer + "/revoke",
		"introspection_endpoint": e.issuer + "/introspect",
		"end_session_endpoint":   e.issuer + "/end-session",
	}
	for k, want := range wantStrings {
		if meta[k] != want {
			t.Errorf("%s = %v, want %q", k, meta[k], want)
		}
	}
	wantLists := map[string][]string{
		"response_types_supported":              {"code"},
		"code_challenge_methods_supported":      {"S256"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"grant_types_supported":                 {"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      {"openid", "profile", "email", "offline_access"},
	}
	for k, want := range wantLists {
		var got []string
		for _, v := range meta[k].([]any) {
			got = append(got, v.(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported"} {
		if meta[k] != true {
			t.Errorf("%s = %v, want true", k, meta[k])
		}
	}
	if e.p.Issuer() != e.issuer {
		t.Errorf("Issuer() = %q, want %q", e.p.Issuer(), e.issuer)
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	resp, body := e.get(t, e.p.JWKSURL())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	pub, ok := k.Key.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("key = %T, want a 2048-bit RSA public key", k.Key)
	}
	if k.KeyID == "" || k.Use != "sig" || k.Algorithm != "RS256" || !k.IsPublic() {
		t.Errorf("key id=%q use=%q alg=%q public=%v", k.KeyID, k.Use, k.Algorithm, k.IsPublic())
	}
	if strings.Contains(body, `"d"`) {
		t.Error("JWKS leaks the private exponent")
	}

	// Every provider has its own key.
	other := newTestEnv(t, nil)
	_, otherBody := other.get(t, other.p.JWKSURL())
	if otherBody == body {
		t.Error("two providers share a key")
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
	}{
		{name: "unknown endpoint", method: http.MethodGet, path: "/demo/idp/nope", wantStatus: http.StatusNotFound},
		{name: "issuer root", method: http.MethodGet, path: "/demo/idp/", wantStatus: http.StatusNotFound},
		{name: "prefix lookalike", method: http.MethodGet, path: "/demo/idp/jwks/x", wantStatus: http.StatusNotFound},
		{name: "token by GET", method: http.MethodGet, path: "/demo/idp/token", wantStatus: http.StatusMethodNotAllowed},
		{name: "jwks by DELETE", method: http.MethodDelete, path: "/demo/idp/jwks", wantStatus: http.StatusMethodNotAllowed},
		{name: "jwks", method: http.MethodGet, path: "/demo/idp/jwks", wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			req, err := http.NewRequestWithContext(t.Context(), tt.method, e.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp, _ := e.do(t, req); resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}

	t.Run("outside the issuer path", func(t *testing.T) {
		t.Parallel()
		p, err := New("http://127.0.0.1:1/demo/idp")
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, mustRequest(t, http.MethodGet, "/other/jwks"))
		if rec.Code != http.StatusNotFound {
			t.Errorf("status %d, want 404", rec.Code)
		}
	})
}

func TestClientSecretPost(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {e.client.ID},
		"client_secret": {e.client.Secret},
	}
	resp, body := e.postForm(t, e.issuer+"/token", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "access_token") {
		t.Errorf("status %d, body %q", resp.StatusCode, body)
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	good := Client{ID: "c", Secret: "s", RedirectURIs: []string{"http://127.0.0.1/cb"}}
	tests := []struct {
		name    string
		issuer  string
		opts    []Option
		wantErr bool
	}{
		{name: "minimal", issuer: "http://127.0.0.1:8080/demo/idp"},
		{name: "with client and users", issuer: "https://idp.example", opts: []Option{WithClient(good), WithUsers(User{Username: "u", Password: "p", Subject: "s"})}},
		{name: "relative issuer", issuer: "/demo/idp", wantErr: true},
		{name: "issuer with query", issuer: "http://127.0.0.1/idp?x=1", wantErr: true},
		{name: "ftp issuer", issuer: "ftp://127.0.0.1/idp", wantErr: true},
		{name: "access token lifetime below 1s", issuer: "http://127.0.0.1/idp", opts: []Option{WithAccessTokenLifetime(500 * time.Millisecond)}, wantErr: true},
		{name: "refresh token lifetime zero", issuer: "http://127.0.0.1/idp", opts: []Option{WithRefreshTokenLifetime(0)}, wantErr: true},
		{name: "duplicate client", issuer: "http://127.0.0.1/idp", opts: []Option{WithClient(good), WithClient(good)}, wantErr: true},
		{name: "client without secret", issuer: "http://127.0.0.1/idp", opts: []Option{WithClient(Client{ID: "c"})}, wantErr: true},
		{name: "client with relative redirect", issuer: "http://127.0.0.1/idp", opts: []Option{WithClient(Client{ID: "c", Secret: "s", RedirectURIs: []string{"/cb"}})}, wantErr: true},
		{name: "duplicate subject", issuer: "http://127.0.0.1/idp", opts: []Option{WithUsers(User{Username: "a", Password: "p", Subject: "s"}, User{Username: "b", Password: "p", Subject: "s"})}, wantErr: true},
		{name: "user without password", issuer: "http://127.0.0.1/idp", opts: []Option{WithUsers(User{Username: "a", Subject: "a"})}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.issuer, tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Errorf("New error = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestWithUsers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, WithUsers(User{Username: "carol", Password: "pw-carol", Subject: "u-123", Name: "Carol", Email: "carol@example.com"}))
	a := e.newAuthRequest()
	resp, body := e.postForm(t, a.url, url.Values{"username": {"alice"}, "password": {"demo"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("default user alice signed in despite WithUsers: status %d", resp.StatusCode)
	}
	if strings.Contains(body, "Demo accounts") {
		t.Error("login form advertises the default accounts")
	}
	q := e.signIn(t, e.newAuthRequest(), "carol", "pw-carol")
	if q.Get("code") == "" {
		t.Fatalf("carol could not sign in: %v", q)
	}
}

func TestDefaultUsers(t *testing.T) {
	t.Parallel()
	users := DefaultUsers()
	if len(users) != 2 {
		t.Fatalf("%d users, want 2", len(users))
	}
	want := []User{
		{Username: "alice", Password: "demo", Subject: "alice", Name: "Alice Liddell", Email: "alice@example.com", Picture: "https://images.example/avatars/alice.png"},
		{Username: "bob", Password: "demo", Subject: "bob", Name: "Bob Builder", Email: "bob@example.com"},
	}
	if !slices.Equal(users, want) {
		t.Errorf("DefaultUsers() = %+v, want %+v", users, want)
	}
	users[0].Password = "changed"
	if DefaultUsers()[0].Password != "demo" {
		t.Error("DefaultUsers shares its slice")
	}
}
