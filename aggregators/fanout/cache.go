package fanout

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// Cache keeps answers that are the same for every caller (a public catalog)
// for a fixed time, bounded in size: the least recently used entry goes
// first. Entries are checked against their expiry on Get, so there is no
// sweeper goroutine. Never put per-user data in it unless the user's session
// is part of the key. Values are shared: callers must not modify them. A
// Cache is safe for concurrent use.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex // Get changes recency, so every access writes
	lru *simplelru.LRU[K, cacheEntry[V]]

	name    attribute.KeyValue
	lookups metric.Int64Counter
	// The options of each result, kept as slices: passing a slice on
	// allocates nothing, a fresh variadic argument does on every lookup.
	hit    []metric.AddOption
	miss   []metric.AddOption
	joined []metric.AddOption
}

// CacheOption configures a Cache.
type CacheOption interface {
	applyCache(*cacheOptions)
}

type cacheOptions struct {
	name   string
	meters metric.MeterProvider
}

type cacheOptionFunc func(*cacheOptions)

func (f cacheOptionFunc) applyCache(o *cacheOptions) { f(o) }

// WithCacheMetrics names the cache in its spans and in the lookups counted
// by [Fetch] (custodian.cache.lookups, by result: hit, miss, joined) and
// says where they are counted. Default: unnamed ("cache"), not counted.
func WithCacheMetrics(name string, mp metric.MeterProvider) CacheOption {
	return cacheOptionFunc(func(o *cacheOptions) { o.name, o.meters = name, mp })
}

type cacheEntry[V any] struct {
	val     V
	expires time.Time
}

// NewCache returns a Cache of at most size entries, each fresh for ttl after
// it was added. now is the clock (nil = time.Now); size <= 0 or ttl <= 0 is
// refused.
func NewCache[K comparable, V any](size int, ttl time.Duration, now func() time.Time, opts ...CacheOption) (*Cache[K, V], error) {
	if size <= 0 {
		return nil, errors.New("fanout: cache size must be positive")
	}
	if ttl <= 0 {
		return nil, errors.New("fanout: cache ttl must be positive")
	}
	if now == nil {
		now = time.Now
	}
	l, err := simplelru.NewLRU[K, cacheEntry[V]](size, nil)
	if err != nil {
		return nil, err
	}
	o := cacheOptions{name: "cache"}
	for _, opt := range opts {
		opt.applyCache(&o)
	}
	c := &Cache[K, V]{ttl: ttl, now: now, lru: l, name: telemetry.CacheName.String(o.name)}
	c.lookups = telemetry.CacheLookups(telemetry.Meter(o.meters))
	result := func(r string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(c.name, telemetry.Cache.String(r)))}
	}
	c.hit, c.miss, c.joined = result("hit"), result("miss"), result("joined")
	return c, nil
}

// Get returns the value for key if it is there and younger than the ttl;
// an expired entry is dropped.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(key)
	if !ok {
		var zero V
		return zero, false
	}
	if !c.now().Before(e.expires) {
		c.lru.Remove(key)
		var zero V
		return zero, false
	}
	return e.val, true
}

// Lookup is Get counted in the cache's lookups (see WithCacheMetrics) as a
// hit or a miss: for a caller's first look, not for checks again inside a
// flight.
func (c *Cache[K, V]) Lookup(ctx context.Context, key K) (V, bool) {
	v, ok := c.Get(key)
	if ok {
		c.lookups.Add(ctx, 1, c.hit...)
	} else {
		c.lookups.Add(ctx, 1, c.miss...)
	}
	return v, ok
}

// LookupAll looks up keys, each counted as Lookup counts it, and returns
// the values found by key and the keys not found, in their order, each
// once. A traced call gets one custodian.cache span for them all, with how
// many were hits and misses.
func (c *Cache[K, V]) LookupAll(ctx context.Context, keys []K) (map[K]V, []K) {
	found := make(map[K]V, len(keys))
	var missing []K
	for _, k := range keys {
		if _, seen := found[k]; seen || slices.Contains(missing, k) {
			continue
		}
		if v, ok := c.Get(k); ok {
			found[k] = v
			continue
		}
		missing = append(missing, k)
	}
	// Counted as Lookup counts, in one addition per result.
	if len(found) > 0 {
		c.lookups.Add(ctx, int64(len(found)), c.hit...)
	}
	if len(missing) > 0 {
		c.lookups.Add(ctx, int64(len(missing)), c.miss...)
	}
	if trace.SpanFromContext(ctx).IsRecording() {
		result := "hit"
		if len(missing) > 0 {
			result = "miss"
		}
		_, span := telemetry.Start(ctx, "custodian.cache", c.name, telemetry.Cache.String(result),
			telemetry.CacheHits.Int(len(found)), telemetry.CacheMisses.Int(len(missing)))
		span.End()
	}
	return found, missing
}

// Add stores v for key for the ttl, replacing any entry, and evicts the
// least recently used entry if the cache is full.
func (c *Cache[K, V]) Add(key K, v V) {
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Add(key, cacheEntry[V]{val: v, expires: expires})
}

// Remove drops the entry for key, if any.
func (c *Cache[K, V]) Remove(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(key)
}

// RemoveIf drops every entry whose key pred accepts, e.g. every entry of a
// session at logout, and returns how many it dropped. pred runs with the
// cache locked and must not use the cache.
func (c *Cache[K, V]) RemoveIf(pred func(K) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.lru.Keys() {
		if pred(k) {
			c.lru.Remove(k)
			n++
		}
	}
	return n
}

// Fetch returns a fresh cached value or calls fn through the coalescer and
// caches a success (errors are never cached). co may be nil (no
// coalescing); if not, it should serve this cache only, because a caller of
// Fetch that joins a co.Do call started elsewhere gets its value uncached.
func Fetch[K comparable, V any](ctx context.Context, c *Cache[K, V], co *Coalescer[K, V], key K, fn func(ctx context.Context) (V, error)) (V, error) {
	if v, ok := c.Get(key); ok {
		c.lookups.Add(ctx, 1, c.hit...)
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			_, hit := telemetry.Start(ctx, "custodian.cache", c.name, telemetry.Cache.String("hit"))
			hit.End()
		}
		return v, nil
	}
	ctx, span := telemetry.Start(ctx, "custodian.cache", c.name)
	v, joined, err := fetch(ctx, c, co, key, fn)
	result, add := "miss", c.miss
	if joined {
		result, add = "joined", c.joined
	}
	c.lookups.Add(ctx, 1, add...)
	if span.IsRecording() {
		span.SetAttributes(telemetry.Cache.String(result))
	}
	telemetry.End(span, err)
	return v, err
}

// fetch is Fetch after a miss: it reports whether it joined a call already
// under way.
func fetch[K comparable, V any](ctx context.Context, c *Cache[K, V], co *Coalescer[K, V], key K, fn func(ctx context.Context) (V, error)) (V, bool, error) {
	load := func(ctx context.Context) (V, error) {
		// A flight for key may have filled the cache between the Get above
		// and this flight starting.
		if v, ok := c.Get(key); ok {
			return v, nil
		}
		v, err := fn(ctx)
		if err != nil {
			var zero V
			return zero, err
		}
		c.Add(key, v)
		return v, nil
	}
	if co == nil {
		v, err := load(ctx)
		return v, false, err
	}
	return co.Do(ctx, key, load)
}
