package custodian

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/metric"

	"github.com/custodian-bff/custodian/aggregators/routes"
	"github.com/custodian-bff/custodian/clients"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/login"
	"github.com/custodian-bff/custodian/server/session"
)

// newBackends returns a client for each configured backend, and the
// function that made them, for routes that override a token policy. They
// share one connection pool; user-token calls act for the session the
// request carries.
func newBackends(cfg *config.Config, httpClient *http.Client, provider *login.Provider, idpClient *http.Client, sessions *session.Manager, logger *slog.Logger, meters metric.MeterProvider) (map[string]*clients.Backend, func(config.Backend) (*clients.Backend, error), error) {
	creds := clients.ClientCredentials{
		TokenURL:     provider.TokenURL,
		ClientID:     cfg.OIDC.ClientID,
		ClientSecret: cfg.OIDC.ClientSecret,
		HTTPClient:   idpClient,
	}
	userTokens := clients.WithUserTokens(func(ctx context.Context) clients.UserTokens { return sessions.UserTokens(ctx) })
	// Routes read backend answers undecoded through this codec; generated
	// clients get connect-go's binary codec behaviour unchanged.
	codecs := clients.WithCodecs(routes.BackendCodec())
	newBackend := func(b config.Backend) (*clients.Backend, error) {
		backend, err := clients.New(clients.Spec{
			Name:     b.Name,
			URL:      b.URL,
			Protocol: clients.Protocol(b.Protocol),
			Token:    clients.TokenPolicy(b.Token),
			Audience: b.Audience,
			Timeout:  b.Timeout,
		}, clients.WithHTTPClient(httpClient), clients.WithClientCredentials(creds), clients.WithLogger(logger), clients.WithMeterProvider(meters), userTokens, codecs)
		if err != nil {
			return nil, fmt.Errorf("custodian: %w", err)
		}
		return backend, nil
	}
	backends := make(map[string]*clients.Backend, len(cfg.Backends))
	for _, b := range cfg.Backends {
		backend, err := newBackend(b)
		if err != nil {
			return nil, nil, err
		}
		backends[b.Name] = backend
	}
	return backends, newBackend, nil
}
