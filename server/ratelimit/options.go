package ratelimit

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Option configures a Limiter.
type Option interface {
	apply(*options)
}

type options struct {
	logger   *slog.Logger
	now      func() time.Time
	capacity int
	shared   Shared
	meters   metric.MeterProvider
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger refusals are logged to, at debug level.
// Default: a logger that discards everything.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithShared keeps the buckets in shared, a backend that every replica of
// the gateway uses (package redislimit implements it on Redis), so that a
// client's limits hold across replicas rather than per replica. While
// shared does not answer, the Limiter applies its own in-memory buckets,
// the same limits per replica, logs one warning for the outage, and tries
// shared again on one request a second; it logs when shared is back.
// Default: none, the buckets are this Limiter's own.
func WithShared(shared Shared) Option {
	return optionFunc(func(o *options) { o.shared = shared })
}

// WithClock sets the clock the in-memory buckets fill by, and that paces
// retries of a shared backend that is down (a shared backend fills its
// buckets by its own clock). Default: time.Now; tests move it instead of
// sleeping.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

// WithCapacity sets how many keys each set of buckets (per address, per
// session, login, each method) remembers before forgetting the least
// recently used. Default: DefaultCapacity (100000), about 20 MB per full
// set.
func WithCapacity(n int) Option {
	return optionFunc(func(o *options) { o.capacity = n })
}

// WithMeterProvider sets where refusals are counted
// (custodian.ratelimit.refusals, by limit: per_ip, per_session, login or
// method). Default: not counted.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.meters = mp })
}
