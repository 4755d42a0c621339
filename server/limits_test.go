package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/server"
)

const (
	testMaxBodyBytes   = 4 << 10
	testMaxHeaderBytes = 4 << 10
)

var testLimits = server.WithLimits(server.Limits{MaxBodyBytes: testMaxBodyBytes, MaxHeaderBytes: testMaxHeaderBytes})

func TestMaxBodyBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h2c  bool
		opts []connecthttp.Option
	}{
		{name: "connect over HTTP/1.1"},
		{name: "connect over h2c", h2c: true},
		{name: "connect gzip over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithSendGzip()}},
		{name: "gRPC over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithGRPC()}},
		{name: "gRPC gzip over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithGRPC(), connecthttp.WithSendGzip()}},
		{name: "gRPC-Web over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t, testLimits)
			httpClient, _ := http1Client(t)
			if tt.h2c {
				httpClient, _ = h2cClient(t)
			}
			client := productClient(httpClient, h.URL(), tt.opts...)

			// Under the limit: served.
			small := &storefrontv1.ListProductsRequest{Category: strings.Repeat("k", testMaxBodyBytes/2)}
			if _, err := client.ListProducts(t.Context(), small); err != nil {
				t.Fatalf("ListProducts with a %d-byte category: %v", len(small.Category), err)
			}
			// Over the limit: refused before the handler runs, as a
			// mistake no client retries. (A gzipped request is bounded by
			// its decompressed size.)
			big := &storefrontv1.ListProductsRequest{Category: strings.Repeat("k", 64<<10)}
			_, err := client.ListProducts(t.Context(), big)
			wantCode(t, err, connect.CodeInvalidArgument)
			if got := h.Fake.listCalls.Load(); got != 1 {
				t.Errorf("handler ran %d times, want 1 (only for the small request)", got)
			}
		})
	}
}

func TestMaxBodyBytesOnRoutes(t *testing.T) {
	t.Parallel()
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		_, _ = w.Write(body)
	})
	h := startServer(t, testLimits, server.WithHandler("POST /echo", echo))
	tests := []struct {
		name     string
		size     int
		wantCode int
	}{
		{name: "under the limit", size: testMaxBodyBytes / 2, wantCode: http.StatusOK},
		{name: "over the limit", size: 64 << 10, wantCode: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			httpClient, _ := http1Client(t)
			res, err := httpClient.Post(h.URL()+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", tt.size)))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			_, _ = io.Copy(io.Discard, res.Body)
			if res.StatusCode != tt.wantCode {
				t.Errorf("POST /echo with %d bytes = %d, want %d", tt.size, res.StatusCode, tt.wantCode)
			}
		})
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	h := startServer(t, testLimits)
	// net/http allows MaxHeaderBytes plus 4 KiB of slack on HTTP/1.1, and a
	// little per-field overhead on HTTP/2; 32 KiB is well above both.
	bigValue := strings.Repeat("h", 32<<10)

	t.Run("HTTP/1.1 answers 431", func(t *testing.T) {
		t.Parallel()
		httpClient, _ := http1Client(t)
		for _, tt := range []struct {
			name     string
			value    string
			wantCode int
		}{
			{name: "small header", value: "small", wantCode: http.StatusOK},
			{name: "big header", value: bigValue, wantCode: http.StatusRequestHeaderFieldsTooLarge},
		} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.URL()+"/healthz", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Big", tt.value)
			res, err := httpClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantCode {
				t.Errorf("%s: GET /healthz = %d, want %d", tt.name, res.StatusCode, tt.wantCode)
			}
		}
	})

	t.Run("h2c fails", func(t *testing.T) {
		t.Parallel()
		httpClient, _ := h2cClient(t)
		client := productClient(httpClient, h.URL(), connecthttp.WithGRPC())
		ctx, info := connect.NewClientContext(t.Context())
		info.RequestHeader().Set("X-Big", "small")
		if _, err := client.ListProducts(ctx, &storefrontv1.ListProductsRequest{}); err != nil {
			t.Fatalf("call with a small header: %v", err)
		}
		ctx, info = connect.NewClientContext(t.Context())
		info.RequestHeader().Set("X-Big", bigValue)
		if _, err := client.ListProducts(ctx, &storefrontv1.ListProductsRequest{}); err == nil {
			t.Fatal("call with a 32 KiB header succeeded over h2c")
		}
	})
}

// TestServiceMaxBodyBytes gives one service a tighter limit than the
// server's: its calls are bounded by it, the other services' by the server's.
func TestServiceMaxBodyBytes(t *testing.T) {
	t.Parallel()
	const serviceLimit = 1 << 10
	fake := newFakeProducts()
	srv, err := server.New(testLimits, server.WithService(server.Service{
		Register: func(s *connect.Server) {
			storefrontv1connect.RegisterProductServiceHandler(s, fake)
		},
		MaxBodyBytes: serviceLimit,
	}))
	if err != nil {
		t.Fatal(err)
	}
	baseURL := serve(t, srv)
	for _, tr := range errorTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			httpClient, _ := http1Client(t)
			if tr.h2c {
				httpClient, _ = h2cClient(t)
			}
			client := productClient(httpClient, baseURL, tr.opts...)
			if _, err := client.ListProducts(t.Context(), &storefrontv1.ListProductsRequest{Category: strings.Repeat("k", serviceLimit/2)}); err != nil {
				t.Fatalf("ListProducts under the service's limit: %v", err)
			}
			// Over the service's limit, under the server's.
			_, err := client.ListProducts(t.Context(), &storefrontv1.ListProductsRequest{Category: strings.Repeat("k", 2*serviceLimit)})
			wantCode(t, err, connect.CodeInvalidArgument)

			// Health keeps the server's limit: a request of the same size
			// is read, and answered for its unknown service.
			err = newConnectClient(httpClient, baseURL, tr.opts...).CallUnary(t.Context(), healthCheckSpec,
				&healthv1.HealthCheckRequest{Service: strings.Repeat("s", 2*serviceLimit)}, &healthv1.HealthCheckResponse{})
			wantCode(t, err, connect.CodeNotFound)
		})
	}
}
