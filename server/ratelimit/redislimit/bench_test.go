package redislimit_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/ratelimit"
	"github.com/custodian-bff/custodian/server/ratelimit/redislimit"
)

// BenchmarkMiddleware measures what the limiter adds to a request that it
// lets through: in memory, and on a real redis-server over loopback, where
// each bucket is one round trip (anonymous: per_ip; with a session:
// per_session and per_ip). "parallel" runs GOMAXPROCS clients at once.
//
//	go test -run '^$' -bench . -benchmem ./server/ratelimit/redislimit
func BenchmarkMiddleware(b *testing.B) {
	srv := redistest.Start(b)
	generous := ratelimit.Limit{Rate: 1e9, Burst: 1e9}
	cfg := ratelimit.Config{PerIP: generous, PerSession: generous}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, store := range []string{"memory", "redis"} {
		// A request that waits past the timeout on a busy machine would
		// fall back to memory and be measured there: wait long, and fail
		// on the warning it would log.
		logs := &syncBuffer{}
		opts := []ratelimit.Option{ratelimit.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}
		if store == "redis" {
			shared := redislimit.New(newClient(b, srv, false), redislimit.WithPrefix(prefix(b)), redislimit.WithTimeout(10*time.Second))
			opts = append(opts, ratelimit.WithShared(shared))
		}
		b.Cleanup(func() {
			if logs.String() != "" {
				b.Errorf("the limiter logged:\n%s", logs)
			}
		})
		h := ratelimit.New(cfg, cookieName, nil, opts...).Middleware(next)
		for _, session := range []string{"", "a-session-id-of-43-characters-like-the-rea"} {
			req := httptest.NewRequest(http.MethodPost, "/acme.v1.Shop/List", nil)
			req.RemoteAddr = "198.51.100.1:40000"
			name := store + "/anonymous"
			if session != "" {
				req.AddCookie(&http.Cookie{Name: cookieName, Value: session})
				name = store + "/session"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				w := httptest.NewRecorder()
				for b.Loop() {
					h.ServeHTTP(w, req)
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					w := httptest.NewRecorder()
					for pb.Next() {
						h.ServeHTTP(w, req)
					}
				})
			})
		}
	}
}
