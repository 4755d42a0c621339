package redislimit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/ratelimit"
	"github.com/custodian-bff/custodian/server/ratelimit/redislimit"
)

const cookieName = "__Host-custodian"

// never refills within a test: Retry-After is then about 1000s.
var never = func(burst int) ratelimit.Limit { return ratelimit.Limit{Rate: 0.001, Burst: burst} }

// newClient returns a client of srv, single-node or cluster, with short
// timeouts, configured as Custodian's (redisstore.ClientConfig.Options),
// closed when t ends.
func newClient(t testing.TB, srv *redistest.Server, cluster bool) redis.UniversalClient {
	t.Helper()
	opts := &redis.UniversalOptions{
		Addrs:         []string{srv.Addr()},
		IsClusterMode: cluster,
		DialTimeout:   500 * time.Millisecond,
		ReadTimeout:   500 * time.Millisecond,
		WriteTimeout:  500 * time.Millisecond,
		// As redisstore.ClientConfig.Options: one retry, one dial per try,
		// and a call's deadline bounds its commands.
		MaxRetries:            1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	}
	client := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// prefix returns a key prefix of t's own, so tests sharing a server do not
// share buckets.
func prefix(t testing.TB) string {
	return "test:" + strings.ReplaceAll(t.Name(), "/", ":") + ":"
}

// replica is one gateway replica's limiter in front of a handler that
// answers 204.
type replica struct {
	h    http.Handler
	logs *syncBuffer
}

func newReplica(cfg ratelimit.Config, opts ...ratelimit.Option) *replica {
	logs := &syncBuffer{}
	opts = append([]ratelimit.Option{ratelimit.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)
	l := ratelimit.New(cfg, cookieName, nil, opts...)
	return &replica{logs: logs, h: l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))}
}

// do sends a request from peer, with session as the cookie when not empty.
func (r *replica) do(peer, session string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/acme.v1.Shop/List", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = peer + ":40000"
	if session != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: session})
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec
}

// TestOneBudgetAcrossReplicas checks that two limiters sharing one Redis
// enforce one budget: with a burst of 10, requests alternating between them
// get 10 through, and the 11th is refused on either with 429, Connect's
// resource_exhausted and a Retry-After. Per replica, 20 would get through.
func TestOneBudgetAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clusterSrv := redistest.Start(t, redistest.WithCluster())
	for _, topo := range []struct {
		name    string
		srv     *redistest.Server
		cluster bool
	}{{"single", srv, false}, {"cluster", clusterSrv, true}} {
		for _, dim := range []struct {
			name string
			cfg  ratelimit.Config
			// peer and session of the i-th request
			from func(i int) (peer, session string)
		}{
			{"per session", ratelimit.Config{PerIP: never(1000), PerSession: never(10)},
				func(i int) (string, string) { return fmt.Sprintf("198.51.100.%d", i+1), "session-one" }},
			{"per address", ratelimit.Config{PerIP: never(10), PerSession: never(1000)},
				func(i int) (string, string) { return "203.0.113.7", fmt.Sprintf("session-%d", i) }},
			{"per address, anonymous", ratelimit.Config{PerIP: never(10)},
				func(int) (string, string) { return "203.0.113.8", "" }},
		} {
			t.Run(topo.name+"/"+dim.name, func(t *testing.T) {
				t.Parallel()
				shared := redislimit.New(newClient(t, topo.srv, topo.cluster), redislimit.WithPrefix(prefix(t)))
				a := newReplica(dim.cfg, ratelimit.WithShared(shared))
				b := newReplica(dim.cfg, ratelimit.WithShared(shared))
				replicas := []*replica{a, b}
				for i := range 10 {
					peer, session := dim.from(i)
					if rec := replicas[i%2].do(peer, session); rec.Code != http.StatusNoContent {
						t.Fatalf("request %d: status %d %s, want 204", i+1, rec.Code, rec.Body)
					}
				}
				for i, r := range replicas {
					peer, session := dim.from(10 + i)
					rec := r.do(peer, session)
					retry, _ := strconv.Atoi(rec.Header().Get("Retry-After"))
					if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), `"resource_exhausted"`) ||
						retry < 990 || retry > 1000 {
						t.Errorf("request 11 on replica %d: status %d, Retry-After %q, body %s; want 429, about 1000, resource_exhausted",
							i+1, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
					}
				}
				for _, r := range replicas {
					if r.logs.String() != "" {
						t.Errorf("replica logged:\n%s", r.logs)
					}
				}
			})
		}
	}
}

