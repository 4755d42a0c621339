package server_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
)

func TestHealthCheck(t *testing.T) {
	t.Parallel()
	transports := []struct {
		name string
		h2c  bool
		opts []connecthttp.Option
	}{
		{name: "connect over HTTP/1.1"},
		{name: "connect GET over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithHTTPGet()}},
		{name: "gRPC over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithGRPC()}},
		{name: "gRPC-Web over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	}
	services := []struct {
		name     string
		service  string
		wantCode connect.Code // 0: success with SERVING
	}{
		{name: "whole server", service: ""},
		{name: "registered service", service: storefrontv1connect.ProductServiceName},
		{name: "unknown service", service: "acme.storefront.v1.NoSuchService", wantCode: connect.CodeNotFound},
		{name: "unregistered generated service", service: storefrontv1connect.AccountServiceName, wantCode: connect.CodeNotFound},
	}
	h := startServer(t)
	for _, tr := range transports {
		for _, svc := range services {
			t.Run(tr.name+"/"+svc.name, func(t *testing.T) {
				t.Parallel()
				httpClient, _ := http1Client(t)
				if tr.h2c {
					httpClient, _ = h2cClient(t)
				}
				client := newConnectClient(httpClient, h.URL(), tr.opts...)
				var res healthv1.HealthCheckResponse
				err := client.CallUnary(t.Context(), healthCheckSpec, &healthv1.HealthCheckRequest{Service: svc.service}, &res)
				if svc.wantCode != 0 {
					wantCode(t, err, svc.wantCode)
					return
				}
				if err != nil {
					t.Fatalf("Check(%q): %v", svc.service, err)
				}
				if got := res.GetStatus(); got != healthv1.HealthCheckResponse_SERVING {
					t.Errorf("Check(%q) = %v, want SERVING", svc.service, got)
				}
			})
		}
	}
}

func TestHealthWatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h2c  bool
		opts []connecthttp.Option
	}{
		{name: "gRPC over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithGRPC()}},
		{name: "gRPC-Web over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
		{name: "connect over HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t)
			httpClient, _ := http1Client(t)
			if tt.h2c {
				httpClient, _ = h2cClient(t)
			}
			ctx, info := connect.NewClientContext(t.Context())
			stream, err := newConnectClient(httpClient, h.URL(), tt.opts...).CallServerStream(ctx, healthWatchSpec, &healthv1.HealthCheckRequest{
				Service: storefrontv1connect.ProductServiceName,
			})
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			defer stream.Close()

			var msg healthv1.HealthCheckResponse
			if err := stream.Receive(&msg); err != nil {
				t.Fatalf("Watch ended before its first message: %v", err)
			}
			if got := msg.GetStatus(); got != healthv1.HealthCheckResponse_SERVING {
				t.Fatalf("first Watch status %v, want SERVING", got)
			}
			if info.ResponseHeader().Get(requestid.Header) == "" {
				t.Errorf("Watch response has no %s header", requestid.Header)
			}

			h.Stop()
			if err := stream.Receive(&msg); err != nil {
				t.Fatalf("Watch ended without reporting NOT_SERVING: %v", err)
			}
			if got := msg.GetStatus(); got != healthv1.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("Watch status after shutdown %v, want NOT_SERVING", got)
			}
			err = stream.Receive(&msg)
			if err == nil {
				t.Fatalf("Watch sent %v after NOT_SERVING, want the stream to end", &msg)
			}
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Watch ended with %v, want a clean end", err)
			}
			if err := h.Wait(); err != nil {
				t.Fatalf("Serve = %v, want nil (an open Watch must not block the drain)", err)
			}
		})
	}
}

func TestHealthWatchUnknownService(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	httpClient, _ := h2cClient(t)
	client := newConnectClient(httpClient, h.URL(), connecthttp.WithGRPC())
	stream, err := client.CallServerStream(t.Context(), healthWatchSpec, &healthv1.HealthCheckRequest{Service: "no.such.Service"})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer stream.Close()
	// The gRPC health protocol answers Watch of an unknown service with
	// SERVICE_UNKNOWN rather than an error.
	var msg healthv1.HealthCheckResponse
	if err := stream.Receive(&msg); err != nil {
		t.Fatalf("Watch ended before its first message: %v", err)
	}
	if got := msg.GetStatus(); got != healthv1.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Fatalf("Watch status %v, want SERVICE_UNKNOWN", got)
	}
}

func TestHealthzReadyz(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	tests := []struct {
		path     string
		wantBody string
	}{
		{path: "/healthz", wantBody: "ok\n"},
		{path: "/readyz", wantBody: "ready\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			httpClient, _ := http1Client(t)
			res, err := httpClient.Get(h.URL() + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", tt.path, res.StatusCode)
			}
			if string(body) != tt.wantBody {
				t.Errorf("GET %s body %q, want %q", tt.path, body, tt.wantBody)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if res.Header.Get(requestid.Header) == "" {
				t.Errorf("no %s header", requestid.Header)
			}
		})
	}
}
