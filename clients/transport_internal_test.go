package clients

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
)

// countingConn counts the writes made on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countingDial dials TCP connections that count their writes in writes.
func countingDial(writes *atomic.Int64) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: writes}, nil
	}
}

type echoCatalog struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
}

func (echoCatalog) GetProduct(_ context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	return &catalogv1.GetProductResponse{Product: &catalogv1.Product{ProductId: req.GetProductId()}}, nil
}

// TestOneWritePerUnaryCall counts the writes on the transports'
// connections: a unary call goes out in one, headers and body together,
// in every protocol (net/http flushed the headers of a body it did not know
// to be in memory, and its HTTP/2 client flushes a request's headers before
// its body), and its body arrives whole. The first call, which opens the
// connection (and for HTTP/2 exchanges settings), is not counted.
func TestOneWritePerUnaryCall(t *testing.T) {
	t.Parallel()
	server := connect.NewServer()
	catalogv1connect.RegisterCatalogServiceHandler(server, echoCatalog{})
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server)
	backend := httptest.NewUnstartedServer(mux)
	backend.Config.Protocols = new(http.Protocols)
	backend.Config.Protocols.SetHTTP1(true)
	backend.Config.Protocols.SetUnencryptedHTTP2(true)
	backend.Start()
	t.Cleanup(backend.Close)

	for _, tc := range []struct {
		name string
		opts []connecthttp.Option
	}{
		{name: "connect"},
		{name: "grpc-web", opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
		{name: "grpc", opts: []connecthttp.Option{connecthttp.WithGRPC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var writes atomic.Int64
			httpClient := &http.Client{Transport: newProtocolTransport(countingDial(&writes))}
			t.Cleanup(httpClient.CloseIdleConnections)
			client := catalogv1connect.NewCatalogServiceClient(connect.NewClient(connecthttp.NewTransport(httpClient, backend.URL, tc.opts...)))
			const calls = 5
			var before int64
			for i := range calls + 1 {
				if i == 1 {
					before = writes.Load()
				}
				id := "p-" + strings.Repeat("7", i+1)
				res, err := client.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: id})
				if err != nil {
					t.Fatal(err)
				}
				if got := res.GetProduct().GetProductId(); got != id {
					t.Fatalf("the backend read product %q, want %q", got, id)
				}
			}
			if n := writes.Load() - before; n != calls {
				t.Errorf("%d writes for %d unary calls, want one each", n, calls)
			}
		})
	}
}

// closeRecorder is a request body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (b *closeRecorder) Close() error {
	b.closed = true
	return nil
}

func TestWithBodyInMemory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		body    string
		length  int64
		same    bool // req is returned as it is
		wantErr bool
	}{
		{name: "small body", body: "hello", length: 5},
		{name: "longer than its length", body: "hello", length: 4, wantErr: true},
		{name: "shorter than its length", body: "hello", length: 6, wantErr: true},
		{name: "unknown length", body: "hello", length: -1, same: true},
		{name: "larger than the bound", body: strings.Repeat("x", maxBodyInMemory+1), length: maxBodyInMemory + 1, same: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := &closeRecorder{Reader: strings.NewReader(tc.body)}
			req, err := http.NewRequest(http.MethodPost, "http://backend.test/pkg.Service/Method", body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.length
			out, err := withBodyInMemory(req)
			switch {
			case tc.wantErr:
				if err == nil {
					t.Fatal("no error")
				}
				if !body.closed {
					t.Error("the body was not closed")
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.same:
				if out != req || req.Body != body {
					t.Fatal("the request was changed")
				}
				return
			}
			if out == req || req.Body != body || !body.closed {
				t.Fatalf("want a copy of the request and its body closed; same request %v, body closed %v", out == req, body.closed)
			}
			for range 2 { // the body, then what GetBody gives again
				got, err := io.ReadAll(out.Body)
				if err != nil || string(got) != tc.body {
					t.Fatalf("body %q, %v; want %q", got, err, tc.body)
				}
				if out.Body, err = out.GetBody(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
