package ratelimit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/ratelimit"
)

func TestBuckets(t *testing.T) {
	t.Parallel()
	// A step is a request at the clock's time (after advancing it) and
	// what it must get.
	type step struct {
		advance    time.Duration
		key        string
		allowed    bool
		retryAfter time.Duration // checked when refused
	}
	tests := []struct {
		name  string
		limit ratelimit.Limit
		steps []step
	}{
		{
			name:  "burst then refusal",
			limit: ratelimit.Limit{Rate: 1, Burst: 3},
			steps: []step{
				{key: "a", allowed: true}, {key: "a", allowed: true}, {key: "a", allowed: true},
				{key: "a", allowed: false, retryAfter: time.Second},
			},
		},
		{
			name:  "recovery after the refill time",
			limit: ratelimit.Limit{Rate: 2, Burst: 1},
			steps: []step{
				{key: "a", allowed: true},
				{key: "a", allowed: false, retryAfter: time.Second}, // 500ms, rounded up
				{advance: 499 * time.Millisecond, key: "a", allowed: false, retryAfter: time.Second},
				{advance: time.Millisecond, key: "a", allowed: true},
				{key: "a", allowed: false, retryAfter: time.Second},
			},
		},
		{
			name:  "retry-after rounded up to whole seconds",
			limit: ratelimit.Limit{Rate: 0.1, Burst: 1},
			steps: []step{
				{key: "a", allowed: true},
				{key: "a", allowed: false, retryAfter: 10 * time.Second},
				{advance: 2500 * time.Millisecond, key: "a", allowed: false, retryAfter: 8 * time.Second}, // 7.5s
				{advance: 7500 * time.Millisecond, key: "a", allowed: true},
			},
		},
		{
			name:  "denied requests do not consume",
			limit: ratelimit.Limit{Rate: 1, Burst: 1},
			steps: append(append([]step{{key: "a", allowed: true}},
				repeat(step{advance: 10 * time.Millisecond, key: "a", allowed: false, retryAfter: time.Second}, 50)...),
				// 500ms have passed; after another 500ms the bucket is
				// full again, as if the 50 refusals had not happened.
				step{advance: 500 * time.Millisecond, key: "a", allowed: true}),
		},
		{
			name:  "keys are independent",
			limit: ratelimit.Limit{Rate: 1, Burst: 1},
			steps: []step{
				{key: "a", allowed: true}, {key: "a", allowed: false, retryAfter: time.Second},
				{key: "b", allowed: true}, {key: "b", allowed: false, retryAfter: time.Second},
			},
		},
		{
			name:  "refill stops at the burst",
			limit: ratelimit.Limit{Rate: 1, Burst: 2},
			steps: []step{
				{key: "a", allowed: true},
				{advance: time.Hour, key: "a", allowed: true}, {key: "a", allowed: true},
				{key: "a", allowed: false, retryAfter: time.Second},
			},
		},
		{
			name:  "burst below 1 is taken as 1",
			limit: ratelimit.Limit{Rate: 1, Burst: 0},
			steps: []step{{key: "a", allowed: true}, {key: "a", allowed: false, retryAfter: time.Second}},
		},
		{
			name:  "zero rate is off",
			limit: ratelimit.Limit{},
			steps: repeat(step{key: "a", allowed: true}, 100),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			b := ratelimit.NewBuckets(tt.limit, 10, clock.Now)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				ok, retryAfter := b.Allow(s.key)
				if ok != s.allowed {
					t.Fatalf("step %d (%q): allowed = %v, want %v", i, s.key, ok, s.allowed)
				}
				if ok && retryAfter != 0 {
					t.Errorf("step %d: allowed with retryAfter %v, want 0", i, retryAfter)
				}
				if !ok && retryAfter != s.retryAfter {
					t.Errorf("step %d: retryAfter = %v, want %v", i, retryAfter, s.retryAfter)
				}
			}
		})
	}
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestBucketsCapacity(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	const capacity = 100
	b := ratelimit.NewBuckets(ratelimit.Limit{Rate: 1, Burst: 1}, capacity, clock.Now)
	if ok, _ := b.Allow("first"); !ok {
		t.Fatal("first request refused")
	}
	if ok, _ := b.Allow("first"); ok {
		t.Fatal("second request of an empty bucket allowed")
	}
	// A flood of new keys: memory stays bounded...
	for i := range 10 * capacity {
		b.Allow(fmt.Sprintf("flood-%d", i))
	}
	if got := b.Len(); got != capacity {
		t.Errorf("Len = %d after a flood, want the capacity %d", got, capacity)
	}
	// ...and the oldest key was forgotten: it starts with a full bucket.
	if ok, _ := b.Allow("first"); !ok {
		t.Error("evicted key still refused; want a fresh bucket")
	}
	// The most recent keys are still remembered, with their empty buckets.
	if ok, _ := b.Allow(fmt.Sprintf("flood-%d", 10*capacity-1)); ok {
		t.Error("recent key forgotten: its empty bucket allowed a request")
	}
}

func TestBucketsConcurrent(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	const burst = 50
	b := ratelimit.NewBuckets(ratelimit.Limit{Rate: 1, Burst: burst}, 10, clock.Now)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range 200 {
		wg.Go(func() {
			if ok, _ := b.Allow("shared"); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != burst {
		t.Errorf("%d of 200 concurrent requests allowed, want exactly the burst %d", allowed, burst)
	}
}

func TestNilBucketsAllow(t *testing.T) {
	t.Parallel()
	var b *ratelimit.Buckets
	if ok, retry := b.Allow("x"); !ok || retry != 0 || b.Len() != 0 {
		t.Errorf("nil Buckets: Allow = %v, %v; Len = %d; want true, 0, 0", ok, retry, b.Len())
	}
	if ratelimit.NewBuckets(ratelimit.Limit{Rate: -1, Burst: 5}, 10, nil) != nil {
		t.Error("negative rate: want nil (off) buckets")
	}
}

// TestBucketsForgetRefilledKeys checks that the buckets of keys gone
// quiet leave as new keys come, once they are full again (which changes
// nothing for them), and that a bucket still refilling is kept.
func TestBucketsForgetRefilledKeys(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := ratelimit.NewBuckets(ratelimit.Limit{Rate: 1, Burst: 2}, 1000, clock.Now)
	for i := range 20 {
		b.Allow(fmt.Sprintf("gone-%d", i))
	}
	if got := b.Len(); got != 20 {
		t.Fatalf("Len = %d, want 20: no bucket is full again yet", got)
	}
	clock.Advance(2 * time.Second) // every bucket is full again
	b.Allow("hammer")
	b.Allow("hammer") // empty: it must stay
	for i := range 5 {
		b.Allow(fmt.Sprintf("new-%d", i))
	}
	if got := b.Len(); got != 6 {
		t.Errorf("Len = %d, want 6: the 20 refilled buckets forgotten, hammer and 5 new kept", got)
	}
	if ok, _ := b.Allow("hammer"); ok {
		t.Error("the emptied bucket was forgotten: a request was allowed")
	}
}
