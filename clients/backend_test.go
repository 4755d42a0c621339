package clients_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/custodian-bff/custodian/clients"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
)

// recordingCatalog is a catalog backend that records the headers of the last
// request; GetProduct "block" waits until the caller gives up.
type recordingCatalog struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
	mu     sync.Mutex
	header http.Header
	calls  atomic.Int64
}

func (c *recordingCatalog) GetProduct(ctx context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	c.calls.Add(1)
	c.mu.Lock()
	c.header = requestHeader(ctx)
	c.mu.Unlock()
	if req.GetProductId() == "block" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &catalogv1.GetProductResponse{Product: &catalogv1.Product{ProductId: req.GetProductId()}}, nil
}

// requestHeader returns a copy of the HTTP request header of the call that
// ctx serves.
func requestHeader(ctx context.Context) http.Header {
	h := http.Header{}
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		for k, vv := range info.RequestHeader().All() {
			h[k] = append([]string(nil), vv...)
		}
	}
	return h
}

func (c *recordingCatalog) lastHeader() http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.header
}

// startCatalog serves a recordingCatalog over HTTP/1.1 and h2c on loopback.
func startCatalog(t *testing.T) (*recordingCatalog, string) {
	t.Helper()
	catalog := &recordingCatalog{}
	server := connect.NewServer()
	catalogv1connect.RegisterCatalogServiceHandler(server, catalog)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: protocols}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return catalog, "http://" + ln.Addr().String()
}

type fakeUserTokens struct{}

func (fakeUserTokens) AccessToken(context.Context) (string, error) { return "user-token", nil }
func (fakeUserTokens) ExchangedToken(_ context.Context, audience string) (string, error) {
	return "exchanged-for-" + audience, nil
}
func (fakeUserTokens) RenewAccessToken(context.Context, string) (string, error) {
	return "renewed-user-token", nil
}
func (fakeUserTokens) RenewExchangedToken(_ context.Context, audience, _ string) (string, error) {
	return "renewed-for-" + audience, nil
}
func (fakeUserTokens) Reject(context.Context) error {
	return connect.NewError(connect.CodeUnauthenticated, "rejected")
}

// userTokens is the WithUserTokens option that hands every call ut.
func userTokens(ut clients.UserTokens) clients.Option {
	return clients.WithUserTokens(func(context.Context) clients.UserTokens { return ut })
}

func call(ctx context.Context, t *testing.T, spec clients.Spec, productID string, opts ...clients.Option) error {
	t.Helper()
	b, err := clients.New(spec, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	client := catalogv1connect.NewCatalogServiceClient(b.Client())
	_, err = client.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: productID})
	return err
}

func TestTokenPolicies(t *testing.T) {
	t.Parallel()
	user := userTokens(fakeUserTokens{})
	noSession := userTokens(nil)
	cases := []struct {
		name     string
		tokens   clients.Option // nil: no WithUserTokens
		spec     clients.Spec
		wantAuth string
		wantCode connect.Code // 0: success
	}{
		{"none", nil, clients.Spec{Token: clients.TokenNone}, "", 0},
		{"none ignores a user", user, clients.Spec{Token: clients.TokenNone}, "", 0},
		{"user", user, clients.Spec{Token: clients.TokenUser}, "Bearer user-token", 0},
		{"user is the default", user, clients.Spec{}, "Bearer user-token", 0},
		{"user without user tokens", nil, clients.Spec{Token: clients.TokenUser}, "", connect.CodeUnauthenticated},
		{"user without a session", noSession, clients.Spec{Token: clients.TokenUser}, "", connect.CodeUnauthenticated},
		{"exchange", user, clients.Spec{Token: clients.TokenExchange, Audience: "acme-loyalty"}, "Bearer exchanged-for-acme-loyalty", 0},
		{"exchange without user tokens", nil, clients.Spec{Token: clients.TokenExchange, Audience: "acme-loyalty"}, "", connect.CodeUnauthenticated},
		{"exchange without a session", noSession, clients.Spec{Token: clients.TokenExchange, Audience: "acme-loyalty"}, "", connect.CodeUnauthenticated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			catalog, url := startCatalog(t)
			c.spec.Name, c.spec.URL = "catalog", url
			ctx := requestid.NewContext(context.Background(), "req-"+c.name)
			var opts []clients.Option
			if c.tokens != nil {
				opts = append(opts, c.tokens)
			}
			err := call(ctx, t, c.spec, "p-1", opts...)
			if connect.CodeOf(err) != c.wantCode && !(c.wantCode == 0 && err == nil) {
				t.Fatalf("got %v, want code %v", err, c.wantCode)
			}
			if c.wantCode != 0 {
				if n := catalog.calls.Load(); n != 0 {
					t.Fatalf("backend called %d times without a token", n)
				}
				return
			}
			h := catalog.lastHeader()
			if got := h.Get("Authorization"); got != c.wantAuth {
				t.Errorf("Authorization %q, want %q", got, c.wantAuth)
			}
			if got := h.Get(requestid.Header); got != "req-"+c.name {
				t.Errorf("request id %q, want %q", got, "req-"+c.name)
			}
			if h.Get("Cookie") != "" {
				t.Error("backend received a cookie")
			}
		})
	}
}

