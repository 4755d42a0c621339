package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server"
)

const secret = "secret-db-7"

// assertNoLeak fails if the secret appears in the error, its details or the
// response metadata (headers and trailers) of the call info.
func assertNoLeak(t *testing.T, err error, info *connect.CallInfo) {
	t.Helper()
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q leaks %q", err, secret)
	}
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		for _, d := range ce.Details() {
			if strings.Contains(d.Type+string(d.Value)+string(d.Debug), secret) {
				t.Errorf("error detail %s leaks %q", d.Type, secret)
			}
		}
	}
	if info == nil {
		return
	}
	for what, md := range map[string]*connect.Header{"header": info.ResponseHeader(), "trailer": info.ResponseTrailer()} {
		for name, values := range md.All() {
			for _, v := range values {
				if strings.Contains(name, secret) || strings.Contains(v, secret) {
					t.Errorf("response %s %s: %q leaks %q", what, name, v, secret)
				}
			}
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
	opts []connecthttp.Option
}{
	{name: "connect over HTTP/1.1"},
	{name: "connect JSON over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithProtoJSON()}},
	{name: "gRPC over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithGRPC()}},
	{name: "gRPC-Web over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
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
			wantLog: []string{"lookup via secret-db-7"},
		},
		{
			name: "connect error passes through without its cause", productID: "not-found-with-cause",
			wantCode: connect.CodeNotFound, wantMessage: "no such product",
			wantLog: []string{"no row in secret-db-7"},
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
				client := productClient(httpClient, h.URL(), tr.opts...)

				ctx, info := connect.NewClientContext(t.Context())
				_, err := client.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: tt.productID})
				ce := wantCode(t, err, tt.wantCode)
				if ce.Message() != tt.wantMessage {
					t.Errorf("message %q, want %q", ce.Message(), tt.wantMessage)
				}
				if len(ce.Details()) != 0 {
					t.Errorf("error has %d details, want none", len(ce.Details()))
				}
				assertNoLeak(t, err, info)

				id := info.ResponseHeader().Get(requestid.Header)
				if len(id) != 16 {
					t.Fatalf("error response %s = %q, want a 16-character id", requestid.Header, id)
				}
				if len(tt.wantLog) > 0 {
					if _, ok := logLineWith(h.Logs.String(), append([]string{"request_id=" + id}, tt.wantLog...)...); !ok {
						t.Errorf("no log line with request_id=%s and %q; log:\n%s", id, tt.wantLog, h.Logs.String())
					}
				}

				// The server keeps serving on the same client and connection.
				res, err := client.GetProduct(t.Context(), &storefrontv1.GetProductRequest{ProductId: "p-1"})
				if err != nil {
					t.Fatalf("call after %s failed: %v", tt.productID, err)
				}
				if got := res.GetProduct().GetProductId(); got != "p-1" {
					t.Errorf("product %q, want p-1", got)
				}
			})
		}
	}
}

// TestEdgeSendsConnectErrorForm returns errors that implement
// ConnectError() *connect.Error, as the session layer's verdict does: the
// client gets exactly that connect error (code, message, detail), not the
// error's own text, also when a handler wrapped it.
func TestEdgeSendsConnectErrorForm(t *testing.T) {
	t.Parallel()
	want := (&verdictError{}).ConnectError()
	for _, tr := range errorTransports {
		for _, productID := range []string{"verdict", "wrapped-verdict"} {
			t.Run(tr.name+"/"+productID, func(t *testing.T) {
				t.Parallel()
				h := startServer(t)
				httpClient, _ := http1Client(t)
				if tr.h2c {
					httpClient, _ = h2cClient(t)
				}
				client := productClient(httpClient, h.URL(), tr.opts...)

				ctx, info := connect.NewClientContext(t.Context())
				_, err := client.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: productID})
				ce := wantCode(t, err, want.Code())
				if ce.Message() != want.Message() {
					t.Errorf("message %q, want %q", ce.Message(), want.Message())
				}
				assertNoLeak(t, err, info)
				details := ce.Details()
				if len(details) != 1 {
					t.Fatalf("error has %d details, want 1", len(details))
				}
				got, err := connectproto.UnmarshalErrorDetail(details[0])
				if err != nil {
					t.Fatalf("UnmarshalErrorDetail: %v", err)
				}
				if !proto.Equal(got, wantVerdictDetail) {
					t.Errorf("detail %v, want %v", got, wantVerdictDetail)
				}

				// The verdict's own text, with its wrapping, stays in the log.
				id := info.ResponseHeader().Get(requestid.Header)
				wantLog := []string{"request_id=" + id, "code=unauthenticated", "session store secret-db-7 says: SESSION_END_REASON_SESSION_EXPIRED"}
				if productID == "wrapped-verdict" {
					wantLog = append(wantLog, "load cart from secret-db-7")
				}
				if _, ok := logLineWith(h.Logs.String(), wantLog...); !ok {
					t.Errorf("no log line with %q; log:\n%s", wantLog, h.Logs.String())
				}
			})
		}
	}
}

