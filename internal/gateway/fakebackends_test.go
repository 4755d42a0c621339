package gateway_test

// In-process fakes of the four Acme backends, for the aggregation tests that
// must control the answers: every request's headers are recorded, per-test
// hooks can block, fail or refuse a token, and every message they return has
// each internal field (number >= 20) filled with a canary that must never
// reach a browser. They implement the generated handler interfaces and serve
// Connect, gRPC and gRPC-Web over HTTP/1.1 and h2c on 127.0.0.1. They do not
// verify tokens: they record them.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/config"
)

// Procedures of the backends, as recorded by the fakes.
const (
	procGetProfile       = profilesv1connect.ProfileServiceGetProfileProcedure
	procUpdateProfile    = profilesv1connect.ProfileServiceUpdateProfileProcedure
	procListOrders       = ordersv1connect.OrderServiceListOrdersProcedure
	procGetOrder         = ordersv1connect.OrderServiceGetOrderProcedure
	procCreateOrder      = ordersv1connect.OrderServiceCreateOrderProcedure
	procListProducts     = catalogv1connect.CatalogServiceListProductsProcedure
	procGetProduct       = catalogv1connect.CatalogServiceGetProductProcedure
	procBatchGetProducts = catalogv1connect.CatalogServiceBatchGetProductsProcedure
	procGetAccount       = loyaltyv1connect.LoyaltyServiceGetAccountProcedure
)

// Canaries. Every string canary starts with canaryPrefix; numbers are
// canaryInt32 and canaryInt64, whose decimal forms both contain
// canaryDigits and whose varints are scanned for in binary bodies.
const (
	canaryPrefix = "CANARY-"
	canaryDigits = "987654321"
	canaryInt32  = int32(987654321)
	canaryInt64  = int64(987654321987)
)

var canarySeq atomic.Int64

// canary returns a new unique string marker for what.
func canary(what string) string {
	return fmt.Sprintf("%s%s-%d", canaryPrefix, what, canarySeq.Add(1))
}

// fillCanaries fills every field numbered 20 or more of m, and of every
// message nested in m (singular, repeated or map values), with canaries.
func fillCanaries(m proto.Message) {
	fillMessage(m.ProtoReflect(), false)
}

// fillMessage walks m; all means every field of m is internal (m itself is
// the value of an internal field).
func fillMessage(m protoreflect.Message, all bool) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		internal := all || fd.Number() >= 20
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				m.Get(fd).Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
					fillMessage(v.Message(), internal)
					return true
				})
			}
			if internal {
				mp := m.Mutable(fd).Map()
				key := canaryValue(fd.MapKey(), nil)
				mp.Set(key.MapKey(), canaryValue(fd.MapValue(), mp.NewValue))
			}
		case fd.IsList():
			list := m.Mutable(fd).List()
			if fd.Kind() == protoreflect.MessageKind {
				for j := range list.Len() {
					fillMessage(list.Get(j).Message(), internal)
				}
			}
			if internal {
				for range 2 {
					list.Append(canaryValue(fd, list.NewElement))
				}
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if internal {
				m.Set(fd, canaryValue(fd, func() protoreflect.Value { return protoreflect.ValueOfMessage(m.NewField(fd).Message()) }))
			} else if m.Has(fd) {
				fillMessage(m.Mutable(fd).Message(), false)
			}
		case internal:
			m.Set(fd, canaryValue(fd, nil))
		}
	}
}

// canaryValue returns a canary of fd's kind; newMsg makes an empty message
// value for message kinds.
func canaryValue(fd protoreflect.FieldDescriptor, newMsg func() protoreflect.Value) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(canary(string(fd.Name())))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(canary(string(fd.Name()))))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		return protoreflect.ValueOfEnum(values.Get(values.Len() - 1).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(canaryInt32)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(canaryInt32))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(canaryInt64)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(canaryInt64))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(canaryInt32))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(canaryInt64))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		v := newMsg()
		fillMessage(v.Message(), true)
		return v
	}
	panic(fmt.Sprintf("fillCanaries: unhandled kind %v of %s", fd.Kind(), fd.FullName()))
}

// canaryNeedles are what a browser-visible byte string must not contain:
// the string prefix, the numbers in decimal (JSON) and as varints (binary).
var canaryNeedles = [][]byte{
	[]byte(canaryPrefix),
	[]byte(canaryDigits),
	protowire.AppendVarint(nil, uint64(canaryInt32)),
	protowire.AppendVarint(nil, uint64(canaryInt64)),
}