func TestProtocols(t *testing.T) {
	t.Parallel()
	cases := map[clients.Protocol]string{
		clients.ProtocolConnect: "application/proto",
		clients.ProtocolGRPC:    "application/grpc",
		clients.ProtocolGRPCWeb: "application/grpc-web+proto",
	}
	for protocol, contentType := range cases {
		t.Run(string(protocol), func(t *testing.T) {
			t.Parallel()
			catalog, url := startCatalog(t)
			err := call(context.Background(), t, clients.Spec{Name: "catalog", URL: url, Protocol: protocol, Token: clients.TokenNone}, "p-1")
			if err != nil {
				t.Fatal(err)
			}
			if got := catalog.lastHeader().Get("Content-Type"); got != contentType {
				t.Errorf("content type %q, want %q", got, contentType)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	_, url := startCatalog(t)
	err := call(context.Background(), t, clients.Spec{Name: "catalog", URL: url, Token: clients.TokenNone, Timeout: 50 * time.Millisecond}, "block")
	if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
		t.Fatalf("got %v, want deadline_exceeded", err)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	// httptest servers speak HTTP/1.1 only; this client does too.
	err := call(context.Background(), t, clients.Spec{Name: "catalog", URL: redirector.URL, Token: clients.TokenNone}, "p-1",
		clients.WithHTTPClient(&http.Client{CheckRedirect: clients.NewHTTPClient().CheckRedirect}))
	if err == nil {
		t.Fatal("call through a redirect succeeded")
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("redirect target was called %d times", n)
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	var issued atomic.Int64
	expiresIn := 3600
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "gw" || secret != "s3cret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"idp-internal-host-7 says no"}`)
			return
		}
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"cc-%s-%d","token_type":"Bearer","expires_in":%d}`, r.PostForm.Get("audience"), n, expiresIn)
	}))
	t.Cleanup(idp.Close)
	tokenURL := func(context.Context) (string, error) { return idp.URL, nil }
	catalog, url := startCatalog(t)
	b, err := clients.New(clients.Spec{Name: "catalog", URL: url, Token: clients.TokenClient, Audience: "acme-catalog"},
		clients.WithClientCredentials(clients.ClientCredentials{TokenURL: tokenURL, ClientID: "gw", ClientSecret: "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	client := catalogv1connect.NewCatalogServiceClient(b.Client())
	for range 5 {
		if _, err := client.GetProduct(context.Background(), &catalogv1.GetProductRequest{ProductId: "p-1"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := catalog.lastHeader().Get("Authorization"); got != "Bearer cc-acme-catalog-1" {
		t.Errorf("Authorization %q, want the first client token", got)
	}
	if n := issued.Load(); n != 1 {
		t.Errorf("%d token requests for 5 calls, want 1 (cached)", n)
	}

	// A wrong secret fails the call before it reaches the backend.
	before := catalog.calls.Load()
	err = call(context.Background(), t, clients.Spec{Name: "catalog", URL: url, Token: clients.TokenClient},
		"p-1", clients.WithClientCredentials(clients.ClientCredentials{TokenURL: tokenURL, ClientID: "gw", ClientSecret: "wrong"}))
	if err == nil {
		t.Fatal("call with a refused client secret succeeded")
	}
	var connectErr *connect.Error
	if errors.As(err, &connectErr) {
		t.Errorf("token failure surfaced as a Connect error %v; the aggregator must classify it", connectErr)
	}
	if catalog.calls.Load() != before {
		t.Error("backend was called without a token")
	}
}

// verdict stands for the session layer's typed error (session.Error), which
// clients must hand back unconverted.
type verdict struct{ reason string }

func (v *verdict) Error() string { return "no session: " + v.reason }

// failingUserTokens fails every token request with err.
type failingUserTokens struct {
	fakeUserTokens
	err error
}

func (f failingUserTokens) AccessToken(context.Context) (string, error) { return "", f.err }
func (f failingUserTokens) ExchangedToken(context.Context, string) (string, error) {
	return "", f.err
}

func TestTokenPolicyErrorsReachTheCaller(t *testing.T) {
	t.Parallel()
	sessionErr := &verdict{reason: "expired"}
	connectErr := connect.NewError(connect.CodeUnavailable, "sessions are unavailable")
	cases := []struct {
		name string
		spec clients.Spec
		err  error
	}{
		{"user, typed verdict", clients.Spec{Token: clients.TokenUser}, sessionErr},
		{"exchange, typed verdict", clients.Spec{Token: clients.TokenExchange, Audience: "acme-loyalty"}, sessionErr},
		{"user, connect error", clients.Spec{Token: clients.TokenUser}, connectErr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			catalog, url := startCatalog(t)
			c.spec.Name, c.spec.URL = "catalog", url
			err := call(t.Context(), t, c.spec, "p-1", userTokens(failingUserTokens{err: c.err}))
			if !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
			if v, ok := errors.AsType[*verdict](err); c.err == sessionErr && (!ok || v != sessionErr) {
				t.Errorf("errors.As found %v, want the very verdict", v)
			}
			if got := connect.CodeOf(err); c.err == connectErr && got != connect.CodeUnavailable {
				t.Errorf("code %v, want unavailable", got)
			}
			if n := catalog.calls.Load(); n != 0 {
				t.Errorf("backend called %d times without a token", n)
			}
		})
	}
}

func TestNewRefusesBadBackends(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		spec clients.Spec
		opts []clients.Option
	}{
		{"relative url", clients.Spec{Name: "x", URL: "/catalog", Token: clients.TokenNone}, nil},
		{"ftp url", clients.Spec{Name: "x", URL: "ftp://catalog", Token: clients.TokenNone}, nil},
		{"unknown policy", clients.Spec{Name: "x", URL: "http://catalog", Token: "cookie"}, nil},
		{"exchange without audience", clients.Spec{Name: "x", URL: "http://catalog", Token: clients.TokenExchange}, nil},
		{"client without credentials", clients.Spec{Name: "x", URL: "http://catalog", Token: clients.TokenClient}, nil},
		{"unknown protocol", clients.Spec{Name: "x", URL: "http://catalog", Token: clients.TokenNone, Protocol: "soap"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := clients.New(c.spec, c.opts...); err == nil {
				t.Fatal("New accepted a bad backend")
			}
		})
	}
}
