package custodian

import (
	"log/slog"

	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/ratelimit"
)

// newRateLimiter returns the rate limiter cfg.RateLimits describes, finding
// client addresses behind cfg.Server.TrustedProxies. It keeps its own real
// clock: the gateway's test clock moves sessions, not buckets.
func newRateLimiter(cfg *config.Config, logger *slog.Logger) *ratelimit.Limiter {
	rl := cfg.RateLimits
	methods := make(map[string]ratelimit.Limit, len(rl.Methods))
	for procedure, l := range rl.Methods {
		methods[procedure] = rateLimit(&l)
	}
	return ratelimit.New(ratelimit.Config{
		PerIP:      rateLimit(rl.PerIP),
		PerSession: rateLimit(rl.PerSession),
		Login:      rateLimit(rl.Login),
		Methods:    methods,
	}, cfg.Session.CookieName, cfg.Server.TrustedPrefixes(), ratelimit.WithLogger(logger))
}

// rateLimit converts a configured limit; nil, which validation leaves only
// in a configuration never given defaults, is off.
func rateLimit(l *config.RateLimit) ratelimit.Limit {
	if l == nil {
		return ratelimit.Limit{}
	}
	return ratelimit.Limit{Rate: l.Rate, Burst: l.Burst}
}
