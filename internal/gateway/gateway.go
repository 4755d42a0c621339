// Package gateway assembles a Custodian gateway from a validated
// configuration: sessions, login, backend clients, browser-facing services
// and the listener.
package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/aggregators/storefront"
	"github.com/custodian-bff/custodian/clients"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server/keyring"
	"github.com/custodian-bff/custodian/internal/tracecontext"
	"github.com/custodian-bff/custodian/server"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/login"
	"github.com/custodian-bff/custodian/server/security"
	"github.com/custodian-bff/custodian/server/session"
)

// Option configures the assembly.
type Option interface {
	apply(*options)
}

type options struct {
	tracer    trace.TracerProvider
	logger    *slog.Logger
	now       func() time.Time
	serverOps []server.Option
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger. Default: discard.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithClock sets the clock of sessions and logins. Default: time.Now; tests
// move it to expire tokens without waiting.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

// WithTracerProvider sets where the gateway's spans go. Default: spans with
// real ids that are not exported, so the W3C trace context still reaches
// the backends.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) { o.tracer = tp })
}

// WithServerOptions adds listener options, such as the demo provider's
// routes.
func WithServerOptions(opts ...server.Option) Option {
	return optionFunc(func(o *options) { o.serverOps = append(o.serverOps, opts...) })
}

// Gateway is an assembled gateway.
type Gateway struct {
	*server.Server
	// Sessions is the session manager, for tests and benchmarks.
	Sessions *session.Manager
}

