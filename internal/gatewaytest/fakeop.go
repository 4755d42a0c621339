package gatewaytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// FakeOP is an OpenID Connect provider the test controls completely: its
// authorization endpoint signs in at once (as login_hint, default alice)
// and its ID tokens can be altered before they are signed. It signs with
// ES256 and serves on its own loopback port until the test ends.
type FakeOP struct {
	// Issuer is the provider's issuer URL.
	Issuer string
	// ClientID is the gateway's client id at the provider.
	ClientID string
	// Kid is the id of the provider's signing key.
	Kid string

	secret string
	key    *ecdsa.PrivateKey
	srv    *httptest.Server

	mu        sync.Mutex
	codes     map[string]fakeGrant
	sids      map[string]string // subject → sid of its latest sign-in
	tamper    func(claims map[string]any) *ecdsa.PrivateKey
	errorText string // error_description of the token endpoint's refusals
}

type fakeGrant struct {
	subject, nonce, challenge, redirectURI, sid string
}

// NewFakeOP starts a fake provider.
func NewFakeOP(t testing.TB) *FakeOP {
	t.Helper()
	op := &FakeOP{
		ClientID: "custodian-test",
		Kid:      "k1",
		secret:   rand.Text(),
		key:      NewKey(),
		codes:    map[string]fakeGrant{},
		sids:     map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	op.Issuer = op.srv.URL
	return op
}

// Stop takes the provider down: its listener closes, so that every call
// the gateway makes to it fails to connect, as when a provider is
// unreachable. The gateway discovers its provider on first use and keeps
// what it found, so stop the provider before the gateway's first call to it
// for discovery itself to fail. Stopping twice is harmless; the provider
// also stops when the test ends.
func (op *FakeOP) Stop() { op.srv.Close() }

// SetErrorDescription makes the token endpoint's refusals (invalid_client,
// unsupported_grant_type, invalid_grant) carry text as their
// error_description, as real providers' do: a test can then check that the
// provider's own words never reach the browser. Default: no description.
func (op *FakeOP) SetErrorDescription(text string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.errorText = text
}

// NewKey returns a new P-256 key; it panics on failure, which crypto/rand
// never causes.
func NewKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// SignJWT signs claims as a compact ES256 JWT with key id kid and type typ.
// It panics on failure, which valid keys and JSON-able claims never cause,
// so that provider handlers and subtests alike may call it.
func SignJWT(key *ecdsa.PrivateKey, kid, typ string, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		panic(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return raw
}

// Sign signs claims with the provider's own key.
func (op *FakeOP) Sign(typ string, claims map[string]any) string {
	return SignJWT(op.key, op.Kid, typ, claims)
}

// SetTamper makes the provider pass every ID token's claims to f before
// signing; f returns the key to sign with, nil for the provider's own.
func (op *FakeOP) SetTamper(f func(claims map[string]any) *ecdsa.PrivateKey) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.tamper = f
}

// SID returns the provider session id of subject's latest sign-in.
func (op *FakeOP) SID(subject string) string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.sids[subject]
}

// LogoutClaims returns the claims of a valid back-channel logout token for
// subject.
func (op *FakeOP) LogoutClaims(subject string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":    op.Issuer,
		"aud":    op.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    rand.Text(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		"sub":    subject,
	}
}

func (op *FakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                op.Issuer,
		"authorization_endpoint":                op.Issuer + "/authorize",
		"token_endpoint":                        op.Issuer + "/token",
		"jwks_uri":                              op.Issuer + "/jwks",
		"revocation_endpoint":                   op.Issuer + "/revoke",
		"end_session_endpoint":                  op.Issuer + "/end-session",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	})
}

func (op *FakeOP) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &op.key.PublicKey, KeyID: op.Kid, Algorithm: string(jose.ES256), Use: "sig",
	}}})
}

func (op *FakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != op.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	subject := q.Get("login_hint")
	if subject == "" {
		subject = "alice"
	}
	code, sid := rand.Text(), rand.Text()
	op.mu.Lock()
	op.codes[code] = fakeGrant{subject: subject, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), sid: sid}
	op.sids[subject] = sid
	op.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	bq := url.Values{"code": {code}, "state": {q.Get("state")}}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

func (op *FakeOP) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if id, _ = url.QueryUnescape(id); !ok || id != op.ClientID {
		op.refuse(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if secret, _ = url.QueryUnescape(secret); secret != op.secret {
		op.refuse(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "authorization_code" {
		op.refuse(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	op.mu.Lock()
	g, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	tamper := op.tamper
	op.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || g.redirectURI != r.PostForm.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		op.refuse(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss":   op.Issuer,
		"sub":   g.subject,
		"aud":   op.ClientID,
		"iat":   now.Unix(),
		"exp":   now.Add(5 * time.Minute).Unix(),
		"nonce": g.nonce,
		"sid":   g.sid,
		"name":  "User " + g.subject,
	}
	key := op.key
	if tamper != nil {
		if k := tamper(claims); k != nil {
			key = k
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  "at-" + rand.Text(),
		"token_type":    "Bearer",
		"expires_in":    300,
		"refresh_token": "rt-" + rand.Text(),
		"id_token":      SignJWT(key, op.Kid, "JWT", claims),
	})
}

// refuse writes the token endpoint's OAuth error answer, with the
// description SetErrorDescription set, if any.
func (op *FakeOP) refuse(w http.ResponseWriter, status int, code string) {
	answer := map[string]string{"error": code}
	op.mu.Lock()
	if op.errorText != "" {
		answer["error_description"] = op.errorText
	}
	op.mu.Unlock()
	writeJSON(w, status, answer)
}

// writeJSON writes v as a JSON answer with status, not to be stored.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
