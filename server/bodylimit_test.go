package server_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/server"
)

// The read limits of bodyLimitEnv: the server's (testMaxBodyBytes) bounds
// health and the plain route, ProductService has a tighter one of its own.
const (
	serverBodyLimit  = testMaxBodyBytes
	serviceBodyLimit = 1 << 10
	tooLargeMessage  = "request is too large"
)

// bodyLimitEnv is a server with a tightly limited ProductService, health at
// the server's limit, a plain route that answers 400 when it cannot read
// its body (as handlers do), and a count of the requests that reached the
// listener per path.
type bodyLimitEnv struct {
	base string
	fake *fakeProducts

	mu   sync.Mutex
	seen map[string]int
}

func newBodyLimitEnv(t *testing.T) *bodyLimitEnv {
	t.Helper()
	e := &bodyLimitEnv{fake: newFakeProducts(), seen: map[string]int{}}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Set-Cookie", "echoed=1")
		_, _ = w.Write(body)
	})
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.mu.Lock()
			e.seen[r.URL.Path]++
			e.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	srv, err := server.New(testLimits,
		server.WithService(server.Service{
			Register: func(s *connect.Server) {
				storefrontv1connect.RegisterProductServiceHandler(s, e.fake)
			},
			MaxBodyBytes: serviceBodyLimit,
		}),
		server.WithHandler("POST /echo", echo),
		server.WithMiddleware(count),
	)
	if err != nil {
		t.Fatal(err)
	}
	e.base = serve(t, srv)
	return e
}

func (e *bodyLimitEnv) requests(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[path]
}

// sized returns build(k) for the k that makes it exactly n bytes long.
func sized(t *testing.T, n int, build func(k int) []byte) []byte {
	t.Helper()
	for k := n; k >= 0; k-- {
		if b := build(k); len(b) == n {
			return b
		} else if len(b) < n {
			break
		}
	}
	t.Fatalf("no message of exactly %d bytes", n)
	return nil
}