// TestRefusedRequestCostsNoBucket checks that a request one bucket refuses
// leaves the others as they were, across replicas: the session's token
// taken before the address refused is given back.
func TestRefusedRequestCostsNoBucket(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	shared := redislimit.New(newClient(t, srv, false), redislimit.WithPrefix(prefix(t)))
	cfg := ratelimit.Config{PerIP: never(1), PerSession: never(5)}
	a := newReplica(cfg, ratelimit.WithShared(shared))
	b := newReplica(cfg, ratelimit.WithShared(shared))
	if rec := a.do("198.51.100.1", "s1"); rec.Code != http.StatusNoContent {
		t.Fatalf("first request: status %d", rec.Code)
	}
	// Refused by the address, on both replicas, many times.
	for i := range 6 {
		if rec := []*replica{a, b}[i%2].do("198.51.100.1", "s1"); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("request %d from the exhausted address: status %d, want 429", i+2, rec.Code)
		}
	}
	// The session still has its 4 tokens: from 4 fresh addresses, 4 go
	// through and the fifth is refused by the session.
	for i := range 5 {
		rec := b.do(fmt.Sprintf("198.51.100.%d", i+2), "s1")
		if allowed := rec.Code == http.StatusNoContent; allowed != (i < 4) {
			t.Fatalf("session request %d from a fresh address: status %d, want allowed %v", i+1, rec.Code, i < 4)
		}
	}
}

// TestRedisOutage checks the fallback with a real redis-server: stopped,
// each replica applies its own limits at once, with one warning for the
// outage however many requests come; started again (same data), the
// shared buckets decide again, where they were left.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	shared := redislimit.New(newClient(t, srv, false), redislimit.WithPrefix(prefix(t)))
	clock := newClock() // paces the retries; Redis keeps its own time
	cfg := ratelimit.Config{PerSession: never(10)}
	a := newReplica(cfg, ratelimit.WithShared(shared), ratelimit.WithClock(clock.Now))
	b := newReplica(cfg, ratelimit.WithShared(shared), ratelimit.WithClock(clock.Now))

	// s1 spends its shared budget: 5 on each replica.
	for i := range 10 {
		if rec := []*replica{a, b}[i%2].do("198.51.100.1", "s1"); rec.Code != http.StatusNoContent {
			t.Fatalf("request %d: status %d", i+1, rec.Code)
		}
	}
	if rec := a.do("198.51.100.1", "s1"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request 11: status %d, want 429", rec.Code)
	}

	srv.Stop()
	// Replica a's own bucket for s1 is full: 10 more, then refused, and
	// no request waits on the stopped server.
	for i := range 30 {
		start := time.Now()
		rec := a.do("198.51.100.1", "s1")
		if allowed := rec.Code == http.StatusNoContent; allowed != (i < 10) {
			t.Fatalf("outage, request %d: status %d, want allowed %v", i+1, rec.Code, i < 10)
		}
		if i > 0 && time.Since(start) > 100*time.Millisecond {
			t.Errorf("outage, request %d took %v: it waited on Redis", i+1, time.Since(start))
		}
	}
	clock.Advance(time.Second) // a retry, which fails
	a.do("198.51.100.1", "s2")
	if got := a.logs.String(); strings.Count(got, "level=WARN") != 1 || strings.Count(got, "\n") != 1 ||
		!strings.Contains(got, "shared store unreachable") {
		t.Errorf("replica a logged, want one warning:\n%s", got)
	}

	srv.Restart()
	// The next retry finds Redis (a pooled connection may have died with
	// the server: give it a few).
	for i := 0; !strings.Contains(a.logs.String(), "reachable again"); i++ {
		if i == 10 {
			t.Fatalf("Redis is back, but replica a did not notice:\n%s", a.logs)
		}
		clock.Advance(time.Second)
		a.do("198.51.100.9", "probe")
	}
	// Shared again: s1's shared bucket is still empty, although a's own is
	// not...
	if rec := a.do("198.51.100.1", "s1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("s1 after the outage: status %d, want 429 from its shared bucket", rec.Code)
	}
	// ...and s3 has one budget across both replicas.
	for i := range 12 {
		r := []*replica{a, b}[i%2]
		if allowed := r.do("198.51.100.1", "s3").Code == http.StatusNoContent; allowed != (i < 10) {
			t.Fatalf("after the outage, s3 request %d: allowed %v, want %v", i+1, allowed, i < 10)
		}
	}
	if got := a.logs.String(); strings.Count(got, "level=WARN") != 1 {
		t.Errorf("replica a logged more than one warning:\n%s", got)
	}
}

