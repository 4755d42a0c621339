package backends_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	"google.golang.org/protobuf/proto"
)

func listOrdersPage(t *testing.T, c clients, token string, size int32, pageToken string) *ordersv1.ListOrdersResponse {
	t.Helper()
	res, err := c.orders.ListOrders(bearer(t.Context(), token), &ordersv1.ListOrdersRequest{PageSize: size, PageToken: pageToken})
	if err != nil {
		t.Fatalf("ListOrders(page_size %d): %v", size, err)
	}
	return res
}

// listAllOrders walks every page and fails if a page is larger than asked.
func listAllOrders(t *testing.T, c clients, token string, size int32) []*ordersv1.Order {
	t.Helper()
	limit := int(size)
	if limit == 0 {
		limit = 10
	}
	var orders []*ordersv1.Order
	pageToken := ""
	for range 100 {
		page := listOrdersPage(t, c, token, size, pageToken)
		if len(page.GetOrders()) > limit {
			t.Fatalf("page of %d orders, want at most %d", len(page.GetOrders()), limit)
		}
		orders = append(orders, page.GetOrders()...)
		if pageToken = page.GetNextPageToken(); pageToken == "" {
			return orders
		}
	}
	t.Fatal("paging does not end")
	return nil
}

func TestListOrders(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	catalogToken := idp.token(t, "alice", set.Catalog.Audience())
	subjects := []struct {
		subject string
		want    int
	}{
		{"alice", 12},
		{"bob", 3},
		{"carol", 0}, // a valid customer without orders
	}
	for _, p := range protocols(t) {
		c := newClients(set, p)
		catalog, err := c.catalog.ListProducts(bearer(t.Context(), catalogToken), &catalogv1.ListProductsRequest{PageSize: 100})
		wantCode(t, err, 0)
		prices := make(map[string]int64)
		for _, prod := range catalog.GetProducts() {
			prices[prod.GetProductId()] = prod.GetPriceMinor()
		}
		for _, s := range subjects {
			for _, size := range []int32{0, 1, 2, 5, 12, 50} {
				t.Run(fmt.Sprintf("%s/%s/page_size_%d", p.name, s.subject, size), func(t *testing.T) {
					t.Parallel()
					orders := listAllOrders(t, c, idp.token(t, s.subject, set.Orders.Audience()), size)
					if len(orders) != s.want {
						t.Fatalf("got %d orders, want %d", len(orders), s.want)
					}
					seen := make(map[string]bool)
					statuses := make(map[ordersv1.OrderStatus]bool)
					for i, o := range orders {
						id := o.GetOrderId()
						if seen[id] {
							t.Errorf("order %s listed twice", id)
						}
						seen[id] = true
						statuses[o.GetStatus()] = true
						if o.GetSubject() != s.subject {
							t.Errorf("order %s belongs to %q", id, o.GetSubject())
						}
						if i > 0 && !o.GetCreateTime().AsTime().Before(orders[i-1].GetCreateTime().AsTime()) {
							t.Errorf("order %s is not older than %s", id, orders[i-1].GetOrderId())
						}
						checkOrder(t, o, prices)
					}
					if s.want > 3 && len(statuses) < 3 {
						t.Errorf("statuses %v are not varied", statuses)
					}
				})
			}
		}
	}
}

// checkOrder checks an order's lines against the catalog's prices, its total
// and that its internal fields are filled.
func checkOrder(t *testing.T, o *ordersv1.Order, prices map[string]int64) {
	t.Helper()
	id := o.GetOrderId()
	if len(o.GetLines()) == 0 {
		t.Errorf("order %s has no lines", id)
	}
	var total int64
	for _, l := range o.GetLines() {
		price, ok := prices[l.GetProductId()]
		if !ok || l.GetUnitPriceMinor() != price {
			t.Errorf("order %s: %s at %d, catalog price %d (known %v)", id, l.GetProductId(), l.GetUnitPriceMinor(), price, ok)
		}
		if l.GetQuantity() < 1 || l.GetWarehouseBin() == "" {
			t.Errorf("order %s: line %v lacks quantity or warehouse_bin", id, l)
		}
		total += l.GetUnitPriceMinor() * int64(l.GetQuantity())
	}
	if o.GetTotalMinor() != total || o.GetCurrencyCode() != "EUR" {
		t.Errorf("order %s total = %d %s, want %d EUR", id, o.GetTotalMinor(), o.GetCurrencyCode(), total)
	}
	if o.GetStatus() == ordersv1.OrderStatus_ORDER_STATUS_UNSPECIFIED || o.GetCreateTime() == nil {
		t.Errorf("order %s lacks status or create_time", id)
	}
	if o.GetFraudScore() == 0 || o.GetInternalStatusCode() == "" || o.GetStaffNotes() == "" ||
		o.GetPaymentReference() == "" || !strings.HasSuffix(o.GetWarehouseHost(), ".acme.internal") {
		t.Errorf("order %s lacks internal fields: %v", id, o)
	}
}