func listProductsJSON(t *testing.T, n int) []byte {
	return sized(t, n, func(k int) []byte {
		b, err := protojson.Marshal(&storefrontv1.ListProductsRequest{Category: strings.Repeat("k", k)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func listProductsProto(t *testing.T, n int) []byte {
	return sized(t, n, func(k int) []byte {
		b, err := proto.Marshal(&storefrontv1.ListProductsRequest{Category: strings.Repeat("k", k)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func healthCheckJSON(t *testing.T, n int) []byte {
	return sized(t, n, func(k int) []byte {
		b, err := protojson.Marshal(&healthv1.HealthCheckRequest{Service: strings.Repeat("s", k)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// frame is one gRPC / Connect streaming envelope.
func frame(flags byte, payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// bodyResult is what came back for a raw request.
type bodyResult struct {
	status  int
	header  http.Header
	trailer http.Header
	body    []byte
}

// grpcStatus returns the gRPC status and message of r: from its trailers,
// its headers (trailers-only) or, for gRPC-Web, the trailer frame.
func (r bodyResult) grpcStatus() (code, message string) {
	for _, h := range []http.Header{r.trailer, r.header} {
		if s := h.Get("Grpc-Status"); s != "" {
			return s, h.Get("Grpc-Message")
		}
	}
	for b := r.body; len(b) >= 5; {
		n := int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+n {
			break
		}
		if b[0]&0x80 != 0 {
			tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(b[5:5+n:5+n], "\r\n"...))))
			h, _ := tp.ReadMIMEHeader()
			return h.Get("Grpc-Status"), h.Get("Grpc-Message")
		}
		b = b[5+n:]
	}
	return "", ""
}

// connectError returns the code and message of a Connect unary error body,
// or of a Connect stream's end-of-stream message.
func (r bodyResult) connectError(stream bool) (code, message string) {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body := r.body
	if stream {
		var end struct {
			Error *json.RawMessage `json:"error"`
		}
		for b := r.body; len(b) >= 5; {
			n := int(binary.BigEndian.Uint32(b[1:5]))
			if len(b) < 5+n {
				break
			}
			if b[0]&0x02 != 0 && json.Unmarshal(b[5:5+n], &end) == nil && end.Error != nil {
				body = *end.Error
			}
			b = b[5+n:]
		}
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	return e.Code, e.Message
}

// TestBodyLimits sends requests over, and exactly at, the read limits in
// every protocol, with and without Content-Length, through the listener.
// Over a limit, the Connect unary protocol and plain routes answer 413 with
// invalid_argument (JSON) or a short text, gRPC and gRPC-Web
// invalid_argument (their status is always 200), never resource_exhausted
// or 429, which clients take for a rate limit and retry. The service's own
// limit holds below the server's.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	e := newBodyLimitEnv(t)
	http1, _ := http1Client(t)
	h2c, _ := h2cClient(t)

	const (
		listProducts = "/acme.storefront.v1.ProductService/ListProducts"
		healthCheck  = "/grpc.health.v1.Health/Check"
		healthWatch  = "/grpc.health.v1.Health/Watch"
	)
	// How an answer over a limit looks in each protocol.
	type kind int
	const (
		connectUnary kind = iota
		connectStream
		grpcLike
		plain
	)
	protocols := []struct {
		name   string
		client *http.Client
		method string
		path   string
		header http.Header
		limit  int
		kind   kind
		// body is a request whose message is n bytes.
		body func(t *testing.T, n int) []byte
		// handled counts the calls its handler served, when it has one.
		handled func() int64
	}{
		{
			name: "Connect JSON over HTTP/1.1", client: http1, method: http.MethodPost, path: listProducts,
			header: http.Header{"Content-Type": {"application/json"}, "Connect-Protocol-Version": {"1"}},
			limit:  serviceBodyLimit, kind: connectUnary, body: listProductsJSON, handled: e.fake.listCalls.Load,
		},
		{
			name: "Connect binary over HTTP/1.1", client: http1, method: http.MethodPost, path: listProducts,
			header: http.Header{"Content-Type": {"application/proto"}, "Connect-Protocol-Version": {"1"}},
			limit:  serviceBodyLimit, kind: connectUnary, body: listProductsProto, handled: e.fake.listCalls.Load,
		},
		{
			name: "Connect binary over h2c", client: h2c, method: http.MethodPost, path: listProducts,
			header: http.Header{"Content-Type": {"application/proto"}, "Connect-Protocol-Version": {"1"}},
			limit:  serviceBodyLimit, kind: connectUnary, body: listProductsProto, handled: e.fake.listCalls.Load,
		},
		{
			name: "Connect JSON at the server's limit (health)", client: http1, method: http.MethodPost, path: healthCheck,
			header: http.Header{"Content-Type": {"application/json"}},
			limit:  serverBodyLimit, kind: connectUnary, body: healthCheckJSON,
		},
		{
			name: "Connect server stream (health watch)", client: http1, method: http.MethodPost, path: healthWatch,
			header: http.Header{"Content-Type": {"application/connect+json"}, "Connect-Protocol-Version": {"1"}},
			limit:  serverBodyLimit, kind: connectStream,
			body: func(t *testing.T, n int) []byte { return frame(0, healthCheckJSON(t, n)) },
		},
		{
			name: "gRPC over h2c", client: h2c, method: http.MethodPost, path: listProducts,
			header: http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}},
			limit:  serviceBodyLimit, kind: grpcLike, handled: e.fake.listCalls.Load,
			body: func(t *testing.T, n int) []byte { return frame(0, listProductsProto(t, n)) },
		},
		{
			name: "gRPC-Web over HTTP/1.1", client: http1, method: http.MethodPost, path: listProducts,
			header: http.Header{"Content-Type": {"application/grpc-web+proto"}, "X-Grpc-Web": {"1"}},
			limit:  serviceBodyLimit, kind: grpcLike, handled: e.fake.listCalls.Load,
			body: func(t *testing.T, n int) []byte { return frame(0, listProductsProto(t, n)) },
		},
		{
			name: "plain route over HTTP/1.1", client: http1, method: http.MethodPost, path: "/echo",
			header: http.Header{"Content-Type": {"text/plain"}},
			limit:  serverBodyLimit, kind: plain,
			body: func(_ *testing.T, n int) []byte { return bytes.Repeat([]byte("x"), n) },
		},
		{
			name: "plain route over h2c", client: h2c, method: http.MethodPost, path: "/echo",
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			limit:  serverBodyLimit, kind: plain,
			body: func(_ *testing.T, n int) []byte { return bytes.Repeat([]byte("x"), n) },
		},
	}
	sizes := []struct {
		name          string
		size          func(limit int) int
		contentLength bool
		over          bool
	}{
		{name: "one byte over, with Content-Length", size: func(l int) int { return l + 1 }, contentLength: true, over: true},
		{name: "over the server's limit, with Content-Length", size: func(int) int { return 16 * serverBodyLimit }, contentLength: true, over: true},
		{name: "one byte over, chunked", size: func(l int) int { return l + 1 }, over: true},
		{name: "over the server's limit, chunked", size: func(int) int { return 16 * serverBodyLimit }, over: true},
		{name: "at the limit, with Content-Length", size: func(l int) int { return l }, contentLength: true},
		{name: "at the limit, chunked", size: func(l int) int { return l }},
	}
	for _, p := range protocols {
		for _, sz := range sizes {
			if p.kind == connectStream && !sz.over {
				continue // a served watch never ends
			}
			t.Run(p.name+"/"+sz.name, func(t *testing.T) {
				body := p.body(t, sz.size(p.limit))
				var rd io.Reader = bytes.NewReader(body)
				if !sz.contentLength {
					rd = io.MultiReader(rd) // unknown length: chunked on HTTP/1.1
				}
				req, err := http.NewRequestWithContext(t.Context(), p.method, e.base+p.path, rd)
				if err != nil {
					t.Fatal(err)
				}
				req.Header = p.header.Clone()
				if !sz.contentLength {
					req.ContentLength = -1
				}
				var handledBefore int64
				if p.handled != nil {
					handledBefore = p.handled()
				}
				res, err := p.client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", p.method, p.path, err)
				}
				r := bodyResult{status: res.StatusCode, header: res.Header}
				r.body, err = io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				r.trailer = res.Trailer
				if sz.contentLength != (req.ContentLength >= 0) {
					t.Fatalf("request sent with ContentLength %d", req.ContentLength)
				}

				if !sz.over {
					switch p.kind {
					case grpcLike:
						if code, msg := r.grpcStatus(); r.status != http.StatusOK || code != "0" {
							t.Errorf("status %d, grpc-status %q %q, want 200 and 0", r.status, code, msg)
						}
					case plain:
						if r.status != http.StatusOK || !bytes.Equal(r.body, body) {
							t.Errorf("status %d, %d bytes back, want 200 and the %d bytes sent", r.status, len(r.body), len(body))
						}
					default:
						if r.status != http.StatusOK && !(p.path == healthCheck && r.status == http.StatusNotFound) {
							t.Errorf("status %d (%.200s), want 200", r.status, r.body)
						}
					}
					return
				}

				if got := r.header.Get("Retry-After"); got != "" {
					t.Errorf("Retry-After %q on a request that must not be retried", got)
				}
				switch p.kind {
				case connectUnary:
					code, msg := r.connectError(false)
					if r.status != http.StatusRequestEntityTooLarge || code != "invalid_argument" || msg != tooLargeMessage {
						t.Errorf("status %d, code %q, message %q; want 413, invalid_argument, %q", r.status, code, msg, tooLargeMessage)
					}
					if ct := r.header.Get("Content-Type"); ct != "application/json" {
						t.Errorf("Content-Type %q, want application/json", ct)
					}
				case connectStream:
					code, msg := r.connectError(true)
					if r.status != http.StatusOK || code != "invalid_argument" || msg != tooLargeMessage {
						t.Errorf("status %d, end of stream %q %q; want 200, invalid_argument, %q", r.status, code, msg, tooLargeMessage)
					}
				case grpcLike:
					code, msg := r.grpcStatus()
					if r.status != http.StatusOK || code != strconv.Itoa(int(connect.CodeInvalidArgument)) || msg != tooLargeMessage {
						t.Errorf("status %d, grpc-status %q %q; want 200, 3, %q", r.status, code, msg, tooLargeMessage)
					}
				case plain:
					if r.status != http.StatusRequestEntityTooLarge || string(r.body) != tooLargeMessage+"\n" {
						t.Errorf("status %d, body %q; want 413 and %q", r.status, r.body, tooLargeMessage)
					}
					if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
						t.Errorf("Content-Type %q, want text/plain", ct)
					}
					if got := r.header.Values("Set-Cookie"); len(got) != 0 {
						t.Errorf("Set-Cookie %q: the route's answer leaked into the 413", got)
					}
				}
				if p.handled != nil && p.handled() != handledBefore {
					t.Error("the handler ran")
				}
			})
		}
	}
}

// TestBodyLimitConnectGet: a Connect GET whose message (in the query) is
// over the service's limit is answered 413 like a POST.
func TestBodyLimitConnectGet(t *testing.T) {
	t.Parallel()
	e := newBodyLimitEnv(t)
	httpClient, _ := http1Client(t)
	for _, tt := range []struct {
		name       string
		size       int
		wantStatus int
		wantCode   string
	}{
		{name: "at the limit", size: serviceBodyLimit, wantStatus: http.StatusOK},
		{name: "one byte over", size: serviceBodyLimit + 1, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "invalid_argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"connect": {"v1"}, "encoding": {"json"}, "message": {string(listProductsJSON(t, tt.size))}}
			res, err := httpClient.Get(e.base + "/acme.storefront.v1.ProductService/ListProducts?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			r := bodyResult{status: res.StatusCode, header: res.Header}
			r.body, _ = io.ReadAll(res.Body)
			res.Body.Close()
			if r.status != tt.wantStatus {
				t.Fatalf("status %d (%.200s), want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantCode == "" {
				return
			}
			if code, msg := r.connectError(false); code != tt.wantCode || msg != tooLargeMessage {
				t.Errorf("code %q, message %q; want %s, %q", code, msg, tt.wantCode, tooLargeMessage)
			}
		})
	}
}

// retryableCodes are the codes clients and proxies commonly retry
// (connect-es and connect-go do not retry on their own; gRPC retry policies
// and Envoy's retry_on list these).
var retryableCodes = []connect.Code{
	connect.CodeUnavailable, connect.CodeResourceExhausted, connect.CodeAborted,
	connect.CodeDeadlineExceeded, connect.CodeUnknown, connect.CodeInternal,
}

// TestTooLargeIsNotRetried calls with generated clients, as applications
// do: each learns invalid_argument, a code nobody retries, and sends the
// request once. A grpc-go client told to retry unavailable and
// resource_exhausted (a common retry policy) sends it once too.
func TestTooLargeIsNotRetried(t *testing.T) {
	t.Parallel()
	transports := append(errorTransports[:len(errorTransports):len(errorTransports)], struct {
		name string
		h2c  bool
		opts []connecthttp.Option
	}{name: "connect GET", opts: []connecthttp.Option{connecthttp.WithHTTPGet(), connecthttp.WithProtoJSON()}})
	for _, tr := range transports {
		for _, size := range []int{2 * serviceBodyLimit, 16 * serverBodyLimit} {
			if tr.name == "connect GET" && size > serviceBodyLimit*2 {
				continue // the URL would be over the header limit
			}
			t.Run(fmt.Sprintf("%s/%d bytes", tr.name, size), func(t *testing.T) {
				t.Parallel()
				e := newBodyLimitEnv(t)
				httpClient, _ := http1Client(t)
				if tr.h2c {
					httpClient, _ = h2cClient(t)
				}
				client := productClient(httpClient, e.base, tr.opts...)
				_, err := client.ListProducts(t.Context(), &storefrontv1.ListProductsRequest{Category: strings.Repeat("k", size)})
				ce := wantCode(t, err, connect.CodeInvalidArgument)
				if ce.Message() != tooLargeMessage {
					t.Errorf("message %q, want %q", ce.Message(), tooLargeMessage)
				}
				for _, c := range retryableCodes {
					if ce.Code() == c {
						t.Errorf("code %v is one clients retry", c)
					}
				}
				if n := e.requests("/acme.storefront.v1.ProductService/ListProducts"); n != 1 {
					t.Errorf("%d requests reached the server, want 1", n)
				}
				if n := e.fake.listCalls.Load(); n != 0 {
					t.Errorf("the handler ran %d times", n)
				}
			})
		}
	}

	t.Run("grpc-go with a retry policy", func(t *testing.T) {
		t.Parallel()
		e := newBodyLimitEnv(t)
		const serviceConfig = `{"methodConfig": [{
			"name": [{"service": "acme.storefront.v1.ProductService"}],
			"retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2,
				"retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]}}]}`
		conn, err := grpc.NewClient(strings.TrimPrefix(e.base, "http://"),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(serviceConfig))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req := &storefrontv1.ListProductsRequest{Category: strings.Repeat("k", 2*serviceBodyLimit)}
		err = conn.Invoke(t.Context(), storefrontv1connect.ProductServiceListProductsProcedure, req, new(storefrontv1.ListProductsResponse))
		if s := status.Convert(err); s.Code() != codes.InvalidArgument || s.Message() != tooLargeMessage {
			t.Errorf("grpc-go: %v, want InvalidArgument %q", err, tooLargeMessage)
		}
		if n := e.requests(storefrontv1connect.ProductServiceListProductsProcedure); n != 1 {
			t.Errorf("%d requests reached the server, want 1", n)
		}
	})
}
