package clients_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/custodian-bff/custodian/clients"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
)

// TestHTTPVersionPerProtocol calls a backend that serves HTTP/1.1 and h2c
// with each protocol through NewHTTPClient: gRPC must use HTTP/2 (it needs
// it), Connect and gRPC-Web HTTP/1.1 (cheaper per unary call), and all of
// them reuse their connections.
func TestHTTPVersionPerProtocol(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		protocol  clients.Protocol
		wantProto string
	}{
		{name: "connect", protocol: clients.ProtocolConnect, wantProto: "HTTP/1.1"},
		{name: "grpc", protocol: clients.ProtocolGRPC, wantProto: "HTTP/2.0"},
		{name: "grpc-web", protocol: clients.ProtocolGRPCWeb, wantProto: "HTTP/1.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, seen := startProtoRecorder(t)
			b, err := clients.New(clients.Spec{Name: "catalog", URL: url, Protocol: tc.protocol, Token: clients.TokenNone},
				clients.WithHTTPClient(clients.NewHTTPClient()))
			if err != nil {
				t.Fatal(err)
			}
			client := catalogv1connect.NewCatalogServiceClient(b.Client())
			for range 5 {
				res, err := client.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: "p-1"})
				if err != nil {
					t.Fatal(err)
				}
				if got := res.GetProduct().GetProductId(); got != "p-1" {
					t.Fatalf("product %q, want p-1", got)
				}
			}
			protos, conns := seen()
			if len(protos) != 5 {
				t.Fatalf("%d requests seen, want 5", len(protos))
			}
			for _, p := range protos {
				if p != tc.wantProto {
					t.Errorf("request over %s, want %s", p, tc.wantProto)
				}
			}
			if conns != 1 {
				t.Errorf("%d connections for 5 sequential calls, want 1 (kept alive)", conns)
			}
		})
	}
}

type productEcho struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
}

func (productEcho) GetProduct(_ context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	return &catalogv1.GetProductResponse{Product: &catalogv1.Product{ProductId: req.GetProductId()}}, nil
}

// startProtoRecorder serves a catalog over HTTP/1.1 and h2c on loopback and
// returns its URL and a func giving the HTTP version of each request and
// the number of connections accepted.
func startProtoRecorder(t *testing.T) (string, func() ([]string, int)) {
	t.Helper()
	server := connect.NewServer()
	catalogv1connect.RegisterCatalogServiceHandler(server, productEcho{})
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server)
	var (
		mu     sync.Mutex
		protos []string
		conns  int
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			protos = append(protos, r.Proto)
			mu.Unlock()
			mux.ServeHTTP(w, r)
		}),
		Protocols: protocols,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), func() ([]string, int) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), protos...), conns
	}
}
