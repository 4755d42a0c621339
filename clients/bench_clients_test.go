package clients_test

// Benchmarks of one unary backend call through a generated client, with
// the backend's transport an in-memory http.RoundTripper that answers a
// pre-encoded Connect (or gRPC) response: the client side of a backend call
// (connect-go's client, the outbound interceptor, the breaker, the token
// policy, the request id and trace context headers) without the network.
// The caller's context carries a request id and a span, as a gateway
// call's does. "connect-go" is the same call on a bare connect.Client,
// without this package; "roundtripper" is the fake transport alone and
// "proto.Unmarshal" decoding the answer, whose allocations every other
// line includes.
//
//	go test -run '^$' -bench . -benchmem ./clients/

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custodian-bff/custodian/clients"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
)

const benchBackendURL = "http://orders.acme.internal:8080"

// benchBackendOrder is the orders backend's answer for o-1001: five lines
// and the backend's internal fields, as the demo's orders backend has them.
func benchBackendOrder() *ordersv1.GetOrderResponse {
	o := &ordersv1.Order{
		OrderId:            "o-1001",
		Subject:            "alice",
		CreateTime:         timestamppb.New(time.Date(2026, time.October, 2, 9, 37, 0, 0, time.UTC)),
		Status:             ordersv1.OrderStatus_ORDER_STATUS_DELIVERED,
		CurrencyCode:       "EUR",
		FraudScore:         137,
		InternalStatusCode: "FUL-400-POD-OK",
		StaffNotes:         "Address verified manually by support (agent jdv).",
		PaymentReference:   "psp_ch_9e3779b1",
		WarehouseHost:      "wh-lyon-2.acme.internal",
	}
	for i, l := range []struct {
		id    string
		price int64
	}{{"p-0006", 1800}, {"p-0013", 2200}, {"p-0020", 5900}, {"p-0003", 2450}, {"p-0010", 11900}} {
		q := int32(1 + i%3)
		o.Lines = append(o.Lines, &ordersv1.OrderLine{ProductId: l.id, Quantity: q, UnitPriceMinor: l.price, WarehouseBin: "B-08-04"})
		o.TotalMinor += l.price * int64(q)
	}
	return &ordersv1.GetOrderResponse{Order: o}
}

// benchRoundTripper answers every request with one pre-encoded unary
// answer, in the Connect protocol or, when grpc, in gRPC's (enveloped,
// status in the trailers), and keeps the last request's header.
type benchRoundTripper struct {
	body []byte
	grpc bool
	last atomic.Pointer[http.Request]
}

func newBenchRoundTripper(b *testing.B, answer proto.Message, grpc bool) *benchRoundTripper {
	b.Helper()
	body, err := proto.Marshal(answer)
	if err != nil {
		b.Fatal(err)
	}
	if grpc {
		// The envelope: no compression flag, then the length.
		body = append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(body))), body...)
	}
	return &benchRoundTripper{body: body, grpc: grpc}
}

func (rt *benchRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	rt.last.Store(req)
	res := &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body:          io.NopCloser(bytes.NewReader(rt.body)),
		ContentLength: int64(len(rt.body)),
		Request:       req,
	}
	if rt.grpc {
		res.Proto, res.ProtoMajor, res.ProtoMinor = "HTTP/2.0", 2, 0
		res.Header = http.Header{"Content-Type": {"application/grpc"}}
		res.Trailer = http.Header{"Grpc-Status": {"0"}}
		res.ContentLength = -1
	} else {
		res.Header = http.Header{"Content-Type": {"application/proto"}}
	}
	return res, nil
}

// benchTokenEndpoint is a provider's token endpoint that issues one
// client-credentials token for an hour, and counts the requests.
type benchTokenEndpoint struct{ requests atomic.Int64 }

func (e *benchTokenEndpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	e.requests.Add(1)
	_ = req.Body.Close()
	body := `{"access_token":"client-token-` + strings.Repeat("c", 600) + `","token_type":"Bearer","expires_in":3600}`
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: req,
	}, nil
}

// benchUserTokens hands out one access token of a JWT's size.
type benchUserTokens struct{ token string }

func (u benchUserTokens) AccessToken(context.Context) (string, error) { return u.token, nil }
func (u benchUserTokens) ExchangedToken(context.Context, string) (string, error) {
	return u.token, nil
}
func (u benchUserTokens) RenewAccessToken(context.Context, string) (string, error) {
	return u.token, nil
}
func (u benchUserTokens) RenewExchangedToken(context.Context, string, string) (string, error) {
	return u.token, nil
}
func (benchUserTokens) Reject(context.Context) error {
	return connect.NewError(connect.CodeUnauthenticated, "rejected")
}

