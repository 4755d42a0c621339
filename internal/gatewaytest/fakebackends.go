package gatewaytest

// In-process fakes of the four Acme backends, for tests that must control
// the answers: every request's headers are recorded, per-test hooks can
// block, fail or refuse a token, and every message they return has each
// internal field (number >= 20) filled with a canary that must never reach
// a browser, as do the headers and trailers they answer with. They
// implement the generated handler interfaces and serve Connect, gRPC and
// gRPC-Web over HTTP/1.1 and h2c on 127.0.0.1. They do not verify tokens:
// they record them, as an echo server would.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/encoding/protojson"
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

// Procedures of the backends, as the fakes record them.
const (
	ProcGetProfile       = profilesv1connect.ProfileServiceGetProfileProcedure
	ProcUpdateProfile    = profilesv1connect.ProfileServiceUpdateProfileProcedure
	ProcListOrders       = ordersv1connect.OrderServiceListOrdersProcedure
	ProcGetOrder         = ordersv1connect.OrderServiceGetOrderProcedure
	ProcCreateOrder      = ordersv1connect.OrderServiceCreateOrderProcedure
	ProcListProducts     = catalogv1connect.CatalogServiceListProductsProcedure
	ProcGetProduct       = catalogv1connect.CatalogServiceGetProductProcedure
	ProcBatchGetProducts = catalogv1connect.CatalogServiceBatchGetProductsProcedure
	ProcGetAccount       = loyaltyv1connect.LoyaltyServiceGetAccountProcedure
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

// FillCanaries fills every field numbered 20 or more of m, and of every
// message nested in m (singular, repeated or map values), with canaries.
func FillCanaries(m proto.Message) {
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
	panic(fmt.Sprintf("FillCanaries: unhandled kind %v of %s", fd.Kind(), fd.FullName()))
}

// canaryNeedles are what a browser-visible byte string must not contain:
// the string prefix, the numbers in decimal (JSON) and as varints (binary).
var canaryNeedles = [][]byte{
	[]byte(canaryPrefix),
	[]byte(canaryDigits),
	protowire.AppendVarint(nil, uint64(canaryInt32)),
	protowire.AppendVarint(nil, uint64(canaryInt64)),
}

// FindCanary returns the first canary in text, with its surroundings, ""
// if there is none.
func FindCanary(text string) string {
	for _, n := range canaryNeedles {
		if i := strings.Index(text, string(n)); i >= 0 {
			end := min(len(text), i+40)
			return fmt.Sprintf("%q at %d (…%q…)", n, i, text[max(0, i-40):end])
		}
	}
	return ""
}

// ErrorText is everything a browser learns from a failed call: the error's
// code, message and details, and the response's headers and trailers that
// info, the call's client CallInfo, holds (nil: none).
func ErrorText(err error, info *connect.CallInfo) string {
	ce := ConnectError(err)
	if ce == nil {
		return ""
	}
	var text strings.Builder
	fmt.Fprintf(&text, "%v %s", ce.Code(), ce.Message())
	if info != nil {
		for k, v := range info.ResponseHeader().All() {
			fmt.Fprintf(&text, " %s: %q", k, v)
		}
		for k, v := range info.ResponseTrailer().All() {
			fmt.Fprintf(&text, " %s: %q", k, v)
		}
	}
	for _, d := range ce.Details() {
		text.WriteString(" " + d.Type + " ")
		text.Write(d.Value)
		text.Write(d.Debug)
		if v, err := connectproto.UnmarshalErrorDetail(d); err == nil {
			if raw, err := protojson.Marshal(v); err == nil {
				text.Write(raw)
			}
		}
	}
	return text.String()
}

// FakeRequest is one request a fake received.
type FakeRequest struct {
	Procedure string
	Header    http.Header
	Token     string // the bearer token, "" without one
}

// FakeHook runs before a fake answers; a non-nil error is the answer.
type FakeHook func(ctx context.Context, r FakeRequest) error

// FakeBackend is one fake service: its listener, its record and its hook.
type FakeBackend struct {
	// Name is the configured backend the fake stands in for.
	Name string
	// URL is where the fake serves.
	URL string

	mu       sync.Mutex
	requests []FakeRequest
	hook     FakeHook
}

// SetHook replaces the fake's hook; nil answers normally.
func (f *FakeBackend) SetHook(h FakeHook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// Fail makes every call fail with a canary error of code from now on.
func (f *FakeBackend) Fail(code connect.Code) {
	f.SetHook(func(context.Context, FakeRequest) error { return CanaryError(code) })
}

// Heal restores normal answers.
func (f *FakeBackend) Heal() { f.SetHook(nil) }

// Reset forgets the requests received so far.
func (f *FakeBackend) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

// Requests returns every request received so far.
func (f *FakeBackend) Requests() []FakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FakeRequest(nil), f.requests...)
}

