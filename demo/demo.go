// Package demo runs the demo world the gateway uses when nobody configured a
// real one: an OpenID Connect provider served on the gateway's own listener
// under /demo/idp/, and the Acme store's four backends on loopback ports.
// Not for production: users, passwords and keys are made up at start.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/custodian-bff/custodian/demo/backends"
	"github.com/custodian-bff/custodian/demo/idp"
	"github.com/custodian-bff/custodian/server/config"
)

// IdPPath is where the gateway serves the demo provider.
const IdPPath = "/demo/idp/"

// ClientID is the gateway's client id at the demo provider.
const ClientID = "custodian-demo"

// World is a running demo: the provider, the backends, and a configuration
// that points a gateway at them.
type World struct {
	// Config is a validated configuration for the gateway.
	Config *config.Config
	// IdP is the provider; serve it under IdPPath on the gateway's listener.
	IdP *idp.Provider
	// Backends are the four Acme backends.
	Backends *backends.Set
}

// Option configures the demo world.
type Option interface {
	apply(*options)
}

type options struct {
	logger         *slog.Logger
	accessLifetime time.Duration
	replicas       []string
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger. Default: discard.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithAccessTokenLifetime sets how long the provider's access tokens live.
// Default 5m; tests of refresh use seconds.
func WithAccessTokenLifetime(d time.Duration) Option {
	return optionFunc(func(o *options) { o.accessLifetime = d })
}

// WithReplicas registers the public URLs of more replicas of the gateway,
// besides Start's publicURL, at the demo client: their login callbacks and
// post-logout pages. Back-channel logouts still go to publicURL. Default:
// none.
func WithReplicas(publicURLs ...string) Option {
	return optionFunc(func(o *options) { o.replicas = append(o.replicas, publicURLs...) })
}

// Start starts the demo world for a gateway that browsers reach at publicURL
// (e.g. http://localhost:8080) and that listens at listenURL (e.g.
// http://127.0.0.1:8080), where the provider's issuer URL lives.
func Start(ctx context.Context, publicURL, listenURL string, opts ...Option) (*World, error) {
	o := options{logger: slog.New(slog.DiscardHandler), accessLifetime: 5 * time.Minute}
	for _, opt := range opts {
		opt.apply(&o)
	}
	publicURL = strings.TrimRight(publicURL, "/")
	listenURL = strings.TrimRight(listenURL, "/")
	// The provider is reached at the listen address (127.0.0.1), which is
	// another site than the public URL (localhost): like a real provider,
	// its redirects back to the gateway are cross-site navigations.
	issuer := listenURL + strings.TrimSuffix(IdPPath, "/")
	secret, err := randomString(32)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("demo: session key: %w", err)
	}
	audiences := []string{"acme-profiles", "acme-orders", "acme-catalog", "acme-loyalty"}
	var redirectURIs, postLogoutURIs []string
	for _, u := range append([]string{publicURL}, o.replicas...) {
		u = strings.TrimRight(u, "/")
		redirectURIs = append(redirectURIs, u+"/auth/callback", u+"/login/callback")
		postLogoutURIs = append(postLogoutURIs, u+"/")
	}
	provider, err := idp.New(issuer,
		idp.WithLogger(o.logger.With("component", "demo-idp")),
		idp.WithAccessTokenLifetime(o.accessLifetime),
		idp.WithClient(idp.Client{
			ID:                     ClientID,
			Secret:                 secret,
			RedirectURIs:           redirectURIs,
			PostLogoutRedirectURIs: postLogoutURIs,
			BackchannelLogoutURI:   publicURL + "/auth/backchannel-logout",
			Audiences:              audiences,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("demo: provider: %w", err)
	}
	jwksURL := listenURL + IdPPath + "jwks"
	set, err := backends.Start(ctx, issuer, jwksURL, backends.WithLogger(o.logger.With("component", "demo-backends")))
	if err != nil {
		return nil, fmt.Errorf("demo: backends: %w", err)
	}
	cfg := &config.Config{
		PublicURL: publicURL,
		OIDC: config.OIDC{
			Issuer:       issuer,
			ClientID:     ClientID,
			ClientSecret: secret,
		},
		Session: config.Session{Keys: [][]byte{key}},
		// Every demo user, the browser tests and the load tests of
		// scripts/bench.sh come from 127.0.0.1: the limits are set high so
		// one machine can play many users. Real configurations keep the
		// defaults (docs/config.md).
		RateLimits: config.RateLimits{
			PerIP:      &config.RateLimit{Rate: 100000, Burst: 100000},
			PerSession: &config.RateLimit{Rate: 100000, Burst: 100000},
			Login:      &config.RateLimit{Rate: 100, Burst: 200},
		},
		Backends: []config.Backend{
			// Each protocol is used once so the demo exercises all three.
			{Name: "profiles", URL: set.Profiles.URL(), Protocol: config.ProtocolConnect, Token: config.TokenUser, Audience: "acme-profiles"},
			{Name: "orders", URL: set.Orders.URL(), Protocol: config.ProtocolGRPC, Token: config.TokenUser, Audience: "acme-orders"},
			{Name: "catalog", URL: set.Catalog.URL(), Protocol: config.ProtocolConnect, Token: config.TokenClient, Audience: "acme-catalog"},
			{Name: "loyalty", URL: set.Loyalty.URL(), Protocol: config.ProtocolGRPCWeb, Token: config.TokenExchange, Audience: "acme-loyalty"},
		},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, errors.Join(fmt.Errorf("demo: configuration: %w", err), set.Close(ctx))
	}
	return &World{Config: cfg, IdP: provider, Backends: set}, nil
}

// Close stops the backends.
func (w *World) Close(ctx context.Context) error {
	return w.Backends.Close(ctx)
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("demo: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
