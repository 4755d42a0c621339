package storefront

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/server/session"
)

// Backends are the clients the account service calls. Each carries the
// token its backend's policy calls for; the handlers never see a token.
type Backends struct {
	Profiles profilesv1connect.ProfileServiceClient
	Orders   ordersv1connect.OrderServiceClient
	Loyalty  loyaltyv1connect.LoyaltyServiceClient
	Catalog  *Catalog
}

// AccountService is the signed-in customer's account: each call fans out to
// the backends with the user's held tokens and merges the answers into
// public messages. Every method needs a session.
type AccountService struct {
	b               Backends
	logger          *slog.Logger
	imageBase       string
	optionalTimeout time.Duration
}

var _ storefrontv1connect.AccountServiceHandler = (*AccountService)(nil)

// NewAccountService returns an AccountService on b.
func NewAccountService(b Backends, opts ...Option) *AccountService {
	o := newOptions(opts)
	return &AccountService{b: b, logger: o.logger, imageBase: o.imageBase, optionalTimeout: o.optionalTimeout}
}

// Section labels of the parts; the backend that serves each, for errors.
var sectionBackend = map[storefrontv1.Section]string{
	storefrontv1.Section_SECTION_PROFILE:         "profiles",
	storefrontv1.Section_SECTION_LOYALTY:         "loyalty",
	storefrontv1.Section_SECTION_ORDERS:          "orders",
	storefrontv1.Section_SECTION_PRODUCT_DETAILS: "catalog",
}

const (
	defaultRecentOrders = 5
	maxRecentOrders     = 20
	defaultOrderPage    = 10
	maxOrderPage        = 50
)

// fanOut is one call's fan-out plus what its optional parts learned about
// the session: when a part finds the session ended, the whole call must say
// so, not list a missing section.
type fanOut struct {
	*fanout.Group[storefrontv1.Section]
	s *AccountService

	mu         sync.Mutex
	sessionErr error

	// invalid is set by wait when a required part's backend refused the
	// request as invalid (CodeInvalidArgument).
	invalid bool
}

func (s *AccountService) fanOut(ctx context.Context) *fanOut {
	return &fanOut{Group: fanout.New[storefrontv1.Section](ctx), s: s}
}

// part returns a Part for label: required parts wait for their backend's
// own timeout, optional ones get the shorter optional timeout.
func (f *fanOut) part(label storefrontv1.Section, required bool) fanout.Part[storefrontv1.Section] {
	p := fanout.Part[storefrontv1.Section]{Label: label, Required: required}
	if !required {
		p.Timeout = f.s.optionalTimeout
	}
	return p
}

// watch records an error that carries a session verdict.
func (f *fanOut) watch(err error) error {
	if err != nil && isSessionVerdict(err) {
		f.mu.Lock()
		if f.sessionErr == nil {
			f.sessionErr = err
		}
		f.mu.Unlock()
	}
	return err
}

// wait waits for every part and returns the error for the browser, if any.
func (f *fanOut) wait(ctx context.Context) error {
	err := f.Wait()
	f.mu.Lock()
	sessionErr := f.sessionErr
	f.mu.Unlock()
	if sessionErr != nil {
		return backendError(ctx, f.s.logger, "session", sessionErr)
	}
	var partErr *fanout.PartError[storefrontv1.Section]
	if errors.As(err, &partErr) {
		f.invalid = connect.CodeOf(partErr.Err) == connect.CodeInvalidArgument
		return backendError(ctx, f.s.logger, sectionBackend[partErr.Label], partErr.Err)
	}
	if err != nil {
		return backendError(ctx, f.s.logger, "backend", err)
	}
	return nil
}