// TestSlowRedis checks that a Redis slower than the store's timeout
// delays a request by about that timeout once, then the limiter's own
// buckets answer at once, with one warning; when Redis answers again, the
// limits are shared again.
func TestSlowRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clock := newClock()
	a := newReplica(ratelimit.Config{PerIP: never(100)},
		ratelimit.WithShared(redislimit.New(newClient(t, srv, false), redislimit.WithPrefix(prefix(t)), redislimit.WithTimeout(100*time.Millisecond))),
		ratelimit.WithClock(clock.Now))
	a.do("198.51.100.1", "") // connected
	if reply, err := srv.Do("CLIENT", "PAUSE", "3000", "ALL"); err != nil || reply != "OK" {
		t.Fatalf("CLIENT PAUSE: %q, %v", reply, err)
	}
	paused := time.Now()
	for i := range 20 {
		start := time.Now()
		if rec := a.do("198.51.100.1", ""); rec.Code != http.StatusNoContent {
			t.Fatalf("request %d while Redis is paused: status %d", i+1, rec.Code)
		}
		limit := 20 * time.Millisecond
		if i == 0 {
			limit = 400 * time.Millisecond // the one that finds Redis slow
		}
		if took := time.Since(start); took > limit {
			t.Errorf("request %d while Redis is paused took %v, want under %v", i+1, took, limit)
		}
	}
	if got := a.logs.String(); strings.Count(got, "level=WARN") != 1 || strings.Count(got, "\n") != 1 {
		t.Errorf("logged, want one warning:\n%s", got)
	}
	time.Sleep(time.Until(paused.Add(3100 * time.Millisecond)))
	for i := 0; !strings.Contains(a.logs.String(), "reachable again"); i++ {
		if i == 10 {
			t.Fatalf("Redis answers again, but the limiter did not notice:\n%s", a.logs)
		}
		clock.Advance(time.Second)
		a.do("198.51.100.1", "")
	}
}

