// Package gatewaytest is the shared harness of the gateway's end-to-end
// tests: a whole gateway, assembled with the public API ([custodian.New],
// [demo.MountStore]), serving on its own loopback port; the demo world or a
// fake OpenID provider the test controls; a clock the test moves; browsers
// with their own cookie jars that speak Connect, gRPC-Web and gRPC; fakes
// of the Acme backends that record what they receive and answer with
// canaries; and recorders of the tokens the provider issues and of every
// response a browser receives.
//
// The tests of several packages (the root package, server/login,
// server/session, aggregators/storefront) import it, so it lives in
// non-test files. Every server it starts stops when the test ends.
package gatewaytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian"
	"github.com/custodian-bff/custodian/aggregators/storefront"
	"github.com/custodian-bff/custodian/demo"
	"github.com/custodian-bff/custodian/server/config"
)

// SessionCookie is the name of the gateway's session cookie with the
// default configuration.
const SessionCookie = "__Host-custodian"

// Clock is real time plus an offset the test moves forward: the demo
// provider keeps real time, the gateway sees the moved clock. It is safe
// for concurrent use.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the moved time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Env is one gateway under test, serving on 127.0.0.1 until the test ends.
type Env struct {
	// Public is http://localhost:PORT, the origin browsers use.
	Public string
	// Listen is http://127.0.0.1:PORT: the same listener as another site,
	// where the demo provider's issuer lives.
	Listen string
	// Config is the gateway's configuration.
	Config *config.Config
	// Clock is the gateway's clock.
	Clock *Clock
	// World is the demo world; nil on a fake provider.
	World *demo.World
	// Tokens records the tokens the demo provider issued.
	Tokens *TokenLog
	// Plain is a client without cookies that follows no redirects, for
	// crafted requests.
	Plain *http.Client
	// Gateway is the gateway under test.
	Gateway *custodian.Gateway

	logs *syncBuffer
}

type envConfig struct {
	tokenGate      func(grant string, serve func())
	accessLifetime time.Duration
	codeExpiresIn  int
	configure      []func(*config.Config)
	options        []func(*Env) custodian.Option
	mounts         []func(*Env, *custodian.Gateway) error
	store          []storefront.Option
}

// Option configures an Env.
type Option func(*envConfig)

// WithAccessLifetime sets the demo provider's access token lifetime.
// Default: the demo's.
func WithAccessLifetime(d time.Duration) Option {
	return func(c *envConfig) { c.accessLifetime = d }
}

// WithCodeExpiresIn makes the demo provider's answers to the
// authorization_code grant claim that the access token expires in this many
// seconds, so that the first token can expire on the gateway's moved clock
// while refreshed ones (with the real lifetime) stay fresh on it.
func WithCodeExpiresIn(seconds int) Option {
	return func(c *envConfig) { c.codeExpiresIn = seconds }
}

// WithTokenGate makes every request to the demo provider's token endpoint
// go through gate, which must call serve to answer it: a test can hold one
// grant until another has been answered.
func WithTokenGate(gate func(grant string, serve func())) Option {
	return func(c *envConfig) { c.tokenGate = gate }
}

// WithConfig edits the configuration before the gateway is built. May be
// given several times; they run in order.
func WithConfig(f func(*config.Config)) Option {
	return func(c *envConfig) { c.configure = append(c.configure, f) }
}

// WithGatewayOption passes opt to custodian.New.
func WithGatewayOption(opt custodian.Option) Option {
	return func(c *envConfig) {
		c.options = append(c.options, func(*Env) custodian.Option { return opt })
	}
}

// WithHandler serves a plain HTTP route on the gateway, as
// custodian.WithHandler does.
func WithHandler(pattern string, handler http.Handler) Option {
	return WithGatewayOption(custodian.WithHandler(pattern, handler))
}

// WithInterceptors adds interceptors to the gateway's browser-facing
// services, inside its own, as custodian.WithInterceptors does.
func WithInterceptors(interceptors ...connect.ServerInterceptor) Option {
	return WithGatewayOption(custodian.WithInterceptors(interceptors...))
}

// WithStoreOptions passes opts to demo.MountStore, after its own.
func WithStoreOptions(opts ...storefront.Option) Option {
	return func(c *envConfig) { c.store = append(c.store, opts...) }
}

// WithMount mounts services on the gateway once it is built, after the
// Acme store.
func WithMount(mount func(*Env, *custodian.Gateway) error) Option {
	return func(c *envConfig) { c.mounts = append(c.mounts, mount) }
}

// ListenLoopback listens on an ephemeral port of 127.0.0.1 and returns the
// listener and its port.
func ListenLoopback(t testing.TB) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return ln, port
}

