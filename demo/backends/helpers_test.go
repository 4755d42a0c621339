package backends_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"github.com/custodian-bff/custodian/demo/backends"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testIDP is a stand-in identity provider: an RSA key whose public half is
// served as a JWKS on loopback, and a way to mint tokens with it.
type testIDP struct {
	issuer  string
	jwksURL string
	key     *rsa.PrivateKey
	kid     string
	fetches atomic.Int64 // JWKS requests served
}

func newTestIDP(t *testing.T) *testIDP {
	t.Helper()
	idp := &testIDP{key: rsaKey(t, 0), kid: "test-key-1"}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &idp.key.PublicKey,
		KeyID:     idp.kid,
		Algorithm: string(jose.RS256),
		Use:       "sig",
	}}})
	if err != nil {
		t.Fatalf("marshal JWKS: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		idp.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	idp.issuer = srv.URL
	idp.jwksURL = srv.URL + "/jwks"
	return idp
}

// rsaKeys are generated once per test binary: generating 2048-bit keys is
// slow under the race detector, and each test IDP still has its own issuer.
var rsaKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = key
	}
	return keys, nil
})

// rsaKey returns the IDP's signing key (0) or a key the IDP never published (1).
func rsaKey(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := rsaKeys()
	if err != nil {
		t.Fatalf("generate RSA keys: %v", err)
	}
	return keys[i]
}

// token returns a valid token for subject and audience, good for 5 minutes.
func (p *testIDP) token(t *testing.T, subject string, audience ...string) string {
	t.Helper()
	now := time.Now()
	return p.sign(t, p.key, p.kid, jwt.Claims{
		Issuer:   p.issuer,
		Subject:  subject,
		Audience: jwt.Audience(audience),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(5 * time.Minute)),
	})
}

// sign mints a token with arbitrary claims and key.
func (p *testIDP) sign(t *testing.T, key *rsa.PrivateKey, kid string, claims jwt.Claims) string {
	t.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		t.Fatalf("new signer: %v", err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return raw
}

// startSet starts a fresh Set against idp and closes it when the test ends.
func startSet(t *testing.T, idp *testIDP, opts ...backends.Option) *backends.Set {
	t.Helper()
	set, err := backends.Start(t.Context(), idp.issuer, idp.jwksURL, opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := set.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return set
}

// protocol is one way to call the backends.
type protocol struct {
	name   string
	client *http.Client
	opts   []connecthttp.Option
}

// protocols returns Connect and gRPC-Web over HTTP/1.1 and gRPC over
// unencrypted HTTP/2.
func protocols(t *testing.T) []protocol {
	t.Helper()
	newClient := func(h2c bool) *http.Client {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		var p http.Protocols
		if h2c {
			p.SetUnencryptedHTTP2(true)
		} else {
			p.SetHTTP1(true)
		}
		transport.Protocols = &p
		t.Cleanup(transport.CloseIdleConnections)
		return &http.Client{Transport: transport}
	}
	return []protocol{
		{name: "connect", client: newClient(false)},
		{name: "grpc", client: newClient(true), opts: []connecthttp.Option{connecthttp.WithGRPC()}},
		{name: "grpcweb", client: newClient(false), opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	}
}

// clients are the generated clients of a Set's four backends.
type clients struct {
	profiles profilesv1connect.ProfileServiceClient
	orders   ordersv1connect.OrderServiceClient
	catalog  catalogv1connect.CatalogServiceClient
	loyalty  loyaltyv1connect.LoyaltyServiceClient
}

func newClients(set *backends.Set, p protocol) clients {
	client := func(b *backends.Backend) *connect.Client {
		return connect.NewClient(connecthttp.NewTransport(p.client, b.URL(), p.opts...))
	}
	return clients{
		profiles: profilesv1connect.NewProfileServiceClient(client(set.Profiles)),
		orders:   ordersv1connect.NewOrderServiceClient(client(set.Orders)),
		catalog:  catalogv1connect.NewCatalogServiceClient(client(set.Catalog)),
		loyalty:  loyaltyv1connect.NewLoyaltyServiceClient(client(set.Loyalty)),
	}
}

// bearer returns ctx with a request header carrying token; no token, no
// header.
func bearer(ctx context.Context, token string) context.Context {
	return withAuthorization(ctx, "Bearer "+token, token != "")
}

// withAuthorization returns a client context whose request carries header as
// its Authorization header, or no Authorization header when set is false.
func withAuthorization(ctx context.Context, header string, set bool) context.Context {
	ctx, info := connect.NewClientContext(ctx)
	if set {
		info.RequestHeader().Set("Authorization", header)
	}
	return ctx
}

// wantCode fails the test unless err carries code; 0 means no error.
func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	switch {
	case code == 0 && err != nil:
		t.Fatalf("got error %v, want success", err)
	case code != 0 && err == nil:
		t.Fatalf("got success, want %v", code)
	case code != 0 && connect.CodeOf(err) != code:
		t.Fatalf("got %v (%v), want %v", connect.CodeOf(err), err, code)
	}
}

// errorMessage is the message of a Connect error, or "".
func errorMessage(err error) string {
	if connectErr, ok := errors.AsType[*connect.Error](err); ok {
		return connectErr.Message()
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for a logger writing on server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
