package ratelimit_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpcreflect/v2"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server"
	"github.com/custodian-bff/custodian/server/ratelimit"
)

// products is a ProductService that always answers.
type products struct {
	storefrontv1connect.UnimplementedProductServiceHandler
}

func (products) ListProducts(context.Context, *storefrontv1.ListProductsRequest) (*storefrontv1.ListProductsResponse, error) {
	return &storefrontv1.ListProductsResponse{}, nil
}

// startLimited serves a real server.New with the ProductService fake and a
// plain route, behind a limiter that allows one request per client and
// never refills (the clock does not move). It speaks HTTP/1.1 and h2c.
func startLimited(t *testing.T) *httptest.Server {
	t.Helper()
	l := ratelimit.New(ratelimit.Config{PerIP: ratelimit.Limit{Rate: 1, Burst: 1}}, testCookie, nil,
		ratelimit.WithClock(newFakeClock().Now))
	srv, err := server.New(
		server.WithMiddleware(l.Middleware),
		server.WithService(server.Service{Register: func(s *connect.Server) {
			storefrontv1connect.RegisterProductServiceHandler(s, products{})
		}}),
		server.WithHandler("/auth/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok")
		})),
	)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetHTTP1(true)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func h2cClient(t *testing.T) *http.Client {
	t.Helper()
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func http1Client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestRefusalWithGeneratedClients checks that real clients of every
// protocol see CodeResourceExhausted, with Retry-After, once over the limit.
func TestRefusalWithGeneratedClients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h2c  bool
		opts []connecthttp.Option
	}{
		{name: "connect json", opts: []connecthttp.Option{connecthttp.WithProtoJSON()}},
		{name: "connect binary"},
		{name: "connect GET", opts: []connecthttp.Option{connecthttp.WithHTTPGet()}},
		{name: "grpc-web", opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
		{name: "grpc over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithGRPC()}},
		{name: "connect over h2c", h2c: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startLimited(t)
			httpClient := http1Client(t)
			if tt.h2c {
				httpClient = h2cClient(t)
			}
			client := storefrontv1connect.NewProductServiceClient(connect.NewClient(connecthttp.NewTransport(httpClient, ts.URL, tt.opts...)))
			if _, err := client.ListProducts(t.Context(), &storefrontv1.ListProductsRequest{}); err != nil {
				t.Fatalf("first call: %v", err)
			}
			ctx, info := connect.NewClientContext(t.Context())
			_, err := client.ListProducts(ctx, &storefrontv1.ListProductsRequest{})
			if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
				t.Fatalf("second call: code %v (%v), want resource_exhausted", got, err)
			}
			ce, ok := errors.AsType[*connect.Error](err)
			if !ok {
				t.Fatalf("%T is not a *connect.Error", err)
			}
			if !ce.IsRemote() {
				t.Errorf("the refusal %v is not the server's", ce)
			}
			if ce.Message() != "too many requests, retry later" {
				t.Errorf("message %q", ce.Message())
			}
			if got := metadata(info, "Retry-After"); got != "1" {
				t.Errorf("Retry-After %q, want \"1\"", got)
			}
			if metadata(info, requestid.Header) == "" {
				t.Errorf("refusal has no %s", requestid.Header)
			}
		})
	}
}

// metadata returns key from the response headers of a call, or from its
// trailers (where gRPC clients put a trailers-only answer's).
func metadata(info *connect.CallInfo, key string) string {
	if v := info.ResponseHeader().Get(key); v != "" {
		return v
	}
	return info.ResponseTrailer().Get(key)
}

// TestRefusalWithStreamingClient checks a Connect bidi stream (server
// reflection) is refused with an end-of-stream message its client reads.
func TestRefusalWithStreamingClient(t *testing.T) {
	t.Parallel()
	ts := startLimited(t)
	client := grpcreflect.NewClient(connect.NewClient(connecthttp.NewTransport(h2cClient(t), ts.URL)))
	ctx := t.Context()
	stream := client.NewStream(ctx)
	if _, err := stream.ListServices(); err != nil {
		t.Fatalf("first stream: %v", err)
	}
	_ = stream.Close()
	stream = client.NewStream(ctx)
	defer stream.Close()
	_, err := stream.ListServices()
	if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
		t.Fatalf("second stream: code %v (%v), want resource_exhausted", got, err)
	}
}

