package fanout

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkGroup is the overhead of one call's fan-out: three parts and one
// dependent part with trivial fns.
func BenchmarkGroup(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		g := New[string](ctx)
		orders := Go(g, Part[string]{Label: "orders", Required: true}, func(context.Context) ([]string, error) {
			return []string{"p1"}, nil
		})
		Go(g, Part[string]{Label: "profile", Required: true}, func(context.Context) (int, error) { return 1, nil })
		Go(g, Part[string]{Label: "recs", Timeout: time.Second}, func(context.Context) (int, error) { return 2, nil })
		catalog := Then(g, orders, Part[string]{Label: "catalog"}, func(_ context.Context, ids []string) (int, error) {
			return len(ids), nil
		})
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		if _, ok := catalog.Value(); !ok {
			b.Fatal("catalog failed")
		}
	}
}

func BenchmarkCoalescerDo(b *testing.B) {
	fn := func(context.Context) (int, error) { return 1, nil }
	b.Run("uncontended", func(b *testing.B) {
		c := NewCoalescer[string, int](0)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := c.Do(ctx, "k", fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("8-way contended", func(b *testing.B) {
		c := NewCoalescer[string, int](0)
		ctx := context.Background()
		const workers = 8
		b.ReportAllocs()
		b.ResetTimer()
		var wg sync.WaitGroup
		for w := range workers {
			n := b.N / workers
			if w < b.N%workers {
				n++
			}
			wg.Go(func() {
				for range n {
					if _, _, err := c.Do(ctx, "k", fn); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func BenchmarkCacheGetHit(b *testing.B) {
	c, err := NewCache[string, int](1024, time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	c.Add("k", 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get("k"); !ok {
			b.Fatal("miss")
		}
	}
}

// deepWork uses some 20 KB of stack, as encoding a backend request does;
// a fresh goroutine grows its stack to run it.
//
//go:noinline
func deepWork(n int) int {
	var buf [256]byte
	buf[n%256] = byte(n)
	if n == 0 {
		return int(buf[0])
	}
	return deepWork(n-1) + int(buf[n%256])
}

// BenchmarkGroupChain is the fan-out of a one-backend call: a part and a
// Then part after it, each with stack-hungry work.
func BenchmarkGroupChain(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		g := New[string](ctx)
		order := Go(g, Part[string]{Label: "orders", Required: true}, func(context.Context) (int, error) {
			return deepWork(64), nil
		})
		products := Then(g, order, Part[string]{Label: "catalog"}, func(_ context.Context, v int) (int, error) {
			return v + deepWork(64), nil
		})
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		if _, ok := products.Value(); !ok {
			b.Fatal("catalog failed")
		}
	}
}
