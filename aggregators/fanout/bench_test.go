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
