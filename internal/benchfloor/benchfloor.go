// Package benchfloor is the least a Connect gateway built on Custodian's
// libraries does for AccountService's GetOrder and GetDashboard, and for
// a call without a backend, SessionService's GetSession, answered with a
// fixed user and no session at all:
// connect-go's handler decodes the call, connect-go clients call the
// backends (the dashboard's three in parallel, on plain goroutines) with
// the caller's Authorization header, the answers are copied field by field
// into the public messages, and jsonenc writes a JSON answer. No session,
// CSRF, rate limit, request id, security headers, body limits, access
// log, trace context, breaker, timeout, token exchange or catalog lookup.
// The benchmarks measure it beside the gateway, so that what Custodian
// adds is told apart from what net/http and connect-go cost.
package benchfloor

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/internal/jsonenc"
)

// compressMinBytes is the gateway's: smaller answers are not compressed.
const compressMinBytes = 4 << 10

// Backend is a backend the floor calls: its URL and connect-go transport
// options (connecthttp.WithGRPC for a gRPC backend).
type Backend struct {
	URL       string
	Transport []connecthttp.Option
}

// Backends are the backends of the floor's methods: GetOrder needs Orders,
// GetDashboard all three.
type Backends struct {
	Orders, Profiles, Loyalty Backend
}

// NewHandler returns the floor's handler, calling backends with
// httpClient.
func NewHandler(httpClient *http.Client, backends Backends) http.Handler {
	client := func(b Backend) *connect.Client {
		return connect.NewClient(connecthttp.NewTransport(httpClient, b.URL, b.Transport...))
	}
	srv := connect.NewServer()
	storefrontv1connect.RegisterAccountServiceHandler(srv, account{
		orders:   ordersv1connect.NewOrderServiceClient(client(backends.Orders)),
		profiles: profilesv1connect.NewProfileServiceClient(client(backends.Profiles)),
		loyalty:  loyaltyv1connect.NewLoyaltyServiceClient(client(backends.Loyalty)),
	})
	custodianv1connect.RegisterSessionServiceHandler(srv, session{})
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv,
		connecthttp.WithCodecs(jsonenc.Codec{JSONCodec: connectproto.NewJSONCodec()}, connectproto.NewBinaryCodec()),
		connecthttp.WithCompressMinBytes(compressMinBytes))
	return mux
}

// account answers GetOrder and GetDashboard with backend calls and copies.
type account struct {
	storefrontv1connect.UnimplementedAccountServiceHandler
	orders   ordersv1connect.OrderServiceClient
	profiles profilesv1connect.ProfileServiceClient
	loyalty  loyaltyv1connect.LoyaltyServiceClient
}

// recentOrders is how many orders the dashboard lists, as the storefront's.
const recentOrders = 5

// outgoing returns ctx for a backend call carrying the caller's
// Authorization header.
func outgoing(ctx context.Context) context.Context {
	var auth string
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		auth = info.RequestHeader().Get("Authorization")
	}
	ctx, info := connect.NewClientContext(ctx)
	info.RequestHeader().Set("Authorization", auth)
	return ctx
}

func (a account) GetOrder(ctx context.Context, req *storefrontv1.GetOrderRequest) (*storefrontv1.GetOrderResponse, error) {
	res, err := a.orders.GetOrder(outgoing(ctx), &ordersv1.GetOrderRequest{OrderId: req.GetOrderId()})
	if err != nil {
		return nil, err
	}
	return &storefrontv1.GetOrderResponse{Order: order(res.GetOrder())}, nil
}

func (a account) GetDashboard(ctx context.Context, _ *storefrontv1.GetDashboardRequest) (*storefrontv1.GetDashboardResponse, error) {
	var (
		wg                              sync.WaitGroup
		profile                         *profilesv1.GetProfileResponse
		loyalty                         *loyaltyv1.GetAccountResponse
		orders                          *ordersv1.ListOrdersResponse
		profileErr, loyaltyErr, listErr error
	)
	wg.Go(func() { profile, profileErr = a.profiles.GetProfile(outgoing(ctx), &profilesv1.GetProfileRequest{}) })
	wg.Go(func() { loyalty, loyaltyErr = a.loyalty.GetAccount(outgoing(ctx), &loyaltyv1.GetAccountRequest{}) })
	wg.Go(func() {
		orders, listErr = a.orders.ListOrders(outgoing(ctx), &ordersv1.ListOrdersRequest{PageSize: recentOrders})
	})
	wg.Wait()
	if err := errors.Join(profileErr, loyaltyErr, listErr); err != nil {
		return nil, err
	}
	p, l := profile.GetProfile(), loyalty.GetAccount()
	out := &storefrontv1.GetDashboardResponse{
		Profile: &storefrontv1.Profile{
			DisplayName:    p.GetDisplayName(),
			Email:          p.GetEmail(),
			AvatarUrl:      p.GetAvatarUrl(),
			Locale:         p.GetLocale(),
			MarketingOptIn: p.GetMarketingOptIn(),
		},
		Loyalty: &storefrontv1.Loyalty{
			Points:           l.GetPoints(),
			Tier:             storefrontv1.LoyaltyTier(l.GetTier()),
			PointsToNextTier: l.GetPointsToNextTier(),
		},
	}
	for _, o := range orders.GetOrders() {
		out.RecentOrders = append(out.RecentOrders, order(o))
	}
	return out, nil
}

// order copies a backend order into the public one.
func order(o *ordersv1.Order) *storefrontv1.Order {
	out := &storefrontv1.Order{
		OrderId:    o.GetOrderId(),
		Status:     storefrontv1.OrderStatus(o.GetStatus()),
		Total:      &storefrontv1.Money{CurrencyCode: o.GetCurrencyCode(), AmountMinor: o.GetTotalMinor()},
		CreateTime: o.GetCreateTime(),
		Lines:      make([]*storefrontv1.OrderLine, 0, len(o.GetLines())),
	}
	for _, l := range o.GetLines() {
		out.Lines = append(out.Lines, &storefrontv1.OrderLine{
			ProductId: l.GetProductId(),
			Quantity:  l.GetQuantity(),
			UnitPrice: &storefrontv1.Money{CurrencyCode: o.GetCurrencyCode(), AmountMinor: l.GetUnitPriceMinor()},
		})
	}
	return out
}

// session answers GetSession with a fixed signed-in user.
type session struct {
	custodianv1connect.UnimplementedSessionServiceHandler
}

func (session) GetSession(context.Context, *custodianv1.GetSessionRequest) (*custodianv1.GetSessionResponse, error) {
	now := time.Now()
	return &custodianv1.GetSessionResponse{
		SignedIn:           true,
		User:               &custodianv1.User{Subject: "alice", Name: "Alice Martin", Email: "alice@example.com"},
		IdleExpireTime:     timestamppb.New(now.Add(30 * time.Minute)),
		AbsoluteExpireTime: timestamppb.New(now.Add(12 * time.Hour)),
		LogoutUrl:          "http://localhost/auth/logout?id=0123456789abcdef",
	}, nil
}