// New returns the gateway cfg describes. cfg must have passed validation.
func New(cfg *config.Config, opts ...Option) (*Gateway, error) {
	o := options{logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.tracer == nil {
		o.tracer = sdktrace.NewTracerProvider()
	}
	logger := o.logger
	publicURL := strings.TrimRight(cfg.PublicURL, "/")

	keys, err := keyring.New(cfg.Session.Keys)
	if err != nil {
		return nil, fmt.Errorf("gateway: session keys: %w", err)
	}
	var store session.Store
	switch cfg.Session.Store {
	case config.StoreMemory, "":
		store, err = session.NewMemoryStore(cfg.Session.MaxSessions, o.now)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	default:
		return nil, fmt.Errorf("gateway: session.store %q is not available in this version", cfg.Session.Store)
	}

	var userAudiences []string
	for _, b := range cfg.Backends {
		if b.Token == config.TokenUser && b.Audience != "" {
			userAudiences = append(userAudiences, b.Audience)
		}
	}
	idpClient := &http.Client{Timeout: 10 * time.Second}
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
	)
	origins := security.NewOrigins(publicURL, cfg.CORS.AllowedOrigins)
	guard := security.NewGuard(sessions.CookieName(), origins)
	flow := login.NewFlow(login.Config{
		PublicURL:              publicURL,
		Guard:                  guard,
		AppRedirectPath:        cfg.OIDC.AppRedirectPath,
		PostLogoutRedirectPath: cfg.OIDC.PostLogoutRedirectPath,
	}, provider, sessions, keys, login.WithLogger(logger), login.WithClock(o.now))

	backendClient := clients.NewHTTPClient()
	creds := clients.ClientCredentials{
		TokenURL:     provider.TokenURL,
		ClientID:     cfg.OIDC.ClientID,
		ClientSecret: cfg.OIDC.ClientSecret,
		HTTPClient:   idpClient,
	}
	backends := make(map[string]*clients.Backend, len(cfg.Backends))
	for _, b := range cfg.Backends {
		backend, err := clients.New(b, clients.WithHTTPClient(backendClient), clients.WithClientCredentials(creds), clients.WithLogger(logger))
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		backends[b.Name] = backend
	}

	serverOpts := []server.Option{
		server.WithLogger(logger),
		server.WithLimits(server.Limits{
			ReadHeaderTimeout:    cfg.Server.ReadHeaderTimeout,
			ReadTimeout:          cfg.Server.ReadTimeout,
			IdleTimeout:          cfg.Server.IdleTimeout,
			MaxHeaderBytes:       cfg.Server.MaxHeaderBytes,
			MaxBodyBytes:         cfg.Server.MaxBodyBytes,
			MaxConcurrentStreams: cfg.Server.MaxConcurrentStreams,
			ShutdownTimeout:      cfg.Server.ShutdownTimeout,
		}),
		// Headers and CORS first, so that even a rate-limit refusal carries
		// them and a cross-origin script can read its Retry-After.
		server.WithMiddleware(security.Headers(sessions.CookieName(), cfg.TLS != nil)),
		server.WithMiddleware(security.CORS(cfg.CORS.AllowedOrigins, int(cfg.CORS.MaxAge.Seconds()))),
		server.WithMiddleware(newRateLimiter(cfg, logger).Middleware),
		server.WithInterceptors(guard.Interceptor(), tracecontext.Server(o.tracer), sessions.Interceptor()),
		server.WithHandler("/auth/", flow.Handler()),
		server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
			return custodianv1connect.NewSessionServiceHandler(session.NewService(publicURL+login.LogoutPath), o...)
		}),
		server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
			return custodianv1connect.NewAuthServiceHandler(flow, o...)
		}),
	}
	if cfg.TLS != nil {
		serverOpts = append(serverOpts, server.WithTLS(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	storefrontOpts, err := storefrontServices(backends, logger)
	if err != nil {
		return nil, err
	}
	serverOpts = append(serverOpts, storefrontOpts...)
	srv, err := server.New(append(serverOpts, o.serverOps...)...)
	if err != nil {
		return nil, err
	}
	return &Gateway{Server: srv, Sessions: sessions}, nil
}

// storefrontBodyLimit bounds the storefront's requests more tightly than
// the server-wide limit: its largest request, an order of 20 lines, is far
// below 16 KiB.
var storefrontBodyLimit = connect.WithReadMaxBytes(16 << 10)

// storefrontServices returns the Acme storefront's services for the
// backends it finds by name: ProductService needs "catalog", AccountService
// all of "profiles", "orders", "loyalty" and "catalog". What cannot be
// served is logged and left unregistered.
func storefrontServices(backends map[string]*clients.Backend, logger *slog.Logger) ([]server.Option, error) {
	catalogBackend, ok := backends["catalog"]
	if !ok {
		logger.Warn("no backend named catalog is configured: the acme.storefront.v1 services are not served")
		return nil, nil
	}
	catalog, err := storefront.NewCatalog(catalogv1connect.NewCatalogServiceClient(catalogBackend.HTTPClient(), catalogBackend.URL(), catalogBackend.ClientOptions()...), 0, 0)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	products := storefront.NewProductService(catalog, storefront.WithLogger(logger))
	opts := []server.Option{server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
		return storefrontv1connect.NewProductServiceHandler(products, append(o, storefrontBodyLimit)...)
	})}
	profiles, okP := backends["profiles"]
	orders, okO := backends["orders"]
	loyalty, okL := backends["loyalty"]
	if !okP || !okO || !okL {
		logger.Warn("backends profiles, orders and loyalty are not all configured: acme.storefront.v1.AccountService is not served")
		return opts, nil
	}
	account := storefront.NewAccountService(storefront.Backends{
		Profiles: profilesv1connect.NewProfileServiceClient(profiles.HTTPClient(), profiles.URL(), profiles.ClientOptions()...),
		Orders:   ordersv1connect.NewOrderServiceClient(orders.HTTPClient(), orders.URL(), orders.ClientOptions()...),
		Loyalty:  loyaltyv1connect.NewLoyaltyServiceClient(loyalty.HTTPClient(), loyalty.URL(), loyalty.ClientOptions()...),
		Catalog:  catalog,
	}, storefront.WithLogger(logger))
	return append(opts, server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
		return storefrontv1connect.NewAccountServiceHandler(account, append(o, storefrontBodyLimit)...)
	})), nil
}
