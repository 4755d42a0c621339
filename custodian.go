// Package custodian is a token-handler gateway (the Backend-for-Frontend
// pattern) on Connect RPC, as a library. Browsers call the gateway's Connect
// services with an opaque session cookie; the gateway runs the OpenID
// Connect login, holds the tokens, and calls backends with them.
//
// A gateway for a team's own schema fits in a short main:
//
//	gw, err := custodian.New(cfg, custodian.WithLogger(logger))
//	tickets, err := custodian.Client(gw, "tickets", ticketsv1connect.NewTicketServiceClient)
//	err = gw.Mount(func(s *connect.Server) {
//		webv1connect.RegisterTicketServiceHandler(s, &ticketService{backend: tickets})
//	})
//	err = gw.Serve(ctx, ln)
//
// Every mounted service sits behind the gateway's defences (CSRF guard,
// session, rate limits, edge error sanitizer, codecs and size limits) and is
// listed by reflection and the health service.
package custodian

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/custodian-bff/custodian/aggregators/pagetoken"
	"github.com/custodian-bff/custodian/clients"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/internal/tracecontext"
	"github.com/custodian-bff/custodian/server"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/keyring"
	"github.com/custodian-bff/custodian/server/login"
	"github.com/custodian-bff/custodian/server/observe"
	"github.com/custodian-bff/custodian/server/security"
	"github.com/custodian-bff/custodian/server/session"
)

// providerTimeout bounds each call to the identity provider.
const providerTimeout = 10 * time.Second

// Gateway is an assembled gateway: sessions, login, backend clients and the
// listener. Mount services and get backend clients before serving.
type Gateway struct {
	logger        *slog.Logger
	backendClient *http.Client
	idpClient     *http.Client
	closeStore    func() error // closes the store's client, once Serve returns
	srv           *server.Server
	sessions      *session.Manager
	backends      map[string]*clients.Backend
	pageTokens    *pagetoken.Sealer
	telemetry     *telemetry
}

