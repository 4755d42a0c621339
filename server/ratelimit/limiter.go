package ratelimit

import (
	"math"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// DefaultCapacity is how many keys a set of buckets remembers by default.
const DefaultCapacity = 100000

// Limit is a token bucket: Rate tokens a second flow in, up to Burst; each
// request takes one. A Rate of 0 (or less) turns the bucket off. A Burst
// below 1 with a positive Rate is taken as 1.
type Limit struct {
	Rate  float64 // tokens per second
	Burst int
}

func (l Limit) enabled() bool { return l.Rate > 0 }

// Buckets is a set of token buckets of one Limit, one per key (a client
// address, a session). They are kept in an LRU of bounded size, so a flood
// of new keys costs bounded memory: the least recently used buckets are
// forgotten, and a forgotten key starts again with a full bucket. A nil
// *Buckets, which [NewBuckets] returns for a disabled Limit, allows
// everything. It is safe for concurrent use.
type Buckets struct {
	config Limit // as given, Burst at least 1: what a Shared backend is asked for
	limit  rate.Limit
	burst  int
	now    func() time.Time
	cache  *lru.Cache[string, *rate.Limiter]
}

// NewBuckets returns buckets of limit for up to capacity keys (below 1:
// DefaultCapacity), read against the clock now (nil: time.Now). It returns
// nil when limit is disabled.
func NewBuckets(limit Limit, capacity int, now func() time.Time) *Buckets {
	if !limit.enabled() {
		return nil
	}
	if capacity < 1 {
		capacity = DefaultCapacity
	}
	if now == nil {
		now = time.Now
	}
	cache, _ := lru.New[string, *rate.Limiter](capacity) // fails only for a size <= 0
	limit.Burst = max(limit.Burst, 1)
	return &Buckets{config: limit, limit: rate.Limit(limit.Rate), burst: limit.Burst, now: now, cache: cache}
}

// Allow takes a token from key's bucket and reports whether there was one.
// When there was not, nothing is taken, so that a client hammering a full
// limit does not push its own recovery further out, and retryAfter is how
// long until a token is there, rounded up to whole seconds (at least 1s)
// as Retry-After needs.
func (b *Buckets) Allow(key string) (ok bool, retryAfter time.Duration) {
	if b == nil {
		return true, 0
	}
	ok, retryAfter, _ = take(b.now(), []*rate.Limiter{b.bucket(key)})
	return ok, retryAfter
}

// Len returns how many keys are remembered.
func (b *Buckets) Len() int {
	if b == nil {
		return 0
	}
	return b.cache.Len()
}

// bucket returns key's bucket, creating a full one for a new key.
func (b *Buckets) bucket(key string) *rate.Limiter {
	if lim, ok := b.cache.Get(key); ok {
		return lim
	}
	b.sweep(sweepPerNewKey)
	// Another request may have added the key meanwhile: keep its bucket.
	fresh := rate.NewLimiter(b.limit, b.burst)
	if lim, found, _ := b.cache.PeekOrAdd(key, fresh); found {
		return lim
	}
	return fresh
}

// sweepPerNewKey is how many refilled buckets a new key may drop.
const sweepPerNewKey = 4

// sweep drops up to n of the least recently used buckets that are full
// again: a forgotten key starts with a full bucket, so nothing changes for
// it, and the buckets of clients and sessions long gone leave as new ones
// come instead of when the cache is full. It stops at the first bucket
// still refilling.
func (b *Buckets) sweep(n int) {
	now := b.now()
	for range n {
		key, lim, ok := b.cache.GetOldest()
		if !ok || lim.TokensAt(now) < float64(b.burst) {
			return
		}
		b.cache.Remove(key)
	}
}

// take takes one token from every bucket at now, or from none: when one of
// them is empty nothing is taken, retryAfter is the longest wait among the
// empty ones (rounded up to whole seconds) and refusedBy the index of that
// bucket.
func take(now time.Time, buckets []*rate.Limiter) (ok bool, retryAfter time.Duration, refusedBy int) {
	// First look without touching: a refused request changes no bucket.
	refusedBy = -1
	for i, lim := range buckets {
		if wait := waitFor(lim, now); wait > retryAfter {
			retryAfter, refusedBy = wait, i
		}
	}
	if refusedBy >= 0 {
		return false, roundUp(retryAfter), refusedBy
	}
	// Then take. A concurrent request may have emptied a bucket since the
	// look: give back what was taken and refuse.
	taken := make([]*rate.Reservation, 0, len(buckets))
	for i, lim := range buckets {
		r := lim.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			wait := r.DelayFrom(now)
			r.CancelAt(now)
			for _, t := range taken {
				t.CancelAt(now)
			}
			return false, roundUp(wait), i
		}
		taken = append(taken, r)
	}
	return true, 0, -1
}

// waitFor returns how long until lim holds a whole token, 0 if it does.
func waitFor(lim *rate.Limiter, now time.Time) time.Duration {
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	seconds := (1 - tokens) / float64(lim.Limit())
	if seconds <= 0 || math.IsNaN(seconds) {
		return time.Nanosecond
	}
	if seconds > math.MaxInt64/float64(time.Second) {
		return math.MaxInt64
	}
	return max(time.Duration(seconds*float64(time.Second)), time.Nanosecond)
}

// roundUp rounds d up to whole seconds, at least one.
func roundUp(d time.Duration) time.Duration {
	if d <= time.Second {
		return time.Second
	}
	if r := d % time.Second; r != 0 && d < math.MaxInt64-time.Second {
		d += time.Second - r
	}
	return d
}
