package backends

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect/v2"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Order limits.
const (
	defaultOrderPageSize  = 10
	maxOrderPageSize      = 50
	maxIdempotencyKeyLen  = 64
	maxOrderLines         = 20
	maxOrderLineQuantity  = 99
	orderPageTokenListing = "orders"
)

// orderService is acme.orders.v1.OrderService. The subject always comes from
// the bearer token, and a customer only ever sees their own orders.
type orderService struct {
	products map[string]*catalogv1.Product // read-only price list

	mu        sync.Mutex
	count     int                          // orders placed so far, for ids
	bySubject map[string][]*ordersv1.Order // oldest first
	byID      map[string]*ordersv1.Order
	byKey     map[idempotencyKey]*ordersv1.Order
}

// idempotencyKey scopes a CreateOrder idempotency key to its subject, so one
// customer's key can never return another customer's order.
type idempotencyKey struct {
	subject, key string
}

var _ ordersv1connect.OrderServiceHandler = (*orderService)(nil)

func newOrderService(products []*catalogv1.Product) *orderService {
	s := &orderService{
		products:  make(map[string]*catalogv1.Product, len(products)),
		bySubject: make(map[string][]*ordersv1.Order),
		byID:      make(map[string]*ordersv1.Order),
		byKey:     make(map[idempotencyKey]*ordersv1.Order),
	}
	for _, p := range products {
		s.products[p.GetProductId()] = p
	}
	for _, o := range seedOrders(products) {
		s.addLocked(o)
	}
	return s
}

func (s *orderService) register(srv *connect.Server) {
	ordersv1connect.RegisterOrderServiceHandler(srv, s)
}

// addLocked records a new order. The caller holds s.mu or owns s exclusively.
func (s *orderService) addLocked(o *ordersv1.Order) {
	s.count++
	s.bySubject[o.GetSubject()] = append(s.bySubject[o.GetSubject()], o)
	s.byID[o.GetOrderId()] = o
}

func (s *orderService) ListOrders(
	ctx context.Context,
	req *ordersv1.ListOrdersRequest,
) (*ordersv1.ListOrdersResponse, error) {
	subject, err := requireSubject(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize(), defaultOrderPageSize, maxOrderPageSize)
	if err != nil {
		return nil, err
	}
	token, resumed, err := decodePageToken(req.GetPageToken(), orderPageTokenListing, subject)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	orders := s.bySubject[subject]
	// Pages walk backwards from the newest order. The token holds the index
	// (oldest first) just past the next order to return, which stays valid
	// while new orders are placed between pages.
	end := len(orders)
	if resumed {
		end = min(token.offset, len(orders))
	}
	start := max(end-size, 0)
	res := &ordersv1.ListOrdersResponse{Orders: make([]*ordersv1.Order, 0, end-start)}
	for i := end - 1; i >= start; i-- {
		res.Orders = append(res.Orders, proto.CloneOf(orders[i]))
	}
	if start > 0 {
		res.NextPageToken = pageToken{kind: orderPageTokenListing, filter: subject, offset: start}.encode()
	}
	return res, nil
}

func (s *orderService) GetOrder(
	ctx context.Context,
	req *ordersv1.GetOrderRequest,
) (*ordersv1.GetOrderResponse, error) {
	subject, err := requireSubject(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetOrderId()
	if id == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, "order_id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.byID[id]
	// Another customer's order is reported exactly like one that doesn't
	// exist, so ids can't be probed.
	if !ok || o.GetSubject() != subject {
		return nil, connect.Errorf(connect.CodeNotFound, "order %q not found", id)
	}
	return &ordersv1.GetOrderResponse{Order: proto.CloneOf(o)}, nil
}

func (s *orderService) CreateOrder(
	ctx context.Context,
	req *ordersv1.CreateOrderRequest,
) (*ordersv1.CreateOrderResponse, error) {
	subject, err := requireSubject(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.validateCreate(req); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err.Error()).WithCause(err)
	}
	key := idempotencyKey{subject: subject, key: req.GetIdempotencyKey()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.byKey[key]; ok {
		return &ordersv1.CreateOrderResponse{Order: proto.CloneOf(o)}, nil
	}
	n := s.count + 1
	lines := make([]*ordersv1.OrderLine, len(req.GetLines()))
	for i, l := range req.GetLines() {
		lines[i] = &ordersv1.OrderLine{
			ProductId:      l.GetProductId(),
			Quantity:       l.GetQuantity(),
			UnitPriceMinor: s.products[l.GetProductId()].GetPriceMinor(),
			WarehouseBin:   warehouseBin(n + i),
		}
	}
	o := &ordersv1.Order{
		OrderId:            orderID(n),
		Subject:            subject,
		CreateTime:         timestamppb.New(s.nextCreateTimeLocked(subject)),
		Status:             ordersv1.OrderStatus_ORDER_STATUS_PLACED,
		Lines:              lines,
		TotalMinor:         orderTotal(lines),
		CurrencyCode:       currency,
		FraudScore:         int32(n * 137 % 1000),
		InternalStatusCode: internalStatusCode(ordersv1.OrderStatus_ORDER_STATUS_PLACED),
		StaffNotes:         "Placed online; awaiting payment capture.",
		PaymentReference:   paymentReference(n),
		WarehouseHost:      warehouseHost(n),
	}
	s.addLocked(o)
	s.byKey[key] = o
	return &ordersv1.CreateOrderResponse{Order: proto.CloneOf(o)}, nil
}

// validateCreate checks a CreateOrder request against the catalog and the
// documented limits.
func (s *orderService) validateCreate(req *ordersv1.CreateOrderRequest) error {
	if n := utf8.RuneCountInString(req.GetIdempotencyKey()); n < 1 || n > maxIdempotencyKeyLen {
		return fmt.Errorf("idempotency_key must be 1 to %d characters", maxIdempotencyKeyLen)
	}
	lines := req.GetLines()
	if len(lines) < 1 || len(lines) > maxOrderLines {
		return fmt.Errorf("an order needs 1 to %d lines", maxOrderLines)
	}
	for i, l := range lines {
		if _, ok := s.products[l.GetProductId()]; !ok {
			return fmt.Errorf("lines[%d]: unknown product_id %q", i, l.GetProductId())
		}
		if q := l.GetQuantity(); q < 1 || q > maxOrderLineQuantity {
			return fmt.Errorf("lines[%d]: quantity must be 1 to %d", i, maxOrderLineQuantity)
		}
	}
	return nil
}

// nextCreateTimeLocked returns the creation time of a new order: now, but
// never before the subject's newest order, so "newest first" stays true even
// when the clock is behind the seeded orders' dates.
func (s *orderService) nextCreateTimeLocked(subject string) time.Time {
	now := time.Now().UTC().Truncate(time.Second)
	if orders := s.bySubject[subject]; len(orders) > 0 {
		if last := orders[len(orders)-1].GetCreateTime().AsTime(); !now.After(last) {
			return last.Add(time.Second)
		}
	}
	return now
}