// Calls returns how many requests for procedure ("" for all) were
// received.
func (f *FakeBackend) Calls(procedure string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if procedure == "" || r.Procedure == procedure {
			n++
		}
	}
	return n
}

// Tokens returns the bearer tokens of the requests for procedure ("" for
// all), in order.
func (f *FakeBackend) Tokens(procedure string) []string {
	var out []string
	for _, r := range f.Requests() {
		if procedure == "" || r.Procedure == procedure {
			out = append(out, r.Token)
		}
	}
	return out
}

// interceptor records each request, then runs the hook. Every answer,
// success or failure, carries canaries in a header and a trailer, which
// must not reach a browser either.
func (f *FakeBackend) interceptor() connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			r := FakeRequest{Procedure: spec.Procedure, Header: http.Header{}}
			info, ok := connect.CallInfoForServerContext(ctx)
			if ok {
				for k, v := range info.RequestHeader().All() {
					r.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
				}
				info.ResponseHeader().Set("X-Backend-Host", canary("header"))
				info.ResponseTrailer().Set("X-Backend-Trailer", canary("trailer"))
			}
			if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				r.Token = tok
			}
			f.mu.Lock()
			f.requests = append(f.requests, r)
			hook := f.hook
			f.mu.Unlock()
			if hook != nil {
				if err := hook(ctx, r); err != nil {
					if info != nil {
						info.ResponseHeader().Set("X-Backend-Error", canary("error-meta"))
						info.ResponseTrailer().Set("X-Backend-Error-Trailer", canary("error-meta"))
					}
					return err
				}
			}
			return next(ctx, spec, stream)
		}
	}
}

// CanaryError is a backend failure whose message and details all carry
// canaries, including a SessionError detail that only the gateway itself
// may issue.
func CanaryError(code connect.Code) *connect.Error {
	err := connect.NewError(code, canary("error-"+code.String())+" at db-7.acme.internal")
	if d, derr := connectproto.NewErrorDetail(&custodianv1.BadRequest{FieldViolations: []*custodianv1.BadRequest_FieldViolation{
		{Field: canary("detail-field"), Description: canary("detail-description")},
	}}); derr == nil {
		err = err.WithDetail(d)
	}
	if d, derr := connectproto.NewErrorDetail(&custodianv1.SessionError{
		Reason:   custodianv1.SessionEndReason_SESSION_END_REASON_SIGNED_OUT,
		LoginUrl: "https://evil.example/" + canary("detail-login-url"),
	}); derr == nil {
		err = err.WithDetail(d)
	}
	return err
}

// FakeSet is the four fakes.
type FakeSet struct {
	Profiles, Orders, Catalog, Loyalty *FakeBackend
}

// All returns the four fakes.
func (s *FakeSet) All() []*FakeBackend {
	return []*FakeBackend{s.Profiles, s.Orders, s.Catalog, s.Loyalty}
}