// TestEdgeRecoversPanics panics in a unary handler and in an interceptor
// around a streaming call: the client gets CodeInternal "internal error",
// the panic value is only in the log, and the listener keeps serving, new
// connections included.
func TestEdgeRecoversPanics(t *testing.T) {
	t.Parallel()
	for _, tr := range errorTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t, server.WithInterceptors(panickyInterceptor))
			httpClient, _ := http1Client(t)
			if tr.h2c {
				httpClient, _ = h2cClient(t)
			}
			client := productClient(httpClient, h.URL(), tr.opts...)

			for _, productID := range []string{"panic", "panic-error"} {
				ctx, info := connect.NewClientContext(t.Context())
				_, err := client.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: productID})
				if ce := wantCode(t, err, connect.CodeInternal); ce.Message() != "internal error" {
					t.Errorf("%s: message %q, want %q", productID, ce.Message(), "internal error")
				}
				assertNoLeak(t, err, info)
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("%s: error %q leaks the panic value", productID, err)
				}
				id := info.ResponseHeader().Get(requestid.Header)
				if _, ok := logLineWith(h.Logs.String(), "request_id="+id, "handler panicked",
					storefrontv1connect.ProductServiceGetProductProcedure, "password=hunter2"); !ok {
					t.Errorf("%s: no log line with request_id=%s and the panic value; log:\n%s", productID, id, h.Logs.String())
				}
			}

			// A panic around a server stream ends the stream the same way.
			ctx, info := connect.NewClientContext(t.Context())
			stream, err := newConnectClient(httpClient, h.URL(), tr.opts...).CallServerStream(ctx, healthWatchSpec, &healthv1.HealthCheckRequest{Service: "panic"})
			if err == nil {
				defer stream.Close()
				var msg healthv1.HealthCheckResponse
				err = stream.Receive(&msg)
				if err == nil {
					t.Fatalf("Watch sent %v, want an error", &msg)
				}
			}
			if ce := wantCode(t, err, connect.CodeInternal); ce.Message() != "internal error" {
				t.Errorf("Watch: message %q, want %q", ce.Message(), "internal error")
			}
			assertNoLeak(t, err, info)
			if _, ok := logLineWith(h.Logs.String(), "handler panicked", healthv1.Health_Watch_FullMethodName, "password=hunter2"); !ok {
				t.Errorf("no log line with the Watch panic; log:\n%s", h.Logs.String())
			}

			// Still serving: on the same client, and on a new connection.
			if _, err := client.GetProduct(t.Context(), &storefrontv1.GetProductRequest{ProductId: "p-1"}); err != nil {
				t.Fatalf("call after the panics failed: %v", err)
			}
			freshClient, _ := http1Client(t)
			if tr.h2c {
				freshClient, _ = h2cClient(t)
			}
			if _, err := productClient(freshClient, h.URL(), tr.opts...).ListProducts(t.Context(), &storefrontv1.ListProductsRequest{}); err != nil {
				t.Fatalf("call on a new connection after the panics failed: %v", err)
			}
			if h.served() {
				t.Fatal("Serve returned after a handler panicked")
			}
			if conn, err := net.Dial("tcp", h.Addr); err != nil {
				t.Errorf("listener refuses connections after the panics: %v", err)
			} else {
				conn.Close()
			}
		})
	}
}

// panickyInterceptor panics around health Watch calls for the service
// "panic", before the handler has sent anything.
func panickyInterceptor(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		if spec.Procedure != healthv1.Health_Watch_FullMethodName {
			return next(ctx, spec, stream)
		}
		return next(ctx, spec, panicOnReceive{stream})
	}
}

type panicOnReceive struct{ connect.ServerStream }

