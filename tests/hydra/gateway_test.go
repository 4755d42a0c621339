package hydra

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"

	"github.com/custodian-bff/custodian"
	"github.com/custodian-bff/custodian/aggregators/fanout"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// clock is real time plus an offset the test moves forward: Hydra keeps
// real time, the gateway sees the moved clock.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// env is one gateway, registered at Hydra as a client of its own, with a
// backend that takes the user's token.
type env struct {
	h       *hydra
	Client  client
	Public  string // http://localhost:PORT, the gateway's origin
	Clock   *clock
	Backend *profileBackend
	logs    *syncBuffer
}

// newEnv starts a gateway on Hydra, configured in code as a deployment
// would be (configure edits the configuration first), until t ends. Its
// one browser-facing service is acme.profiles.v1.ProfileService, which
// calls a backend with the user's access token; the backend checks every
// token at Hydra's introspection endpoint, as a resource server does.
func newEnv(t *testing.T, h *hydra, configure ...func(*config.Config)) *env {
	t.Helper()
	return newEnvAuth(t, h, "client_secret_basic", configure...)
}

// newEnvAuth is newEnv with the client registered for another
// token_endpoint_auth_method.
func newEnvAuth(t *testing.T, h *hydra, authMethod string, configure ...func(*config.Config)) *env {
	t.Helper()
	ln, port := listenLoopback(t)
	e := &env{
		h:      h,
		Public: "http://localhost:" + port,
		Clock:  &clock{},
		logs:   &syncBuffer{},
	}
	e.Client = h.registerGatewayWith(t, e.Public, authMethod)
	e.Backend = startProfileBackend(t, h, e.Client.ID)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := &config.Config{
		PublicURL: e.Public,
		OIDC: config.OIDC{
			Issuer:       h.Issuer,
			ClientID:     e.Client.ID,
			ClientSecret: e.Client.Secret,
		},
		Session: config.Session{Keys: [][]byte{key}},
		Backends: []config.Backend{{
			Name:    "profiles",
			URL:     e.Backend.URL,
			Token:   config.TokenUser,
			Timeout: 10 * time.Second,
		}},
	}
	cfg.ApplyDefaults()
	// Every browser of the suite comes from 127.0.0.1.
	generous := &config.RateLimit{Rate: 100000, Burst: 100000}
	cfg.RateLimits = config.RateLimits{PerIP: generous, PerSession: generous, Login: generous}
	for _, f := range configure {
		f(cfg)
	}

	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	gw, err := custodian.New(cfg, custodian.WithClock(e.Clock.Now), custodian.WithLogger(logger))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	backend, err := custodian.Client(gw, "profiles", profilesv1connect.NewProfileServiceClient)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if err := gw.Mount(func(s *connect.Server) {
		profilesv1connect.RegisterProfileServiceHandler(s, &profileService{backend: backend, logger: gw.Logger()})
	}); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", e.logs.String())
		}
	})
	return e
}

// Logs returns what the gateway logged so far.
func (e *env) Logs() string { return e.logs.String() }

// profileService is the browser-facing ProfileService: it calls the backend
// with the session's token and answers with public fields only.
type profileService struct {
	profilesv1connect.UnimplementedProfileServiceHandler
	backend profilesv1connect.ProfileServiceClient
	logger  *slog.Logger
}

func (p *profileService) GetProfile(ctx context.Context, _ *profilesv1.GetProfileRequest) (*profilesv1.GetProfileResponse, error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	res, err := p.backend.GetProfile(ctx, &profilesv1.GetProfileRequest{})
	if err != nil {
		return nil, fanout.BackendError(ctx, p.logger, "profiles", err)
	}
	return &profilesv1.GetProfileResponse{Profile: &profilesv1.Profile{
		Subject:     res.GetProfile().GetSubject(),
		DisplayName: res.GetProfile().GetDisplayName(),
	}}, nil
}

// profileBackend is a resource server: it takes a bearer token only when
// Hydra's introspection says it is active and was issued to the gateway.
type profileBackend struct {
	profilesv1connect.UnimplementedProfileServiceHandler
	URL string

	h        *hydra
	clientID string

	mu     sync.Mutex
	tokens []string // every bearer token received, in order
}

func startProfileBackend(t *testing.T, h *hydra, clientID string) *profileBackend {
	t.Helper()
	b := &profileBackend{h: h, clientID: clientID}
	srv := connect.NewServer()
	profilesv1connect.RegisterProfileServiceHandler(srv, b)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv)
	ln, port := listenLoopback(t)
	// The gateway speaks HTTP/2 without TLS (h2c) to Connect backends.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: mux, Protocols: protocols, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = hs.Close()
		<-done
	})
	b.URL = "http://127.0.0.1:" + port
	return b
}

func (b *profileBackend) GetProfile(ctx context.Context, _ *profilesv1.GetProfileRequest) (*profilesv1.GetProfileResponse, error) {
	info, _ := connect.CallInfoForServerContext(ctx)
	token, ok := strings.CutPrefix(info.RequestHeader().Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, connect.NewError(connect.CodeUnauthenticated, "no bearer token")
	}
	b.mu.Lock()
	b.tokens = append(b.tokens, token)
	b.mu.Unlock()
	in, err := b.h.introspect(ctx, token)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, "introspection failed").WithCause(err)
	}
	if !in.Active || in.ClientID != b.clientID || in.TokenUse != "access_token" {
		return nil, connect.NewError(connect.CodeUnauthenticated, "token refused")
	}
	return &profilesv1.GetProfileResponse{Profile: &profilesv1.Profile{
		Subject:     in.Subject,
		DisplayName: "profile of " + in.Subject,
		StaffNotes:  "internal: never for browsers",
	}}, nil
}