// ByName returns the fake that stands in for the configured backend name,
// nil for none.
func (s *FakeSet) ByName(name string) *FakeBackend {
	for _, f := range s.All() {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Point makes cfg's backends call the fakes instead of the demo backends.
func (s *FakeSet) Point(cfg *config.Config) {
	for i := range cfg.Backends {
		if f := s.ByName(cfg.Backends[i].Name); f != nil {
			cfg.Backends[i].URL = f.URL
		}
	}
}

// Reset forgets every fake's requests.
func (s *FakeSet) Reset() {
	for _, f := range s.All() {
		f.Reset()
	}
}

// TotalCalls returns the number of requests all fakes received.
func (s *FakeSet) TotalCalls() int {
	n := 0
	for _, f := range s.All() {
		n += f.Calls("")
	}
	return n
}

// StartFakes starts the four fakes; they stop when the test ends.
func StartFakes(t testing.TB) *FakeSet {
	t.Helper()
	return &FakeSet{
		Profiles: startFake(t, "profiles", func(s *connect.Server) { profilesv1connect.RegisterProfileServiceHandler(s, fakeProfiles{}) }),
		Orders:   startFake(t, "orders", func(s *connect.Server) { ordersv1connect.RegisterOrderServiceHandler(s, fakeOrders{}) }),
		Catalog:  startFake(t, "catalog", func(s *connect.Server) { catalogv1connect.RegisterCatalogServiceHandler(s, fakeCatalog{}) }),
		Loyalty:  startFake(t, "loyalty", func(s *connect.Server) { loyaltyv1connect.RegisterLoyaltyServiceHandler(s, fakeLoyalty{}) }),
	}
}

func startFake(t testing.TB, name string, register func(*connect.Server)) *FakeBackend {
	t.Helper()
	f := &FakeBackend{Name: name}
	srv := connect.NewServer(f.interceptor())
	register(srv)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv)
	ln, _ := ListenLoopback(t)
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: mux, Protocols: protocols, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = hs.Close() // cancels handlers still blocked in a hook
		<-done
	})
	f.URL = "http://" + ln.Addr().String()
	return f
}

// NewFakeBackendEnv starts the fakes and a gateway on the demo world (for
// login) whose backends are the fakes.
func NewFakeBackendEnv(t testing.TB, opts ...Option) (*Env, *FakeSet) {
	t.Helper()
	fakes := StartFakes(t)
	e := NewDemoEnv(t, append([]Option{WithConfig(fakes.Point)}, opts...)...)
	return e, fakes
}

// Hooks.

// BlockUntilDone makes a call wait until its caller gives up.
func BlockUntilDone(ctx context.Context, _ FakeRequest) error {
	<-ctx.Done()
	return connect.NewError(connect.CodeCanceled, ctx.Err().Error())
}

// Barrier releases its callers once n have arrived.
type Barrier struct {
	n       int32
	arrived atomic.Int32
	open    chan struct{}
}

// NewBarrier returns a barrier for n callers.
func NewBarrier(n int32) *Barrier { return &Barrier{n: n, open: make(chan struct{})} }

// Wait arrives and waits for the others, or for ctx.
func (b *Barrier) Wait(ctx context.Context) error {
	if b.arrived.Add(1) == b.n {
		close(b.open)
	}
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return connect.NewError(connect.CodeDeadlineExceeded, ctx.Err().Error())
	}
}

// Arrived returns how many callers have arrived.
func (b *Barrier) Arrived() int32 { return b.arrived.Load() }

// OnlyFor applies h to procedure and lets every other call through.
func OnlyFor(procedure string, h FakeHook) FakeHook {
	return func(ctx context.Context, r FakeRequest) error {
		if r.Procedure != procedure {
			return nil
		}
		return h(ctx, r)
	}
}

