package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server"
)

const secret = "secret-db-7"

// assertNoLeak fails if the secret appears in the error or its metadata
// (response headers and trailers).
func assertNoLeak(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q leaks %q", err, secret)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return
	}
	for name, values := range ce.Meta() {
		for _, v := range values {
			if strings.Contains(name, secret) || strings.Contains(v, secret) {
				t.Errorf("response metadata %s: %q leaks %q", name, v, secret)
			}
		}
	}
	for _, d := range ce.Details() {
		if strings.Contains(string(d.Bytes()), secret) {
			t.Errorf("error detail %s leaks %q", d.Type(), secret)
		}
	}
}

// logLineWith returns the first log line containing every one of subs.
func logLineWith(logs string, subs ...string) (string, bool) {
	for line := range strings.Lines(logs) {
		found := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				found = false
				break
			}
		}
		if found {
			return line, true
		}
	}
	return "", false
}

var errorTransports = []struct {
	name string
	h2c  bool
	opts []connect.ClientOption
}{
	{name: "connect over HTTP/1.1"},
	{name: "gRPC over h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}},
	{name: "gRPC-Web over HTTP/1.1", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
}

func TestEdgeErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		productID   string
		wantCode    connect.Code
		wantMessage string
		// wantLog lists what one log line must hold, besides the request id;
		// empty means the call need not be logged.
		wantLog []string
	}{
		{
			name: "plain error is hidden", productID: "plain-error",
			wantCode: connect.CodeInternal, wantMessage: "internal error",
			wantLog: []string{"dial secret-db-7.acme.internal: refused", storefrontv1connect.ProductServiceGetProductProcedure},
		},
		{
			name: "panic is hidden", productID: "panic",
			wantCode: connect.CodeInternal, wantMessage: "internal error",
			wantLog: []string{"handler panicked", secret},
		},
		{
			name: "connect error passes through", productID: "missing",
			wantCode: connect.CodeNotFound, wantMessage: "product missing does not exist",
		},
		{
			name: "wrapped connect error passes through without the wrapping", productID: "wrapped-not-found",
			wantCode: connect.CodeNotFound, wantMessage: "no such product",
		},
		{
			name: "wrapped deadline becomes DeadlineExceeded", productID: "deadline",
			wantCode: connect.CodeDeadlineExceeded, wantMessage: "deadline exceeded",
		},
	}
	for _, tr := range errorTransports {
		for _, tt := range cases {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				h := startServer(t)
				httpClient, _ := http1Client(t)
				if tr.h2c {
					httpClient, _ = h2cClient(t)
				}
				client := storefrontv1connect.NewProductServiceClient(httpClient, h.URL(), tr.opts...)

				_, err := client.GetProduct(t.Context(), connect.NewRequest(&storefrontv1.GetProductRequest{ProductId: tt.productID}))
				ce := wantCode(t, err, tt.wantCode)
				if ce.Message() != tt.wantMessage {
					t.Errorf("message %q, want %q", ce.Message(), tt.wantMessage)
				}
				assertNoLeak(t, err)

				id := ce.Meta().Get(requestid.Header)
				if len(id) != 16 {
					t.Fatalf("error response %s = %q, want a 16-character id", requestid.Header, id)
				}
				if len(tt.wantLog) > 0 {
					if _, ok := logLineWith(h.Logs.String(), append([]string{"request_id=" + id}, tt.wantLog...)...); !ok {
						t.Errorf("no log line with request_id=%s and %q; log:\n%s", id, tt.wantLog, h.Logs.String())
					}
				}

				// The server keeps serving on the same client and connection.
				res, err := client.GetProduct(t.Context(), connect.NewRequest(&storefrontv1.GetProductRequest{ProductId: "p-1"}))
				if err != nil {
					t.Fatalf("call after %s failed: %v", tt.productID, err)
				}
				if got := res.Msg.GetProduct().GetProductId(); got != "p-1" {
					t.Errorf("product %q, want p-1", got)
				}
			})
		}
	}
}

// leakyInterceptor fails health Watch calls with a plain error, to check the
// edge interceptor also guards streaming handlers and sits outside the
// interceptors given with WithInterceptors.
type leakyInterceptor struct{}

func (leakyInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().Procedure == healthv1.Health_Check_FullMethodName {
			return nil, fmt.Errorf("health backend %s unreachable", secret)
		}
		return next(ctx, req)
	}
}

func (leakyInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (leakyInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if conn.Spec().Procedure == healthv1.Health_Watch_FullMethodName {
			return fmt.Errorf("watch backend %s unreachable", secret)
		}
		return next(ctx, conn)
	}
}

