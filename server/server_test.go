package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server"
)

// ---------------------------------------------------------------------------
// Test fixtures: a fake ProductService, a log buffer, a running server.
// ---------------------------------------------------------------------------

// Headers the fake sets so tests can see how a call reached the handler.
const (
	seenProtocolHeader = "X-Test-Protocol"
	seenMethodHeader   = "X-Test-Http-Method"
)

// fakeProducts is a ProductService whose behaviour is chosen by the request:
// GetProduct's product_id picks a failure mode, ListProducts returns
// fixedProducts.
type fakeProducts struct {
	storefrontv1connect.UnimplementedProductServiceHandler

	slowStarted chan struct{} // receives once a "slow" call is in the handler
	release     chan struct{} // closed to let "slow" calls finish
	releaseOnce sync.Once
	listCalls   atomic.Int64
}

func newFakeProducts() *fakeProducts {
	return &fakeProducts{
		slowStarted: make(chan struct{}, 1),
		release:     make(chan struct{}),
	}
}

func (f *fakeProducts) releaseSlow() { f.releaseOnce.Do(func() { close(f.release) }) }

var fixedProducts = []*storefrontv1.Product{
	{ProductId: "p-1", Name: "Teapot", Category: "kitchen", InStock: true},
	{ProductId: "p-2", Name: "Kettle", Category: "kitchen"},
}

func (f *fakeProducts) ListProducts(_ context.Context, req *connect.Request[storefrontv1.ListProductsRequest]) (*connect.Response[storefrontv1.ListProductsResponse], error) {
	f.listCalls.Add(1)
	res := connect.NewResponse(&storefrontv1.ListProductsResponse{Products: fixedProducts})
	res.Header().Set(seenProtocolHeader, req.Peer().Protocol)
	res.Header().Set(seenMethodHeader, req.HTTPMethod())
	return res, nil
}

func (f *fakeProducts) GetProduct(ctx context.Context, req *connect.Request[storefrontv1.GetProductRequest]) (*connect.Response[storefrontv1.GetProductResponse], error) {
	id := req.Msg.GetProductId()
	switch id {
	case "panic":
		panic("boom: secret-db-7 password=hunter2")
	case "plain-error":
		return nil, fmt.Errorf("dial secret-db-7.acme.internal: refused")
	case "missing":
		return nil, connect.NewError(connect.CodeNotFound, errors.New("product missing does not exist"))
	case "wrapped-not-found":
		return nil, fmt.Errorf("lookup via secret-db-7: %w",
			connect.NewError(connect.CodeNotFound, errors.New("no such product")))
	case "deadline":
		return nil, fmt.Errorf("query secret-db-7: %w", context.DeadlineExceeded)
	case "slow":
		select {
		case f.slowStarted <- struct{}{}:
		default:
		}
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return connect.NewResponse(&storefrontv1.GetProductResponse{
		Product: &storefrontv1.Product{ProductId: id, Name: "Product " + id},
	}), nil
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// notifyListener closes closed once the server closes the listener, which
// http.Server.Shutdown does first: it tells a test that draining has begun.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

// harness is one running server.
type harness struct {
	Addr   string
	Fake   *fakeProducts
	Logs   *syncBuffer
	Closed <-chan struct{} // closed when the server closed its listener

	cancel context.CancelFunc
	done   chan struct{}
	err    error // Serve's result, set before done is closed
}

// URL is the plaintext base URL.
func (h *harness) URL() string { return "http://" + h.Addr }

// Stop cancels the server's context, starting a graceful shutdown.
func (h *harness) Stop() { h.cancel() }

// Wait waits for Serve to return and returns its error.
func (h *harness) Wait() error {
	<-h.done
	return h.err
}

// served reports, without blocking, whether Serve has returned.
func (h *harness) served() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// startServer runs a server with the fake ProductService and a captured log,
// plus opts. Cleanup stops it, waits for Serve and checks it returned nil.
func startServer(t *testing.T, opts ...server.Option) *harness {
	t.Helper()
	h := &harness{Fake: newFakeProducts(), Logs: &syncBuffer{}, done: make(chan struct{})}
	base := []server.Option{
		server.WithLogger(slog.New(slog.NewTextHandler(h.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
			return storefrontv1connect.NewProductServiceHandler(h.Fake, o...)
		}),
	}
	srv, err := server.New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	nl := &notifyListener{Listener: ln, closed: make(chan struct{})}
	h.Addr = ln.Addr().String()
	h.Closed = nl.closed
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		h.err = srv.Serve(ctx, nl)
		close(h.done)
	}()
	t.Cleanup(func() {
		h.Fake.releaseSlow() // never leave a slow call blocking the drain
		cancel()
		if err := h.Wait(); err != nil {
			t.Errorf("Serve returned %v, want nil after a clean drain", err)
		}
	})
	return h
}

// recordingTransport remembers the HTTP major version of the last response.
type recordingTransport struct {
	base      http.RoundTripper
	lastMajor atomic.Int32
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.base.RoundTrip(req)
	if res != nil {
		r.lastMajor.Store(int32(res.ProtoMajor))
	}
	return res, err
}

func newClient(t *testing.T, tr *http.Transport) (*http.Client, *recordingTransport) {
	t.Helper()
	t.Cleanup(tr.CloseIdleConnections)
	rec := &recordingTransport{base: tr}
	return &http.Client{Transport: rec}, rec
}

// http1Client speaks HTTP/1.1 only (a plain transport without TLS).
func http1Client(t *testing.T) (*http.Client, *recordingTransport) {
	t.Helper()
	return newClient(t, &http.Transport{})
}

// h2cClient speaks HTTP/2 over cleartext with prior knowledge.
func h2cClient(t *testing.T) (*http.Client, *recordingTransport) {
	t.Helper()
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return newClient(t, &http.Transport{Protocols: p})
}

func wantCode(t *testing.T, err error, want connect.Code) *connect.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %v", want)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *connect.Error", err, err)
	}
	if ce.Code() != want {
		t.Fatalf("code %v (%v), want %v", ce.Code(), err, want)
	}
	return ce
}

