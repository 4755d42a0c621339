// Package gateway assembles a Custodian gateway from a validated
// configuration: backend clients, browser-facing services and the listener.
package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/custodian-bff/custodian/aggregators/storefront"
	"github.com/custodian-bff/custodian/clients"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// New returns the gateway cfg describes, with extra server options (such as
// the demo provider's routes) added. cfg must have passed validation.
func New(cfg *config.Config, logger *slog.Logger, extra ...server.Option) (*server.Server, error) {
	idpClient := &http.Client{Timeout: 10 * time.Second}
	disco := &discovery{issuer: cfg.OIDC.Issuer, client: idpClient}
	backendClient := clients.NewHTTPClient()
	creds := clients.ClientCredentials{
		TokenURL:     disco.tokenURL,
		ClientID:     cfg.OIDC.ClientID,
		ClientSecret: cfg.OIDC.ClientSecret,
		HTTPClient:   idpClient,
	}
	backends := make(map[string]*clients.Backend, len(cfg.Backends))
	for _, b := range cfg.Backends {
		backend, err := clients.New(b, clients.WithHTTPClient(backendClient), clients.WithClientCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		backends[b.Name] = backend
	}
	publicURL := strings.TrimRight(cfg.PublicURL, "/")
	opts := []server.Option{
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
		server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
			return custodianv1connect.NewSessionServiceHandler(session.NewService(publicURL+"/auth/login"), o...)
		}),
		server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
			return storefrontv1connect.NewAccountServiceHandler(&storefront.AccountService{}, o...)
		}),
	}
	if cfg.TLS != nil {
		opts = append(opts, server.WithTLS(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	if catalog, ok := backends["catalog"]; ok {
		products := storefront.NewProductService(
			catalogv1connect.NewCatalogServiceClient(catalog.HTTPClient(), catalog.URL(), catalog.ClientOptions()...),
			storefront.WithLogger(logger),
		)
		opts = append(opts, server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
			return storefrontv1connect.NewProductServiceHandler(products, o...)
		}))
	} else {
		logger.Warn("no backend named catalog is configured: acme.storefront.v1.ProductService is not served")
	}
	return server.New(append(opts, extra...)...)
}
