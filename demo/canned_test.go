package demo_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/proto"

	"github.com/custodian-bff/custodian/demo"
	"github.com/custodian-bff/custodian/demo/backends"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	"github.com/custodian-bff/custodian/server/config"
)

// protoRecorder is an http.RoundTripper that remembers the HTTP versions
// its answers came in, to prove which one a call used.
type protoRecorder struct {
	next http.RoundTripper

	mu     sync.Mutex
	majors map[int]int
}

func (p *protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := p.next.RoundTrip(r)
	if err == nil {
		p.mu.Lock()
		p.majors[res.ProtoMajor]++
		p.mu.Unlock()
	}
	return res, err
}

func (p *protoRecorder) only(t *testing.T, major int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.majors) != 1 || p.majors[major] == 0 {
		t.Errorf("answers by HTTP major version %v, want all HTTP/%d", p.majors, major)
	}
}

// cannedCall is a way the gateway, or a load generator, calls a backend.
type cannedCall struct {
	name  string
	major int // HTTP version
	opts  []connecthttp.Option
}

func cannedCalls() []cannedCall {
	return []cannedCall{
		{"connect binary over HTTP/1.1", 1, nil},
		{"connect json over HTTP/1.1", 1, []connecthttp.Option{connecthttp.WithProtoJSON()}},
		{"connect get over HTTP/1.1", 1, []connecthttp.Option{connecthttp.WithProtoJSON(), connecthttp.WithHTTPGet()}},
		{"grpc-web over HTTP/1.1", 1, []connecthttp.Option{connecthttp.WithGRPCWeb()}},
		{"connect binary over h2c", 2, nil},
		{"grpc over h2c", 2, []connecthttp.Option{connecthttp.WithGRPC()}},
	}
}

// way is what tells the call's requests apart to a canned backend: its
// protocol and codec, not its HTTP version.
func (c cannedCall) way() string {
	way, _, _ := strings.Cut(c.name, " over ")
	return way
}