// TestKeys checks what lands in Redis: namespaced, hash-tagged keys with a
// TTL, naming a session by a digest, never by its cookie.
func TestKeys(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv, false)
	p := prefix(t)
	a := newReplica(ratelimit.Config{PerIP: never(10), PerSession: never(10)}, ratelimit.WithShared(redislimit.New(client, redislimit.WithPrefix(p))))
	const cookie = "cookie-value-that-must-not-reach-redis"
	a.do("198.51.100.1", cookie)
	ctx := context.Background()
	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %q, want 2", keys)
	}
	var sawSession, sawIP bool
	for _, k := range keys {
		if strings.Contains(k, cookie) {
			t.Errorf("key %q holds the session cookie", k)
		}
		if !strings.HasPrefix(k, "rate:"+p+"{") || !strings.HasSuffix(k, "}") {
			t.Errorf("key %q: want rate:%s{...}", k, p)
		}
		sawIP = sawIP || k == "rate:"+p+"{per_ip:198.51.100.1}"
		if s, ok := strings.CutPrefix(k, "rate:"+p+"{per_session:"); ok && len(strings.TrimSuffix(s, "}")) == 43 {
			sawSession = true
		}
		if ttl, err := client.TTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("key %q: TTL %v (%v), want one", k, ttl, err)
		}
	}
	if !sawIP || !sawSession {
		t.Errorf("keys %q: want a per_ip key and a per_session key with a 43-character digest", keys)
	}
}

// TestACL checks the least an ACL user needs, as the package says: the
// key pattern rate:<prefix>*, EVALSHA and EVAL, and GET, SET and TIME in
// the script.
func TestACL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	if reply, err := srv.Do("ACL", "SETUSER", "limiter", "on", ">secret", "~rate:custodian:*",
		"+@connection", "+evalsha", "+eval", "+get", "+set", "+time"); err != nil || reply != "OK" {
		t.Fatalf("ACL SETUSER: %q, %v", reply, err)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "limiter", Password: "secret", MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	s := redislimit.New(client)
	for i := range 3 {
		ok, _, err := s.Allow(context.Background(), "per_ip:198.51.100.1", never(2))
		if err != nil || ok != (i < 2) {
			t.Fatalf("Allow %d as the ACL user: %v, %v; want %v", i+1, ok, err, i < 2)
		}
	}
	if err := s.Refund(context.Background(), "per_ip:198.51.100.1", never(2)); err != nil {
		t.Errorf("Refund as the ACL user: %v", err)
	}
}

// TestRates checks the conversion of rates to redis_rate's whole events per
// period, by the wait Redis asks for after a burst of one.
func TestRates(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := redislimit.New(newClient(t, srv, false), redislimit.WithPrefix(prefix(t)))
	for _, tt := range []struct {
		rate float64
		wait time.Duration // 1/rate
	}{{2, 500 * time.Millisecond}, {0.5, 2 * time.Second}, {2.5, 400 * time.Millisecond}, {1000, time.Millisecond}, {0.001, 1000 * time.Second}} {
		key := fmt.Sprintf("rate-%v", tt.rate)
		limit := ratelimit.Limit{Rate: tt.rate, Burst: 1}
		ctx := context.Background()
		if ok, _, err := s.Allow(ctx, key, limit); !ok || err != nil {
			t.Fatalf("rate %v: first Allow = %v, %v", tt.rate, ok, err)
		}
		ok, retry, err := s.Allow(ctx, key, limit)
		if tt.rate == 1000 && ok {
			continue // a millisecond may have passed
		}
		// Up to 50ms may have passed between the calls.
		if ok || err != nil || retry > tt.wait || retry < tt.wait-50*time.Millisecond {
			t.Errorf("rate %v: second Allow = %v, %v, %v; want refused for about %v", tt.rate, ok, retry, err, tt.wait)
		}
	}
}

// TestRefund checks redis_rate's refund, with a cost of -1: it gives a
// token back, except to a bucket it would fill.
func TestRefund(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := redislimit.New(newClient(t, srv, false), redislimit.WithPrefix(prefix(t)))
	ctx := context.Background()
	limit := never(3)
	for range 3 {
		if ok, _, err := s.Allow(ctx, "k", limit); !ok || err != nil {
			t.Fatalf("Allow = %v, %v", ok, err)
		}
	}
	if err := s.Refund(ctx, "k", limit); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := s.Allow(ctx, "k", limit); !ok {
		t.Error("refunded token not there")
	}
	if ok, _, _ := s.Allow(ctx, "k", limit); ok {
		t.Error("a second token after one refund")
	}
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clock is a clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
