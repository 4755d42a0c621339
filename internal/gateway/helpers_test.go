package gateway_test

// Shared harness of the end-to-end login tests: a gateway on its own loopback
// port (on the demo world or on a fake provider the test controls), a clock
// the test moves, browsers with their own cookie jars, and recorders of the
// tokens the provider issues and of every response a browser receives.

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
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-jose/go-jose/v4"

	"github.com/custodian-bff/custodian/clients"
	"github.com/custodian-bff/custodian/demo"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/internal/gateway"
	"github.com/custodian-bff/custodian/server"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

const sessionCookie = "__Host-custodian"

// testClock is real time plus an offset the test moves forward: the demo
// provider keeps real time, the gateway sees the moved clock.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// env is one gateway under test.
type env struct {
	t      testing.TB
	public string // http://localhost:PORT, the origin browsers use
	listen string // http://127.0.0.1:PORT, another site, where the demo issuer lives
	cfg    *config.Config
	clock  *testClock
	world  *demo.World  // nil on a fake provider
	tokens *tokenLog    // tokens the demo provider issued
	plain  *http.Client // no cookies, no redirects: for crafted requests
}

type envConfig struct {
	tokenGate      func(grant string, serve func())
	accessLifetime time.Duration
	codeExpiresIn  int
	configure      []func(*config.Config)
	services       []func(*env) server.Option
}

type envOption func(*envConfig)

// withAccessLifetime sets the demo provider's access token lifetime.
func withAccessLifetime(d time.Duration) envOption {
	return func(c *envConfig) { c.accessLifetime = d }
}

// withCodeExpiresIn makes the demo provider's answers to the
// authorization_code grant claim that the access token expires in this many
// seconds, so that the first token can expire on the gateway's moved clock
// while refreshed ones (with the real lifetime) stay fresh on it.
func withCodeExpiresIn(seconds int) envOption {
	return func(c *envConfig) { c.codeExpiresIn = seconds }
}

// withTokenGate makes every request to the demo provider's token endpoint
// go through gate, which must call serve to answer it: a test can hold one
// grant until another has been answered.
func withTokenGate(gate func(grant string, serve func())) envOption {
	return func(c *envConfig) { c.tokenGate = gate }
}

// withConfig edits the configuration before the gateway is built.
func withConfig(f func(*config.Config)) envOption {
	return func(c *envConfig) { c.configure = append(c.configure, f) }
}

// withProfileService serves acme.profiles.v1.ProfileService on the gateway,
// forwarding GetProfile to the demo profiles backend with the user's token.
func withProfileService() envOption {
	return func(c *envConfig) {
		c.services = append(c.services, func(e *env) server.Option {
			backend, err := clients.New(config.Backend{
				Name:     "profiles",
				URL:      e.world.Backends.Profiles.URL(),
				Protocol: config.ProtocolConnect,
				Token:    config.TokenUser,
				Audience: "acme-profiles",
				Timeout:  30 * time.Second,
			})
			if err != nil {
				e.t.Fatal(err)
			}
			proxy := &profileProxy{client: profilesv1connect.NewProfileServiceClient(backend.HTTPClient(), backend.URL(), backend.ClientOptions()...)}
			return server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
				return profilesv1connect.NewProfileServiceHandler(proxy, o...)
			})
		})
	}
}

// profileProxy is a browser-facing ProfileService that calls the backend
// with the session's access token, which the session interceptor put into
// the context, as an aggregator would.
type profileProxy struct {
	profilesv1connect.UnimplementedProfileServiceHandler
	client profilesv1connect.ProfileServiceClient
}

func (p *profileProxy) GetProfile(ctx context.Context, req *connect.Request[profilesv1.GetProfileRequest]) (*connect.Response[profilesv1.GetProfileResponse], error) {
	// Without a session the backend client could only say "sign-in
	// required"; Require gives the browser the reason.
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	res, err := p.client.GetProfile(ctx, connect.NewRequest(req.Msg))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(res.Msg), nil
}

func listenLoopback(t testing.TB) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, port
}

