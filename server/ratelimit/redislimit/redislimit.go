// Package redislimit keeps the gateway's rate-limit buckets in Redis, so
// that a client's limits hold across every replica of the gateway: it is a
// [ratelimit.Shared] for [ratelimit.WithShared].
//
// Buckets are GCRA (the generic cell rate algorithm, which behaves as a
// token bucket) computed by a Lua script of github.com/go-redis/redis_rate
// on one key per bucket, by Redis's own clock, so replicas whose clocks
// differ still agree. A key expires once its bucket is full again: Redis
// holds keys for the clients active in the last burst's worth of time
// only. Every command names one key, so it works on a single server,
// behind Sentinel and on a Cluster alike, without cross-slot errors.
//
// # Keys
//
// With the default prefix "custodian:", the bucket of a client address,
// of a session (named by a digest of its cookie, never the cookie) and of
// a procedure are
//
//	rate:custodian:{per_ip:203.0.113.7}
//	rate:custodian:{per_session:<43 characters of base64url>}
//	rate:custodian:{method:/acme.v1.Shop/Buy:session:<digest>}
//
// redis_rate puts "rate:" first, so an ACL user of the gateway needs the
// key pattern ~rate:custodian:* besides the session store's ~custodian:*,
// and the commands EVALSHA and EVAL, whose script calls GET, SET and TIME.
package redislimit

import (
	"context"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/custodian-bff/custodian/server/ratelimit"
)

const (
	// DefaultPrefix starts the name of every bucket's key, after
	// redis_rate's own "rate:".
	DefaultPrefix = "custodian:"
	// DefaultTimeout bounds each call to Redis, on the request path.
	DefaultTimeout = 250 * time.Millisecond
)

// Store is a set of rate-limit buckets in Redis. It is safe for concurrent
// use.
type Store struct {
	limiter *redis_rate.Limiter
	prefix  string
	timeout time.Duration
}

var _ ratelimit.Shared = (*Store)(nil)

// Option configures a Store.
type Option interface {
	apply(*Store)
}

type optionFunc func(*Store)

func (f optionFunc) apply(s *Store) { f(s) }

// WithPrefix starts the name of every bucket's key, after "rate:", with
// prefix. Replicas that must share limits use the same Redis and prefix;
// deployments that share a Redis database but not their limits use
// different prefixes. Default: [DefaultPrefix], as the session store's.
func WithPrefix(prefix string) Option {
	return optionFunc(func(s *Store) { s.prefix = prefix })
}

// WithTimeout bounds each call to Redis, so that a slow Redis delays a
// request by at most this long before the limiter falls back to its own
// buckets. It applies when the client was made with ContextTimeoutEnabled
// (as Custodian's is); the client's own timeouts apply too. Default:
// [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(s *Store) { s.timeout = d })
}

// New returns buckets kept by client, which the caller keeps and closes.
func New(client redis.UniversalClient, opts ...Option) *Store {
	s := &Store{limiter: redis_rate.NewLimiter(client), prefix: DefaultPrefix, timeout: DefaultTimeout}
	for _, opt := range opts {
		opt.apply(s)
	}
	return s
}

// Allow takes a token from key's bucket of limit in one round trip (an
// EVALSHA; the first call after Redis lost its scripts adds an EVAL). The
// key is stored as rate:<prefix>{<key>}: the whole bucket name is the
// hash tag, so buckets spread over a Cluster's slots, one slot each.
func (s *Store) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ok bool, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := s.limiter.Allow(ctx, s.key(key), gcra(limit))
	if err != nil {
		return false, 0, err
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, max(res.RetryAfter, time.Nanosecond), nil
}

// Refund gives a token back to key's bucket: redis_rate's script with a
// cost of -1, one round trip. The script leaves alone a bucket that the
// refund would fill, so a refund to a bucket holding Burst-1 tokens or more
// is lost; that bucket is full again within 1/Rate anyway.
func (s *Store) Refund(ctx context.Context, key string, limit ratelimit.Limit) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.limiter.AllowN(ctx, s.key(key), gcra(limit), -1)
	return err
}

func (s *Store) key(key string) string {
	return s.prefix + "{" + key + "}"
}

// gcra converts limit to redis_rate's terms, which count whole events per
// period: Rate a second when Rate is a whole number, else one event per
// 1/Rate.
func gcra(limit ratelimit.Limit) redis_rate.Limit {
	burst := max(limit.Burst, 1)
	if r := limit.Rate; r >= 1 && r <= math.MaxInt32 && r == math.Trunc(r) {
		return redis_rate.Limit{Rate: int(r), Burst: burst, Period: time.Second}
	}
	const longest = math.MaxInt64 / 2 // a vanishing rate: Burst events, then practically never
	period := time.Duration(longest)
	if perEvent := float64(time.Second) / limit.Rate; limit.Rate > 0 && perEvent < longest {
		period = max(time.Duration(perEvent), time.Nanosecond)
	}
	return redis_rate.Limit{Rate: 1, Burst: burst, Period: period}
}
