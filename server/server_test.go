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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"connectrpc.com/grpcreflect/v2"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
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
	seenHTTPHeader     = "X-Test-Http-Proto"
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

func (f *fakeProducts) ListProducts(ctx context.Context, _ *storefrontv1.ListProductsRequest) (*storefrontv1.ListProductsResponse, error) {
	f.listCalls.Add(1)
	info, ok := connect.CallInfoForServerContext(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeInternal, "no call info")
	}
	info.ResponseHeader().Set(seenProtocolHeader, info.Protocol)
	if httpInfo, ok := connecthttp.ServerInfoForContext(ctx); ok {
		info.ResponseHeader().Set(seenMethodHeader, httpInfo.HTTPMethod())
		info.ResponseHeader().Set(seenHTTPHeader, httpInfo.RequestProto())
	}
	return &storefrontv1.ListProductsResponse{Products: fixedProducts}, nil
}

// verdictError is an error that knows its browser-facing form, as the
// session layer's verdict does: its text is for the log, ConnectError is
// what the client must see.
type verdictError struct{ reason custodianv1.SessionEndReason }

func (e *verdictError) Error() string {
	return "session store secret-db-7 says: " + e.reason.String()
}

func (e *verdictError) ConnectError() *connect.Error {
	err := connect.NewError(connect.CodeUnauthenticated, "session expired")
	if d, derr := connectproto.NewErrorDetail(wantVerdictDetail); derr == nil {
		err = err.WithDetail(d)
	}
	return err
}

// wantVerdictDetail is the detail verdictError's ConnectError carries.
var wantVerdictDetail = &custodianv1.SessionError{
	Reason:   custodianv1.SessionEndReason_SESSION_END_REASON_SESSION_EXPIRED,
	LoginUrl: "https://gateway.example/auth/login",
}