// findCanary returns the first canary needle in text, "" if none.
func findCanary(text string) string {
	for _, n := range canaryNeedles {
		if i := strings.Index(text, string(n)); i >= 0 {
			end := min(len(text), i+40)
			return fmt.Sprintf("%q at %d (…%q…)", n, i, text[max(0, i-40):end])
		}
	}
	return ""
}

// fakeRequest is one request a fake received.
type fakeRequest struct {
	procedure string
	header    http.Header
	token     string // the bearer token, "" without one
}

// fakeHook runs before a fake answers; a non-nil error is the answer.
type fakeHook func(ctx context.Context, r fakeRequest) error

// fakeBackend is one fake service: its listener, its record and its hook.
type fakeBackend struct {
	name string
	url  string

	mu       sync.Mutex
	requests []fakeRequest
	hook     fakeHook
}

// setHook replaces the fake's hook; nil answers normally.
func (f *fakeBackend) setHook(h fakeHook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// fail makes every call fail with a canary error of code from now on.
func (f *fakeBackend) fail(code connect.Code) {
	f.setHook(func(context.Context, fakeRequest) error { return canaryError(code) })
}

// heal restores normal answers.
func (f *fakeBackend) heal() { f.setHook(nil) }

// reset forgets the requests received so far.
func (f *fakeBackend) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

// all returns every request received so far.
func (f *fakeBackend) all() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

// calls returns how many requests for procedure ("" for all) were received.
func (f *fakeBackend) calls(procedure string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if procedure == "" || r.procedure == procedure {
			n++
		}
	}
	return n
}

// tokens returns the bearer tokens of the requests for procedure, in order.
func (f *fakeBackend) tokens(procedure string) []string {
	var out []string
	for _, r := range f.all() {
		if procedure == "" || r.procedure == procedure {
			out = append(out, r.token)
		}
	}
	return out
}

// interceptor records each request, then runs the hook.
func (f *fakeBackend) interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			r := fakeRequest{procedure: req.Spec().Procedure, header: req.Header().Clone()}
			if tok, ok := strings.CutPrefix(req.Header().Get("Authorization"), "Bearer "); ok {
				r.token = tok
			}
			f.mu.Lock()
			f.requests = append(f.requests, r)
			hook := f.hook
			f.mu.Unlock()
			if hook != nil {
				if err := hook(ctx, r); err != nil {
					return nil, err
				}
			}
			res, err := next(ctx, req)
			if err == nil {
				// Backend headers and trailers must not reach a browser either.
				res.Header().Set("X-Backend-Host", canary("header"))
				res.Trailer().Set("X-Backend-Trailer", canary("trailer"))
			}
			return res, err
		}
	}
}

// canaryError is a backend failure whose message, metadata and details all
// carry canaries, including a SessionError detail that only the gateway
// itself may issue.
func canaryError(code connect.Code) *connect.Error {
	err := connect.NewError(code, errors.New(canary("error-"+code.String())+" at db-7.acme.internal"))
	err.Meta().Set("X-Backend-Error", canary("error-meta"))
	if d, derr := connect.NewErrorDetail(&custodianv1.BadRequest{FieldViolations: []*custodianv1.BadRequest_FieldViolation{
		{Field: canary("detail-field"), Description: canary("detail-description")},
	}}); derr == nil {
		err.AddDetail(d)
	}
	if d, derr := connect.NewErrorDetail(&custodianv1.SessionError{
		Reason:   custodianv1.SessionEndReason_SESSION_END_REASON_SIGNED_OUT,
		LoginUrl: "https://evil.example/" + canary("detail-login-url"),
	}); derr == nil {
		err.AddDetail(d)
	}
	return err
}

// fakeSet is the four fakes.
type fakeSet struct {
	Profiles, Orders, Catalog, Loyalty *fakeBackend
}

func (s *fakeSet) all() []*fakeBackend {
	return []*fakeBackend{s.Profiles, s.Orders, s.Catalog, s.Loyalty}
}

// byName returns the fake that stands in for the configured backend name.
func (s *fakeSet) byName(name string) *fakeBackend {
	for _, f := range s.all() {
		if f.name == name {
			return f
		}
	}
	return nil
}

// point makes cfg's backends call the fakes instead of the demo backends.
func (s *fakeSet) point(cfg *config.Config) {
	for i := range cfg.Backends {
		if f := s.byName(cfg.Backends[i].Name); f != nil {
			cfg.Backends[i].URL = f.url
		}
	}
}

// reset forgets every fake's requests.
func (s *fakeSet) reset() {
	for _, f := range s.all() {
		f.reset()
	}
}

// totalCalls returns the number of requests all fakes received.
func (s *fakeSet) totalCalls() int {
	n := 0
	for _, f := range s.all() {
		n += f.calls("")
	}
	return n
}

