package custodian

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/config"
)

// TestRateLimitsAcrossReplicas checks the wiring of shared rate limits: two
// gateways on one Redis (session.store: redis) enforce one budget per
// client address and per session, where two gateways on memory stores
// enforce one each.
func TestRateLimitsAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	never := func(burst int) *config.RateLimit { return &config.RateLimit{Rate: 0.001, Burst: burst} }
	for _, tt := range []struct {
		name    string
		store   string
		limits  config.RateLimits
		session bool
		allowed int // of 30 requests alternating between the replicas
	}{
		{"per address on redis", config.StoreRedis, config.RateLimits{PerIP: never(10), PerSession: never(1000)}, false, 10},
		{"per session on redis", config.StoreRedis, config.RateLimits{PerIP: never(1000), PerSession: never(10)}, true, 10},
		{"per address on memory", config.StoreMemory, config.RateLimits{PerIP: never(10), PerSession: never(1000)}, false, 20},
		{"per session on memory", config.StoreMemory, config.RateLimits{PerIP: never(1000), PerSession: never(10)}, true, 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.store == config.StoreRedis {
				store, closeStore, err := newStore(rateLimitTestConfig(t, srv, tt.store, tt.limits), time.Now, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = closeStore() })
				if _, ok := store.(redisClientLender); !ok {
					t.Fatalf("the Redis session store (%T) lends no client (Client() redis.UniversalClient): the rate limits cannot share its Redis", store)
				}
			}
			var replicas [2]*httptest.Server
			for i := range replicas {
				cfg := rateLimitTestConfig(t, srv, tt.store, tt.limits)
				g, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = g.closeStore() })
				replicas[i] = httptest.NewServer(g.Handler())
				t.Cleanup(replicas[i].Close)
			}
			session := "session-of-" + t.Name()
			allowed := 0
			for i := range 30 {
				req, _ := http.NewRequest(http.MethodGet, replicas[i%2].URL+"/no-such-page", nil)
				// One address for the per-address budget; for the session's,
				// a new one each time.
				peer := "203.0.113.1"
				if tt.session {
					peer = fmt.Sprintf("198.51.100.%d", i+1)
				}
				req.Header.Set("X-Forwarded-For", peer)
				if tt.session {
					req.AddCookie(&http.Cookie{Name: "__Host-custodian", Value: session})
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusTooManyRequests:
					if resp.Header.Get("Retry-After") == "" {
						t.Errorf("request %d: 429 without Retry-After", i+1)
					}
				case i >= tt.allowed:
					t.Errorf("request %d on replica %d: status %d, want 429 past the budget of %d", i+1, i%2+1, resp.StatusCode, tt.allowed)
				default:
					allowed++
				}
			}
			if allowed != tt.allowed {
				t.Errorf("%d of 30 requests allowed, want %d", allowed, tt.allowed)
			}
		})
	}
}

// rateLimitTestConfig returns a valid configuration with store (redis on
// srv, or memory) and limits, trusting the loopback proxy's
// X-Forwarded-For so that a test picks its client addresses.
func rateLimitTestConfig(t *testing.T, srv *redistest.Server, store string, limits config.RateLimits) *config.Config {
	t.Helper()
	cfg := &config.Config{
		PublicURL:  "http://127.0.0.1:8080",
		OIDC:       config.OIDC{Issuer: "http://127.0.0.1:9/op", ClientID: "custodian", ClientSecret: "secret"},
		Session:    config.Session{Keys: [][]byte{make([]byte, 32)}, Store: store},
		Backends:   []config.Backend{{Name: "none", URL: "http://127.0.0.1:9", Token: config.TokenNone}},
		Server:     config.Server{TrustedProxies: []string{"127.0.0.1/32"}},
		RateLimits: limits,
	}
	if store == config.StoreRedis {
		cfg.Session.RedisURL = srv.URL()
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}
