package ratelimit

import (
	"log/slog"
	"time"
)

// Option configures a Limiter.
type Option interface {
	apply(*options)
}

type options struct {
	logger   *slog.Logger
	now      func() time.Time
	capacity int
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger refusals are logged to, at debug level.
// Default: a logger that discards everything.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithClock sets the clock buckets fill by. Default: time.Now; tests move
// it instead of sleeping.
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
