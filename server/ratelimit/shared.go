package ratelimit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Shared is a store of token buckets that every replica of a gateway uses,
// so that a client's limits hold across replicas (see [WithShared]).
// Package redislimit implements it on Redis. It is called on the request
// path, with the request's context, and must be safe for concurrent use.
type Shared interface {
	// Allow takes a token from the bucket named key, which holds limit
	// (enabled, Burst at least 1), and reports whether there was one.
	// When there was not, nothing is taken and retryAfter is how long
	// until there is. An error means the store did not answer; the
	// Limiter then applies its own buckets.
	Allow(ctx context.Context, key string, limit Limit) (ok bool, retryAfter time.Duration, err error)
	// Refund gives back the token Allow took from key, for a request that
	// another bucket refused. It is best effort.
	Refund(ctx context.Context, key string, limit Limit) error
}

// sharedRetryInterval is how often a Limiter whose shared store is down
// lets one request try it again.
const sharedRetryInterval = time.Second

// sharedState tracks whether the shared store answers. While it is down,
// requests use the local buckets without waiting on it, except one request
// every sharedRetryInterval, the probe, whose answer brings it back.
type sharedState struct {
	down    atomic.Bool
	retryAt atomic.Int64 // unix nanoseconds: when the next probe may go
}

// allowShared asks the shared store for the buckets of dims, in their
// order, and stops at the first that refuses, giving back the tokens taken
// before it, so that a refused request costs no bucket (as [take] does in
// memory). dims come most specific first: a client over its own session's
// or procedure's limit then never reaches the per-address bucket it shares
// with its neighbours. It costs one round trip per bucket: the GCRA
// scripts take one key each, and may live on different Cluster nodes.
//
// answered is false when the local buckets must decide instead: the store
// is down, or failed on this request.
func (l *Limiter) allowShared(ctx context.Context, dims []dimension) (ok bool, retryAfter time.Duration, refusedBy int, answered bool) {
	probe := false
	if l.state.down.Load() {
		if !l.mayProbe() {
			return false, 0, -1, false
		}
		probe = true
	}
	for i, d := range dims {
		allowed, wait, err := l.shared.Allow(ctx, d.sharedKey(), d.buckets.config)
		if err != nil {
			l.sharedFailed(ctx, err)
			return false, 0, -1, false
		}
		if !allowed {
			for _, taken := range dims[:i] {
				if err := l.shared.Refund(ctx, taken.sharedKey(), taken.buckets.config); err != nil {
					l.logger.LogAttrs(ctx, slog.LevelDebug, "rate limit: token not given back to the shared store",
						slog.String("limit", taken.name), slog.String("error", err.Error()))
				}
			}
			if probe {
				l.sharedBack(ctx)
			}
			return false, roundUp(wait), i, true
		}
	}
	if probe {
		l.sharedBack(ctx)
	}
	return true, 0, -1, true
}

// mayProbe reports whether this request is the one to try the shared store
// that is down: the first to come once the retry interval has passed.
func (l *Limiter) mayProbe() bool {
	now := l.now().UnixNano()
	at := l.state.retryAt.Load()
	return now >= at && l.state.retryAt.CompareAndSwap(at, now+int64(sharedRetryInterval))
}

// sharedFailed notes that the shared store did not answer, and logs a
// warning if it was up: once per outage, not per request. A request whose
// caller went away is no evidence.
func (l *Limiter) sharedFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	l.state.retryAt.Store(l.now().Add(sharedRetryInterval).UnixNano())
	if l.state.down.CompareAndSwap(false, true) {
		l.logger.LogAttrs(ctx, slog.LevelWarn,
			"rate limits: shared store unreachable; this replica applies its own limits until it is back",
			slog.String("error", err.Error()))
	}
}

// sharedBack notes that a probe got an answer from the shared store.
func (l *Limiter) sharedBack(ctx context.Context) {
	if l.state.down.CompareAndSwap(true, false) {
		l.logger.LogAttrs(ctx, slog.LevelInfo, "rate limits: shared store reachable again; limits hold across replicas")
	}
}
