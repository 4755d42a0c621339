package custodian_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/custodian-bff/custodian/clients"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/benchfloor"
)

// BenchmarkLibraryFloor measures, as BenchmarkPassThrough/canned/get-json
// does and against the same canned orders backend (Connect over the
// gateway's pooled HTTP/1.1 transport), the least a Connect gateway on
// Custodian's libraries does for that call: benchfloor's GetOrder, which
// forwards the caller's bearer token and copies the order. What
// BenchmarkPassThrough costs above this is Custodian's own work (session,
// CSRF, rate limits, request id, headers, access log, trace context,
// breaker, catalog lookup); this much is net/http's and connect-go's.
//
//	go test -run '^$' -bench 'PassThrough/canned|LibraryFloor' -benchmem .
func BenchmarkLibraryFloor(b *testing.B) {
	order := benchOrder(benchProducts())
	backend := startCannedBackend(b, map[string]proto.Message{
		ordersv1connect.OrderServiceGetOrderProcedure: &ordersv1.GetOrderResponse{Order: order},
	})
	httpClient := clients.NewHTTPClient()
	b.Cleanup(httpClient.CloseIdleConnections)
	h := benchfloor.NewHandler(httpClient, benchfloor.Backends{Orders: benchfloor.Backend{URL: backend.URL}})

	const bearer = "Bearer floor-token"
	message := url.QueryEscape(`{"orderId":"` + order.GetOrderId() + `"}`)
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+storefrontv1connect.AccountServiceGetOrderProcedure+"?connect=v1&encoding=json&message="+message, nil)
	req.Header.Set("Authorization", bearer)
	req.Header.Set("Accept-Encoding", "gzip")
	benchServe(b, h, req)
	if auth := backend.lastAuth(ordersv1connect.OrderServiceGetOrderProcedure); auth != bearer {
		b.Fatalf("the orders backend got Authorization %q, want %q", auth, bearer)
	}
	if err := backend.errors(); err != nil {
		b.Error(err)
	}
}
