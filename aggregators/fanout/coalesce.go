package fanout

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errCoalescedPanicked replaces the value of a panic inside a coalesced call.
var errCoalescedPanicked = errors.New("fanout: coalesced call panicked")

// Coalescer shares one call among concurrent callers with the same key.
// Unlike x/sync/singleflight the shared call runs on its own context: one
// caller's cancellation never fails the others; the call is cancelled only
// when every caller waiting for it has gone. Values are shared: callers must
// not modify them. The zero Coalescer is not usable; call NewCoalescer.
type Coalescer[K comparable, V any] struct {
	timeout time.Duration

	mu      sync.Mutex
	flights map[K]*flight[V]
}

// flight is one shared call in progress.
type flight[V any] struct {
	done    chan struct{} // closed once val and err are set
	val     V
	err     error
	waiters int // callers still waiting; guarded by Coalescer.mu
	cancel  context.CancelFunc
}

// NewCoalescer returns a Coalescer whose shared calls are bounded by timeout
// (0 = no bound but the callers'). The shared call's context keeps the
// values of the caller that started it (context.WithoutCancel), so request
// ids and trace ids reach the backend call and its logs.
func NewCoalescer[K comparable, V any](timeout time.Duration) *Coalescer[K, V] {
	return &Coalescer[K, V]{timeout: timeout, flights: make(map[K]*flight[V])}
}

// Do returns the result of fn for key, calling fn only if no call for key is
// in flight, and otherwise joining that call. shared reports whether this
// caller joined a call started by another. A caller whose ctx ends gets
// ctx's error at once, without waiting for fn; the last caller to go cancels
// fn's context. A panic in fn becomes an error for every caller.
func (c *Coalescer[K, V]) Do(ctx context.Context, key K, fn func(ctx context.Context) (V, error)) (v V, shared bool, err error) {
	if err := ctx.Err(); err != nil {
		return v, false, err
	}
	c.mu.Lock()
	if f, ok := c.flights[key]; ok {
		f.waiters++
		c.mu.Unlock()
		return c.wait(ctx, key, f, true)
	}
	var fctx context.Context
	var cancel context.CancelFunc
	if c.timeout > 0 {
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	} else {
		fctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
	}
	f := &flight[V]{done: make(chan struct{}), waiters: 1, cancel: cancel}
	c.flights[key] = f
	c.mu.Unlock()
	go c.run(fctx, key, f, fn)
	return c.wait(ctx, key, f, false)
}

// run calls fn for a flight and publishes its result.
func (c *Coalescer[K, V]) run(ctx context.Context, key K, f *flight[V], fn func(ctx context.Context) (V, error)) {
	var (
		v        V
		err      error
		returned bool
	)
	defer func() {
		if !returned {
			recover() //nolint:errcheck // the panic value is dropped on purpose
			var zero V
			v, err = zero, errCoalescedPanicked
		}
		c.mu.Lock()
		if c.flights[key] == f {
			delete(c.flights, key)
		}
		c.mu.Unlock()
		f.val, f.err = v, err
		close(f.done)
		f.cancel()
	}()
	v, err = fn(ctx)
	returned = true
}

// wait waits for the flight or for the caller's ctx, whichever ends first.
func (c *Coalescer[K, V]) wait(ctx context.Context, key K, f *flight[V], shared bool) (V, bool, error) {
	select {
	case <-f.done:
		return f.val, shared, f.err
	case <-ctx.Done():
		c.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Nobody wants the answer any more: stop the call, and let the
			// next caller start a fresh one rather than join a cancelled one.
			if c.flights[key] == f {
				delete(c.flights, key)
			}
			f.cancel()
		}
		c.mu.Unlock()
		var zero V
		return zero, shared, ctx.Err()
	}
}