func (s panicOnReceive) Receive(msg any) error {
	if err := s.ServerStream.Receive(msg); err != nil {
		return err
	}
	if req, ok := msg.(*healthv1.HealthCheckRequest); ok && req.GetService() == "panic" {
		panic("watch store " + secret + " password=hunter2")
	}
	return nil
}

// leakyInterceptor fails health calls with a plain error, to check the edge
// interceptor also guards streaming handlers and sits outside the
// interceptors given with WithInterceptors.
func leakyInterceptor(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		switch spec.Procedure {
		case healthv1.Health_Check_FullMethodName:
			return fmt.Errorf("health backend %s unreachable", secret)
		case healthv1.Health_Watch_FullMethodName:
			return fmt.Errorf("watch backend %s unreachable", secret)
		}
		return next(ctx, spec, stream)
	}
}

func TestEdgeErrorsFromInterceptors(t *testing.T) {
	t.Parallel()
	for _, tr := range errorTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t, server.WithInterceptors(leakyInterceptor))
			httpClient, _ := http1Client(t)
			if tr.h2c {
				httpClient, _ = h2cClient(t)
			}
			client := newConnectClient(httpClient, h.URL(), tr.opts...)

			ctx, info := connect.NewClientContext(t.Context())
			err := client.CallUnary(ctx, healthCheckSpec, &healthv1.HealthCheckRequest{}, &healthv1.HealthCheckResponse{})
			if ce := wantCode(t, err, connect.CodeInternal); ce.Message() != "internal error" {
				t.Errorf("unary message %q, want %q", ce.Message(), "internal error")
			}
			assertNoLeak(t, err, info)

			ctx, info = connect.NewClientContext(t.Context())
			stream, err := client.CallServerStream(ctx, healthWatchSpec, &healthv1.HealthCheckRequest{})
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			defer stream.Close()
			var msg healthv1.HealthCheckResponse
			err = stream.Receive(&msg)
			if err == nil {
				t.Fatalf("Watch sent %v, want an error", &msg)
			}
			if ce := wantCode(t, err, connect.CodeInternal); ce.Message() != "internal error" {
				t.Errorf("streaming message %q, want %q", ce.Message(), "internal error")
			}
			assertNoLeak(t, err, info)
			for _, k := range []string{"health backend", "watch backend"} {
				if _, ok := logLineWith(h.Logs.String(), k+" "+secret, "request_id="); !ok {
					t.Errorf("log has no line with %q and a request id:\n%s", k, h.Logs.String())
				}
			}
		})
	}
}

// TestEdgeStripsBackendErrors passes a backend's own error (decoded from the
// wire, with a message, a detail and metadata) straight back from a handler:
// the client sees its code and nothing else, and unavailable for the
// backend's unauthenticated.
func TestEdgeStripsBackendErrors(t *testing.T) {
	t.Parallel()
	// A "backend" whose error the handler returns as it came.
	backendRPC := connect.NewServer()
	storefrontv1connect.RegisterProductServiceHandler(backendRPC, backendProducts{})
	backendMux := http.NewServeMux()
	connecthttp.Mount(backendMux, backendRPC)
	backend := httptest.NewServer(backendMux)
	t.Cleanup(backend.Close)
	upstream := productClient(backend.Client(), backend.URL)

	// The backend's error does carry internals: otherwise this test could
	// not fail.
	ctx, info := connect.NewClientContext(t.Context())
	_, err := upstream.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: "p-1"})
	if ce, ok := errors.AsType[*connect.Error](err); !ok || !ce.IsRemote() || len(ce.Details()) != 1 ||
		!strings.Contains(ce.Message(), secret) || info.ResponseHeader().Get("X-Backend-Host") == "" {
		t.Fatalf("backend fixture error = %v (header %v), want a remote error with a detail, a header and the secret", err, info.ResponseHeader())
	}

	for _, tr := range errorTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			srv, err := server.New(
				server.WithLogger(testLogger(&logs)),
				server.WithService(productService(passThrough{upstream})),
			)
			if err != nil {
				t.Fatal(err)
			}
			httpClient, _ := http1Client(t)
			if tr.h2c {
				httpClient, _ = h2cClient(t)
			}
			client := productClient(httpClient, serve(t, srv), tr.opts...)

			ctx, info := connect.NewClientContext(t.Context())
			_, err = client.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: "p-1"})
			connectErr := wantCode(t, err, connect.CodeNotFound)
			assertNoLeak(t, err, info)
			if connectErr.Message() != "not_found" {
				t.Errorf("message %q, want the code's name only", connectErr.Message())
			}
			if len(connectErr.Details()) != 0 {
				t.Errorf("the backend's %d details reached the client", len(connectErr.Details()))
			}
			for what, md := range map[string]*connect.Header{"header": info.ResponseHeader(), "trailer": info.ResponseTrailer()} {
				if md.Has("X-Backend-Host") {
					t.Errorf("the backend's X-Backend-Host %s reached the client", what)
				}
			}
			id := info.ResponseHeader().Get(requestid.Header)
			if _, ok := logLineWith(logs.String(), "request_id="+id, "a backend's error reached the edge", "no row in secret-db-7"); !ok {
				t.Errorf("the backend's error is not in the log:\n%s", logs.String())
			}

			// A backend refusing the gateway's token is not the browser's
			// session failing: the client sees unavailable, not
			// unauthenticated.
			ctx, info = connect.NewClientContext(t.Context())
			_, err = client.ListProducts(ctx, &storefrontv1.ListProductsRequest{})
			connectErr = wantCode(t, err, connect.CodeUnavailable)
			assertNoLeak(t, err, info)
			if connectErr.Message() != "unavailable" || len(connectErr.Details()) != 0 {
				t.Errorf("error %v with %d details, want the code's name only", connectErr, len(connectErr.Details()))
			}
			id = info.ResponseHeader().Get(requestid.Header)
			if _, ok := logLineWith(logs.String(), "request_id="+id, "code=unauthenticated", "token for secret-db-7 rejected"); !ok {
				t.Errorf("the backend's unauthenticated error is not in the log:\n%s", logs.String())
			}
		})
	}
}