// startFakes starts the four fakes; they stop when the test ends.
func startFakes(t *testing.T) *fakeSet {
	t.Helper()
	s := &fakeSet{}
	s.Profiles = startFake(t, "profiles", func(opts ...connect.HandlerOption) (string, http.Handler) {
		return profilesv1connect.NewProfileServiceHandler(fakeProfiles{}, opts...)
	})
	s.Orders = startFake(t, "orders", func(opts ...connect.HandlerOption) (string, http.Handler) {
		return ordersv1connect.NewOrderServiceHandler(fakeOrders{}, opts...)
	})
	s.Catalog = startFake(t, "catalog", func(opts ...connect.HandlerOption) (string, http.Handler) {
		return catalogv1connect.NewCatalogServiceHandler(fakeCatalog{}, opts...)
	})
	s.Loyalty = startFake(t, "loyalty", func(opts ...connect.HandlerOption) (string, http.Handler) {
		return loyaltyv1connect.NewLoyaltyServiceHandler(fakeLoyalty{}, opts...)
	})
	return s
}

func startFake(t *testing.T, name string, mount func(...connect.HandlerOption) (string, http.Handler)) *fakeBackend {
	t.Helper()
	f := &fakeBackend{name: name}
	mux := http.NewServeMux()
	mux.Handle(mount(connect.WithInterceptors(f.interceptor())))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: protocols}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close() // cancels handlers still blocked in a hook
		<-done
	})
	f.url = "http://" + ln.Addr().String()
	return f
}

// newFakeBackendEnv starts the fakes and a gateway on the demo world (for
// login) whose backends are the fakes.
func newFakeBackendEnv(t *testing.T, opts ...envOption) (*env, *fakeSet) {
	t.Helper()
	fakes := startFakes(t)
	e := newDemoEnv(t, append([]envOption{withConfig(fakes.point)}, opts...)...)
	return e, fakes
}

// Hooks.

// blockUntilDone makes a call wait until its caller gives up.
func blockUntilDone(ctx context.Context, _ fakeRequest) error {
	<-ctx.Done()
	return connect.NewError(connect.CodeCanceled, ctx.Err())
}

// barrier releases its callers once n have arrived.
type barrier struct {
	n       int32
	arrived atomic.Int32
	open    chan struct{}
}

func newBarrier(n int32) *barrier { return &barrier{n: n, open: make(chan struct{})} }

// wait arrives and waits for the others, or for ctx.
func (b *barrier) wait(ctx context.Context) error {
	if b.arrived.Add(1) == b.n {
		close(b.open)
	}
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return connect.NewError(connect.CodeDeadlineExceeded, ctx.Err())
	}
}

// onlyFor applies h to procedure and lets every other call through.
func onlyFor(procedure string, h fakeHook) fakeHook {
	return func(ctx context.Context, r fakeRequest) error {
		if r.procedure != procedure {
			return nil
		}
		return h(ctx, r)
	}
}

// refuseFirstToken answers unauthenticated to the first token it sees, and
// to nothing else.
func refuseFirstToken() fakeHook {
	var mu sync.Mutex
	var first string
	return func(_ context.Context, r fakeRequest) error {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = r.token
		}
		if r.token == first {
			return connect.NewError(connect.CodeUnauthenticated, errors.New("invalid bearer token"))
		}
		return nil
	}
}

// Handlers. Their answers fill the public fields with plausible data and
// every internal field with canaries.

func answer[T any](msg *T) *connect.Response[T] {
	fillCanaries(any(msg).(proto.Message))
	return connect.NewResponse(msg)
}

type fakeProfiles struct {
	profilesv1connect.UnimplementedProfileServiceHandler
}

func fakeProfile() *profilesv1.Profile {
	return &profilesv1.Profile{
		Subject:        "fake-subject",
		DisplayName:    "Fake Customer",
		Email:          "fake@example.com",
		AvatarUrl:      "https://avatars.example/fake.png",
		Locale:         "en-GB",
		MarketingOptIn: true,
	}
}

func (fakeProfiles) GetProfile(context.Context, *connect.Request[profilesv1.GetProfileRequest]) (*connect.Response[profilesv1.GetProfileResponse], error) {
	return answer(&profilesv1.GetProfileResponse{Profile: fakeProfile()}), nil
}

func (fakeProfiles) UpdateProfile(_ context.Context, req *connect.Request[profilesv1.UpdateProfileRequest]) (*connect.Response[profilesv1.UpdateProfileResponse], error) {
	p := fakeProfile()
	p.DisplayName, p.Locale, p.MarketingOptIn = req.Msg.GetDisplayName(), req.Msg.GetLocale(), req.Msg.GetMarketingOptIn()
	return answer(&profilesv1.UpdateProfileResponse{Profile: p}), nil
}

