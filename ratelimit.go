package custodian

import (
	"log/slog"

	"github.com/redis/go-redis/v9"

	"go.opentelemetry.io/otel/metric"

	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/ratelimit"
	"github.com/custodian-bff/custodian/server/ratelimit/redislimit"
	"github.com/custodian-bff/custodian/server/session"
)

// newRateLimiter returns the rate limiter cfg.RateLimits describes, finding
// client addresses behind cfg.Server.TrustedProxies. When store is in Redis
// (session.store: redis), the buckets live in that Redis, on the store's
// client, so that the limits hold across replicas; while Redis does not
// answer, each replica applies the limits on its own. The limiter keeps
// its own real clock: the gateway's test clock moves sessions, not
// buckets.
func newRateLimiter(cfg *config.Config, logger *slog.Logger, meters metric.MeterProvider, store session.Store) *ratelimit.Limiter {
	rl := cfg.RateLimits
	methods := make(map[string]ratelimit.Limit, len(rl.Methods))
	for procedure, l := range rl.Methods {
		methods[procedure] = rateLimit(&l)
	}
	opts := []ratelimit.Option{ratelimit.WithLogger(logger), ratelimit.WithMeterProvider(meters)}
	if r, ok := store.(redisClientLender); ok {
		opts = append(opts, ratelimit.WithShared(redislimit.New(r.Client())))
	}
	return ratelimit.New(ratelimit.Config{
		PerIP:      rateLimit(rl.PerIP),
		PerSession: rateLimit(rl.PerSession),
		Login:      rateLimit(rl.Login),
		Methods:    methods,
	}, cfg.Session.CookieName, cfg.Server.TrustedPrefixes(), opts...)
}

// redisClientLender is a session store in Redis that lends its client, as
// redisstore.Store does, whether newStore made it or it came with
// WithStore.
type redisClientLender interface {
	Client() redis.UniversalClient
}

// rateLimit converts a configured limit; nil, which validation leaves only
// in a configuration never given defaults, is off.
func rateLimit(l *config.RateLimit) ratelimit.Limit {
	if l == nil {
		return ratelimit.Limit{}
	}
	return ratelimit.Limit{Rate: l.Rate, Burst: l.Burst}
}