func TestGetOrder(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	alice := idp.token(t, "alice", set.Orders.Audience())
	bob := idp.token(t, "bob", set.Orders.Audience())

	for _, p := range protocols(t) {
		c := newClients(set, p)
		aliceOrders := listAllOrders(t, c, alice, 50)
		bobOrders := listAllOrders(t, c, bob, 50)
		cases := []struct {
			name  string
			token string
			id    string
			want  connect.Code
			order *ordersv1.Order
		}{
			{name: "alice's newest", token: alice, id: aliceOrders[0].GetOrderId(), order: aliceOrders[0]},
			{name: "alice's oldest", token: alice, id: aliceOrders[11].GetOrderId(), order: aliceOrders[11]},
			{name: "bob's own", token: bob, id: bobOrders[1].GetOrderId(), order: bobOrders[1]},
			{name: "bob asks for alice's", token: bob, id: aliceOrders[0].GetOrderId(), want: connect.CodeNotFound},
			{name: "alice asks for bob's", token: alice, id: bobOrders[0].GetOrderId(), want: connect.CodeNotFound},
			{name: "unknown", token: alice, id: "o-9999", want: connect.CodeNotFound},
			{name: "empty id", token: alice, id: "", want: connect.CodeInvalidArgument},
		}
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				res, err := c.orders.GetOrder(bearer(t.Context(), tc.token), &ordersv1.GetOrderRequest{OrderId: tc.id})
				wantCode(t, err, tc.want)
				if tc.order != nil && !proto.Equal(res.GetOrder(), tc.order) {
					t.Errorf("got %v, want %v", res.GetOrder(), tc.order)
				}
			})
		}
	}
}

func TestListOrdersErrors(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	alice := idp.token(t, "alice", set.Orders.Audience())
	bob := idp.token(t, "bob", set.Orders.Audience())
	catalogToken := idp.token(t, "alice", set.Catalog.Audience())

	for _, p := range protocols(t) {
		c := newClients(set, p)
		alicePage := listOrdersPage(t, c, alice, 5, "")
		catalogPage, err := c.catalog.ListProducts(bearer(t.Context(), catalogToken), &catalogv1.ListProductsRequest{PageSize: 1})
		wantCode(t, err, 0)
		cases := []struct {
			name  string
			token string
			req   *ordersv1.ListOrdersRequest
		}{
			{"page size too large", alice, &ordersv1.ListOrdersRequest{PageSize: 51}},
			{"negative page size", alice, &ordersv1.ListOrdersRequest{PageSize: -5}},
			{"garbage page token", alice, &ordersv1.ListOrdersRequest{PageToken: "%%%"}},
			{"base64 garbage page token", alice, &ordersv1.ListOrdersRequest{PageToken: "aGVsbG8"}},
			{"alice's page token used by bob", bob, &ordersv1.ListOrdersRequest{PageToken: alicePage.GetNextPageToken()}},
			{"catalog page token", alice, &ordersv1.ListOrdersRequest{PageToken: catalogPage.GetNextPageToken()}},
		}
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				_, err := c.orders.ListOrders(bearer(t.Context(), tc.token), tc.req)
				wantCode(t, err, connect.CodeInvalidArgument)
			})
		}
	}
}

