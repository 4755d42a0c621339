package fanout

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitForWaiters spins (yielding, not sleeping) until the flight for key
// has n callers waiting on it.
func waitForWaiters[K comparable, V any](t *testing.T, ctx context.Context, c *Coalescer[K, V], key K, n int) {
	t.Helper()
	for {
		c.mu.Lock()
		got := 0
		if f := c.flights[key]; f != nil {
			got = f.waiters
		}
		c.mu.Unlock()
		if got == n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("flight for %v has %d waiters, want %d", key, got, n)
		}
		runtime.Gosched()
	}
}

type doResult struct {
	v      string
	shared bool
	err    error
}

func TestCoalescerSharesOneCall(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		callers int
		err     error
	}{
		{name: "100 callers share a value", callers: 100},
		{name: "2 callers share an error", callers: 2, err: errBoom},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			c := NewCoalescer[string, string](0)
			var calls atomic.Int32
			release := make(chan struct{})
			fn := func(context.Context) (string, error) {
				calls.Add(1)
				<-release
				if tc.err != nil {
					return "", tc.err
				}
				return "value", nil
			}
			out := make(chan doResult, tc.callers)
			for range tc.callers {
				go func() {
					v, shared, err := c.Do(ctx, "k", fn)
					out <- doResult{v, shared, err}
				}()
			}
			waitForWaiters(t, ctx, c, "k", tc.callers)
			close(release)
			sharedCount := 0
			for range tc.callers {
				r := <-out
				if r.shared {
					sharedCount++
				}
				if !errors.Is(r.err, tc.err) || (tc.err == nil && r.v != "value") {
					t.Errorf("Do() = %q, %v; want %q, %v", r.v, r.err, "value", tc.err)
				}
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("fn called %d times, want 1", n)
			}
			if sharedCount != tc.callers-1 {
				t.Errorf("%d callers reported shared, want %d", sharedCount, tc.callers-1)
			}
			// The flight is over: the next Do calls fn again.
			v, shared, err := c.Do(ctx, "k", func(context.Context) (string, error) { return "again", nil })
			if v != "again" || shared || err != nil {
				t.Errorf("Do() after the flight = %q, %v, %v; want a fresh call", v, shared, err)
			}
		})
	}
}