// ---------------------------------------------------------------------------
// Protocols
// ---------------------------------------------------------------------------

func TestProtocols(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		h2c        bool
		opts       []connect.ClientOption
		wantProto  string
		wantMethod string
		wantMajor  int32
	}{
		{name: "connect over HTTP/1.1", wantProto: connect.ProtocolConnect, wantMethod: http.MethodPost, wantMajor: 1},
		{name: "connect over h2c", h2c: true, wantProto: connect.ProtocolConnect, wantMethod: http.MethodPost, wantMajor: 2},
		{name: "connect GET over HTTP/1.1", opts: []connect.ClientOption{connect.WithHTTPGet()}, wantProto: connect.ProtocolConnect, wantMethod: http.MethodGet, wantMajor: 1},
		{name: "connect GET over h2c", h2c: true, opts: []connect.ClientOption{connect.WithHTTPGet()}, wantProto: connect.ProtocolConnect, wantMethod: http.MethodGet, wantMajor: 2},
		{name: "gRPC over h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}, wantProto: connect.ProtocolGRPC, wantMethod: http.MethodPost, wantMajor: 2},
		{name: "gRPC-Web over HTTP/1.1", opts: []connect.ClientOption{connect.WithGRPCWeb()}, wantProto: connect.ProtocolGRPCWeb, wantMethod: http.MethodPost, wantMajor: 1},
		{name: "gRPC-Web over h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}, wantProto: connect.ProtocolGRPCWeb, wantMethod: http.MethodPost, wantMajor: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t)
			httpClient, rec := http1Client(t)
			if tt.h2c {
				httpClient, rec = h2cClient(t)
			}
			client := storefrontv1connect.NewProductServiceClient(httpClient, h.URL(), tt.opts...)

			var ids []string
			for range 2 {
				res, err := client.ListProducts(t.Context(), connect.NewRequest(&storefrontv1.ListProductsRequest{PageSize: 10}))
				if err != nil {
					t.Fatalf("ListProducts: %v", err)
				}
				if got := res.Msg.GetProducts(); len(got) != len(fixedProducts) || got[0].GetName() != "Teapot" {
					t.Fatalf("products = %v, want %v", got, fixedProducts)
				}
				if got := res.Header().Get(seenProtocolHeader); got != tt.wantProto {
					t.Errorf("handler saw protocol %q, want %q", got, tt.wantProto)
				}
				if got := res.Header().Get(seenMethodHeader); got != tt.wantMethod {
					t.Errorf("handler saw HTTP method %q, want %q", got, tt.wantMethod)
				}
				if got := rec.lastMajor.Load(); got != tt.wantMajor {
					t.Errorf("response over HTTP/%d, want HTTP/%d", got, tt.wantMajor)
				}
				id := res.Header().Get(requestid.Header)
				if len(id) != 16 {
					t.Fatalf("%s header = %q, want a 16-character id", requestid.Header, id)
				}
				ids = append(ids, id)
			}
			if ids[0] == ids[1] {
				t.Errorf("two calls got the same request id %q", ids[0])
			}
		})
	}
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

