package ratelimit_test

// Benchmarks of the rate limiter's middleware with in-memory buckets, in
// front of a no-op handler, on a signed-in browser's Connect GET for an
// order. The limits are generous, so every request is let through: this is
// what the limiter adds to a call. (server/ratelimit/redislimit's
// BenchmarkMiddleware compares the same with Redis, and needs a
// redis-server.)
//
//	go test -run '^$' -bench . -benchmem ./server/ratelimit/

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/custodian-bff/custodian/server/ratelimit"
)

const benchCookie = "__Host-custodian"

// benchRequest returns the browser's Connect GET for an order from
// 198.51.100.7, with the session cookie when signedIn.
func benchRequest(signedIn bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://shop.example.com/acme.storefront.v1.AccountService/GetOrder?connect=v1&encoding=json&message=%7B%22orderId%22%3A%22o-1001%22%7D", nil)
	r.RemoteAddr = "198.51.100.7:51234"
	h := r.Header
	if signedIn {
		h.Set("Cookie", benchCookie+"=Q2hhbmdlIG1lIHRvIGEgcmVhbCBzZXNzaW9uIGlkIHA; theme=dark; lang=en")
	}
	h.Set("X-CSRF", "1")
	h.Set("Origin", "https://shop.example.com")
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	h.Set("Accept", "*/*")
	h.Set("Accept-Encoding", "gzip")
	return r
}

// benchClients returns n copies of req, each from another address.
func benchClients(req *http.Request, n int) []*http.Request {
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = req.Clone(req.Context())
		reqs[i].RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", i>>16&0xff, i>>8&0xff, i&0xff)
	}
	return reqs
}

func BenchmarkLimiterMiddleware(b *testing.B) {
	generous := ratelimit.Limit{Rate: 1e9, Burst: 1e9}
	// served counts the requests let through; seen is the client address
	// the last one carried in its context.
	var (
		served int
		seen   netip.Addr
	)
	next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		served++
		seen = ratelimit.FromContext(r.Context())
	})
	perIP := ratelimit.Config{PerIP: generous}
	// The gateway's buckets for a signed-in call: per session and per IP.
	gateway := ratelimit.Config{PerIP: generous, PerSession: generous}

	cases := []struct {
		name     string
		cfg      ratelimit.Config
		signedIn bool
		clients  int // distinct client addresses, in turn
		capacity int // buckets each set remembers; 0 for the default
	}{
		{name: "per_ip/one-ip", cfg: perIP, clients: 1},
		// Every client's bucket is remembered: each request finds one.
		{name: "per_ip/many-ips", cfg: perIP, clients: 4096},
		// More clients than buckets remembered: each request makes a
		// bucket and forgets the least recently used one.
		{name: "per_ip/new-ip-each-call", cfg: perIP, clients: 1 << 14, capacity: 1024},
		{name: "per_session+per_ip/one-ip", cfg: gateway, signedIn: true, clients: 1},
		{name: "per_session+per_ip/many-ips", cfg: gateway, signedIn: true, clients: 4096},
	}
	for _, c := range cases {
		var opts []ratelimit.Option
		if c.capacity > 0 {
			opts = append(opts, ratelimit.WithCapacity(c.capacity))
		}
		h := ratelimit.New(c.cfg, benchCookie, nil, opts...).Middleware(next)
		reqs := benchClients(benchRequest(c.signedIn), c.clients)

		w := httptest.NewRecorder()
		served = 0
		for _, r := range reqs {
			h.ServeHTTP(w, r)
		}
		if w.Code != http.StatusOK || served != len(reqs) {
			b.Fatalf("%s: %d of %d requests served, status %d", c.name, served, len(reqs), w.Code)
		}
		if want := ratelimit.ClientIP(reqs[len(reqs)-1], nil); seen != want {
			b.Fatalf("%s: the handler saw client %v, want %v", c.name, seen, want)
		}

		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			w := httptest.NewRecorder()
			served = 0
			i := 0
			for b.Loop() {
				h.ServeHTTP(w, reqs[i%len(reqs)])
				i++
			}
			if served != i {
				b.Fatalf("%d of %d requests served", served, i)
			}
		})
	}
}

// BenchmarkClientIP is finding the client's address: the peer's, and
// behind a trusted proxy, from X-Forwarded-For.
func BenchmarkClientIP(b *testing.B) {
	direct := benchRequest(true)
	proxied := benchRequest(true)
	proxied.RemoteAddr = "10.0.0.2:8443"
	proxied.Header.Set("X-Forwarded-For", "203.0.113.9, 10.0.0.1")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		name string
		req  *http.Request
		want string
	}{
		{"direct", direct, "198.51.100.7"},
		{"x-forwarded-for", proxied, "203.0.113.9"},
	} {
		if got := ratelimit.ClientIP(c.req, trusted); got != netip.MustParseAddr(c.want) {
			b.Fatalf("%s: ClientIP = %v, want %s", c.name, got, c.want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ratelimit.ClientIP(c.req, trusted)
			}
		})
	}
}