// RefuseFirstToken answers unauthenticated to the first token it sees, and
// to nothing else.
func RefuseFirstToken() FakeHook {
	var mu sync.Mutex
	var first string
	return func(_ context.Context, r FakeRequest) error {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = r.Token
		}
		if r.Token == first {
			return connect.NewError(connect.CodeUnauthenticated, "invalid bearer token")
		}
		return nil
	}
}

// Handlers. Their answers fill the public fields with plausible data and
// every internal field with canaries.

func answer[M proto.Message](msg M) (M, error) {
	FillCanaries(msg)
	return msg, nil
}

// The fakes' data, as the tests expect it.
var (
	// FakeOrderIDs are the orders ListOrders returns.
	FakeOrderIDs = []string{"o-fake-1", "o-fake-2"}
)

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

func (fakeProfiles) GetProfile(context.Context, *profilesv1.GetProfileRequest) (*profilesv1.GetProfileResponse, error) {
	return answer(&profilesv1.GetProfileResponse{Profile: fakeProfile()})
}

func (fakeProfiles) UpdateProfile(_ context.Context, req *profilesv1.UpdateProfileRequest) (*profilesv1.UpdateProfileResponse, error) {
	p := fakeProfile()
	p.DisplayName, p.Locale, p.MarketingOptIn = req.GetDisplayName(), req.GetLocale(), req.GetMarketingOptIn()
	return answer(&profilesv1.UpdateProfileResponse{Profile: p})
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

func (fakeOrders) ListOrders(context.Context, *ordersv1.ListOrdersRequest) (*ordersv1.ListOrdersResponse, error) {
	return answer(&ordersv1.ListOrdersResponse{
		Orders:        []*ordersv1.Order{fakeOrder(FakeOrderIDs[0], "p-1", "p-2"), fakeOrder(FakeOrderIDs[1], "p-2", "p-3")},
		NextPageToken: "next-page",
	})
}

func (fakeOrders) GetOrder(_ context.Context, req *ordersv1.GetOrderRequest) (*ordersv1.GetOrderResponse, error) {
	return answer(&ordersv1.GetOrderResponse{Order: fakeOrder(req.GetOrderId(), "p-1", "p-3")})
}

func (fakeOrders) CreateOrder(_ context.Context, req *ordersv1.CreateOrderRequest) (*ordersv1.CreateOrderResponse, error) {
	var ids []string
	for _, l := range req.GetLines() {
		ids = append(ids, l.GetProductId())
	}
	return answer(&ordersv1.CreateOrderResponse{Order: fakeOrder("o-"+req.GetIdempotencyKey(), ids...)})
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

func (fakeCatalog) ListProducts(context.Context, *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	return answer(&catalogv1.ListProductsResponse{
		Products:      []*catalogv1.Product{fakeProduct("p-1"), fakeProduct("p-2"), fakeProduct("p-3")},
		NextPageToken: "next-products",
	})
}

func (fakeCatalog) GetProduct(_ context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	return answer(&catalogv1.GetProductResponse{Product: fakeProduct(req.GetProductId())})
}

func (fakeCatalog) BatchGetProducts(_ context.Context, req *catalogv1.BatchGetProductsRequest) (*catalogv1.BatchGetProductsResponse, error) {
	res := &catalogv1.BatchGetProductsResponse{}
	for _, id := range req.GetProductIds() {
		res.Products = append(res.Products, fakeProduct(id))
	}
	return answer(res)
}

type fakeLoyalty struct {
	loyaltyv1connect.UnimplementedLoyaltyServiceHandler
}

func (fakeLoyalty) GetAccount(context.Context, *loyaltyv1.GetAccountRequest) (*loyaltyv1.GetAccountResponse, error) {
	return answer(&loyaltyv1.GetAccountResponse{Account: &loyaltyv1.Account{
		Subject:          "fake-subject",
		Points:           4321,
		Tier:             loyaltyv1.Tier_TIER_SILVER,
		PointsToNextTier: 5679,
	}})
}
