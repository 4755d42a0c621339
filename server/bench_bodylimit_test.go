package server

// BenchmarkLimitBodies is the body-limit wrapper alone (it is unexported:
// server.New puts it inside every middleware; BenchmarkServerStack in
// bench_server_test.go measures it in place), in front of a handler that
// reads the body, on a signed-in browser's request. "baseline" is the
// same without the wrapper; both first set the headers the gateway's
// middleware sets before it (request id, security headers, CORS), which
// the wrapper copies for a request it may have to answer 413.
//
//	go test -run '^$' -bench LimitBodies -benchmem ./server/

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchRewind is a request body that the benchmark rewinds.
type benchRewind struct {
	data []byte
	off  int
}

func (b *benchRewind) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (*benchRewind) Close() error { return nil }

func BenchmarkLimitBodies(b *testing.B) {
	// Headers set before limitBodies, on values that are not reallocated.
	before := http.Header{
		"X-Request-Id":                     {"abcdefghijklmnop"},
		"X-Content-Type-Options":           {"nosniff"},
		"Referrer-Policy":                  {"no-referrer"},
		"Vary":                             {"Origin"},
		"Access-Control-Allow-Origin":      {"https://shop.example.com"},
		"Access-Control-Allow-Credentials": {"true"},
	}
	var read int
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		read += int(n)
	})
	middleware := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			for k, v := range before {
				h[k] = v
			}
			next.ServeHTTP(w, r)
		})
	}
	baseline := middleware(route)
	limited := middleware(limitBodies(1<<20, route))

	newReq := func(method, target string) *http.Request {
		r := httptest.NewRequest(method, "https://shop.example.com"+target, nil)
		r.Header.Set("Cookie", "__Host-custodian=Q2hhbmdlIG1lIHRvIGEgcmVhbCBzZXNzaW9uIGlkIHA; theme=dark")
		r.Header.Set("X-CSRF", "1")
		r.Header.Set("Origin", "https://shop.example.com")
		r.Header.Set("Accept-Encoding", "gzip")
		return r
	}
	body := &benchRewind{data: []byte("\n\x06o-1001")}
	get := newReq(http.MethodGet, "/acme.storefront.v1.AccountService/GetOrder?connect=v1&encoding=json&message=%7B%22orderId%22%3A%22o-1001%22%7D")
	post := newReq(http.MethodPost, "/acme.storefront.v1.AccountService/GetOrder")
	post.Header.Set("Content-Type", "application/proto")
	post.Body, post.ContentLength = body, int64(len(body.data))
	page := newReq(http.MethodGet, "/account")

	for _, r := range []*http.Request{get, post, page} {
		body.off, read = 0, 0
		w := httptest.NewRecorder()
		limited.ServeHTTP(w, r)
		if w.Code != http.StatusOK || (r == post) != (read == len(body.data)) {
			b.Fatalf("%s %s: status %d, %d bytes read", r.Method, r.URL.Path, w.Code, read)
		}
	}
	tooBig := newReq(http.MethodPost, "/acme.storefront.v1.AccountService/GetOrder")
	tooBig.Header.Set("Content-Type", "application/proto")
	tooBig.ContentLength = 2 << 20
	w := httptest.NewRecorder()
	limited.ServeHTTP(w, tooBig)
	if w.Code != http.StatusRequestEntityTooLarge {
		b.Fatalf("a body over the limit: status %d", w.Code)
	}

	for _, c := range []struct {
		name string
		h    http.Handler
		r    *http.Request
	}{
		{"baseline/connect-get", baseline, get},
		{"limited/connect-get", limited, get},
		{"baseline/post-body", baseline, post},
		{"limited/post-body", limited, post},
		{"limited/get-no-message", limited, page},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			w := httptest.NewRecorder()
			for b.Loop() {
				body.off = 0
				clear(w.HeaderMap)
				c.h.ServeHTTP(w, c.r)
			}
		})
	}
}
