package requestid_test

//	go test -run '^$' -bench . -benchmem ./internal/requestid/

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/custodian-bff/custodian/internal/requestid"
)

// BenchmarkNew is one fresh id.
func BenchmarkNew(b *testing.B) {
	if id := requestid.New(); len(id) != 16 || id == requestid.New() {
		b.Fatalf("New() = %q: want 16 characters, different each time", id)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = requestid.New()
	}
}

// BenchmarkMiddleware is the request-id middleware in front of a no-op
// handler, on a signed-in browser's Connect GET for an order: a fresh id,
// the response header and the request's new context. "baseline" is the
// no-op handler alone.
func BenchmarkMiddleware(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, "https://shop.example.com/acme.storefront.v1.AccountService/GetOrder?connect=v1&encoding=json&message=%7B%22orderId%22%3A%22o-1001%22%7D", nil)
	req.Header.Set("Cookie", "__Host-custodian=Q2hhbmdlIG1lIHRvIGEgcmVhbCBzZXNzaW9uIGlkIHA; theme=dark")
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Origin", "https://shop.example.com")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	req.Header.Set("Accept-Encoding", "gzip")
	var seen string
	noop := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = requestid.FromContext(r.Context()) })
	h := requestid.Middleware(noop)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if got := w.Header().Get(requestid.Header); len(got) != 16 || got != seen {
		b.Fatalf("X-Request-Id %q, handler saw %q: want the same 16-character id", got, seen)
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"baseline", noop}, {"middleware", h}} {
		h := c.h
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			w := httptest.NewRecorder()
			for b.Loop() {
				clear(w.HeaderMap)
				h.ServeHTTP(w, req)
			}
		})
	}
}
