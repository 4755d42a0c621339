package security_test

// Benchmarks of the security middleware and the CSRF guard, each on its
// own in front of a no-op handler, on the request a signed-in browser sends
// for an order page: a Connect GET with the session cookie, X-CSRF, its
// origin, a user agent and Accept-Encoding. "baseline" is the no-op handler
// driven the same way, without the piece: what the piece costs is the
// difference.
//
//	go test -run '^$' -bench . -benchmem ./server/security/

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/server/security"
)

const (
	benchOrigin    = "https://shop.example.com"
	benchProcedure = storefrontv1connect.AccountServiceGetOrderProcedure
	// benchTarget is GetOrder as connect-web sends it with useHttpGet.
	benchTarget = benchOrigin + benchProcedure + "?connect=v1&encoding=json&message=%7B%22orderId%22%3A%22o-1001%22%7D"
	// benchSessionID has the length of a real one (256 bits, base64url).
	benchSessionID = "Q2hhbmdlIG1lIHRvIGEgcmVhbCBzZXNzaW9uIGlkIHA"
	benchUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// benchRequest returns the browser's Connect GET for an order, signed in.
func benchRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, benchTarget, nil)
	r.RemoteAddr = "198.51.100.7:51234"
	h := r.Header
	h.Set("Cookie", cookieName+"="+benchSessionID+"; theme=dark; lang=en")
	h.Set(security.CSRFHeader, "1")
	h.Set("Origin", benchOrigin)
	h.Set("User-Agent", benchUserAgent)
	h.Set("Accept", "*/*")
	h.Set("Accept-Encoding", "gzip")
	h.Set("Accept-Language", "en-GB,en;q=0.9")
	h.Set("Sec-Fetch-Site", "same-origin")
	h.Set("Sec-Fetch-Mode", "cors")
	h.Set("Referer", benchOrigin+"/account/orders/o-1001")
	return r
}

// benchServe serves req with h on one recorder, emptied between requests
// (its header map keeps its room, as a fresh one would not).
func benchServe(b *testing.B, h http.Handler, req *http.Request) {
	b.Helper()
	b.ReportAllocs()
	w := httptest.NewRecorder()
	for b.Loop() {
		clear(w.HeaderMap)
		w.Body.Reset()
		h.ServeHTTP(w, req)
	}
}

var benchNoop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

func BenchmarkHeaders(b *testing.B) {
	req := benchRequest()
	h := security.Headers(cookieName, true)(benchNoop)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if got := w.Header().Values("Cache-Control"); len(got) != 1 || got[0] != "private, no-store" {
		b.Fatalf("Cache-Control = %q, want one private, no-store", got)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Strict-Transport-Security") == "" {
		b.Fatalf("headers = %v", w.Header())
	}
	b.Run("baseline", func(b *testing.B) { benchServe(b, benchNoop, req) })
	b.Run("headers", func(b *testing.B) { benchServe(b, h, req) })
}

func BenchmarkCORS(b *testing.B) {
	req := benchRequest()
	h := security.CORS([]string{"https://app.example.test", benchOrigin}, 7200)(benchNoop)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != benchOrigin {
		b.Fatalf("Access-Control-Allow-Origin = %q, want %q", got, benchOrigin)
	}
	if w.Header().Get("Access-Control-Allow-Credentials") != "true" {
		b.Fatalf("headers = %v", w.Header())
	}
	preflight := httptest.NewRequest(http.MethodOptions, benchTarget, nil)
	preflight.Header.Set("Origin", benchOrigin)
	preflight.Header.Set("Access-Control-Request-Method", http.MethodGet)
	preflight.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,x-csrf")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, preflight)
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != benchOrigin {
		b.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	b.Run("baseline", func(b *testing.B) { benchServe(b, benchNoop, req) })
	b.Run("cors", func(b *testing.B) { benchServe(b, h, req) })
	b.Run("preflight", func(b *testing.B) { benchServe(b, h, preflight) })
}

// benchGuard is the guard of a gateway on benchOrigin with one more
// allowed origin.
func benchGuard() *security.Guard {
	return security.NewGuard(cookieName, security.NewOrigins(benchOrigin, []string{"https://app.example.test"}))
}

// BenchmarkGuardCheck is the guard's decision alone, on the request's
// headers.
func BenchmarkGuardCheck(b *testing.B) {
	g := benchGuard()
	allowed := benchRequest().Header
	refused := allowed.Clone()
	refused.Set("Origin", "https://evil.example")
	if err := g.Check(http.MethodGet, allowed); err != nil {
		b.Fatalf("allowed request refused: %v", err)
	}
	if err := g.Check(http.MethodGet, refused); err == nil {
		b.Fatal("foreign origin allowed")
	}
	for _, c := range []struct {
		name string
		h    http.Header
	}{{"allowed", allowed}, {"refused", refused}} {
		h := c.h
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = g.Check(http.MethodGet, h)
			}
		})
	}
}