func TestEdgeErrorsFromInterceptors(t *testing.T) {
	t.Parallel()
	for _, tr := range errorTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t, server.WithInterceptors(leakyInterceptor{}))
			httpClient, _ := http1Client(t)
			if tr.h2c {
				httpClient, _ = h2cClient(t)
			}

			check := connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
				httpClient, h.URL()+healthv1.Health_Check_FullMethodName, tr.opts...)
			_, err := check.CallUnary(t.Context(), connect.NewRequest(&healthv1.HealthCheckRequest{}))
			if ce := wantCode(t, err, connect.CodeInternal); ce.Message() != "internal error" {
				t.Errorf("unary message %q, want %q", ce.Message(), "internal error")
			}
			assertNoLeak(t, err)

			watch := connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
				httpClient, h.URL()+healthv1.Health_Watch_FullMethodName, tr.opts...)
			stream, err := watch.CallServerStream(t.Context(), connect.NewRequest(&healthv1.HealthCheckRequest{}))
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			defer stream.Close()
			if stream.Receive() {
				t.Fatalf("Watch sent %v, want an error", stream.Msg())
			}
			err = stream.Err()
			if ce := wantCode(t, err, connect.CodeInternal); ce.Message() != "internal error" {
				t.Errorf("streaming message %q, want %q", ce.Message(), "internal error")
			}
			assertNoLeak(t, err)
			for _, k := range []string{"health backend", "watch backend"} {
				if _, ok := logLineWith(h.Logs.String(), k+" "+secret, "request_id="); !ok {
					t.Errorf("log has no line with %q and a request id:\n%s", k, h.Logs.String())
				}
			}
		})
	}
}

// TestEdgeStripsBackendErrors passes a backend's own error (decoded from the
// wire, with a message, details and metadata) straight back from a handler:
// the client sees its code and nothing else.
func TestEdgeStripsBackendErrors(t *testing.T) {
	t.Parallel()
	// A "backend" whose error the handler returns as it came.
	backendMux := http.NewServeMux()
	backendMux.Handle(storefrontv1connect.NewProductServiceHandler(backendProducts{}))
	backend := httptest.NewServer(backendMux)
	t.Cleanup(backend.Close)
	upstream := storefrontv1connect.NewProductServiceClient(backend.Client(), backend.URL)

	var logs syncBuffer
	srv, err := server.New(
		server.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
			return storefrontv1connect.NewProductServiceHandler(passThrough{upstream}, o...)
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(srv.Handler())
	t.Cleanup(front.Close)
	client := storefrontv1connect.NewProductServiceClient(front.Client(), front.URL)
	_, err = client.GetProduct(t.Context(), connect.NewRequest(&storefrontv1.GetProductRequest{ProductId: "p-1"}))
	var connectErr *connect.Error
	if !errors.As(err, &connectErr) || connectErr.Code() != connect.CodeNotFound {
		t.Fatalf("got %v, want not_found", err)
	}
	text := connectErr.Message() + fmt.Sprint(connectErr.Meta()) + fmt.Sprint(len(connectErr.Details()))
	if strings.Contains(text, "secret-db-7") || strings.Contains(text, "X-Backend-Host") || len(connectErr.Details()) != 0 {
		t.Fatalf("backend internals reached the client: %q", text)
	}
	if !strings.Contains(logs.String(), "secret-db-7") {
		t.Error("the backend's error is not in the log")
	}
}

type backendProducts struct {
	storefrontv1connect.UnimplementedProductServiceHandler
}

func (backendProducts) GetProduct(context.Context, *connect.Request[storefrontv1.GetProductRequest]) (*connect.Response[storefrontv1.GetProductResponse], error) {
	err := connect.NewError(connect.CodeNotFound, errors.New("no row in secret-db-7.acme.internal"))
	err.Meta().Set("X-Backend-Host", "secret-db-7.acme.internal")
	if d, derr := connect.NewErrorDetail(&storefrontv1.Product{Name: "secret-db-7"}); derr == nil {
		err.AddDetail(d)
	}
	return nil, err
}

type passThrough struct {
	upstream storefrontv1connect.ProductServiceClient
}

func (p passThrough) ListProducts(ctx context.Context, req *connect.Request[storefrontv1.ListProductsRequest]) (*connect.Response[storefrontv1.ListProductsResponse], error) {
	return p.upstream.ListProducts(ctx, req)
}

func (p passThrough) GetProduct(ctx context.Context, req *connect.Request[storefrontv1.GetProductRequest]) (*connect.Response[storefrontv1.GetProductResponse], error) {
	return p.upstream.GetProduct(ctx, connect.NewRequest(req.Msg))
}