// New returns the gateway cfg describes. cfg must be valid: [config.Load]
// returns one; a Config built in code needs ApplyDefaults first.
func New(cfg *config.Config, opts ...Option) (_ *Gateway, err error) {
	if cfg == nil {
		return nil, errors.New("custodian: no configuration")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("custodian: %w", err)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	logger := slog.New(requestid.LogHandler(o.logger.Handler()))
	tel, err := newTelemetry(cfg, &o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tel.close(context.Background())
		}
	}()
	publicURL := strings.TrimRight(cfg.PublicURL, "/")

	keys, err := keyring.New(cfg.Session.Keys)
	if err != nil {
		return nil, fmt.Errorf("custodian: session keys: %w", err)
	}
	pageTokens, err := pagetoken.New(cfg.Session.Keys)
	if err != nil {
		return nil, fmt.Errorf("custodian: session keys: %w", err)
	}
	store, closeStore := o.store, func() error { return nil }
	if store == nil {
		if store, closeStore, err = newStore(cfg, o.now, tel.meters); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = closeStore()
			}
		}()
	}
	var userAudiences []string
	for _, b := range cfg.Backends {
		if b.Token == config.TokenUser && b.Audience != "" {
			userAudiences = append(userAudiences, b.Audience)
		}
	}
	// A transport of its own, whose idle connections Serve closes when it
	// drains: with the demo provider on the gateway's own listener, a spare
	// connection that never sent a request would hold the drain up.
	idpClient := &http.Client{Timeout: providerTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	provider := login.NewProvider(login.ProviderConfig{
		Issuer:       cfg.OIDC.Issuer,
		ClientID:     cfg.OIDC.ClientID,
		ClientSecret: cfg.OIDC.ClientSecret,
		Scopes:       cfg.OIDC.Scopes,
		Audiences:    userAudiences,
	}, idpClient)
	sameSite := http.SameSiteStrictMode
	if cfg.Session.SameSite == config.SameSiteLax {
		sameSite = http.SameSiteLaxMode
	}
	sessions := session.NewManager(store, keys, provider,
		session.WithLogger(logger),
		session.WithClock(o.now),
		session.WithCookie(session.Cookie{Name: cfg.Session.CookieName, SameSite: sameSite}),
		session.WithTimeouts(cfg.Session.IdleTimeout, cfg.Session.AbsoluteTimeout),
		session.WithRefreshSkew(cfg.Session.RefreshSkew),
		session.WithLoginURL(publicURL+login.LoginPath),
		session.WithMeterProvider(tel.meters),
	)
	origins := security.NewOrigins(publicURL, cfg.CORS.AllowedOrigins)
	guard := security.NewGuard(sessions.CookieName(), origins)
	flow := login.NewFlow(login.Config{
		PublicURL:              publicURL,
		Guard:                  guard,
		AppRedirectPath:        cfg.OIDC.AppRedirectPath,
		PostLogoutRedirectPath: cfg.OIDC.PostLogoutRedirectPath,
		LogoutIDTokenHint:      cfg.OIDC.LogoutIDTokenHint,
	}, provider, sessions, keys, login.WithLogger(logger), login.WithClock(o.now))

	backendClient := clients.NewHTTPClient()
	backends, newBackend, err := newBackends(cfg, backendClient, provider, idpClient, sessions, logger, tel.meters)
	if err != nil {
		return nil, err
	}

	var srv *server.Server // named below, before it serves a request
	obsOpts := []observe.Option{
		observe.WithLogger(logger),
		observe.WithMeterProvider(tel.meters),
		observe.WithRoutes(func(r *http.Request) string { return srv.Route(r) }),
	}
	if on := cfg.Telemetry.AccessLog; on != nil {
		obsOpts = append(obsOpts, observe.WithAccessLog(*on))
	}
	obs, err := observe.New(obsOpts...)
	if err != nil {
		return nil, fmt.Errorf("custodian: %w", err)
	}
	serverOpts := []server.Option{
		server.WithLogger(logger),
		server.WithLimits(server.Limits{
			ReadHeaderTimeout:    cfg.Server.ReadHeaderTimeout,
			ReadTimeout:          cfg.Server.ReadTimeout,
			WriteTimeout:         cfg.Server.WriteTimeout,
			IdleTimeout:          cfg.Server.IdleTimeout,
			MaxHeaderBytes:       cfg.Server.MaxHeaderBytes,
			MaxBodyBytes:         cfg.Server.MaxBodyBytes,
			MaxConcurrentStreams: cfg.Server.MaxConcurrentStreams,
			ShutdownTimeout:      cfg.Server.ShutdownTimeout,
		}),
		// The access log's line of a request no method serves, or one
		// refused before its method runs, around everything that may refuse.
		server.WithMiddleware(obs.Middleware),
		// Headers and CORS first, so that even a rate-limit refusal carries
		// them and a cross-origin script can read its Retry-After.
		server.WithMiddleware(security.Headers(sessions.CookieName(), cfg.TLS != nil)),
		server.WithMiddleware(security.CORS(cfg.CORS.AllowedOrigins, int(cfg.CORS.MaxAge.Seconds()))),
		server.WithMiddleware(newRateLimiter(cfg, logger, tel.meters, store).Middleware),
		// Measured and traced outside everything else, so that refused calls
		// count too, with the code the client gets.
		server.WithOuterInterceptors(obs.Metrics(), tracecontext.Server(tel.tracer, cfg.Server.TrustTraceContext), obs.AccessLog()),
		server.WithInterceptors(append([]connect.ServerInterceptor{guard.Interceptor(), sessions.Interceptor()}, o.interceptors...)...),
		server.WithHandler("/auth/", flow.Handler()),
		server.WithService(server.Service{Register: func(s *connect.Server) {
			custodianv1connect.RegisterSessionServiceHandler(s, session.NewService(publicURL+login.LogoutPath))
			custodianv1connect.RegisterAuthServiceHandler(s, flow)
		}, Files: []protoreflect.FileDescriptor{custodianv1.File_custodian_v1_errors_proto, errdetails.File_google_rpc_error_details_proto}}),
	}
	if p, ok := store.(session.Pinger); ok {
		// Not ready while the shared session store is unreachable.
		serverOpts = append(serverOpts, server.WithReadiness(p.Ping))
	}
	for _, r := range o.routes {
		serverOpts = append(serverOpts, server.WithHandler(r.pattern, r.handler))
	}
	if cfg.TLS != nil {
		serverOpts = append(serverOpts, server.WithTLS(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	srv, err = server.New(serverOpts...)
	if err != nil {
		return nil, fmt.Errorf("custodian: %w", err)
	}
	if err := mountRoutes(srv, cfg, logger, backends, newBackend); err != nil {
		return nil, err
	}
	return &Gateway{logger: logger, backendClient: backendClient, idpClient: idpClient, closeStore: closeStore, srv: srv, sessions: sessions, backends: backends, pageTokens: pageTokens, telemetry: tel}, nil
}

// Mount serves the browser-facing services that register registers (with
// generated RegisterXServiceHandler functions) behind every defence of the
// gateway. It fails when a service is already served. Mount before serving.
func (g *Gateway) Mount(register func(*connect.Server), opts ...MountOption) error {
	var o mountOptions
	for _, opt := range opts {
		opt.applyMount(&o)
	}
	if err := g.srv.Mount(server.Service{Register: register, MaxBodyBytes: o.maxBodyBytes}); err != nil {
		return fmt.Errorf("custodian: %w", err)
	}
	return nil
}

// Handler returns the gateway's routes as an http.Handler, to serve it
// inside another server or a test.
func (g *Gateway) Handler() http.Handler { return g.srv.Handler() }

// Serve serves on ln until ctx ends, then drains: health turns NOT_SERVING,
// /readyz answers 503, and in-flight calls get server.shutdown_timeout to
// finish; then the pooled connections to the backends close. It returns nil
// after a clean drain.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	defer g.backendClient.CloseIdleConnections()
	defer func() {
		if err := g.closeStore(); err != nil {
			g.logger.Warn("closing the session store", "error", err)
		}
	}()
	defer func() {
		// Spans still buffered get a few seconds to reach the collector.
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryFlushTimeout)
		defer cancel()
		if err := g.telemetry.close(flushCtx); err != nil {
			g.logger.Warn("flushing telemetry", "error", err)
		}
	}()
	stopIdle := context.AfterFunc(ctx, g.idpClient.CloseIdleConnections)
	defer stopIdle()
	adminCtx, stopAdmin := context.WithCancel(ctx)
	adminDone := make(chan error, 1)
	go func() { adminDone <- g.telemetry.serveAdmin(adminCtx) }()
	err := g.srv.Serve(ctx, ln)
	stopAdmin()
	return errors.Join(err, <-adminDone)
}

// telemetryFlushTimeout bounds the export of the last spans at shutdown.
const telemetryFlushTimeout = 5 * time.Second

// AdminAddr returns the address of the admin listener (telemetry.admin),
// or "" when there is none.
func (g *Gateway) AdminAddr() string {
	if g.telemetry.adminL == nil {
		return ""
	}
	return g.telemetry.adminL.Addr().String()
}

// MeterProvider returns the provider of the gateway's metrics, for mounted
// services' own instruments (such as their caches').
func (g *Gateway) MeterProvider() metric.MeterProvider { return g.telemetry.meters }

// Services lists the fully-qualified names of the browser-facing services.
func (g *Gateway) Services() []string { return g.srv.Services() }

// Logger returns the gateway's logger: the one given with [WithLogger],
// adding the request id to every record logged with a request's context.
// Give it to mounted services.
func (g *Gateway) Logger() *slog.Logger { return g.logger }

// PageTokens returns the gateway's sealer of backend page tokens, on keys
// derived from its session keys (session.keys: the first seals, all open),
// so every replica of the gateway opens the tokens any of them sealed.
// Give it to mounted services that pass a backend's page token to browsers.
func (g *Gateway) PageTokens() *pagetoken.Sealer { return g.pageTokens }

// Sessions returns the session manager, for pages rendered by the gateway
// itself and for tests.
func (g *Gateway) Sessions() *session.Manager { return g.sessions }