// benchStream is a ServerStream for calls whose handler reads nothing.
type benchStream struct{}

func (benchStream) Receive(any) error  { return errors.New("benchStream: no message") }
func (benchStream) SendHeaders() error { return nil }
func (benchStream) Send(any) error     { return nil }

// BenchmarkGuardInterceptor is the guard interceptor on a unary call
// dispatched by connect.Server.Call, as a transport does, with the
// request's headers in the call's CallInfo. Without connecthttp's info the
// guard takes the call for a POST (which needs no X-CSRF); "refused" comes
// from a foreign origin. "baseline" is the same server without the guard.
func BenchmarkGuardInterceptor(b *testing.B) {
	var reached int
	handler := func(context.Context, connect.Spec, connect.ServerStream) error {
		reached++
		return nil
	}
	method := connect.Method{Spec: connect.Spec{Procedure: benchProcedure, StreamType: connect.StreamTypeUnary}, Handler: handler}
	bare := connect.NewServer()
	bare.Register(method)
	guarded := connect.NewServer(benchGuard().Interceptor())
	guarded.Register(method)
	info := func(origin string) *connect.CallInfo {
		info := &connect.CallInfo{}
		for k, v := range benchRequest().Header {
			info.RequestHeader().SetValues(k, v)
		}
		info.RequestHeader().Set("Origin", origin)
		return info
	}
	allowed, refused := info(benchOrigin), info("https://evil.example")
	ctx := context.Background()

	if err := guarded.Call(ctx, benchProcedure, allowed, benchStream{}); err != nil || reached != 1 {
		b.Fatalf("allowed call: %v, handler reached %d times", err, reached)
	}
	if err := guarded.Call(ctx, benchProcedure, refused, benchStream{}); connect.CodeOf(err) != connect.CodePermissionDenied || reached != 1 {
		b.Fatalf("refused call: %v, handler reached %d times", err, reached)
	}
	run := func(srv *connect.Server, info *connect.CallInfo) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = srv.Call(ctx, benchProcedure, info, benchStream{})
			}
		}
	}
	b.Run("baseline", run(bare, allowed))
	b.Run("allowed", run(guarded, allowed))
	b.Run("refused", run(guarded, refused))
}

// benchAccount answers GetOrder with a fixed order.
type benchAccount struct {
	storefrontv1connect.UnimplementedAccountServiceHandler
	res *storefrontv1.GetOrderResponse
}

func (a benchAccount) GetOrder(context.Context, *storefrontv1.GetOrderRequest) (*storefrontv1.GetOrderResponse, error) {
	return a.res, nil
}

// benchBody returns the recorded answer's body, gunzipped if need be.
func benchBody(b *testing.B, w *httptest.ResponseRecorder) string {
	b.Helper()
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w.Body.String()
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	return string(body)
}

// BenchmarkGuardInterceptorHTTP is the guard on the whole Connect GET
// through connecthttp (which gives the guard the HTTP method): "allowed"
// carries X-CSRF, "refused" does not and gets permission_denied. The
// handler answers a small order; "baseline" is the same handler without
// the guard.
func BenchmarkGuardInterceptorHTTP(b *testing.B) {
	svc := benchAccount{res: &storefrontv1.GetOrderResponse{Order: &storefrontv1.Order{OrderId: "o-1001"}}}
	mux := func(interceptors ...connect.ServerInterceptor) http.Handler {
		srv := connect.NewServer(interceptors...)
		storefrontv1connect.RegisterAccountServiceHandler(srv, svc)
		mux := http.NewServeMux()
		// As the gateway does: answers this small are not compressed.
		connecthttp.Mount(mux, srv, connecthttp.WithCompressMinBytes(4<<10))
		return mux
	}
	bare, guarded := mux(), mux(benchGuard().Interceptor())
	allowed := benchRequest()
	refused := benchRequest()
	refused.Header.Del(security.CSRFHeader)

	w := httptest.NewRecorder()
	guarded.ServeHTTP(w, allowed)
	if body := benchBody(b, w); w.Code != http.StatusOK || body != `{"order":{"orderId":"o-1001"}}` {
		b.Fatalf("allowed: %d %s", w.Code, body)
	}
	w = httptest.NewRecorder()
	guarded.ServeHTTP(w, refused)
	if body := benchBody(b, w); w.Code != http.StatusForbidden || !strings.Contains(body, "permission_denied") {
		b.Fatalf("refused: %d %s, want 403 permission_denied", w.Code, body)
	}
	b.Run("baseline", func(b *testing.B) { benchServe(b, bare, allowed) })
	b.Run("allowed", func(b *testing.B) { benchServe(b, guarded, allowed) })
	b.Run("refused", func(b *testing.B) { benchServe(b, guarded, refused) })
}
