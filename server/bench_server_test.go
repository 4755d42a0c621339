package server_test

// Benchmarks of the listener's own stack, built with server.New and driven
// through Handler() with a recorder (no connection, so no framing
// inspector: BenchmarkInspector measures that): the request-id
// middleware, the body limits, the route mux, connect-go's handler with the
// server's codecs and its edge interceptor. The service answers GetOrder
// with a fixed order of five lines; "connect-go" is the same service on a
// bare connect.Server mounted on an http.ServeMux, what the server's stack
// is compared with. The request is a signed-in browser's Connect GET
// (nothing in this stack reads the cookie).
//
//	go test -run '^$' -bench . -benchmem ./server/

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server"
)

const benchOrderTarget = "https://shop.example.com" + storefrontv1connect.AccountServiceGetOrderProcedure +
	"?connect=v1&encoding=json&message=%7B%22orderId%22%3A%22o-1001%22%7D"

// benchOrder is an order of five lines as the storefront answers it.
func benchOrder() *storefrontv1.GetOrderResponse {
	eur := func(minor int64) *storefrontv1.Money {
		return &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: minor}
	}
	o := &storefrontv1.Order{
		OrderId:    "o-1001",
		CreateTime: timestamppb.New(time.Date(2026, time.October, 2, 9, 37, 0, 0, time.UTC)),
		Status:     storefrontv1.OrderStatus_ORDER_STATUS_DELIVERED,
	}
	for i, l := range []struct {
		id, name string
		price    int64
	}{
		{"p-0006", "Linen Tea Towels (set of 3)", 1800},
		{"p-0013", "The Patient Gardener", 2200},
		{"p-0020", "Wooden Chess Set", 5900},
		{"p-0003", "Bamboo Cutting Board", 2450},
		{"p-0010", "Cedar Raised Bed 120×60 cm", 11900},
	} {
		q := int32(1 + i%3)
		o.Lines = append(o.Lines, &storefrontv1.OrderLine{
			ProductId: l.id, ProductName: l.name, ImageUrl: "https://img.acme.example/images/" + l.id + ".jpg",
			Quantity: q, UnitPrice: eur(l.price),
		})
		o.Total = eur(o.GetTotal().GetAmountMinor() + l.price*int64(q))
	}
	return &storefrontv1.GetOrderResponse{Order: o}
}

type benchAccount struct {
	storefrontv1connect.UnimplementedAccountServiceHandler
	res *storefrontv1.GetOrderResponse
}

func (a benchAccount) GetOrder(_ context.Context, req *storefrontv1.GetOrderRequest) (*storefrontv1.GetOrderResponse, error) {
	if req.GetOrderId() != a.res.GetOrder().GetOrderId() {
		return nil, connect.NewError(connect.CodeNotFound, "no such order")
	}
	return a.res, nil
}

// benchBrowserRequest returns a signed-in browser's request.
func benchBrowserRequest(method, target string, body []byte) *http.Request {
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, bytes.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.RemoteAddr = "198.51.100.7:51234"
	h := r.Header
	h.Set("Cookie", "__Host-custodian=Q2hhbmdlIG1lIHRvIGEgcmVhbCBzZXNzaW9uIGlkIHA; theme=dark; lang=en")
	h.Set("X-CSRF", "1")
	h.Set("Origin", "https://shop.example.com")
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	h.Set("Accept", "*/*")
	h.Set("Accept-Encoding", "gzip")
	return r
}

// benchDecoded returns the recorded body, gunzipped if need be.
func benchDecoded(b *testing.B, w *httptest.ResponseRecorder) []byte {
	b.Helper()
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w.Body.Bytes()
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// benchBody is a request body that the benchmark rewinds.
type benchBody struct {
	data []byte
	off  int
}

func (b *benchBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (*benchBody) Close() error { return nil }

func BenchmarkServerStack(b *testing.B) {
	want := benchOrder()
	svc := benchAccount{res: want}
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv, err := server.New(
		server.WithService(server.Service{Register: func(s *connect.Server) {
			storefrontv1connect.RegisterAccountServiceHandler(s, svc)
		}}),
		server.WithHandler("GET /account", page),
	)
	if err != nil {
		b.Fatal(err)
	}
	stack := srv.Handler()
	bareRPC := connect.NewServer()
	storefrontv1connect.RegisterAccountServiceHandler(bareRPC, svc)
	bare := http.NewServeMux()
	connecthttp.Mount(bare, bareRPC, connecthttp.WithCompressMinBytes(4<<10))

	binaryReq, err := proto.Marshal(&storefrontv1.GetOrderRequest{OrderId: "o-1001"})
	if err != nil {
		b.Fatal(err)
	}
	newGet := func() *http.Request { return benchBrowserRequest(http.MethodGet, benchOrderTarget, nil) }
	// One body, rewound before each call: reused requests allocate nothing
	// of the benchmark's.
	body := &benchBody{data: binaryReq}
	newPost := func() *http.Request {
		r := benchBrowserRequest(http.MethodPost, "https://shop.example.com"+storefrontv1connect.AccountServiceGetOrderProcedure, binaryReq)
		r.Body = body
		r.Header.Set("Content-Type", "application/proto")
		r.Header.Set("Connect-Protocol-Version", "1")
		return r
	}

	// Each answer checked once.
	for _, h := range []http.Handler{stack, bare} {
		body.off = 0
		w := httptest.NewRecorder()
		h.ServeHTTP(w, newGet())
		got := &storefrontv1.GetOrderResponse{}
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			b.Fatalf("GET: %d %v %s", w.Code, w.Header(), w.Body)
		}
		if err := protojson.Unmarshal(benchDecoded(b, w), got); err != nil || !proto.Equal(got, want) {
			b.Fatalf("GET answered %v (%v), want %v", got, err, want)
		}
		w = httptest.NewRecorder()
		h.ServeHTTP(w, newPost())
		got.Reset()
		if err := proto.Unmarshal(benchDecoded(b, w), got); err != nil || w.Code != http.StatusOK || !proto.Equal(got, want) {
			b.Fatalf("POST: %d, answered %v (%v)", w.Code, got, err)
		}
	}
	w := httptest.NewRecorder()
	stack.ServeHTTP(w, benchBrowserRequest(http.MethodGet, "https://shop.example.com/account", nil))
	if w.Code != http.StatusNoContent || len(w.Header().Get(requestid.Header)) != 16 {
		b.Fatalf("page: %d %v", w.Code, w.Header())
	}

	run := func(h http.Handler, newReq func() *http.Request) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			req := newReq()
			w := httptest.NewRecorder()
			for b.Loop() {
				body.off = 0
				clear(w.HeaderMap)
				w.Body.Reset()
				h.ServeHTTP(w, req)
			}
		}
	}
	b.Run("connect-go/get-json", run(bare, newGet))
	b.Run("server/get-json", run(stack, newGet))
	b.Run("connect-go/post-proto", run(bare, newPost))
	b.Run("server/post-proto", run(stack, newPost))
	b.Run("server/plain-route", run(stack, func() *http.Request {
		return benchBrowserRequest(http.MethodGet, "https://shop.example.com/account", nil)
	}))
}
