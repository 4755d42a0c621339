package fanout

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func newTestCache(t *testing.T, size int, ttl time.Duration) (*Cache[string, string], *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	c, err := NewCache[string, string](size, ttl, clock.Now)
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	return c, clock
}

func TestNewCacheRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		size    int
		ttl     time.Duration
		wantErr bool
	}{
		{name: "valid", size: 1, ttl: time.Second},
		{name: "zero size", size: 0, ttl: time.Second, wantErr: true},
		{name: "negative size", size: -1, ttl: time.Second, wantErr: true},
		{name: "zero ttl", size: 1, ttl: 0, wantErr: true},
		{name: "negative ttl", size: 1, ttl: -time.Second, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewCache[string, int](tc.size, tc.ttl, nil)
			if (err != nil) != tc.wantErr || (err == nil && c == nil) {
				t.Errorf("NewCache(%d, %v) = %v, %v; want error %v", tc.size, tc.ttl, c, err, tc.wantErr)
			}
		})
	}
}

func TestCacheExpiry(t *testing.T) {
	t.Parallel()
	const ttl = time.Minute
	cases := []struct {
		name    string
		after   time.Duration
		wantHit bool
	}{
		{name: "just added", after: 0, wantHit: true},
		{name: "just before ttl", after: ttl - time.Nanosecond, wantHit: true},
		{name: "exactly at ttl", after: ttl, wantHit: false},
		{name: "after ttl", after: 2 * ttl, wantHit: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, clock := newTestCache(t, 4, ttl)
			if _, ok := c.Get("k"); ok {
				t.Fatal("Get on an empty cache hit")
			}
			c.Add("k", "v")
			clock.Advance(tc.after)
			v, ok := c.Get("k")
			if ok != tc.wantHit || (ok && v != "v") {
				t.Errorf("Get after %v = %q, %v; want hit %v", tc.after, v, ok, tc.wantHit)
			}
		})
	}
}

func TestCacheEviction(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		ops     func(c *Cache[string, string])
		present []string
		absent  []string
	}{
		{
			name:    "least recently added goes first",
			ops:     func(c *Cache[string, string]) { c.Add("a", "1"); c.Add("b", "2"); c.Add("c", "3") },
			present: []string{"b", "c"},
			absent:  []string{"a"},
		},
		{
			name: "a Get makes an entry recent",
			ops: func(c *Cache[string, string]) {
				c.Add("a", "1")
				c.Add("b", "2")
				c.Get("a")
				c.Add("c", "3")
			},
			present: []string{"a", "c"},
			absent:  []string{"b"},
		},
		{
			name:    "Remove",
			ops:     func(c *Cache[string, string]) { c.Add("a", "1"); c.Add("b", "2"); c.Remove("a") },
			present: []string{"b"},
			absent:  []string{"a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestCache(t, 2, time.Minute)
			tc.ops(c)
			for _, k := range tc.present {
				if _, ok := c.Get(k); !ok {
					t.Errorf("%q was dropped, want it cached", k)
				}
			}
			for _, k := range tc.absent {
				if _, ok := c.Get(k); ok {
					t.Errorf("%q is cached, want it dropped", k)
				}
			}
		})
	}
}

func TestCacheRemoveIf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		prefix string
		want   int
		remain []string
	}{
		{name: "one session's entries", prefix: "s1:", want: 2, remain: []string{"s2:cart"}},
		{name: "no match", prefix: "s9:", want: 0, remain: []string{"s1:cart", "s1:orders", "s2:cart"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestCache(t, 8, time.Minute)
			for _, k := range []string{"s1:cart", "s1:orders", "s2:cart"} {
				c.Add(k, "v")
			}
			if n := c.RemoveIf(func(k string) bool { return strings.HasPrefix(k, tc.prefix) }); n != tc.want {
				t.Errorf("RemoveIf = %d, want %d", n, tc.want)
			}
			for _, k := range []string{"s1:cart", "s1:orders", "s2:cart"} {
				_, ok := c.Get(k)
				want := false
				for _, r := range tc.remain {
					want = want || r == k
				}
				if ok != want {
					t.Errorf("%q cached = %v, want %v", k, ok, want)
				}
			}
		})
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		seed      bool          // the key is cached before the first Fetch
		firstErr  error         // the first fn call fails with it
		advance   time.Duration // clock moves between the two Fetches
		noCo      bool          // Fetch without a coalescer
		wantCalls int32         // fn calls over two Fetches
		wantFirst string
	}{
		{name: "cached value short-circuits fn", seed: true, wantCalls: 0, wantFirst: "seeded"},
		{name: "success is cached", wantCalls: 1, wantFirst: "fetched"},
		{name: "success is cached without a coalescer", noCo: true, wantCalls: 1, wantFirst: "fetched"},
		{name: "errors are not cached", firstErr: errBoom, wantCalls: 2},
		{name: "expired value is fetched again", advance: time.Minute, wantCalls: 2, wantFirst: "fetched"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			c, clock := newTestCache(t, 4, time.Minute)
			co := NewCoalescer[string, string](0)
			if tc.noCo {
				co = nil
			}
			if tc.seed {
				c.Add("k", "seeded")
			}
			var calls atomic.Int32
			fn := func(context.Context) (string, error) {
				if calls.Add(1) == 1 && tc.firstErr != nil {
					return "partial", tc.firstErr
				}
				return "fetched", nil
			}
			v, err := Fetch(ctx, c, co, "k", fn)
			if !errors.Is(err, tc.firstErr) || v != tc.wantFirst {
				t.Errorf("first Fetch = %q, %v; want %q, %v", v, err, tc.wantFirst, tc.firstErr)
			}
			clock.Advance(tc.advance)
			if v, err := Fetch(ctx, c, co, "k", fn); err != nil || (v != "fetched" && v != "seeded") {
				t.Errorf("second Fetch = %q, %v", v, err)
			}
			if n := calls.Load(); n != tc.wantCalls {
				t.Errorf("fn called %d times, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestFetchColdKeyConcurrently(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		callers int
	}{
		{name: "100 callers", callers: 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			c, _ := newTestCache(t, 4, time.Minute)
			co := NewCoalescer[string, string](0)
			var calls atomic.Int32
			release := make(chan struct{})
			fn := func(context.Context) (string, error) {
				calls.Add(1)
				<-release
				return "v", nil
			}
			var wg sync.WaitGroup
			errs := make(chan error, tc.callers)
			for range tc.callers {
				wg.Go(func() {
					if v, err := Fetch(ctx, c, co, "k", fn); err != nil || v != "v" {
						errs <- errors.Join(err, errors.New("got "+v))
					}
				})
			}
			waitForWaiters(t, ctx, co, "k", tc.callers) // every caller is in the flight
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("Fetch: %v", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("fn called %d times, want 1", n)
			}
		})
	}
}