// writeSelfSignedCert writes a self-signed ECDSA certificate for 127.0.0.1
// and its key as PEM files and returns their paths and a pool trusting it.
func writeSelfSignedCert(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "custodian test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := writeSelfSignedCert(t)
	h := startServer(t, server.WithTLS(certFile, keyFile))
	baseURL := "https://" + h.Addr

	h2Client, h2Rec := newClient(t, &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	})
	h1Protocols := new(http.Protocols)
	h1Protocols.SetHTTP1(true)
	h1Client, h1Rec := newClient(t, &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Protocols:       h1Protocols,
	})

	tests := []struct {
		name      string
		client    *http.Client
		rec       *recordingTransport
		opts      []connect.ClientOption
		wantProto string
		wantMajor int32
	}{
		{name: "gRPC over TLS (HTTP/2 via ALPN)", client: h2Client, rec: h2Rec, opts: []connect.ClientOption{connect.WithGRPC()}, wantProto: connect.ProtocolGRPC, wantMajor: 2},
		{name: "connect over HTTPS HTTP/1.1", client: h1Client, rec: h1Rec, wantProto: connect.ProtocolConnect, wantMajor: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := storefrontv1connect.NewProductServiceClient(tt.client, baseURL, tt.opts...)
			res, err := client.ListProducts(t.Context(), connect.NewRequest(&storefrontv1.ListProductsRequest{}))
			if err != nil {
				t.Fatalf("ListProducts: %v", err)
			}
			if len(res.Msg.GetProducts()) != len(fixedProducts) {
				t.Errorf("got %d products, want %d", len(res.Msg.GetProducts()), len(fixedProducts))
			}
			if got := res.Header().Get(seenProtocolHeader); got != tt.wantProto {
				t.Errorf("handler saw protocol %q, want %q", got, tt.wantProto)
			}
			if got := tt.rec.lastMajor.Load(); got != tt.wantMajor {
				t.Errorf("response over HTTP/%d, want HTTP/%d", got, tt.wantMajor)
			}
			if res.Header().Get(requestid.Header) == "" {
				t.Errorf("no %s header", requestid.Header)
			}
		})
	}

	t.Run("plaintext h2c to the TLS port fails", func(t *testing.T) {
		t.Parallel()
		httpClient, _ := h2cClient(t)
		client := storefrontv1connect.NewProductServiceClient(httpClient, h.URL(), connect.WithGRPC())
		if _, err := client.ListProducts(t.Context(), connect.NewRequest(&storefrontv1.ListProductsRequest{})); err == nil {
			t.Fatal("plaintext h2c call to a TLS listener succeeded")
		}
	})
}

// ---------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------

