package demo_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/custodian-bff/custodian/demo"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
)

// TestProviderTokensReachOnlyTheirAudience checks that the demo provider and
// the demo backends agree: a token the provider issues for one backend's
// audience is accepted by that backend and refused by the three others.
func TestProviderTokensReachOnlyTheirAudience(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	world, err := demo.Start(context.Background(), base, base)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(demo.IdPPath, world.IdP)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := world.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})

	// probe calls one method of a backend; only the authentication outcome
	// matters, so a not_found for the client's own subject counts as accepted.
	probes := map[string]func(ctx context.Context, token string) error{
		"profiles": func(ctx context.Context, token string) error {
			ctx, info := connect.NewClientContext(ctx)
			info.RequestHeader().Set("Authorization", "Bearer "+token)
			_, err := profilesv1connect.NewProfileServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, world.Backends.Profiles.URL()))).GetProfile(ctx, &profilesv1.GetProfileRequest{})
			return err
		},
		"orders": func(ctx context.Context, token string) error {
			ctx, info := connect.NewClientContext(ctx)
			info.RequestHeader().Set("Authorization", "Bearer "+token)
			_, err := ordersv1connect.NewOrderServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, world.Backends.Orders.URL()))).ListOrders(ctx, &ordersv1.ListOrdersRequest{})
			return err
		},
		"catalog": func(ctx context.Context, token string) error {
			ctx, info := connect.NewClientContext(ctx)
			info.RequestHeader().Set("Authorization", "Bearer "+token)
			_, err := catalogv1connect.NewCatalogServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, world.Backends.Catalog.URL()))).ListProducts(ctx, &catalogv1.ListProductsRequest{})
			return err
		},
		"loyalty": func(ctx context.Context, token string) error {
			ctx, info := connect.NewClientContext(ctx)
			info.RequestHeader().Set("Authorization", "Bearer "+token)
			_, err := loyaltyv1connect.NewLoyaltyServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, world.Backends.Loyalty.URL()))).GetAccount(ctx, &loyaltyv1.GetAccountRequest{})
			return err
		},
	}
	for _, tokenFor := range world.Backends.All() {
		cc := clientcredentials.Config{
			ClientID:       demo.ClientID,
			ClientSecret:   world.Config.OIDC.ClientSecret,
			TokenURL:       world.IdP.Issuer() + "/token",
			EndpointParams: url.Values{"audience": {tokenFor.Audience()}},
		}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("token for %s: %v", tokenFor.Audience(), err)
		}
		for _, target := range world.Backends.All() {
			err := probes[target.Name()](context.Background(), tok.AccessToken)
			refused := connect.CodeOf(err) == connect.CodeUnauthenticated
			if want := target != tokenFor; refused != want {
				t.Errorf("token for %s at %s: refused=%v (%v), want refused=%v", tokenFor.Audience(), target.Name(), refused, err, want)
			}
		}
	}
}