func newEnv(t testing.TB, port string) *env {
	e := &env{
		t:      t,
		public: "http://localhost:" + port,
		listen: "http://127.0.0.1:" + port,
		clock:  &testClock{},
		tokens: &tokenLog{},
	}
	transport := &http.Transport{DialContext: e.dialer()}
	t.Cleanup(transport.CloseIdleConnections)
	e.plain = &http.Client{
		Transport:     transport,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

// newDemoEnv starts a gateway on a new demo world: browsers use
// http://localhost:PORT, the demo provider lives at http://127.0.0.1:PORT.
func newDemoEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	var c envConfig
	for _, o := range opts {
		o(&c)
	}
	ln, port := listenLoopback(t)
	e := newEnv(t, port)
	var demoOpts []demo.Option
	if c.accessLifetime > 0 {
		demoOpts = append(demoOpts, demo.WithAccessTokenLifetime(c.accessLifetime))
	}
	world, err := demo.Start(context.Background(), e.public, e.listen, demoOpts...)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	e.world = world
	e.tokens.gate = c.tokenGate
	generousRateLimits(world.Config)
	for _, f := range c.configure {
		f(world.Config)
	}
	e.cfg = world.Config
	serverOpts := []server.Option{server.WithHandler(demo.IdPPath, e.tokens.wrap(world.IdP, c.codeExpiresIn))}
	for _, s := range c.services {
		serverOpts = append(serverOpts, s(e))
	}
	e.serve(ln, serverOpts, func() {
		if err := world.Close(context.Background()); err != nil {
			t.Errorf("closing the demo world: %v", err)
		}
	})
	return e
}

// newFakeEnv starts a gateway whose provider is op.
func newFakeEnv(t *testing.T, op *fakeOP, opts ...envOption) *env {
	t.Helper()
	var c envConfig
	for _, o := range opts {
		o(&c)
	}
	ln, port := listenLoopback(t)
	e := newEnv(t, port)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := &config.Config{
		PublicURL: e.public,
		OIDC:      config.OIDC{Issuer: op.issuer, ClientID: op.clientID, ClientSecret: op.secret},
		Session:   config.Session{Keys: [][]byte{key}},
		Backends:  []config.Backend{{Name: "none", URL: "http://127.0.0.1:9", Token: config.TokenNone}},
	}
	cfg.ApplyDefaults()
	generousRateLimits(cfg)
	for _, f := range c.configure {
		f(cfg)
	}
	if err := cfg.Validate(); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	e.cfg = cfg
	e.serve(ln, nil)
	return e
}

// generousRateLimits keeps the rate limiter on but sizes it for a test: every
// browser of a test comes from 127.0.0.1 and some tests send hundreds of
// calls at once. The limits themselves are tested with small buckets in
// ratelimit_test.go and the attack suite.
func generousRateLimits(cfg *config.Config) {
	generous := &config.RateLimit{Rate: 100000, Burst: 100000}
	cfg.RateLimits = config.RateLimits{PerIP: generous, PerSession: generous, Login: generous}
}

func (e *env) serve(ln net.Listener, opts []server.Option, closers ...func()) {
	t := e.t
	gw, err := gateway.New(e.cfg, gateway.WithClock(e.clock.Now), gateway.WithServerOptions(opts...))
	if err != nil {
		ln.Close()
		for _, c := range closers {
			c()
		}
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
		for _, c := range closers {
			c()
		}
	})
}

// dialer connects every host of the test to the gateway's loopback listener
// by its address, so "localhost" never goes through IPv6 or a resolver.
func (e *env) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && host == "localhost" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// browser is one browser: a cookie jar shared by page loads (HTTP/1.1, no
// redirects followed, every hop inspected) and RPCs over Connect, gRPC-Web
// and gRPC (h2c).
type browser struct {
	t    testing.TB
	e    *env
	jar  *cookiejar.Jar
	web  *http.Client
	h2c  *http.Client
	seen *responseLog // when set, every response from the gateway
}

func (e *env) browser() *browser { return e.browserRecording(nil) }

func (e *env) browserRecording(seen *responseLog) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	wrap := func(rt http.RoundTripper) http.RoundTripper {
		if seen == nil {
			return rt
		}
		return &recordingTransport{next: rt, log: seen}
	}
	h1 := &http.Transport{DialContext: e.dialer(), MaxIdleConnsPerHost: 16}
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	h2t := &http.Transport{DialContext: e.dialer(), Protocols: h2}
	e.t.Cleanup(h1.CloseIdleConnections)
	e.t.Cleanup(h2t.CloseIdleConnections)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{
		t:    e.t,
		e:    e,
		jar:  jar,
		web:  &http.Client{Jar: jar, Transport: wrap(h1), CheckRedirect: noRedirect, Timeout: 30 * time.Second},
		h2c:  &http.Client{Jar: jar, Transport: wrap(h2t), CheckRedirect: noRedirect, Timeout: 30 * time.Second},
		seen: seen,
	}
}

// hop is one response, its body read.
type hop struct {
	url    string
	status int
	header http.Header
	body   string
}

