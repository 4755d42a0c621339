package storefront

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	"github.com/custodian-bff/custodian/aggregators/pagetoken"
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
	pageTokens      *pagetoken.Sealer
}

var _ storefrontv1connect.AccountServiceHandler = (*AccountService)(nil)

// NewAccountService returns an AccountService on b.
func NewAccountService(b Backends, opts ...Option) *AccountService {
	o := newOptions(opts)
	return &AccountService{b: b, logger: o.logger, imageBase: o.imageBase, optionalTimeout: o.optionalTimeout, pageTokens: o.pageTokens}
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
	if err != nil && fanout.IsSessionVerdict(err) {
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
		return fanout.BackendError(ctx, f.s.logger, "session", sessionErr)
	}
	var partErr *fanout.PartError[storefrontv1.Section]
	if errors.As(err, &partErr) {
		f.invalid = connect.CodeOf(partErr.Err) == connect.CodeInvalidArgument
		return fanout.BackendError(ctx, f.s.logger, sectionBackend[partErr.Label], partErr.Err)
	}
	if err != nil {
		return fanout.BackendError(ctx, f.s.logger, "backend", err)
	}
	return nil
}

// GetDashboard loads the profile (required), the loyalty account and the
// recent orders in parallel, then the products of those orders in one
// batched catalog call.
func (s *AccountService) GetDashboard(ctx context.Context, req *storefrontv1.GetDashboardRequest) (*storefrontv1.GetDashboardResponse, error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	var invalid fanout.FieldErrors
	n := req.GetRecentOrderCount()
	if n < 0 || n > maxRecentOrders {
		invalid.Add("recent_order_count", "must be between 0 and 20")
	}
	if err := invalid.Err(); err != nil {
		return nil, err
	}
	if n == 0 {
		n = defaultRecentOrders
	}
	f := s.fanOut(ctx)
	profile := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_PROFILE, true), func(ctx context.Context) (*profilesv1.Profile, error) {
		res, err := s.b.Profiles.GetProfile(ctx, &profilesv1.GetProfileRequest{})
		if err != nil {
			return nil, f.watch(err)
		}
		return res.GetProfile(), nil
	})
	loyalty := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_LOYALTY, false), func(ctx context.Context) (*loyaltyv1.Account, error) {
		res, err := s.b.Loyalty.GetAccount(ctx, &loyaltyv1.GetAccountRequest{})
		if err != nil {
			return nil, f.watch(err)
		}
		return res.GetAccount(), nil
	})
	orders := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_ORDERS, false), func(ctx context.Context) ([]*ordersv1.Order, error) {
		res, err := s.b.Orders.ListOrders(ctx, &ordersv1.ListOrdersRequest{PageSize: n})
		if err != nil {
			return nil, f.watch(err)
		}
		return res.GetOrders(), nil
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
	return out, nil
}

// ordersPurpose is what an orders page token is sealed for: the orders
// backend's listing, in the session that received it.
const ordersPurpose = ordersv1connect.OrderServiceListOrdersProcedure

// ListOrders returns a page of the customer's orders with product details.
// Its page tokens are sealed (see [WithPageTokens]) and bound to the
// session.
func (s *AccountService) ListOrders(ctx context.Context, req *storefrontv1.ListOrdersRequest) (*storefrontv1.ListOrdersResponse, error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	var invalid fanout.FieldErrors
	checkPageSize(&invalid, req.GetPageSize(), maxOrderPage)
	// The token is bound to this session: another session's, or one
	// sealed for another listing, never reaches the orders backend.
	pageToken, err := s.pageTokens.OpenForSession(ctx, ordersPurpose, req.GetPageToken())
	if err != nil {
		invalid.Add("page_token", pageTokenRefused)
	}
	if err := invalid.Err(); err != nil {
		return nil, err
	}
	size := req.GetPageSize()
	if size == 0 {
		size = defaultOrderPage
	}
	f := s.fanOut(ctx)
	page := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_ORDERS, true), func(ctx context.Context) (*ordersv1.ListOrdersResponse, error) {
		res, err := s.b.Orders.ListOrders(ctx, &ordersv1.ListOrdersRequest{PageSize: size, PageToken: pageToken})
		if err != nil {
			return nil, f.watch(err)
		}
		return res, nil
	})
	products := fanout.Then(f.Group, page, f.part(storefrontv1.Section_SECTION_PRODUCT_DETAILS, false), func(ctx context.Context, page *ordersv1.ListOrdersResponse) (map[string]*catalogv1.Product, error) {
		return s.b.Catalog.lookup(ctx, productIDs(page.GetOrders()...))
	})
	if err := f.wait(ctx); err != nil {
		if f.invalid {
			// Only the page token can still be refused: the rest was checked.
			invalid.Add("page_token", pageTokenRefused)
			return nil, invalid.Err()
		}
		return nil, err
	}
	res, _ := page.Value()
	byID, _ := products.Value()
	next, err := s.pageTokens.SealForSession(ctx, ordersPurpose, res.GetNextPageToken())
	if err != nil {
		return nil, fanout.BackendError(ctx, s.logger, "orders", err)
	}
	out := &storefrontv1.ListOrdersResponse{NextPageToken: next, MissingSections: f.Missing()}
	for _, o := range res.GetOrders() {
		out.Orders = append(out.Orders, publicOrder(o, byID, s.imageBase))
	}
	return out, nil
}

