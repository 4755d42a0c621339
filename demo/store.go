package demo

import (
	"errors"
	"fmt"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian"
	"github.com/custodian-bff/custodian/aggregators/storefront"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
)

// storeBodyLimit bounds the store's requests more tightly than the
// gateway-wide limit: its largest request, an order of 20 lines, is far
// below 16 KiB.
const storeBodyLimit = 16 << 10

// MountStore mounts the Acme store's browser-facing services on gw through
// the public API, as a team's own code would: ProductService needs a
// backend named "catalog", AccountService also "profiles", "orders" and
// "loyalty". What cannot be served is logged and left out. opts come after
// the store's own (logger and page tokens), so they can change the rest,
// such as how long an optional section may take.
func MountStore(gw *custodian.Gateway, opts ...storefront.Option) error {
	logger := gw.Logger()
	catalogClient, err := custodian.Client(gw, "catalog", catalogv1connect.NewCatalogServiceClient)
	if err != nil {
		logger.Warn("no backend named catalog is configured: the acme.storefront.v1 services are not served")
		return nil
	}
	catalog, err := storefront.NewCatalog(catalogClient, 0, 0, storefront.WithMeterProvider(gw.MeterProvider()))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// The gateway's sealer, on its session keys, so the page tokens a
	// browser gets work on every replica and after a restart.
	opts = append([]storefront.Option{storefront.WithLogger(logger), storefront.WithPageTokens(gw.PageTokens())}, opts...)
	products := storefront.NewProductService(catalog, opts...)
	if err := gw.Mount(func(s *connect.Server) {
		storefrontv1connect.RegisterProductServiceHandler(s, products)
	}, custodian.WithReadMaxBytes(storeBodyLimit)); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	profiles, errP := custodian.Client(gw, "profiles", profilesv1connect.NewProfileServiceClient)
	orders, errO := custodian.Client(gw, "orders", ordersv1connect.NewOrderServiceClient)
	loyalty, errL := custodian.Client(gw, "loyalty", loyaltyv1connect.NewLoyaltyServiceClient)
	if err := errors.Join(errP, errO, errL); err != nil {
		logger.Warn("backends profiles, orders and loyalty are not all configured: acme.storefront.v1.AccountService is not served", "error", err)
		return nil
	}
	account := storefront.NewAccountService(storefront.Backends{
		Profiles: profiles,
		Orders:   orders,
		Loyalty:  loyalty,
		Catalog:  catalog,
	}, opts...)
	if err := gw.Mount(func(s *connect.Server) {
		storefrontv1connect.RegisterAccountServiceHandler(s, account)
	}, custodian.WithReadMaxBytes(storeBodyLimit)); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