// benchCallContext returns a gateway call's context: a request id and a
// server span of the gateway's.
func benchCallContext(b *testing.B) context.Context {
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("bench").Start(requestid.NewContext(context.Background(), "abcdefghijklmnop"), "GetOrder")
	b.Cleanup(func() { span.End() })
	return ctx
}

func BenchmarkBackendCall(b *testing.B) {
	ctx := benchCallContext(b)
	want := benchBackendOrder()
	userToken := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0." + strings.Repeat("A", 620) + "." + strings.Repeat("s", 342)
	idp := &benchTokenEndpoint{}
	creds := clients.ClientCredentials{
		TokenURL:     func(context.Context) (string, error) { return "https://idp.example/oauth2/token", nil },
		ClientID:     "custodian",
		ClientSecret: "secret",
		HTTPClient:   &http.Client{Transport: idp},
	}

	cases := []struct {
		name     string
		protocol clients.Protocol
		token    clients.TokenPolicy
		bare     bool   // a connect.Client without this package
		auth     string // the Authorization header the backend must get
	}{
		{name: "connect-go/connect", bare: true},
		{name: "none/connect", token: clients.TokenNone},
		{name: "client/connect", token: clients.TokenClient, auth: "Bearer client-token-"},
		{name: "user/connect", token: clients.TokenUser, auth: "Bearer " + userToken},
		{name: "connect-go/grpc", protocol: clients.ProtocolGRPC, bare: true},
		{name: "none/grpc", protocol: clients.ProtocolGRPC, token: clients.TokenNone},
		{name: "user/grpc", protocol: clients.ProtocolGRPC, token: clients.TokenUser, auth: "Bearer " + userToken},
	}
	for _, c := range cases {
		rt := newBenchRoundTripper(b, want, c.protocol == clients.ProtocolGRPC)
		httpClient := &http.Client{Transport: rt}
		var client ordersv1connect.OrderServiceClient
		if c.bare {
			var opts []connecthttp.Option
			if c.protocol == clients.ProtocolGRPC {
				opts = append(opts, connecthttp.WithGRPC())
			}
			opts = append(opts, connecthttp.WithCompressors())
			client = ordersv1connect.NewOrderServiceClient(connect.NewClient(connecthttp.NewTransport(httpClient, benchBackendURL, opts...)))
		} else {
			backend, err := clients.New(clients.Spec{Name: "orders", URL: benchBackendURL, Protocol: c.protocol, Token: c.token, Audience: "acme-orders", Timeout: 5 * time.Second},
				clients.WithHTTPClient(httpClient),
				clients.WithClientCredentials(creds),
				clients.WithUserTokens(func(context.Context) clients.UserTokens { return benchUserTokens{token: userToken} }),
			)
			if err != nil {
				b.Fatal(err)
			}
			client = ordersv1connect.NewOrderServiceClient(backend.Client())
		}
		req := &ordersv1.GetOrderRequest{OrderId: "o-1001"}

		res, err := client.GetOrder(ctx, req)
		if err != nil || !proto.Equal(res, want) {
			b.Fatalf("%s: GetOrder = %v, %v; want %v", c.name, res, err, want)
		}
		h := rt.last.Load().Header
		if auth := h.Get("Authorization"); !strings.HasPrefix(auth, c.auth) || (c.auth == "") != (auth == "") {
			b.Fatalf("%s: Authorization %q, want %q...", c.name, auth, c.auth)
		}
		if !c.bare && (h.Get(requestid.Header) != "abcdefghijklmnop" || h.Get("Traceparent") == "") {
			b.Fatalf("%s: request id %q, traceparent %q", c.name, h.Get(requestid.Header), h.Get("Traceparent"))
		}

		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.GetOrder(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if n := idp.requests.Load(); n != 1 {
		b.Errorf("the token endpoint was asked %d times, want once (the token is kept)", n)
	}

	// Decoding the answer, in every line above.
	encoded, err := proto.Marshal(want)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(encoded, new(ordersv1.GetOrderResponse)); err != nil {
				b.Fatal(err)
			}
		}
	})

	// The fake transport's own cost, in every line above.
	rt := newBenchRoundTripper(b, want, false)
	req, err := http.NewRequest(http.MethodPost, benchBackendURL+ordersv1connect.OrderServiceGetOrderProcedure, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("roundtripper", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, _ := rt.RoundTrip(req)
			_ = res.Body.Close()
		}
	})
}