// TestListOrdersPagingAcrossCreate shows that placing an order between pages
// neither repeats nor skips an order of the listing in progress.
func TestListOrdersPagingAcrossCreate(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	alice := idp.token(t, "alice", set.Orders.Audience())
	c := newClients(set, protocols(t)[1])

	before := listAllOrders(t, c, alice, 50)
	first := listOrdersPage(t, c, alice, 5, "")
	_, err := c.orders.CreateOrder(bearer(t.Context(), alice), &ordersv1.CreateOrderRequest{
		IdempotencyKey: "between-pages",
		Lines:          []*ordersv1.CreateOrderLine{{ProductId: "p-0005", Quantity: 1}},
	})
	wantCode(t, err, 0)
	walked := first.GetOrders()
	for pageToken := first.GetNextPageToken(); pageToken != ""; {
		page := listOrdersPage(t, c, alice, 5, pageToken)
		walked = append(walked, page.GetOrders()...)
		pageToken = page.GetNextPageToken()
	}
	if !slices.EqualFunc(walked, before, func(a, b *ordersv1.Order) bool { return proto.Equal(a, b) }) {
		t.Errorf("listing across a CreateOrder = %v, want %v", orderIDs(walked), orderIDs(before))
	}
}

func orderIDs(orders []*ordersv1.Order) []string {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.GetOrderId()
	}
	return ids
}

func TestCreateOrderValidation(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	alice := idp.token(t, "alice", set.Orders.Audience())
	line := func(id string, q int32) *ordersv1.CreateOrderLine {
		return &ordersv1.CreateOrderLine{ProductId: id, Quantity: q}
	}
	tooMany := make([]*ordersv1.CreateOrderLine, 21)
	for i := range tooMany {
		tooMany[i] = line(fmt.Sprintf("p-%04d", i%24+1), 1)
	}
	cases := []struct {
		name  string
		key   string
		lines []*ordersv1.CreateOrderLine
	}{
		{"missing idempotency key", "", []*ordersv1.CreateOrderLine{line("p-0001", 1)}},
		{"idempotency key too long", strings.Repeat("k", 65), []*ordersv1.CreateOrderLine{line("p-0001", 1)}},
		{"no lines", "no-lines", nil},
		{"21 lines", "too-many-lines", tooMany},
		{"unknown product", "unknown-product", []*ordersv1.CreateOrderLine{line("p-0001", 1), line("p-9999", 1)}},
		{"empty product id", "empty-product", []*ordersv1.CreateOrderLine{line("", 1)}},
		{"quantity 0", "quantity-zero", []*ordersv1.CreateOrderLine{line("p-0001", 0)}},
		{"negative quantity", "quantity-negative", []*ordersv1.CreateOrderLine{line("p-0001", -3)}},
		{"quantity 100", "quantity-100", []*ordersv1.CreateOrderLine{line("p-0001", 100)}},
	}
	for _, p := range protocols(t) {
		c := newClients(set, p)
		t.Run(p.name, func(t *testing.T) {
			t.Run("rejected", func(t *testing.T) {
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						t.Parallel()
						_, err := c.orders.CreateOrder(bearer(t.Context(), alice), &ordersv1.CreateOrderRequest{IdempotencyKey: tc.key, Lines: tc.lines})
						wantCode(t, err, connect.CodeInvalidArgument)
					})
				}
			})
			if n := len(listAllOrders(t, c, alice, 50)); n != 12 {
				t.Errorf("rejected requests left %d orders, want the 12 seeded", n)
			}
		})
	}

	// The limits themselves are accepted.
	c := newClients(set, protocols(t)[0])
	twenty := tooMany[:20]
	res, err := c.orders.CreateOrder(bearer(t.Context(), alice), &ordersv1.CreateOrderRequest{
		IdempotencyKey: strings.Repeat("k", 64),
		Lines:          append(slices.Clone(twenty[:19]), line("p-0024", 99)),
	})
	wantCode(t, err, 0)
	if n := len(res.GetOrder().GetLines()); n != 20 {
		t.Errorf("order has %d lines, want 20", n)
	}
}