// GetOrder returns one of the customer's orders with product details.
func (s *AccountService) GetOrder(ctx context.Context, req *storefrontv1.GetOrderRequest) (*storefrontv1.GetOrderResponse, error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	if !isID(req.GetOrderId()) {
		var invalid fanout.FieldErrors
		invalid.Add("order_id", "must be 1 to 64 letters, digits, '-' or '_'")
		return nil, invalid.Err()
	}
	f := s.fanOut(ctx)
	order := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_ORDERS, true), func(ctx context.Context) (*ordersv1.Order, error) {
		res, err := s.b.Orders.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: req.GetOrderId()})
		if err != nil {
			return nil, f.watch(err)
		}
		return res.GetOrder(), nil
	})
	products := fanout.Then(f.Group, order, f.part(storefrontv1.Section_SECTION_PRODUCT_DETAILS, false), func(ctx context.Context, o *ordersv1.Order) (map[string]*catalogv1.Product, error) {
		return s.b.Catalog.lookup(ctx, productIDs(o))
	})
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	o, _ := order.Value()
	byID, _ := products.Value()
	return &storefrontv1.GetOrderResponse{Order: publicOrder(o, byID, s.imageBase), MissingSections: f.Missing()}, nil
}

// PlaceOrder places an order; the idempotency key goes to the orders
// backend, so a retried call returns the first order.
func (s *AccountService) PlaceOrder(ctx context.Context, req *storefrontv1.PlaceOrderRequest) (*storefrontv1.PlaceOrderResponse, error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	if err := checkPlaceOrder(req); err != nil {
		return nil, err
	}
	lines := make([]*ordersv1.CreateOrderLine, 0, len(req.GetLines()))
	for _, l := range req.GetLines() {
		lines = append(lines, &ordersv1.CreateOrderLine{ProductId: l.GetProductId(), Quantity: l.GetQuantity()})
	}
	f := s.fanOut(ctx)
	order := fanout.Go(f.Group, f.part(storefrontv1.Section_SECTION_ORDERS, true), func(ctx context.Context) (*ordersv1.Order, error) {
		res, err := s.b.Orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{IdempotencyKey: req.GetIdempotencyKey(), Lines: lines})
		if err != nil {
			return nil, f.watch(err)
		}
		return res.GetOrder(), nil
	})
	products := fanout.Then(f.Group, order, f.part(storefrontv1.Section_SECTION_PRODUCT_DETAILS, false), func(ctx context.Context, o *ordersv1.Order) (map[string]*catalogv1.Product, error) {
		return s.b.Catalog.lookup(ctx, productIDs(o))
	})
	if err := f.wait(ctx); err != nil {
		if f.invalid {
			var invalid fanout.FieldErrors
			invalid.Add("lines", "the order was refused: check that every product exists")
			return nil, invalid.Err()
		}
		return nil, err
	}
	o, _ := order.Value()
	byID, _ := products.Value()
	return &storefrontv1.PlaceOrderResponse{Order: publicOrder(o, byID, s.imageBase)}, nil
}

// UpdateProfile changes the customer's display name, locale and marketing
// choice.
func (s *AccountService) UpdateProfile(ctx context.Context, req *storefrontv1.UpdateProfileRequest) (*storefrontv1.UpdateProfileResponse, error) {
	if _, err := session.Require(ctx); err != nil {
		return nil, err
	}
	if err := checkUpdateProfile(req); err != nil {
		return nil, err
	}
	res, err := s.b.Profiles.UpdateProfile(ctx, &profilesv1.UpdateProfileRequest{
		DisplayName:    req.GetDisplayName(),
		Locale:         req.GetLocale(),
		MarketingOptIn: req.GetMarketingOptIn(),
	})
	if err != nil {
		return nil, fanout.BackendError(ctx, s.logger, "profiles", err)
	}
	return &storefrontv1.UpdateProfileResponse{Profile: publicProfile(res.GetProfile())}, nil
}
