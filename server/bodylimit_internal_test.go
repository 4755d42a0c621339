package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLimitBodiesConnectGetCopiesNoHeaders: a Connect GET has no body to
// read over the limit, so the guard keeps no copy of the headers set
// before the route (it needs them only to replace an answer made from a
// body it cut short). What is left: the guard, the request with the
// guard in its context, and the context value.
func TestLimitBodiesConnectGetCopiesNoHeaders(t *testing.T) {
	nosniff, noReferrer := []string{"nosniff"}, []string{"no-referrer"}
	route := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Content-Type-Options"] = nosniff
		w.Header()["Referrer-Policy"] = noReferrer
		limitBodies(1<<20, route).ServeHTTP(w, r)
	})
	r := httptest.NewRequest(http.MethodGet, "https://shop.example.com/acme.storefront.v1.ProductService/ListProducts?connect=v1&encoding=json&message=%7B%7D", nil)
	w := httptest.NewRecorder()
	allocs := testing.AllocsPerRun(100, func() {
		clear(w.HeaderMap)
		h.ServeHTTP(w, r)
	})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if allocs > 3 {
		t.Errorf("%.0f allocations per Connect GET, want at most 3", allocs)
	}
}