type backendProducts struct {
	storefrontv1connect.UnimplementedProductServiceHandler
}

func (backendProducts) ListProducts(context.Context, *storefrontv1.ListProductsRequest) (*storefrontv1.ListProductsResponse, error) {
	return nil, connect.NewError(connect.CodeUnauthenticated, "token for secret-db-7 rejected")
}

func (backendProducts) GetProduct(ctx context.Context, _ *storefrontv1.GetProductRequest) (*storefrontv1.GetProductResponse, error) {
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		info.ResponseHeader().Set("X-Backend-Host", "secret-db-7.acme.internal")
		info.ResponseTrailer().Set("X-Backend-Query", "select * from secret-db-7")
	}
	err := connect.NewError(connect.CodeNotFound, "no row in secret-db-7.acme.internal")
	if d, derr := connectproto.NewErrorDetail(&storefrontv1.Product{Name: "secret-db-7"}); derr == nil {
		err = err.WithDetail(d)
	}
	return nil, err
}

type passThrough struct {
	upstream storefrontv1connect.ProductServiceClient
}

func (p passThrough) ListProducts(ctx context.Context, req *storefrontv1.ListProductsRequest) (*storefrontv1.ListProductsResponse, error) {
	return p.upstream.ListProducts(ctx, req)
}

func (p passThrough) GetProduct(ctx context.Context, req *storefrontv1.GetProductRequest) (*storefrontv1.GetProductResponse, error) {
	return p.upstream.GetProduct(ctx, req)
}

// TestEdgeRefusesMalformedRequests sends bodies the codecs cannot decode:
// the client gets a client error, not an internal one, and the server
// keeps serving.
func TestEdgeRefusesMalformedRequests(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	httpClient, _ := http1Client(t)
	for _, tt := range []struct {
		name, contentType, body string
	}{
		{name: "invalid binary", contentType: "application/proto", body: "\xff\xff\xff"},
		{name: "invalid JSON", contentType: "application/json", body: `{"productId":`},
	} {
		res, err := httpClient.Post(h.URL()+storefrontv1connect.ProductServiceGetProductProcedure, tt.contentType, strings.NewReader(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"invalid_argument"`) {
			t.Errorf("%s: %d %s, want 400 invalid_argument", tt.name, res.StatusCode, body)
		}
	}
	if _, err := productClient(httpClient, h.URL()).GetProduct(t.Context(), &storefrontv1.GetProductRequest{ProductId: "p-1"}); err != nil {
		t.Fatalf("call after malformed requests failed: %v", err)
	}
}