func (h hop) location(t testing.TB) *url.URL {
	t.Helper()
	if h.status < 300 || h.status > 399 {
		t.Fatalf("%s: status %d, want a redirect; body %.300q", h.url, h.status, h.body)
	}
	u, err := url.Parse(h.header.Get("Location"))
	if err != nil {
		t.Fatalf("%s: Location: %v", h.url, err)
	}
	return u
}

// setCookies returns the response's cookies, attributes included.
func (h hop) setCookies(t testing.TB) []*http.Cookie {
	t.Helper()
	var cs []*http.Cookie
	for _, line := range h.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("%s: Set-Cookie %q: %v", h.url, line, err)
		}
		cs = append(cs, c)
	}
	return cs
}

var continueRE = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]*)">`)

// continueURL returns where the page's meta refresh goes, "" without one.
func (h hop) continueURL() string {
	m := continueRE.FindStringSubmatch(h.body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func (b *browser) do(req *http.Request) hop {
	b.t.Helper()
	res, err := b.web.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return hop{url: req.URL.String(), status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(rawURL string) hop {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) postForm(rawURL string, form url.Values) hop {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// startLogin opens /auth/login and returns the provider's authorization URL.
func (b *browser) startLogin(returnTo string) (*url.URL, hop) {
	b.t.Helper()
	u := b.e.public + "/auth/login"
	if returnTo != "" {
		u += "?return_to=" + url.QueryEscape(returnTo)
	}
	h := b.get(u)
	if h.status != http.StatusSeeOther {
		b.t.Fatalf("GET /auth/login: status %d, want 303; body %.300q", h.status, h.body)
	}
	return h.location(b.t), h
}

// signIn goes through the provider at authURL as user and returns where the
// provider sends the browser back: the callback with code and state. The
// demo provider shows a form that posts to the same URL; the fake provider
// redirects at once.
func (b *browser) signIn(authURL, user string) *url.URL {
	b.t.Helper()
	h := b.get(authURL)
	if h.status == http.StatusOK {
		h = b.postForm(authURL, url.Values{"username": {user}, "password": {"demo"}})
	}
	return h.location(b.t)
}

// cancelSignIn presses the provider's Cancel button.
func (b *browser) cancelSignIn(authURL string) *url.URL {
	b.t.Helper()
	if h := b.get(authURL); h.status != http.StatusOK {
		b.t.Fatalf("provider form: status %d", h.status)
	}
	return b.postForm(authURL, url.Values{"cancel": {"1"}}).location(b.t)
}

// login signs user in through the login pages and returns the callback page.
func (b *browser) login(user, returnTo string) hop {
	b.t.Helper()
	authURL, _ := b.startLogin(returnTo)
	callback := b.signIn(authURL.String(), user)
	h := b.get(callback.String())
	if h.status != http.StatusOK {
		b.t.Fatalf("callback: status %d, want 200; body %.300q", h.status, h.body)
	}
	return h
}

// cookie returns the value of the browser's cookie name for the gateway.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.public + "/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// cookieHeader returns the Cookie header the browser would send to the
// gateway now: a snapshot of its jar.
func (b *browser) cookieHeader() string {
	u, _ := url.Parse(b.e.public + "/")
	var parts []string
	for _, c := range b.jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// setCookie stores a cookie for the gateway in the browser's jar, as a
// script on a sibling site or an attacker with the device could.
func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.public + "/")
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true}})
}

// rpc is how a browser's RPCs travel.
type rpc struct {
	name string
	opts []connect.ClientOption
	h2c  bool
}

func rpcProtocols() []rpc {
	return []rpc{
		{name: "connect json", opts: []connect.ClientOption{connect.WithProtoJSON()}},
		{name: "connect binary"},
		{name: "grpc-web", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}, h2c: true},
	}
}

func (b *browser) client(p rpc) *http.Client {
	if p.h2c {
		return b.h2c
	}
	return b.web
}

// options returns p's client options. A recording browser accepts no
// compressed messages, so that its record holds them in the clear.
func (b *browser) options(p rpc) []connect.ClientOption {
	if b.seen == nil {
		return p.opts
	}
	return append([]connect.ClientOption{connect.WithAcceptCompression("gzip", nil, nil)}, p.opts...)
}

func (b *browser) sessions(p rpc) custodianv1connect.SessionServiceClient {
	return custodianv1connect.NewSessionServiceClient(b.client(p), b.e.public, b.options(p)...)
}

func (b *browser) auth(p rpc) custodianv1connect.AuthServiceClient {
	return custodianv1connect.NewAuthServiceClient(b.client(p), b.e.public, b.options(p)...)
}