type fakeOrders struct {
	ordersv1connect.UnimplementedOrderServiceHandler
}

// fakeOrder returns an order with lines for products.
func fakeOrder(id string, products ...string) *ordersv1.Order {
	o := &ordersv1.Order{
		OrderId:      id,
		Subject:      "fake-subject",
		CreateTime:   timestamppb.New(time.Date(2026, time.October, 2, 9, 30, 0, 0, time.UTC)),
		Status:       ordersv1.OrderStatus_ORDER_STATUS_SHIPPED,
		CurrencyCode: "EUR",
	}
	for i, p := range products {
		o.Lines = append(o.Lines, &ordersv1.OrderLine{ProductId: p, Quantity: int32(i + 1), UnitPriceMinor: 1000})
		o.TotalMinor += int64(i+1) * 1000
	}
	return o
}

// fakeOrderIDs are the orders ListOrders returns.
var fakeOrderIDs = []string{"o-fake-1", "o-fake-2"}

func (fakeOrders) ListOrders(context.Context, *connect.Request[ordersv1.ListOrdersRequest]) (*connect.Response[ordersv1.ListOrdersResponse], error) {
	return answer(&ordersv1.ListOrdersResponse{
		Orders:        []*ordersv1.Order{fakeOrder(fakeOrderIDs[0], "p-1", "p-2"), fakeOrder(fakeOrderIDs[1], "p-2", "p-3")},
		NextPageToken: "next-page",
	}), nil
}

func (fakeOrders) GetOrder(_ context.Context, req *connect.Request[ordersv1.GetOrderRequest]) (*connect.Response[ordersv1.GetOrderResponse], error) {
	return answer(&ordersv1.GetOrderResponse{Order: fakeOrder(req.Msg.GetOrderId(), "p-1", "p-3")}), nil
}

func (fakeOrders) CreateOrder(_ context.Context, req *connect.Request[ordersv1.CreateOrderRequest]) (*connect.Response[ordersv1.CreateOrderResponse], error) {
	var ids []string
	for _, l := range req.Msg.GetLines() {
		ids = append(ids, l.GetProductId())
	}
	return answer(&ordersv1.CreateOrderResponse{Order: fakeOrder("o-"+req.Msg.GetIdempotencyKey(), ids...)}), nil
}

type fakeCatalog struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
}

// fakeProduct returns the product id; its name is "Product " + id.
func fakeProduct(id string) *catalogv1.Product {
	return &catalogv1.Product{
		ProductId:     id,
		Name:          "Product " + id,
		Description:   "A fine " + id,
		Category:      "kitchen",
		PriceMinor:    1000,
		CurrencyCode:  "EUR",
		ImagePath:     "/images/" + id + ".jpg",
		StockQuantity: 3,
	}
}

func (fakeCatalog) ListProducts(context.Context, *connect.Request[catalogv1.ListProductsRequest]) (*connect.Response[catalogv1.ListProductsResponse], error) {
	return answer(&catalogv1.ListProductsResponse{
		Products:      []*catalogv1.Product{fakeProduct("p-1"), fakeProduct("p-2"), fakeProduct("p-3")},
		NextPageToken: "next-products",
	}), nil
}

func (fakeCatalog) GetProduct(_ context.Context, req *connect.Request[catalogv1.GetProductRequest]) (*connect.Response[catalogv1.GetProductResponse], error) {
	return answer(&catalogv1.GetProductResponse{Product: fakeProduct(req.Msg.GetProductId())}), nil
}

func (fakeCatalog) BatchGetProducts(_ context.Context, req *connect.Request[catalogv1.BatchGetProductsRequest]) (*connect.Response[catalogv1.BatchGetProductsResponse], error) {
	res := &catalogv1.BatchGetProductsResponse{}
	for _, id := range req.Msg.GetProductIds() {
		res.Products = append(res.Products, fakeProduct(id))
	}
	return answer(res), nil
}

type fakeLoyalty struct {
	loyaltyv1connect.UnimplementedLoyaltyServiceHandler
}

func (fakeLoyalty) GetAccount(context.Context, *connect.Request[loyaltyv1.GetAccountRequest]) (*connect.Response[loyaltyv1.GetAccountResponse], error) {
	return answer(&loyaltyv1.GetAccountResponse{Account: &loyaltyv1.Account{
		Subject:          "fake-subject",
		Points:           4321,
		Tier:             loyaltyv1.Tier_TIER_SILVER,
		PointsToNextTier: 5679,
	}}), nil
}