// client returns an HTTP client that speaks only HTTP/major (h2c with prior
// knowledge for 2) and records the versions of its answers.
func (c cannedCall) client() (*http.Client, *protoRecorder) {
	var p http.Protocols
	if c.major == 2 {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	rec := &protoRecorder{next: &http.Transport{Protocols: &p}, majors: map[int]int{}}
	return &http.Client{Transport: rec}, rec
}

func (c cannedCall) catalog(base string) (catalogv1connect.CatalogServiceClient, *protoRecorder) {
	hc, rec := c.client()
	return catalogv1connect.NewCatalogServiceClient(connect.NewClient(connecthttp.NewTransport(hc, base, c.opts...))), rec
}

// withToken returns a context whose calls carry token as a bearer.
func withToken(ctx context.Context, token string) context.Context {
	ctx, info := connect.NewClientContext(ctx)
	if token != "" {
		info.RequestHeader().Set("Authorization", "Bearer "+token)
	}
	return ctx
}

// catalogToken returns a client-credentials token for the catalog backend,
// the one the gateway sends it.
func catalogToken(t *testing.T, s *demo.Standalone) string {
	t.Helper()
	cc := clientcredentials.Config{
		ClientID:       demo.ClientID,
		ClientSecret:   s.World.Config.OIDC.ClientSecret,
		TokenURL:       s.World.IdP.Issuer() + "/token",
		EndpointParams: url.Values{"audience": {"acme-catalog"}},
	}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func startCanned(t *testing.T, name, upstream string) *demo.CannedBackend {
	t.Helper()
	c, err := demo.StartCanned(t.Context(), name, upstream, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

func wantStats(t *testing.T, c *demo.CannedBackend, want demo.CannedStats) {
	t.Helper()
	if got := c.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// TestCannedBackendReplaysTheDemoBackend calls a canned catalog with real
// generated clients in every protocol, over HTTP/1.1 and h2c: each answer
// equals the demo backend's own, the second identical call is answered
// from memory, and the answers stay while the demo backend fails.
func TestCannedBackendReplaysTheDemoBackend(t *testing.T) {
	t.Parallel()
	s, _ := startStandalone(t, demo.StandaloneConfig{Gateways: []string{"http://localhost:18081"}})
	real := s.World.Backends.Catalog
	canned := startCanned(t, "catalog", real.URL())
	token := catalogToken(t, s)
	ctx := withToken(t.Context(), token)
	req := &catalogv1.ListProductsRequest{PageSize: 3, Category: "books"}
	want, _ := cannedCalls()[0].catalog(real.URL())
	wantRes, err := want.ListProducts(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(wantRes.GetProducts()) != 3 {
		t.Fatalf("the demo catalog answered %v", wantRes)
	}

	calls := cannedCalls()
	asked := map[string]bool{} // the ways of asking so far
	for _, call := range calls {
		client, rec := call.catalog(canned.URL())
		for range 2 {
			got, err := client.ListProducts(ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", call.name, err)
			}
			if !proto.Equal(got, wantRes) {
				t.Errorf("%s: canned answer\n%v\nwant the demo backend's\n%v", call.name, got, wantRes)
			}
		}
		rec.only(t, call.major)
		// One forward per new way of asking; the second call came from
		// memory. The HTTP version is not one: Connect binary over h2c
		// gets the answer recorded over HTTP/1.1.
		asked[call.way()] = true
		wantStats(t, canned, demo.CannedStats{Answers: len(asked), Forwarded: int64(len(asked))})
	}
	if len(asked) != 5 {
		t.Errorf("%d ways of asking, want 5", len(asked))
	}

	// The demo backend now fails every call: the kept answers are still
	// given, a new question gets the backend's error, and it is not kept.
	real.SetFault(backends.Fault{Code: connect.CodeUnavailable})
	t.Cleanup(func() { real.SetFault(backends.Fault{}) })
	for _, call := range calls {
		client, _ := call.catalog(canned.URL())
		if _, err := client.ListProducts(ctx, req); err != nil {
			t.Errorf("%s, demo backend failing: %v, want the kept answer", call.name, err)
		}
		_, err := client.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 4})
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s, new request, demo backend failing: %v, want unavailable", call.name, err)
		}
	}
	wantStats(t, canned, demo.CannedStats{Answers: len(asked), Forwarded: int64(len(asked) + len(calls))})
}

// TestCannedBackendWithoutAnAnswer checks the requests a canned backend
// has no answer for: each gets a Connect error in the caller's protocol,
// never an empty success, and none is kept.
func TestCannedBackendWithoutAnAnswer(t *testing.T) {
	t.Parallel()
	s, _ := startStandalone(t, demo.StandaloneConfig{Gateways: []string{"http://localhost:18081"}})
	canned := startCanned(t, "catalog", s.World.Backends.Catalog.URL())
	// A canned backend whose demo backend is gone.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()
	orphan := startCanned(t, "catalog", gone)
	token := catalogToken(t, s)

	for _, call := range cannedCalls() {
		t.Run(call.name, func(t *testing.T) {
			catalog, _ := call.catalog(canned.URL())
			// No token: the demo backend refuses, every time.
			for range 2 {
				res, err := catalog.ListProducts(t.Context(), &catalogv1.ListProductsRequest{})
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Errorf("without a token: %v, %v; want unauthenticated", res, err)
				}
			}
			// A procedure the backend does not have.
			hc, _ := call.client()
			profiles := profilesv1connect.NewProfileServiceClient(connect.NewClient(connecthttp.NewTransport(hc, canned.URL(), call.opts...)))
			res, err := profiles.GetProfile(withToken(t.Context(), token), &profilesv1.GetProfileRequest{})
			if connect.CodeOf(err) != connect.CodeUnimplemented {
				t.Errorf("unknown procedure: %v, %v; want unimplemented", res, err)
			}
			// The demo backend is gone.
			catalog, _ = call.catalog(orphan.URL())
			got, err := catalog.ListProducts(withToken(t.Context(), token), &catalogv1.ListProductsRequest{})
			if connect.CodeOf(err) != connect.CodeUnavailable {
				t.Errorf("demo backend gone: %v, %v; want unavailable", got, err)
			}
		})
	}
	if got := canned.Stats(); got.Answers != 0 {
		t.Errorf("stats %+v: an error was kept", got)
	}
	if got := orphan.Stats(); got.Answers != 0 || got.Forwarded != int64(len(cannedCalls())) {
		t.Errorf("orphan's stats %+v, want nothing kept and one forward per call", got)
	}
}

// TestStandaloneCannedConfiguration checks that a canned world's
// configuration differs from the demo world's only in the backends' URLs,
// which lead to canned backends, and that its controls count them.
func TestStandaloneCannedConfiguration(t *testing.T) {
	t.Parallel()
	s, base := startStandalone(t, demo.StandaloneConfig{Gateways: []string{"http://localhost:18081"}, Canned: true})
	paths, err := s.WriteConfigs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(paths[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	realURLs := map[string]bool{}
	for _, b := range s.World.Backends.All() {
		realURLs[b.URL()] = true
	}
	if len(cfg.Backends) != len(s.World.Config.Backends) {
		t.Fatalf("%d backends, want %d", len(cfg.Backends), len(s.World.Config.Backends))
	}
	var catalogURL string
	for i, got := range cfg.Backends {
		want := s.World.Config.Backends[i]
		if realURLs[got.URL] || !strings.HasPrefix(got.URL, "http://127.0.0.1:") {
			t.Errorf("backend %s at %s, want a canned backend on loopback", got.Name, got.URL)
		}
		if got.Name != want.Name || got.Protocol != want.Protocol || got.Token != want.Token || got.Audience != want.Audience {
			t.Errorf("backend %+v, want the demo world's %+v but for the URL", got, want)
		}
		if got.Name == "catalog" {
			catalogURL = got.URL
		}
	}

	catalog, _ := cannedCalls()[0].catalog(catalogURL)
	if _, err := catalog.ListProducts(withToken(t.Context(), catalogToken(t, s)), &catalogv1.ListProductsRequest{}); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(base + demo.AdminPath + "canned")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var stats map[string]demo.CannedStats
	if err := json.NewDecoder(res.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	want := map[string]demo.CannedStats{
		"profiles": {}, "orders": {}, "loyalty": {},
		"catalog": {Answers: 1, Forwarded: 1},
	}
	if len(stats) != len(want) {
		t.Errorf("canned stats %+v, want %+v", stats, want)
	}
	for name, w := range want {
		if stats[name] != w {
			t.Errorf("canned stats of %s: %+v, want %+v", name, stats[name], w)
		}
	}
}