func (b *browser) profiles(p rpc) profilesv1connect.ProfileServiceClient {
	return profilesv1connect.NewProfileServiceClient(b.client(p), b.e.public, b.options(p)...)
}

// getSession calls GetSession over Connect.
func (b *browser) getSession() (*custodianv1.GetSessionResponse, error) {
	res, err := b.sessions(rpc{name: "connect"}).GetSession(context.Background(), connect.NewRequest(&custodianv1.GetSessionRequest{}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// mustSession returns the browser's session, failing the test without one.
func (b *browser) mustSession(subject string) *custodianv1.GetSessionResponse {
	b.t.Helper()
	s, err := b.getSession()
	if err != nil {
		b.t.Fatalf("GetSession: %v", err)
	}
	if got := s.GetUser().GetSubject(); got != subject {
		b.t.Fatalf("GetSession: subject %q, want %q", got, subject)
	}
	return s
}

// wantNoSession asserts GetSession is refused for reason.
func (b *browser) wantNoSession(reason session.Reason) {
	b.t.Helper()
	_, err := b.getSession()
	wantReason(b.t, "GetSession", err, reason)
}

// sessionWith calls GetSession with exactly this Cookie header.
func (e *env) sessionWith(cookieHeader string) (*custodianv1.GetSessionResponse, error) {
	client := custodianv1connect.NewSessionServiceClient(e.plain, e.public)
	req := connect.NewRequest(&custodianv1.GetSessionRequest{})
	if cookieHeader != "" {
		req.Header().Set("Cookie", cookieHeader)
	}
	res, err := client.GetSession(context.Background(), req)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func wantReason(t testing.TB, what string, err error, reason session.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want unauthenticated with reason %v", what, reason)
	}
	if code := connect.CodeOf(err); code != connect.CodeUnauthenticated {
		t.Fatalf("%s: %v, want code unauthenticated", what, err)
	}
	if got := session.ReasonOf(err); got != reason {
		t.Fatalf("%s: reason %v, want %v", what, got, reason)
	}
}

// tokenLog records every token the provider's token endpoint issues.
type tokenLog struct {
	gate   func(grant string, serve func()) // nil: answer at once
	mu     sync.Mutex
	tokens []issuedToken
}

type issuedToken struct {
	grant string // grant_type of the request
	kind  string // access_token, refresh_token or id_token
	value string
}

// wrap returns h recording the tokens of its /token answers. With
// codeExpiresIn > 0, answers to the authorization_code grant claim that
// expires_in instead of the real one.
func (l *tokenLog) wrap(h http.Handler, codeExpiresIn int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") {
			h.ServeHTTP(w, r)
			return
		}
		reqBody, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		form, _ := url.ParseQuery(string(reqBody))
		grant := form.Get("grant_type")
		rec := httptest.NewRecorder()
		if l.gate != nil {
			l.gate(grant, func() { h.ServeHTTP(rec, r) })
		} else {
			h.ServeHTTP(rec, r)
		}
		body := rec.Body.Bytes()
		var fields map[string]any
		if json.Unmarshal(body, &fields) == nil {
			l.mu.Lock()
			for _, kind := range []string{"access_token", "refresh_token", "id_token", "issued_token"} {
				if v, ok := fields[kind].(string); ok && v != "" {
					l.tokens = append(l.tokens, issuedToken{grant: grant, kind: kind, value: v})
				}
			}
			l.mu.Unlock()
			if codeExpiresIn > 0 && grant == "authorization_code" && rec.Code == http.StatusOK {
				fields["expires_in"] = codeExpiresIn
				body, _ = json.Marshal(fields)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

func (l *tokenLog) all() []issuedToken {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]issuedToken(nil), l.tokens...)
}

// last returns the latest token of kind from grant ("" for any grant).
func (l *tokenLog) last(grant, kind string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.tokens) - 1; i >= 0; i-- {
		if tk := l.tokens[i]; tk.kind == kind && (grant == "" || tk.grant == grant) {
			return tk.value
		}
	}
	return ""
}

// responseLog records responses a browser received from the gateway.
type responseLog struct {
	mu      sync.Mutex
	entries []recorded
}

type recorded struct {
	what string // method and URL
	text string // status line, headers, body and trailers
}

func (l *responseLog) all() []recorded {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]recorded(nil), l.entries...)
}