func TestCoalescer(t *testing.T) {
	t.Parallel()
	type ctxKey struct{}
	cases := []struct {
		name string
		run  func(t *testing.T, ctx context.Context)
	}{
		{name: "different keys do not share", run: func(t *testing.T, ctx context.Context) {
			c := NewCoalescer[string, string](0)
			var started sync.WaitGroup
			started.Add(2)
			both := make(chan struct{})
			go func() { started.Wait(); close(both) }()
			out := make(chan doResult, 2)
			for _, k := range []string{"a", "b"} {
				go func() {
					v, shared, err := c.Do(ctx, k, func(ctx context.Context) (string, error) {
						started.Done()
						select {
						case <-both: // each key's call runs while the other's does
							return k, nil
						case <-ctx.Done():
							return "", ctx.Err()
						}
					})
					if v != k {
						err = errors.Join(err, errors.New("got value of key "+v+" for key "+k))
					}
					out <- doResult{v, shared, err}
				}()
			}
			for range 2 {
				select {
				case r := <-out:
					if r.err != nil || r.shared {
						t.Errorf("Do() = %q, shared %v, %v; want its own call", r.v, r.shared, r.err)
					}
				case <-ctx.Done():
					t.Fatal("the calls for different keys did not run side by side")
				}
			}
		}},
		{name: "first caller leaving does not fail the others", run: func(t *testing.T, ctx context.Context) {
			c := NewCoalescer[string, string](0)
			release := make(chan struct{})
			fnCtx := make(chan context.Context, 1)
			fn := func(ctx context.Context) (string, error) {
				fnCtx <- ctx
				<-release
				if err := ctx.Err(); err != nil {
					return "", err
				}
				return "value", nil
			}
			firstCtx, cancelFirst := context.WithCancel(ctx)
			first := make(chan doResult, 1)
			go func() { v, s, err := c.Do(firstCtx, "k", fn); first <- doResult{v, s, err} }()
			waitForWaiters(t, ctx, c, "k", 1)
			second := make(chan doResult, 1)
			go func() { v, s, err := c.Do(ctx, "k", fn); second <- doResult{v, s, err} }()
			waitForWaiters(t, ctx, c, "k", 2)

			cancelFirst()
			select {
			case r := <-first: // at once, while fn still runs
				if !errors.Is(r.err, context.Canceled) || r.shared {
					t.Errorf("first caller: Do() = %q, %v, %v; want context.Canceled", r.v, r.shared, r.err)
				}
			case <-ctx.Done():
				t.Fatal("the first caller did not return when its ctx ended")
			}
			if err := (<-fnCtx).Err(); err != nil {
				t.Errorf("fn's ctx ended (%v) although a caller still waits", err)
			}
			close(release)
			if r := <-second; r.err != nil || r.v != "value" || !r.shared {
				t.Errorf("second caller: Do() = %q, %v, %v; want the shared value", r.v, r.shared, r.err)
			}
		}},
		{name: "every caller leaving cancels the call", run: func(t *testing.T, ctx context.Context) {
			c := NewCoalescer[string, string](0)
			fnCause := make(chan error, 1)
			fn := func(fctx context.Context) (string, error) {
				select {
				case <-fctx.Done():
					fnCause <- context.Cause(fctx)
				case <-ctx.Done(): // fctx does not inherit the test deadline
					fnCause <- errTestDeadline
				}
				return "", fctx.Err()
			}
			var cancels []context.CancelFunc
			out := make(chan doResult, 2)
			for i := range 2 {
				cctx, cancel := context.WithCancel(ctx)
				cancels = append(cancels, cancel)
				go func() { v, s, err := c.Do(cctx, "k", fn); out <- doResult{v, s, err} }()
				waitForWaiters(t, ctx, c, "k", i+1)
			}
			for _, cancel := range cancels {
				cancel()
			}
			for range 2 {
				if r := <-out; !errors.Is(r.err, context.Canceled) {
					t.Errorf("Do() = %v, want context.Canceled", r.err)
				}
			}
			if cause := <-fnCause; !errors.Is(cause, context.Canceled) {
				t.Errorf("fn's ctx ended with %v, want context.Canceled", cause)
			}
			v, shared, err := c.Do(ctx, "k", func(context.Context) (string, error) { return "fresh", nil })
			if v != "fresh" || shared || err != nil {
				t.Errorf("Do() after the abandoned call = %q, %v, %v; want a fresh call", v, shared, err)
			}
		}},
		{name: "timeout bounds the shared call", run: func(t *testing.T, ctx context.Context) {
			c := NewCoalescer[string, string](time.Millisecond)
			// The caller's ctx has no deadline: only the coalescer's timeout can end fn.
			_, _, err := c.Do(context.WithoutCancel(ctx), "k", func(fctx context.Context) (string, error) {
				select {
				case <-fctx.Done():
					return "", fctx.Err()
				case <-ctx.Done():
					return "", errTestDeadline
				}
			})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Do() = %v, want context.DeadlineExceeded from the coalescer's timeout", err)
			}
		}},
		{name: "fn's ctx keeps the first caller's values", run: func(t *testing.T, ctx context.Context) {
			c := NewCoalescer[string, string](0)
			v, _, err := c.Do(context.WithValue(ctx, ctxKey{}, "req-1"), "k", func(fctx context.Context) (string, error) {
				id, _ := fctx.Value(ctxKey{}).(string)
				return id, nil
			})
			if v != "req-1" || err != nil {
				t.Errorf("fn saw request id %q (%v), want %q", v, err, "req-1")
			}
		}},
		{name: "panic in fn is an error", run: func(t *testing.T, ctx context.Context) {
			c := NewCoalescer[string, string](0)
			_, _, err := c.Do(ctx, "k", func(context.Context) (string, error) { panic("secret") })
			if !errors.Is(err, errCoalescedPanicked) {
				t.Errorf("Do() = %v, want errCoalescedPanicked", err)
			}
		}},
		{name: "ended ctx does not call fn", run: func(t *testing.T, ctx context.Context) {
			c := NewCoalescer[string, string](0)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			called := false
			_, _, err := c.Do(cctx, "k", func(context.Context) (string, error) { called = true; return "", nil })
			if !errors.Is(err, context.Canceled) || called {
				t.Errorf("Do() = %v, fn called %v; want context.Canceled without a call", err, called)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, testContext(t))
		})
	}
}