// GetDashboard loads the profile (required), the loyalty account and the
// recent orders in parallel, then the products of those orders in one
// batched catalog call.
func (s *AccountService) GetDashboard(ctx context.Context, req *connect.Request[storefrontv1.GetDashboardRequest]) (*connect.Response[storefrontv1.GetDashboardResponse], error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	var invalid fieldErrors
	n := req.Msg.GetRecentOrderCount()
	if n < 0 || n > maxRecentOrders {
		invalid.add("recent_order_count", "must be between 0 and 20")
	}
	if err := invalid.err(); err != nil {
		return nil, err
	}
	if n == 0 {
		n = defaultRecentOrders
	}
	f := s.fanOut(ctx)
	profile := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_PROFILE, true), func(ctx context.Context) (*profilesv1.Profile, error) {
		res, err := s.b.Profiles.GetProfile(ctx, connect.NewRequest(&profilesv1.GetProfileRequest{}))
		if err != nil {
			return nil, f.watch(err)
		}
		return res.Msg.GetProfile(), nil
	})
	loyalty := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_LOYALTY, false), func(ctx context.Context) (*loyaltyv1.Account, error) {
		res, err := s.b.Loyalty.GetAccount(ctx, connect.NewRequest(&loyaltyv1.GetAccountRequest{}))
		if err != nil {
			return nil, f.watch(err)
		}
		return res.Msg.GetAccount(), nil
	})
	orders := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_ORDERS, false), func(ctx context.Context) ([]*ordersv1.Order, error) {
		res, err := s.b.Orders.ListOrders(ctx, connect.NewRequest(&ordersv1.ListOrdersRequest{PageSize: n}))
		if err != nil {
			return nil, f.watch(err)
		}
		return res.Msg.GetOrders(), nil
	})
	products := fanout.Then(f.Group, orders, f.part(storefrontv1.Section_SECTION_PRODUCT_DETAILS, false), func(ctx context.Context, orders []*ordersv1.Order) (map[string]*catalogv1.Product, error) {
		return s.b.Catalog.lookup(ctx, productIDs(orders...))
	})
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	out := &storefrontv1.GetDashboardResponse{MissingSections: f.Missing()}
	p, _ := profile.Value()
	out.Profile = publicProfile(p)
	if a, ok := loyalty.Value(); ok {
		out.Loyalty = publicLoyalty(a)
	}
	if list, ok := orders.Value(); ok {
		byID, _ := products.Value()
		for _, o := range list {
			out.RecentOrders = append(out.RecentOrders, publicOrder(o, byID, s.imageBase))
		}
	}
	return privateResponse(out), nil
}

// ListOrders returns a page of the customer's orders with product details.
func (s *AccountService) ListOrders(ctx context.Context, req *connect.Request[storefrontv1.ListOrdersRequest]) (*connect.Response[storefrontv1.ListOrdersResponse], error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	var invalid fieldErrors
	checkPaging(&invalid, req.Msg.GetPageSize(), maxOrderPage, req.Msg.GetPageToken())
	if err := invalid.err(); err != nil {
		return nil, err
	}
	size := req.Msg.GetPageSize()
	if size == 0 {
		size = defaultOrderPage
	}
	f := s.fanOut(ctx)
	page := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_ORDERS, true), func(ctx context.Context) (*ordersv1.ListOrdersResponse, error) {
		res, err := s.b.Orders.ListOrders(ctx, connect.NewRequest(&ordersv1.ListOrdersRequest{PageSize: size, PageToken: req.Msg.GetPageToken()}))
		if err != nil {
			return nil, f.watch(err)
		}
		return res.Msg, nil
	})
	products := fanout.Then(f.Group, page, f.part(storefrontv1.Section_SECTION_PRODUCT_DETAILS, false), func(ctx context.Context, page *ordersv1.ListOrdersResponse) (map[string]*catalogv1.Product, error) {
		return s.b.Catalog.lookup(ctx, productIDs(page.GetOrders()...))
	})
	if err := f.wait(ctx); err != nil {
		if f.invalid {
			// Only the page token can still be refused: the rest was checked.
			invalid.add("page_token", "is not a token from a previous answer")
			return nil, invalid.err()
		}
		return nil, err
	}
	res, _ := page.Value()
	byID, _ := products.Value()
	out := &storefrontv1.ListOrdersResponse{NextPageToken: res.GetNextPageToken(), MissingSections: f.Missing()}
	for _, o := range res.GetOrders() {
		out.Orders = append(out.Orders, publicOrder(o, byID, s.imageBase))
	}
	return privateResponse(out), nil
}