// TestRefusalOnTheWire checks the exact answers, per protocol.
func TestRefusalOnTheWire(t *testing.T) {
	t.Parallel()
	const procedure = "/acme.storefront.v1.ProductService/ListProducts"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		header      map[string]string
		wantStatus  int
		wantHeader  map[string]string
		wantBody    string // exact, when set
		check       func(t *testing.T, body []byte)
	}{
		{
			name: "connect unary json", method: http.MethodPost, path: procedure, contentType: "application/json",
			wantStatus: http.StatusTooManyRequests,
			wantHeader: map[string]string{"Content-Type": "application/json"},
			wantBody:   `{"code":"resource_exhausted","message":"too many requests, retry later"}`,
		},
		{
			name: "connect unary proto", method: http.MethodPost, path: procedure, contentType: "application/proto",
			wantStatus: http.StatusTooManyRequests,
			wantHeader: map[string]string{"Content-Type": "application/json"},
			check:      checkConnectErrorJSON,
		},
		{
			name: "connect GET", method: http.MethodGet, path: procedure + "?connect=v1&encoding=json&message=%7B%7D",
			wantStatus: http.StatusTooManyRequests,
			wantHeader: map[string]string{"Content-Type": "application/json"},
			check:      checkConnectErrorJSON,
		},
		{
			name: "grpc", method: http.MethodPost, path: procedure, contentType: "application/grpc+proto",
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Content-Type": "application/grpc+proto", "Grpc-Status": "8", "Grpc-Message": "too many requests, retry later"},
			wantBody:   "",
		},
		{
			name: "grpc-web", method: http.MethodPost, path: procedure, contentType: "application/grpc-web+proto",
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Content-Type": "application/grpc-web+proto", "Grpc-Status": "8"},
			wantBody:   "",
		},
		{
			name: "connect stream", method: http.MethodPost, path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", contentType: "application/connect+proto",
			wantStatus: http.StatusOK,
			wantHeader: map[string]string{"Content-Type": "application/connect+proto"},
			check: func(t *testing.T, body []byte) {
				if len(body) < 5 || body[0] != 0x02 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
					t.Fatalf("body %q is not one end-of-stream envelope", body)
				}
				var end struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal(body[5:], &end); err != nil || end.Error.Code != "resource_exhausted" {
					t.Errorf("end-of-stream %q (%v): want error code resource_exhausted", body[5:], err)
				}
			},
		},
		{
			name: "plain route", method: http.MethodGet, path: "/auth/anything",
			wantStatus: http.StatusTooManyRequests,
			wantHeader: map[string]string{"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
			wantBody:   "too many requests, retry later\n",
		},
		{
			name: "plain route posted as a form", method: http.MethodPost, path: "/auth/anything", contentType: "application/x-www-form-urlencoded",
			wantStatus: http.StatusTooManyRequests,
			wantHeader: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startLimited(t)
			client := http1Client(t)
			send := func() *http.Response {
				req, err := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(""))
				if err != nil {
					t.Fatal(err)
				}
				if tt.contentType != "" {
					req.Header.Set("Content-Type", tt.contentType)
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			first := send() // takes the only token
			_, _ = io.Copy(io.Discard, first.Body)
			first.Body.Close()

			res := send()
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", res.StatusCode, tt.wantStatus, body)
			}
			want := map[string]string{"Retry-After": "1"}
			for k, v := range tt.wantHeader {
				want[k] = v
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if res.Header.Get(requestid.Header) == "" {
				t.Errorf("refusal has no %s", requestid.Header)
			}
			if tt.wantBody != "" || tt.check == nil && tt.wantStatus == http.StatusOK {
				if string(body) != tt.wantBody {
					t.Errorf("body %q, want %q", body, tt.wantBody)
				}
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

func checkConnectErrorJSON(t *testing.T, body []byte) {
	t.Helper()
	var e struct{ Code, Message string }
	if err := json.Unmarshal(body, &e); err != nil || e.Code != "resource_exhausted" || e.Message == "" {
		t.Errorf("body %q (%v): want a Connect error with code resource_exhausted", body, err)
	}
}
