package ratelimit_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/ratelimit"
)

const testCookie = "__Host-custodian"

// call is one request through the middleware.
type call struct {
	advance time.Duration
	method  string // default GET
	path    string
	peer    string // default 198.51.100.1
	session string // session cookie value, if any
	allowed bool
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	const (
		listProducts = "/acme.storefront.v1.ProductService/ListProducts"
		getProduct   = "/acme.storefront.v1.ProductService/GetProduct"
	)
	generous := ratelimit.Limit{Rate: 1000, Burst: 1000}
	tests := []struct {
		name  string
		cfg   ratelimit.Config
		calls []call
	}{
		{
			name: "per IP applies to every request",
			cfg:  ratelimit.Config{PerIP: ratelimit.Limit{Rate: 1, Burst: 2}},
			calls: []call{
				{path: "/a", allowed: true}, {path: "/b", session: "s1", allowed: true},
				{path: "/c", session: "s2", allowed: false},
				{path: "/a", peer: "198.51.100.2", allowed: true},
				{advance: time.Second, path: "/a", allowed: true},
			},
		},
		{
			name: "two sessions from one IP: own session buckets, shared IP bucket",
			cfg:  ratelimit.Config{PerIP: ratelimit.Limit{Rate: 1, Burst: 3}, PerSession: ratelimit.Limit{Rate: 1, Burst: 2}},
			calls: []call{
				{path: "/x", session: "s1", allowed: true}, {path: "/x", session: "s1", allowed: true},
				{path: "/x", session: "s1", allowed: false}, // s1's bucket is empty
				{path: "/x", session: "s2", allowed: true},  // s2's is not...
				{path: "/x", session: "s2", allowed: false}, // ...but the IP's now is
			},
		},
		{
			name: "one session from two IPs shares its bucket",
			cfg:  ratelimit.Config{PerIP: generous, PerSession: ratelimit.Limit{Rate: 1, Burst: 2}},
			calls: []call{
				{path: "/x", session: "s1", peer: "198.51.100.1", allowed: true},
				{path: "/x", session: "s1", peer: "198.51.100.2", allowed: true},
				{path: "/x", session: "s1", peer: "198.51.100.3", allowed: false},
				{path: "/x", peer: "198.51.100.3", allowed: true}, // anonymous: no session bucket
			},
		},
		{
			name: "a refusal by one bucket takes from none",
			cfg:  ratelimit.Config{PerIP: ratelimit.Limit{Rate: 1, Burst: 2}, PerSession: ratelimit.Limit{Rate: 1, Burst: 1}},
			calls: []call{
				{path: "/x", session: "s1", allowed: true},
				{path: "/x", session: "s1", allowed: false}, // refused by the session bucket...
				{path: "/x", session: "s1", allowed: false},
				{path: "/x", allowed: true}, // ...so the IP bucket still holds its token
			},
		},
		{
			name: "login routes are stricter, per IP",
			cfg:  ratelimit.Config{PerIP: generous, Login: ratelimit.Limit{Rate: 1, Burst: 2}},
			calls: []call{
				{path: "/auth/login", allowed: true},
				{path: "/custodian.v1.AuthService/StartLogin", method: http.MethodPost, allowed: true},
				{path: "/auth/callback", allowed: false},
				{path: "/custodian.v1.AuthService/FinishLogin", method: http.MethodPost, allowed: false},
				{path: "/auth/login", session: "s1", allowed: false}, // a cookie does not help
				{path: "/auth/logout", allowed: true},                // not a login route
				{path: "/custodian.v1.SessionService/GetSession", method: http.MethodPost, allowed: true},
				{path: "/auth/login", peer: "198.51.100.2", allowed: true},
				{advance: time.Second, path: "/auth/login", allowed: true},
			},
		},
		{
			name: "method bucket per session, or per IP when anonymous",
			cfg: ratelimit.Config{PerIP: generous, PerSession: generous, Methods: map[string]ratelimit.Limit{
				listProducts: {Rate: 1, Burst: 1},
			}},
			calls: []call{
				{path: listProducts, method: http.MethodPost, session: "s1", allowed: true},
				{path: listProducts, method: http.MethodPost, session: "s1", allowed: false},
				{path: getProduct, method: http.MethodPost, session: "s1", allowed: true}, // other procedures unaffected
				{path: listProducts, method: http.MethodPost, session: "s2", allowed: true},
				{path: listProducts, method: http.MethodPost, allowed: true},
				{path: listProducts, method: http.MethodPost, allowed: false},
				{path: listProducts, method: http.MethodPost, peer: "198.51.100.2", allowed: true},
				{advance: time.Second, path: listProducts, method: http.MethodPost, session: "s1", allowed: true},
			},
		},
		{
			name: "health checks are never limited",
			cfg:  ratelimit.Config{PerIP: ratelimit.Limit{Rate: 1, Burst: 1}},
			calls: []call{
				{path: "/a", allowed: true}, {path: "/a", allowed: false},
				{path: "/healthz", allowed: true}, {path: "/readyz", allowed: true}, {path: "/healthz", allowed: true},
				{path: "/grpc.health.v1.Health/Check", method: http.MethodPost, allowed: true},
				{path: "/grpc.health.v1.Health/Watch", method: http.MethodPost, allowed: true},
				{path: "/healthzz", allowed: false},
			},
		},
		{
			name: "IPv6 clients share a bucket per /64",
			cfg:  ratelimit.Config{PerIP: ratelimit.Limit{Rate: 1, Burst: 1}},
			calls: []call{
				{path: "/a", peer: "[2001:db8:1:2::1]:1", allowed: true},
				{path: "/a", peer: "[2001:db8:1:2:ffff::9]:1", allowed: false},
				{path: "/a", peer: "[2001:db8:1:3::1]:1", allowed: true},
			},
		},
		{
			name:  "zero limits are off",
			cfg:   ratelimit.Config{Methods: map[string]ratelimit.Limit{listProducts: {}}},
			calls: repeat(call{path: listProducts, method: http.MethodPost, session: "s1", allowed: true}, 50),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			l := ratelimit.New(tt.cfg, testCookie, testTrusted, ratelimit.WithClock(clock.Now))
			h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
			for i, c := range tt.calls {
				clock.Advance(c.advance)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, c.request())
				if allowed := rec.Code == http.StatusNoContent; allowed != c.allowed {
					t.Fatalf("call %d (%s %s, session %q): status %d, want allowed %v", i, c.method, c.path, c.session, rec.Code, c.allowed)
				}
			}
		})
	}
}