// GetOrder returns one of the customer's orders with product details.
func (s *AccountService) GetOrder(ctx context.Context, req *connect.Request[storefrontv1.GetOrderRequest]) (*connect.Response[storefrontv1.GetOrderResponse], error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	if !isID(req.Msg.GetOrderId()) {
		var invalid fieldErrors
		invalid.add("order_id", "must be 1 to 64 letters, digits, '-' or '_'")
		return nil, invalid.err()
	}
	f := s.fanOut(ctx)
	order := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_ORDERS, true), func(ctx context.Context) (*ordersv1.Order, error) {
		res, err := s.b.Orders.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{OrderId: req.Msg.GetOrderId()}))
		if err != nil {
			return nil, f.watch(err)
		}
		return res.Msg.GetOrder(), nil
	})
	products := fanout.Then(f.Group, order, f.part(storefrontv1.Section_SECTION_PRODUCT_DETAILS, false), func(ctx context.Context, o *ordersv1.Order) (map[string]*catalogv1.Product, error) {
		return s.b.Catalog.lookup(ctx, productIDs(o))
	})
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	o, _ := order.Value()
	byID, _ := products.Value()
	return privateResponse(&storefrontv1.GetOrderResponse{Order: publicOrder(o, byID, s.imageBase), MissingSections: f.Missing()}), nil
}

// PlaceOrder places an order; the idempotency key goes to the orders
// backend, so a retried call returns the first order.
func (s *AccountService) PlaceOrder(ctx context.Context, req *connect.Request[storefrontv1.PlaceOrderRequest]) (*connect.Response[storefrontv1.PlaceOrderResponse], error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	if err := checkPlaceOrder(req.Msg); err != nil {
		return nil, err
	}
	lines := make([]*ordersv1.CreateOrderLine, 0, len(req.Msg.GetLines()))
	for _, l := range req.Msg.GetLines() {
		lines = append(lines, &ordersv1.CreateOrderLine{ProductId: l.GetProductId(), Quantity: l.GetQuantity()})
	}
	f := s.fanOut(ctx)
	order := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_ORDERS, true), func(ctx context.Context) (*ordersv1.Order, error) {
		res, err := s.b.Orders.CreateOrder(ctx, connect.NewRequest(&ordersv1.CreateOrderRequest{IdempotencyKey: req.Msg.GetIdempotencyKey(), Lines: lines}))
		if err != nil {
			return nil, f.watch(err)
		}
		return res.Msg.GetOrder(), nil
	})
	products := fanout.Then(f.Group, order, f.part(storefrontv1.Section_SECTION_PRODUCT_DETAILS, false), func(ctx context.Context, o *ordersv1.Order) (map[string]*catalogv1.Product, error) {
		return s.b.Catalog.lookup(ctx, productIDs(o))
	})
	if err := f.wait(ctx); err != nil {
		if f.invalid {
			var invalid fieldErrors
			invalid.add("lines", "the order was refused: check that every product exists")
			return nil, invalid.err()
		}
		return nil, err
	}
	o, _ := order.Value()
	byID, _ := products.Value()
	return privateResponse(&storefrontv1.PlaceOrderResponse{Order: publicOrder(o, byID, s.imageBase)}), nil
}

// UpdateProfile changes the customer's display name, locale and marketing
// choice.
func (s *AccountService) UpdateProfile(ctx context.Context, req *connect.Request[storefrontv1.UpdateProfileRequest]) (*connect.Response[storefrontv1.UpdateProfileResponse], error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	if err := checkUpdateProfile(req.Msg); err != nil {
		return nil, err
	}
	res, err := s.b.Profiles.UpdateProfile(ctx, connect.NewRequest(&profilesv1.UpdateProfileRequest{
		DisplayName:    req.Msg.GetDisplayName(),
		Locale:         req.Msg.GetLocale(),
		MarketingOptIn: req.Msg.GetMarketingOptIn(),
	}))
	if err != nil {
		return nil, backendError(ctx, s.logger, "profiles", err)
	}
	return privateResponse(&storefrontv1.UpdateProfileResponse{Profile: publicProfile(res.Msg.GetProfile())}), nil
}

// privateResponse wraps a user's data: no shared cache may keep it.
func privateResponse[T any](msg *T) *connect.Response[T] {
	res := connect.NewResponse(msg)
	res.Header().Set("Cache-Control", "private, no-store")
	return res
}