func TestCreateOrder(t *testing.T) {
	t.Parallel()
	for i, p := range protocols(t) {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			idp := newTestIDP(t)
			set := startSet(t, idp)
			p := protocols(t)[i] // closed before the Set, so Close needn't wait for idle HTTP/2 clients
			c := newClients(set, p)
			alice := idp.token(t, "alice", set.Orders.Audience())
			bob := idp.token(t, "bob", set.Orders.Audience())
			create := func(token, key string, lines ...*ordersv1.CreateOrderLine) *ordersv1.Order {
				t.Helper()
				res, err := c.orders.CreateOrder(bearer(t.Context(), token), &ordersv1.CreateOrderRequest{IdempotencyKey: key, Lines: lines})
				wantCode(t, err, 0)
				return res.GetOrder()
			}

			first := create(alice, "checkout-7f2a",
				&ordersv1.CreateOrderLine{ProductId: "p-0001", Quantity: 2},
				&ordersv1.CreateOrderLine{ProductId: "p-0013", Quantity: 1})
			if first.GetOrderId() != "o-1016" || first.GetSubject() != "alice" ||
				first.GetStatus() != ordersv1.OrderStatus_ORDER_STATUS_PLACED {
				t.Errorf("new order = %s for %s, %v; want o-1016 for alice, PLACED", first.GetOrderId(), first.GetSubject(), first.GetStatus())
			}
			if want := int64(2*4990 + 2200); first.GetTotalMinor() != want {
				t.Errorf("total = %d, want %d", first.GetTotalMinor(), want)
			}
			if first.GetPaymentReference() == "" || first.GetWarehouseHost() == "" || first.GetLines()[0].GetUnitPriceMinor() != 4990 {
				t.Errorf("new order lacks internal fields or prices: %v", first)
			}

			// The same key, even with other lines, returns the first order.
			again := create(alice, "checkout-7f2a", &ordersv1.CreateOrderLine{ProductId: "p-0020", Quantity: 9})
			if !proto.Equal(again, first) {
				t.Errorf("retry returned %v, want %v", again, first)
			}
			second := create(alice, "checkout-8b3c", &ordersv1.CreateOrderLine{ProductId: "p-0020", Quantity: 1})
			if second.GetOrderId() != "o-1017" {
				t.Errorf("second order id = %s, want o-1017", second.GetOrderId())
			}
			// Keys are per subject: bob's identical key places bob's own order.
			bobs := create(bob, "checkout-7f2a", &ordersv1.CreateOrderLine{ProductId: "p-0008", Quantity: 3})
			if bobs.GetOrderId() != "o-1018" || bobs.GetSubject() != "bob" {
				t.Errorf("bob's order = %s for %s, want o-1018 for bob", bobs.GetOrderId(), bobs.GetSubject())
			}

			aliceOrders := listAllOrders(t, c, alice, 0)
			if got := orderIDs(aliceOrders[:2]); !slices.Equal(got, []string{"o-1017", "o-1016"}) || len(aliceOrders) != 14 {
				t.Errorf("alice's orders start %v (of %d), want [o-1017 o-1016] of 14", got, len(aliceOrders))
			}
			if n := len(listAllOrders(t, c, bob, 0)); n != 4 {
				t.Errorf("bob has %d orders, want 4", n)
			}
			if n := set.Orders.Calls(ordersv1connect.OrderServiceCreateOrderProcedure); n != 4 {
				t.Errorf("Calls(CreateOrder) = %d, want 4", n)
			}
		})
	}
}

func TestCreateOrderConcurrentRetries(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	c := newClients(set, protocols(t)[1])
	alice := idp.token(t, "alice", set.Orders.Audience())

	const retries = 16
	ids := make([]string, retries)
	var wg sync.WaitGroup
	for i := range retries {
		wg.Go(func() {
			res, err := c.orders.CreateOrder(bearer(t.Context(), alice), &ordersv1.CreateOrderRequest{
				IdempotencyKey: "double-click",
				Lines:          []*ordersv1.CreateOrderLine{{ProductId: "p-0019", Quantity: 1}},
			})
			if err != nil {
				t.Errorf("CreateOrder: %v", err)
				return
			}
			ids[i] = res.GetOrder().GetOrderId()
		})
	}
	wg.Wait()
	if ids[0] == "" || slices.ContainsFunc(ids, func(id string) bool { return id != ids[0] }) {
		t.Errorf("concurrent retries got order ids %v, want one id", ids)
	}
	if n := len(listAllOrders(t, c, alice, 50)); n != 13 {
		t.Errorf("alice has %d orders, want 13", n)
	}
}