func (c call) request() *http.Request {
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, c.path, nil)
	r.RemoteAddr = "198.51.100.1:40000"
	if c.peer != "" {
		r.RemoteAddr = c.peer
	}
	if c.session != "" {
		r.AddCookie(&http.Cookie{Name: testCookie, Value: c.session})
	}
	return r
}

// TestMiddlewareClientIP checks that the middleware limits the address the
// trusted proxies forward, and hands it to the handler.
func TestMiddlewareClientIP(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(ratelimit.Config{PerIP: ratelimit.Limit{Rate: 1, Burst: 1}}, testCookie, testTrusted,
		ratelimit.WithClock(newFakeClock().Now))
	var seen []string
	h := l.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = append(seen, ratelimit.FromContext(r.Context()).String())
	}))
	tests := []struct {
		name    string
		xff     string
		allowed bool
	}{
		{name: "first client through the proxy", xff: "198.51.100.1", allowed: true},
		{name: "second client through the same proxy", xff: "198.51.100.2", allowed: true},
		{name: "first client again", xff: "198.51.100.1", allowed: false},
	}
	for _, tt := range tests {
		// Sequential: the cases share the limiter.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header.Set("X-Forwarded-For", tt.xff)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if allowed := rec.Code == http.StatusOK; allowed != tt.allowed {
			t.Errorf("%s: status %d, want allowed %v", tt.name, rec.Code, tt.allowed)
		}
	}
	if want := []string{"198.51.100.1", "198.51.100.2"}; strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("handler saw client addresses %v, want %v", seen, want)
	}
}

// TestRefusalLogged checks the refusal's log line: debug level, with the
// request id and the client address, never the session cookie.
func TestRefusalLogged(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		logs bytes.Buffer
	)
	logger := slog.New(requestid.LogHandler(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l := ratelimit.New(ratelimit.Config{PerSession: ratelimit.Limit{Rate: 1, Burst: 1}}, testCookie, nil,
		ratelimit.WithClock(newFakeClock().Now), ratelimit.WithLogger(logger))
	h := requestid.Middleware(l.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	const secret = "session-id-that-must-not-be-logged"
	var id string
	for range 2 {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.RemoteAddr = "203.0.113.9:1"
		r.AddCookie(&http.Cookie{Name: testCookie, Value: secret})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		id = rec.Header().Get(requestid.Header)
	}
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	for _, want := range []string{"level=DEBUG", "request_id=" + id, "client_ip=203.0.113.9", "limit=per_session", "retry_after=1s"} {
		if id == "" || !strings.Contains(text, want) {
			t.Errorf("log does not contain %q (id %q):\n%s", want, id, text)
		}
	}
	if strings.Contains(text, secret) {
		t.Errorf("log reveals the session cookie:\n%s", text)
	}
	if n := strings.Count(text, "\n"); n != 1 {
		t.Errorf("%d log lines, want 1 (the refusal):\n%s", n, text)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