func TestGracefulShutdown(t *testing.T) {
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
			client := storefrontv1connect.NewProductServiceClient(httpClient, h.URL(), tt.opts...)

			type result struct {
				res *connect.Response[storefrontv1.GetProductResponse]
				err error
			}
			resc := make(chan result, 1)
			go func() {
				res, err := client.GetProduct(context.Background(), connect.NewRequest(&storefrontv1.GetProductRequest{ProductId: "slow"}))
				resc <- result{res, err}
			}()
			<-h.Fake.slowStarted

			h.Stop()
			<-h.Closed // Shutdown has begun: the listener is closed.
			if h.served() {
				t.Fatal("Serve returned while a call was still in flight")
			}
			if conn, err := net.Dial("tcp", h.Addr); err == nil {
				conn.Close()
				t.Error("a new connection was accepted while draining")
			}

			h.Fake.releaseSlow()
			r := <-resc
			if r.err != nil {
				t.Fatalf("in-flight call failed during the drain: %v", r.err)
			}
			if got := r.res.Msg.GetProduct().GetProductId(); got != "slow" {
				t.Errorf("product id %q, want %q", got, "slow")
			}
			if err := h.Wait(); err != nil {
				t.Fatalf("Serve = %v, want nil", err)
			}
			if conn, err := net.Dial("tcp", h.Addr); err == nil {
				conn.Close()
				t.Error("a new connection was accepted after Serve returned")
			}
			if !bytes.Contains([]byte(h.Logs.String()), []byte("shutting down")) {
				t.Errorf("log does not mention the shutdown:\n%s", h.Logs.String())
			}
		})
	}
}

func TestServeWithCancelledContext(t *testing.T) {
	t.Parallel()
	srv, err := server.New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nl := &notifyListener{Listener: ln, closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Serve(ctx, nl); err != nil {
		t.Fatalf("Serve with a cancelled context = %v, want nil", err)
	}
	<-nl.closed // Serve must not leave the listener open.
}

func TestServeReportsListenerError(t *testing.T) {
	t.Parallel()
	srv, err := server.New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := srv.Serve(t.Context(), ln); err == nil {
		t.Fatal("Serve on a closed listener returned nil, want an error")
	}
}

// ---------------------------------------------------------------------------
// New
// ---------------------------------------------------------------------------

func TestNewErrors(t *testing.T) {
	t.Parallel()
	productService := server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
		return storefrontv1connect.NewProductServiceHandler(newFakeProducts(), o...)
	})
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	tests := []struct {
		name string
		opts []server.Option
	}{
		{name: "same service twice", opts: []server.Option{productService, productService}},
		{name: "certificate without key", opts: []server.Option{server.WithTLS("cert.pem", "")}},
		{name: "key without certificate", opts: []server.Option{server.WithTLS("", "key.pem")}},
		{name: "route collides with /healthz", opts: []server.Option{server.WithHandler("GET /healthz", nop)}},
		{name: "route collides with a service", opts: []server.Option{productService, server.WithHandler("/acme.storefront.v1.ProductService/", nop)}},
		{name: "service collides with the health service", opts: []server.Option{server.WithService(func(...connect.HandlerOption) (string, http.Handler) {
			return "/grpc.health.v1.Health/", nop
		})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				srv *server.Server
				err error
			)
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("New panicked: %v", p)
					}
				}()
				srv, err = server.New(tt.opts...)
			}()
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if srv != nil {
				t.Errorf("New returned a server with error %v", err)
			}
		})
	}
}

func TestNewServicesAndHandler(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.WithService(func(o ...connect.HandlerOption) (string, http.Handler) {
		return storefrontv1connect.NewProductServiceHandler(newFakeProducts(), o...)
	}))
	if err != nil {
		t.Fatal(err)
	}
	services := srv.Services()
	if want := []string{storefrontv1connect.ProductServiceName}; !slices.Equal(services, want) {
		t.Fatalf("Services() = %v, want %v", services, want)
	}
	services[0] = "mutated"
	if got := srv.Services()[0]; got != storefrontv1connect.ProductServiceName {
		t.Errorf("Services() shares its slice: after mutation got %q", got)
	}

	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("Handler() GET /healthz = %d, want 200", rec.Code)
	}
	if rec.Header().Get(requestid.Header) == "" {
		t.Errorf("Handler() response has no %s header", requestid.Header)
	}
	body, _ := io.ReadAll(rec.Body)
	if string(body) != "ok\n" {
		t.Errorf("body %q, want %q", body, "ok\n")
	}
}