func newEnv(t testing.TB, port string) *Env {
	e := &Env{
		Public: "http://localhost:" + port,
		Listen: "http://127.0.0.1:" + port,
		Clock:  &Clock{},
		Tokens: &TokenLog{},
		logs:   &syncBuffer{},
	}
	transport := &http.Transport{DialContext: e.Dialer()}
	t.Cleanup(transport.CloseIdleConnections)
	e.Plain = &http.Client{
		Transport:     transport,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

// NewDemoEnv starts a gateway on a new demo world, with the Acme store
// mounted: browsers use http://localhost:PORT, the demo provider lives at
// http://127.0.0.1:PORT. The rate limits are generous (see
// [GenerousRateLimits]) unless an option changes them.
func NewDemoEnv(t testing.TB, opts ...Option) *Env {
	t.Helper()
	var c envConfig
	for _, o := range opts {
		o(&c)
	}
	ln, port := ListenLoopback(t)
	e := newEnv(t, port)
	var demoOpts []demo.Option
	if c.accessLifetime > 0 {
		demoOpts = append(demoOpts, demo.WithAccessTokenLifetime(c.accessLifetime))
	}
	world, err := demo.Start(context.Background(), e.Public, e.Listen, demoOpts...)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	e.World = world
	e.Tokens.gate = c.tokenGate
	GenerousRateLimits(world.Config)
	for _, f := range c.configure {
		f(world.Config)
	}
	e.Config = world.Config
	gwOpts := []custodian.Option{custodian.WithHandler(demo.IdPPath, e.Tokens.wrap(world.IdP, c.codeExpiresIn))}
	e.serve(t, ln, &c, gwOpts, func() {
		if err := world.Close(context.Background()); err != nil {
			t.Errorf("closing the demo world: %v", err)
		}
	})
	return e
}

// NewFakeEnv starts a gateway whose provider is op, with one backend that
// is never called.
func NewFakeEnv(t testing.TB, op *FakeOP, opts ...Option) *Env {
	t.Helper()
	var c envConfig
	for _, o := range opts {
		o(&c)
	}
	ln, port := ListenLoopback(t)
	e := newEnv(t, port)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := &config.Config{
		PublicURL: e.Public,
		OIDC:      config.OIDC{Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.secret},
		Session:   config.Session{Keys: [][]byte{key}},
		Backends:  []config.Backend{{Name: "none", URL: "http://127.0.0.1:9", Token: config.TokenNone}},
	}
	cfg.ApplyDefaults()
	GenerousRateLimits(cfg)
	for _, f := range c.configure {
		f(cfg)
	}
	e.Config = cfg
	e.serve(t, ln, &c, nil)
	return e
}

// GenerousRateLimits keeps the rate limiter on but sizes it for a test:
// every browser of a test comes from 127.0.0.1 and some tests send
// hundreds of calls at once. The limits themselves are tested with small
// buckets by the rate-limit and attack tests.
func GenerousRateLimits(cfg *config.Config) {
	generous := &config.RateLimit{Rate: 100000, Burst: 100000}
	cfg.RateLimits = config.RateLimits{PerIP: generous, PerSession: generous, Login: generous}
}

// serve builds the gateway with the public API, mounts the Acme store and
// the test's services, and serves it on ln until the test ends; closers
// run after the gateway has stopped.
func (e *Env) serve(t testing.TB, ln net.Listener, c *envConfig, gwOpts []custodian.Option, closers ...func()) {
	t.Helper()
	fail := func(err error) {
		t.Helper()
		ln.Close()
		for _, c := range closers {
			c()
		}
		t.Fatal(err)
	}
	// The log is kept for a failed test to show; benchmarks log nothing,
	// so that they measure the gateway.
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	if _, ok := t.(*testing.B); ok {
		logger = slog.New(slog.DiscardHandler)
	}
	gwOpts = append(gwOpts, custodian.WithClock(e.Clock.Now), custodian.WithLogger(logger))
	for _, o := range c.options {
		gwOpts = append(gwOpts, o(e))
	}
	gw, err := custodian.New(e.Config, gwOpts...)
	if err != nil {
		fail(err)
		return
	}
	e.Gateway = gw
	if err := demo.MountStore(gw, c.store...); err != nil {
		fail(err)
		return
	}
	for _, m := range c.mounts {
		if err := m(e, gw); err != nil {
			fail(err)
			return
		}
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
		if t.Failed() {
			t.Logf("gateway log (last %d bytes):\n%s", maxLogDump, e.logs.tail(maxLogDump))
		}
	})
}

// maxLogDump bounds the gateway log a failed test prints.
const maxLogDump = 16 << 10

// Logs returns what the gateway logged so far, at info level and up
// (nothing in a benchmark).
func (e *Env) Logs() string { return e.logs.String() }

// Dialer returns a dialer that connects every host of the test to its
// loopback address, so that "localhost" never goes through IPv6 or a
// resolver.
func (e *Env) Dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && host == "localhost" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
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

// tail returns the last n bytes written.
func (b *syncBuffer) tail(n int) string {
	s := b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
