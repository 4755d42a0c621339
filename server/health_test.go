package server_test

import (
	"io"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
)

func TestHealthCheck(t *testing.T) {
	t.Parallel()
	transports := []struct {
		name string
		h2c  bool
		opts []connect.ClientOption
	}{
		{name: "connect over HTTP/1.1"},
		{name: "gRPC over h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}},
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
				client := connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
					httpClient, h.URL()+healthv1.Health_Check_FullMethodName, tr.opts...)
				res, err := client.CallUnary(t.Context(), connect.NewRequest(&healthv1.HealthCheckRequest{Service: svc.service}))
				if svc.wantCode != 0 {
					wantCode(t, err, svc.wantCode)
					return
				}
				if err != nil {
					t.Fatalf("Check(%q): %v", svc.service, err)
				}
				if got := res.Msg.GetStatus(); got != healthv1.HealthCheckResponse_SERVING {
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
		opts []connect.ClientOption
	}{
		{name: "gRPC over h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}},
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
			client := connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
				httpClient, h.URL()+healthv1.Health_Watch_FullMethodName, tt.opts...)
			stream, err := client.CallServerStream(t.Context(), connect.NewRequest(&healthv1.HealthCheckRequest{
				Service: storefrontv1connect.ProductServiceName,
			}))
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			defer stream.Close()

			if !stream.Receive() {
				t.Fatalf("Watch ended before its first message: %v", stream.Err())
			}
			if got := stream.Msg().GetStatus(); got != healthv1.HealthCheckResponse_SERVING {
				t.Fatalf("first Watch status %v, want SERVING", got)
			}
			if stream.ResponseHeader().Get(requestid.Header) == "" {
				t.Errorf("Watch response has no %s header", requestid.Header)
			}

			h.Stop()
			if !stream.Receive() {
				t.Fatalf("Watch ended without reporting NOT_SERVING: %v", stream.Err())
			}
			if got := stream.Msg().GetStatus(); got != healthv1.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("Watch status after shutdown %v, want NOT_SERVING", got)
			}
			if stream.Receive() {
				t.Fatalf("Watch sent %v after NOT_SERVING, want the stream to end", stream.Msg())
			}
			if err := stream.Err(); err != nil {
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
	client := connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
		httpClient, h.URL()+healthv1.Health_Watch_FullMethodName, connect.WithGRPC())
	stream, err := client.CallServerStream(t.Context(), connect.NewRequest(&healthv1.HealthCheckRequest{Service: "no.such.Service"}))
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer stream.Close()
	// The gRPC health protocol answers Watch of an unknown service with
	// SERVICE_UNKNOWN rather than an error.
	if !stream.Receive() {
		t.Fatalf("Watch ended before its first message: %v", stream.Err())
	}
	if got := stream.Msg().GetStatus(); got != healthv1.HealthCheckResponse_SERVICE_UNKNOWN {
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