// recordingTransport records every response that does not come from the
// demo provider's routes.
type recordingTransport struct {
	next http.RoundTripper
	log  *responseLog
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := rt.next.RoundTrip(req)
	if err != nil || strings.HasPrefix(req.URL.Path, demo.IdPPath) {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Content-Encoding", "Connect-Content-Encoding", "Grpc-Encoding"} {
		if v := res.Header.Get(h); v != "" && v != "identity" {
			return nil, fmt.Errorf("recording %s: the body is compressed (%s: %s) and could not be scanned", req.URL, h, v)
		}
	}
	var text strings.Builder
	text.WriteString(res.Status + "\n")
	_ = res.Header.Write(&text)
	text.Write(body)
	text.WriteString("\n")
	_ = res.Trailer.Write(&text)
	rt.log.mu.Lock()
	rt.log.entries = append(rt.log.entries, recorded{what: req.Method + " " + req.URL.String(), text: text.String()})
	rt.log.mu.Unlock()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

// fakeOP is an OpenID Connect provider the test controls completely: its
// authorization endpoint signs in at once (as login_hint, default alice) and
// its ID tokens can be altered before they are signed. It signs with ES256.
type fakeOP struct {
	issuer   string
	clientID string
	secret   string
	key      *ecdsa.PrivateKey
	kid      string

	mu     sync.Mutex
	codes  map[string]fakeGrant
	sids   map[string]string // subject → sid of its latest sign-in
	tamper func(claims map[string]any) *ecdsa.PrivateKey
}

type fakeGrant struct {
	subject, nonce, challenge, redirectURI, sid string
}

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	op := &fakeOP{
		clientID: "custodian-test",
		secret:   rand.Text(),
		key:      newKey(),
		kid:      "k1",
		codes:    map[string]fakeGrant{},
		sids:     map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	op.issuer = srv.URL
	return op
}

// newKey returns a new P-256 key; it panics on failure, which crypto/rand
// never causes.
func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// signJWT signs claims as a compact JWT with typ. It panics on failure,
// which valid keys and JSON-able claims never cause, so that provider
// handlers and subtests alike may call it.
func signJWT(key *ecdsa.PrivateKey, kid, typ string, claims map[string]any) string {
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

// sign signs claims with the provider's own key.
func (op *fakeOP) sign(typ string, claims map[string]any) string {
	return signJWT(op.key, op.kid, typ, claims)
}

// setTamper makes the provider pass every ID token's claims to f before
// signing; f returns the key to sign with, nil for the provider's own.
func (op *fakeOP) setTamper(f func(claims map[string]any) *ecdsa.PrivateKey) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.tamper = f
}

// sid returns the provider session id of subject's latest sign-in.
func (op *fakeOP) sid(subject string) string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.sids[subject]
}

func (op *fakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSONResponse(w, http.StatusOK, map[string]any{
		"issuer":                                op.issuer,
		"authorization_endpoint":                op.issuer + "/authorize",
		"token_endpoint":                        op.issuer + "/token",
		"jwks_uri":                              op.issuer + "/jwks",
		"revocation_endpoint":                   op.issuer + "/revoke",
		"end_session_endpoint":                  op.issuer + "/end-session",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	})
}

func (op *fakeOP) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSONResponse(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &op.key.PublicKey, KeyID: op.kid, Algorithm: string(jose.ES256), Use: "sig",
	}}})
}

func (op *fakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != op.clientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
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

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if id, _ = url.QueryUnescape(id); !ok || id != op.clientID {
		writeJSONResponse(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if secret, _ = url.QueryUnescape(secret); secret != op.secret {
		writeJSONResponse(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "authorization_code" {
		writeJSONResponse(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	op.mu.Lock()
	g, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	tamper := op.tamper
	op.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || g.redirectURI != r.PostForm.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeJSONResponse(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss":   op.issuer,
		"sub":   g.subject,
		"aud":   op.clientID,
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
	writeJSONResponse(w, http.StatusOK, map[string]any{
		"access_token":  "at-" + rand.Text(),
		"token_type":    "Bearer",
		"expires_in":    300,
		"refresh_token": "rt-" + rand.Text(),
		"id_token":      signJWT(key, op.kid, "JWT", claims),
	})
}

// logoutClaims returns the claims of a valid logout token for subject.
func (op *fakeOP) logoutClaims(subject string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":    op.issuer,
		"aud":    op.clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    rand.Text(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		"sub":    subject,
	}
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// postBackchannel POSTs a logout token to the gateway as a provider would.
func (e *env) postBackchannel(token string) int {
	e.t.Helper()
	res, err := e.plain.PostForm(e.public+"/auth/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// connectError returns err as a *connect.Error, nil if it is none.
func connectError(err error) *connect.Error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}