// Tokens returns the bearer tokens the backend received, in order.
func (b *profileBackend) Tokens() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.tokens...)
}

// hop is one response a browser received, its body read.
type hop struct {
	Method string
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

// Location returns where hop redirects to, resolved against its URL.
func (h hop) Location(t testing.TB) *url.URL {
	t.Helper()
	if h.Status < 300 || h.Status > 399 {
		t.Fatalf("%s %s: status %d, want a redirect; body %.400q", h.Method, h.URL, h.Status, h.Body)
	}
	u, err := h.URL.Parse(h.Header.Get("Location"))
	if err != nil {
		t.Fatalf("%s: Location: %v", h.URL, err)
	}
	return u
}

// browser is one browser: a cookie jar for the gateway (localhost), Hydra
// and the login app (127.0.0.1), redirects followed one hop at a time.
type browser struct {
	e    *env
	jar  *cookiejar.Jar
	http *http.Client
}

func (e *env) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		// localhost is the gateway's; never try [::1] or a resolver.
		if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{e: e, jar: jar, http: &http.Client{
		Jar:           jar,
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends req and returns the response.
func (b *browser) do(t testing.TB, req *http.Request) hop {
	t.Helper()
	res, err := b.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return hop{Method: req.Method, URL: req.URL, Status: res.StatusCode, Header: res.Header, Body: string(body)}
}

func (b *browser) get(t testing.TB, u string) hop {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// follow follows redirects from first until a response that is not one,
// and returns every hop, first included.
func (b *browser) follow(t testing.TB, first hop) []hop {
	t.Helper()
	hops := []hop{first}
	for h := first; h.Status >= 300 && h.Status <= 399; {
		if len(hops) > 20 {
			t.Fatalf("more than 20 redirects: %v", urls(hops))
		}
		h = b.get(t, h.Location(t).String())
		hops = append(hops, h)
	}
	return hops
}

// urls lists the hops' URLs, for failure messages.
func urls(hops []hop) []string {
	var out []string
	for _, h := range hops {
		out = append(out, h.Method+" "+h.URL.String()+" -> "+http.StatusText(h.Status))
	}
	return out
}

// login signs in through the gateway's login page, Hydra and the login
// app, and returns every hop: the last is the gateway's callback page.
func (b *browser) login(t testing.TB) []hop {
	t.Helper()
	hops := b.follow(t, b.get(t, b.e.Public+"/auth/login"))
	last := hops[len(hops)-1]
	if last.URL.Host != strings.TrimPrefix(b.e.Public, "http://") || last.URL.Path != "/auth/callback" || last.Status != http.StatusOK {
		t.Fatalf("login ended at %s %d, want the gateway's callback page with 200; hops:\n%s\nbody %.400q",
			last.URL, last.Status, strings.Join(urls(hops), "\n"), last.Body)
	}
	return hops
}

// logout posts to the gateway's logout route as its own page's script
// would, and returns the answer (not followed).
func (b *browser) logout(t testing.TB) hop {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.Public+"/auth/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Origin", b.e.Public)
	return b.do(t, req)
}

// cookie returns the browser's cookie name for the gateway, "" without one.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.Public + "/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) rpc() *connect.Client {
	return connect.NewClient(connecthttp.NewTransport(b.http, b.e.Public))
}

// session calls custodian.v1.SessionService.GetSession. A signed-out answer
// comes back as the unauthenticated error with a SessionError detail that
// other methods give, so the suite checks every end of a session alike.
func (b *browser) session() (*custodianv1.GetSessionResponse, error) {
	res, err := custodianv1connect.NewSessionServiceClient(b.rpc()).GetSession(context.Background(), &custodianv1.GetSessionRequest{})
	if err != nil || res.GetSignedIn() {
		return res, err
	}
	if res.GetUser() != nil || res.GetLoginUrl() == "" {
		return nil, fmt.Errorf("malformed signed-out GetSession answer: %v", res)
	}
	return nil, session.Unauthenticated(res.GetEndReason(), res.GetLoginUrl()).ConnectError()
}

// profile calls the gateway's ProfileService, which needs the user's
// access token.
func (b *browser) profile() (*profilesv1.Profile, error) {
	res, err := profilesv1connect.NewProfileServiceClient(b.rpc()).GetProfile(context.Background(), &profilesv1.GetProfileRequest{})
	return res.GetProfile(), err
}

// mustProfile calls profile and fails the test unless the answer is
// alice's, with no internal field.
func (b *browser) mustProfile(t testing.TB) {
	t.Helper()
	p, err := b.profile()
	if err != nil {
		t.Fatalf("GetProfile: %v", err)
	}
	if p.GetSubject() != userSubject || p.GetStaffNotes() != "" {
		t.Fatalf("GetProfile: %v, want alice's public profile", p)
	}
}

// wantReason fails the test unless err is the gateway's session verdict:
// code unauthenticated with a custodian.v1.SessionError detail of reason.
func wantReason(t testing.TB, what string, err error, reason session.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want unauthenticated (%v)", what, reason)
	}
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok || ce.Code() != connect.CodeUnauthenticated {
		t.Fatalf("%s: %v, want code unauthenticated (%v)", what, err, reason)
	}
	for _, d := range ce.Details() {
		if msg, derr := connectproto.UnmarshalErrorDetail(d); derr == nil {
			if se, ok := msg.(*custodianv1.SessionError); ok {
				if se.GetReason() != reason {
					t.Fatalf("%s: reason %v, want %v", what, se.GetReason(), reason)
				}
				return
			}
		}
	}
	t.Fatalf("%s: %v has no SessionError detail", what, err)
}