func (f *fakeProducts) GetProduct(ctx context.Context, req *storefrontv1.GetProductRequest) (*storefrontv1.GetProductResponse, error) {
	id := req.GetProductId()
	switch id {
	case "panic":
		panic("boom: secret-db-7 password=hunter2")
	case "panic-error":
		panic(fmt.Errorf("dial secret-db-7: %w", errors.New("password=hunter2 rejected")))
	case "plain-error":
		return nil, fmt.Errorf("dial secret-db-7.acme.internal: refused")
	case "missing":
		return nil, connect.NewError(connect.CodeNotFound, "product missing does not exist")
	case "wrapped-not-found":
		return nil, fmt.Errorf("lookup via secret-db-7: %w",
			connect.NewError(connect.CodeNotFound, "no such product"))
	case "not-found-with-cause":
		return nil, connect.NewError(connect.CodeNotFound, "no such product").
			WithCause(errors.New("no row in secret-db-7"))
	case "deadline":
		return nil, fmt.Errorf("query secret-db-7: %w", context.DeadlineExceeded)
	case "verdict":
		return nil, &verdictError{reason: custodianv1.SessionEndReason_SESSION_END_REASON_SESSION_EXPIRED}
	case "wrapped-verdict":
		return nil, fmt.Errorf("load cart from secret-db-7: %w",
			&verdictError{reason: custodianv1.SessionEndReason_SESSION_END_REASON_SESSION_EXPIRED})
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
	return &storefrontv1.GetProductResponse{
		Product: &storefrontv1.Product{ProductId: id, Name: "Product " + id},
	}, nil
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
		server.WithLogger(testLogger(h.Logs)),
		server.WithService(productService(h.Fake)),
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

// testLogger logs everything to w as text, with the request id of the call
// as the gateway's logger does.
func testLogger(w io.Writer) *slog.Logger {
	return slog.New(requestid.LogHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// productService registers impl as the ProductService.
func productService(impl storefrontv1connect.ProductServiceHandler) server.Service {
	return server.Service{Register: func(s *connect.Server) {
		storefrontv1connect.RegisterProductServiceHandler(s, impl)
	}}
}

// newConnectClient returns a connect client for baseURL over httpClient.
func newConnectClient(httpClient *http.Client, baseURL string, opts ...connecthttp.Option) *connect.Client {
	return connect.NewClient(connecthttp.NewTransport(httpClient, baseURL, opts...))
}

// productClient returns a ProductService client for baseURL over httpClient.
func productClient(httpClient *http.Client, baseURL string, opts ...connecthttp.Option) storefrontv1connect.ProductServiceClient {
	return storefrontv1connect.NewProductServiceClient(newConnectClient(httpClient, baseURL, opts...))
}

// Specs of the health service, whose generated code is grpc-go's: the
// tests call it with raw connect clients.
var (
	healthMethods   = healthv1.File_grpc_health_v1_health_proto.Services().ByName("Health").Methods()
	healthCheckSpec = connect.Spec{
		StreamType:       connect.StreamTypeUnary,
		IdempotencyLevel: connect.IdempotencyNoSideEffects,
		Schema:           healthMethods.ByName("Check"),
		Procedure:        healthv1.Health_Check_FullMethodName,
	}
	healthWatchSpec = connect.Spec{
		StreamType: connect.StreamTypeServer,
		Schema:     healthMethods.ByName("Watch"),
		Procedure:  healthv1.Health_Watch_FullMethodName,
	}
)

// serve runs srv on a loopback listener until the test ends and returns
// its base URL. Cleanup checks Serve returned nil.
func serve(t *testing.T, srv *server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve returned %v, want nil after a clean drain", err)
		}
	})
	return "http://" + ln.Addr().String()
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
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok {
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
		opts       []connecthttp.Option
		wantProto  string
		wantMethod string
		wantMajor  int32
	}{
		{name: "connect over HTTP/1.1", wantProto: connect.ProtocolNameConnect, wantMethod: http.MethodPost, wantMajor: 1},
		{name: "connect over h2c", h2c: true, wantProto: connect.ProtocolNameConnect, wantMethod: http.MethodPost, wantMajor: 2},
		{name: "connect JSON over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithProtoJSON()}, wantProto: connect.ProtocolNameConnect, wantMethod: http.MethodPost, wantMajor: 1},
		{name: "connect gzip over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithSendGzip()}, wantProto: connect.ProtocolNameConnect, wantMethod: http.MethodPost, wantMajor: 1},
		{name: "connect GET over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithHTTPGet()}, wantProto: connect.ProtocolNameConnect, wantMethod: http.MethodGet, wantMajor: 1},
		{name: "connect GET over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithHTTPGet()}, wantProto: connect.ProtocolNameConnect, wantMethod: http.MethodGet, wantMajor: 2},
		{name: "gRPC over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithGRPC()}, wantProto: connect.ProtocolNameGRPC, wantMethod: http.MethodPost, wantMajor: 2},
		{name: "gRPC-Web over HTTP/1.1", opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}, wantProto: connect.ProtocolNameGRPCWeb, wantMethod: http.MethodPost, wantMajor: 1},
		{name: "gRPC-Web over h2c", h2c: true, opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}, wantProto: connect.ProtocolNameGRPCWeb, wantMethod: http.MethodPost, wantMajor: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startServer(t)
			httpClient, rec := http1Client(t)
			if tt.h2c {
				httpClient, rec = h2cClient(t)
			}
			client := productClient(httpClient, h.URL(), tt.opts...)

			var ids []string
			for range 2 {
				ctx, info := connect.NewClientContext(t.Context())
				res, err := client.ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 10})
				if err != nil {
					t.Fatalf("ListProducts: %v", err)
				}
				if got := res.GetProducts(); len(got) != len(fixedProducts) || got[0].GetName() != "Teapot" {
					t.Fatalf("products = %v, want %v", got, fixedProducts)
				}
				if got := info.ResponseHeader().Get(seenProtocolHeader); got != tt.wantProto {
					t.Errorf("handler saw protocol %q, want %q", got, tt.wantProto)
				}
				if got := info.ResponseHeader().Get(seenMethodHeader); got != tt.wantMethod {
					t.Errorf("handler saw HTTP method %q, want %q", got, tt.wantMethod)
				}
				if got, want := info.ResponseHeader().Get(seenHTTPHeader), fmt.Sprintf("HTTP/%d", tt.wantMajor); !strings.HasPrefix(got, want) {
					t.Errorf("handler saw %q, want %s", got, want)
				}
				if got := rec.lastMajor.Load(); got != tt.wantMajor {
					t.Errorf("response over HTTP/%d, want HTTP/%d", got, tt.wantMajor)
				}
				id := info.ResponseHeader().Get(requestid.Header)
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
		opts      []connecthttp.Option
		wantProto string
		wantMajor int32
	}{
		{name: "gRPC over TLS (HTTP/2 via ALPN)", client: h2Client, rec: h2Rec, opts: []connecthttp.Option{connecthttp.WithGRPC()}, wantProto: connect.ProtocolNameGRPC, wantMajor: 2},
		{name: "gRPC-Web over TLS (HTTP/2 via ALPN)", client: h2Client, rec: h2Rec, opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}, wantProto: connect.ProtocolNameGRPCWeb, wantMajor: 2},
		{name: "connect over HTTPS HTTP/1.1", client: h1Client, rec: h1Rec, wantProto: connect.ProtocolNameConnect, wantMajor: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := productClient(tt.client, baseURL, tt.opts...)
			ctx, info := connect.NewClientContext(t.Context())
			res, err := client.ListProducts(ctx, &storefrontv1.ListProductsRequest{})
			if err != nil {
				t.Fatalf("ListProducts: %v", err)
			}
			if len(res.GetProducts()) != len(fixedProducts) {
				t.Errorf("got %d products, want %d", len(res.GetProducts()), len(fixedProducts))
			}
			if got := info.ResponseHeader().Get(seenProtocolHeader); got != tt.wantProto {
				t.Errorf("handler saw protocol %q, want %q", got, tt.wantProto)
			}
			if got := tt.rec.lastMajor.Load(); got != tt.wantMajor {
				t.Errorf("response over HTTP/%d, want HTTP/%d", got, tt.wantMajor)
			}
			if httpInfo, ok := connecthttp.ClientInfoForContext(ctx); !ok || httpInfo.TLS() == nil {
				t.Errorf("response did not come over TLS")
			}
			if info.ResponseHeader().Get(requestid.Header) == "" {
				t.Errorf("no %s header", requestid.Header)
			}
		})
	}

	t.Run("plaintext h2c to the TLS port fails", func(t *testing.T) {
		httpClient, _ := h2cClient(t)
		client := productClient(httpClient, h.URL(), connecthttp.WithGRPC())
		if _, err := client.ListProducts(t.Context(), &storefrontv1.ListProductsRequest{}); err == nil {
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
			client := productClient(httpClient, h.URL(), tt.opts...)

			type result struct {
				res *storefrontv1.GetProductResponse
				err error
			}
			resc := make(chan result, 1)
			go func() {
				res, err := client.GetProduct(context.Background(), &storefrontv1.GetProductRequest{ProductId: "slow"})
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
			if got := r.res.GetProduct().GetProductId(); got != "slow" {
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
	products := server.WithService(productService(newFakeProducts()))
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	// registerHealthCheck registers a method at the health service's Check.
	registerHealthCheck := func(s *connect.Server) {
		s.Register(connect.Method{Spec: healthCheckSpec, Handler: func(context.Context, connect.Spec, connect.ServerStream) error { return nil }})
	}
	tests := []struct {
		name string
		opts []server.Option
	}{
		{name: "same service twice", opts: []server.Option{products, products}},
		{name: "same service in one registration", opts: []server.Option{server.WithService(server.Service{Register: func(s *connect.Server) {
			storefrontv1connect.RegisterProductServiceHandler(s, newFakeProducts())
			storefrontv1connect.RegisterProductServiceHandler(s, newFakeProducts())
		}})}},
		{name: "certificate without key", opts: []server.Option{server.WithTLS("cert.pem", "")}},
		{name: "key without certificate", opts: []server.Option{server.WithTLS("", "key.pem")}},
		{name: "route collides with /healthz", opts: []server.Option{server.WithHandler("GET /healthz", nop)}},
		{name: "route collides with a service", opts: []server.Option{products, server.WithHandler("/acme.storefront.v1.ProductService/", nop)}},
		{name: "route collides with a procedure", opts: []server.Option{products, server.WithHandler(storefrontv1connect.ProductServiceGetProductProcedure, nop)}},
		{name: "service collides with the health service", opts: []server.Option{server.WithService(server.Service{Register: registerHealthCheck})}},
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
	srv, err := server.New(server.WithService(productService(newFakeProducts())))
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

// TestRoute names requests by the pattern that serves them: a procedure's,
// the server's own, the innermost of muxes in routes, or none.
func TestRoute(t *testing.T) {
	t.Parallel()
	inner := http.NewServeMux()
	inner.HandleFunc("GET /auth/callback", func(http.ResponseWriter, *http.Request) {})
	inner.HandleFunc("GET /auth/orders/{id}", func(http.ResponseWriter, *http.Request) {})
	srv, err := server.New(
		server.WithService(productService(newFakeProducts())),
		server.WithHandler("/auth/", inner),
		server.WithHandler("GET /page", http.NotFoundHandler()),
	)
	if err != nil {
		t.Fatal(err)
	}
	getProduct := storefrontv1connect.ProductServiceGetProductProcedure
	cases := []struct {
		name, method, target, want string
	}{
		{"a procedure", http.MethodPost, getProduct, getProduct},
		{"a procedure's Connect GET with its query", http.MethodGet, getProduct + "?message=e30&encoding=json", getProduct},
		{"a probe", http.MethodGet, "/readyz", "GET /readyz"},
		{"a route's mux", http.MethodGet, "/auth/callback?code=c&state=s", "GET /auth/callback"},
		{"a route's mux with a parameter", http.MethodGet, "/auth/orders/o-1001", "GET /auth/orders/{id}"},
		{"a path the route's mux does not serve", http.MethodGet, "/auth/nothing", "/auth/"},
		{"a route that is not a mux", http.MethodGet, "/page", "GET /page"},
		{"no route", http.MethodGet, "/nothing/here", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := srv.Route(httptest.NewRequest(c.method, c.target, nil)); got != c.want {
				t.Errorf("Route(%s %s) = %q, want %q", c.method, c.target, got, c.want)
			}
		})
	}
}

// TestMount mounts a service on a built server: it is served behind the
// edge, listed by Services, health and reflection. A Mount that fails
// leaves the server as it was.
func TestMount(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	nop := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv, err := server.New(
		server.WithLogger(testLogger(&logs)),
		server.WithService(productService(newFakeProducts())),
		// A plain route that takes AccountService's subtree: mounting
		// AccountService must fail without serving any of it.
		server.WithHandler("/acme.storefront.v1.AccountService/", nop),
	)
	if err != nil {
		t.Fatal(err)
	}
	accounts := server.Service{Register: func(s *connect.Server) {
		storefrontv1connect.RegisterAccountServiceHandler(s, storefrontv1connect.UnimplementedAccountServiceHandler{})
	}}
	if err := srv.Mount(accounts); err == nil {
		t.Fatal("Mount of a service whose routes are taken succeeded")
	}
	for _, bad := range []server.Service{
		productService(newFakeProducts()),
		{Register: func(s *connect.Server) {
			s.Register(connect.Method{Spec: healthWatchSpec, Handler: func(context.Context, connect.Spec, connect.ServerStream) error { return nil }})
		}},
	} {
		if err := srv.Mount(bad); err == nil {
			t.Errorf("Mount of a service already served succeeded")
		}
	}
	if want := []string{storefrontv1connect.ProductServiceName}; !slices.Equal(srv.Services(), want) {
		t.Fatalf("after failed Mounts, Services() = %v, want %v", srv.Services(), want)
	}
	baseURL := serve(t, srv)
	httpClient, _ := h2cClient(t)
	res, err := httpClient.Post(baseURL+storefrontv1connect.AccountServiceGetDashboardProcedure, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTeapot {
		t.Errorf("after a failed Mount, %s answered %d, want the plain route's %d", storefrontv1connect.AccountServiceGetDashboardProcedure, res.StatusCode, http.StatusTeapot)
	}

	// A service that does not collide mounts on the built server.
	srv2, err := server.New(server.WithLogger(testLogger(&logs)), server.WithService(productService(newFakeProducts())))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv2.Mount(accounts); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if err := srv2.Mount(accounts); err == nil {
		t.Error("second Mount of the same service succeeded")
	}
	if want := []string{storefrontv1connect.ProductServiceName, storefrontv1connect.AccountServiceName}; !slices.Equal(srv2.Services(), want) {
		t.Fatalf("Services() = %v, want %v", srv2.Services(), want)
	}
	baseURL = serve(t, srv2)
	client := newConnectClient(httpClient, baseURL, connecthttp.WithGRPC())

	var check healthv1.HealthCheckResponse
	if err := client.CallUnary(t.Context(), healthCheckSpec, &healthv1.HealthCheckRequest{Service: storefrontv1connect.AccountServiceName}, &check); err != nil {
		t.Fatalf("health Check of the mounted service: %v", err)
	}
	if check.GetStatus() != healthv1.HealthCheckResponse_SERVING {
		t.Errorf("health of the mounted service %v, want SERVING", check.GetStatus())
	}
	stream := grpcreflect.NewClient(client).NewStream(t.Context())
	t.Cleanup(func() { _ = stream.Close() })
	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	if !slices.Contains(names, storefrontv1connect.AccountServiceName) {
		t.Errorf("ListServices = %v, missing the mounted %s", names, storefrontv1connect.AccountServiceName)
	}
	// Served behind the edge, which passes the handler's connect error on.
	_, err = storefrontv1connect.NewAccountServiceClient(client).GetDashboard(t.Context(), &storefrontv1.GetDashboardRequest{})
	wantCode(t, err, connect.CodeUnimplemented)
	if _, ok := logLineWith(logs.String(), "call failed", storefrontv1connect.AccountServiceGetDashboardProcedure, "request_id="); !ok {
		t.Errorf("the mounted service's failure is not logged by the edge:\n%s", logs.String())
	}
}
