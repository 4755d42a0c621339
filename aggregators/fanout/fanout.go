// Package fanout runs the backend calls of one browser-facing call
// concurrently, each required or optional, and coalesces and caches shared
// reads.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// errPanicked replaces the value of a panic inside a part's fn: the value may
// hold backend data, and the error can end up in a log or an answer.
var errPanicked = errors.New("fanout: part panicked")

// Part describes one backend call of a fan-out.
type Part[L comparable] struct {
	Label    L             // names the part; for optional parts, what the answer lists as missing when it fails
	Required bool          // a failing required part fails the whole call; an optional one is recorded as missing
	Timeout  time.Duration // the part's own timeout inside the call's deadline; 0 means only the call's deadline
}

// PartError is the failure of a required part, as returned by Group.Wait.
type PartError[L comparable] struct {
	Label L
	Err   error
}

func (e *PartError[L]) Error() string {
	return fmt.Sprintf("fanout: part %v failed: %v", e.Label, e.Err)
}

// Unwrap returns the error of the part's fn.
func (e *PartError[L]) Unwrap() error { return e.Err }

// skippedError is the failure of a Then part whose predecessor failed; it
// wraps the predecessor's error so errors.Is still finds the root cause.
type skippedError struct{ cause error }

func (e *skippedError) Error() string {
	return "fanout: skipped because the part it depends on failed: " + e.cause.Error()
}

func (e *skippedError) Unwrap() error { return e.cause }

// Group is the fan-out of one browser-facing call. Start its parts with Go
// and Then, then call Wait once; a Group is not reused across calls.
//
// Parts run on as few goroutines as the call allows: the part started last
// runs on the goroutine that calls Wait (or Value), and a Then part runs on
// the goroutine of the part it follows. A call with one backend call, or a
// chain of them, starts no goroutine at all; the goroutines it does start
// would otherwise grow fresh stacks while they encode.
type Group[L comparable] struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	failed   *PartError[L] // first required failure
	optional []optionalPart[L]
	pending  func() // a started part no goroutine runs yet
}

// optionalPart records one optional part in start order, for Missing.
type optionalPart[L comparable] struct {
	label  L
	failed bool
}

// New returns the Group of one call. Its parts run on a context derived from
// ctx that is cancelled when a required part fails or Wait returns.
func New[L comparable](ctx context.Context) *Group[L] {
	gctx, cancel := context.WithCancelCause(ctx)
	return &Group[L]{ctx: gctx, cancel: cancel}
}

// Result is the outcome of one part.
type Result[T any] struct {
	done chan struct{} // closed once val and err are set
	val  T
	err  error
	g    pendingRunner // the part's group, for Value before Wait

	mu      sync.Mutex
	settled bool
	next    []func() // Then parts waiting for this one
}

// Value returns the part's value and whether the part succeeded; a failed
// part gives the zero T. Call it after Wait: before, it runs the group's
// pending part and blocks until this part has finished.
func (r *Result[T]) Value() (T, bool) {
	select {
	case <-r.done:
	default:
		r.g.runPending()
		<-r.done
	}
	if r.err != nil {
		var zero T
		return zero, false
	}
	return r.val, true
}

// Go starts fn concurrently with the part's timeout; the returned Result is
// ready when fn returns. The part started last waits for Wait, Value or the
// next Go to run (on Wait's goroutine), so start every part before doing
// anything slow. If the group's context has already ended (the caller left,
// or a required part failed) fn is not called and the part fails with the
// context's error.
func Go[L comparable, T any](g *Group[L], p Part[L], fn func(ctx context.Context) (T, error)) *Result[T] {
	r := &Result[T]{done: make(chan struct{}), g: g}
	slot := g.register(p)
	if err := g.ctx.Err(); err != nil {
		var zero T
		settle(g, p, slot, r, zero, err)
		return r
	}
	g.wg.Add(1)
	g.start(func() {
		defer g.wg.Done()
		run(g, p, slot, r, fn)
	})
	return r
}

// pendingRunner is a Group of any label type.
type pendingRunner interface{ runPending() }

// start makes task the pending part; the part pending before it gets a
// goroutine of its own. The caller has counted task in g.wg, and task
// marks itself done.
func (g *Group[L]) start(task func()) {
	g.mu.Lock()
	prev := g.pending
	g.pending = task
	g.mu.Unlock()
	if prev != nil {
		spawn(prev)
	}
}

// runPending runs the pending part, if any, on the calling goroutine.
func (g *Group[L]) runPending() {
	g.mu.Lock()
	task := g.pending
	g.pending = nil
	g.mu.Unlock()
	if task != nil {
		task()
	}
}

// Then starts fn once after succeeded, with after's value: a dependent call,
// e.g. one batched catalog call for the product ids the orders call
// returned. If after failed (or was skipped), fn is not called and this part
// fails too, so an optional Then of a failed optional part is listed
// missing and a required Then of a failed optional part fails the call.
// after must come from the same Group. fn runs on the goroutine that
// finished after (or as a pending part if after had already finished). The
// part's Timeout starts when fn is called, not while it waits for after.
func Then[L comparable, T, U any](g *Group[L], after *Result[T], p Part[L], fn func(ctx context.Context, v T) (U, error)) *Result[U] {
	r := &Result[U]{done: make(chan struct{}), g: g}
	slot := g.register(p)
	var zero U
	if err := g.ctx.Err(); err != nil {
		settle(g, p, slot, r, zero, err)
		return r
	}
	task := func() {
		defer g.wg.Done()
		if after.err != nil {
			settle(g, p, slot, r, zero, error(&skippedError{cause: after.err}))
			return
		}
		v := after.val
		run(g, p, slot, r, func(ctx context.Context) (U, error) { return fn(ctx, v) })
	}
	g.wg.Add(1)
	after.mu.Lock()
	if !after.settled {
		after.next = append(after.next, task) // run by whoever settles after
		after.mu.Unlock()
		return r
	}
	after.mu.Unlock()
	g.start(task)
	return r
}

// run calls fn on the part's context and settles r, turning a panic (or a
// runtime.Goexit) in fn into a failure of the part.
func run[L comparable, T any](g *Group[L], p Part[L], slot int, r *Result[T], fn func(ctx context.Context) (T, error)) {
	var (
		v        T
		err      error
		returned bool
	)
	defer func() {
		if !returned {
			recover() //nolint:errcheck // the panic value is dropped on purpose, see errPanicked
			var zero T
			v, err = zero, errPanicked
		}
		settle(g, p, slot, r, v, err)
	}()
	if err = g.ctx.Err(); err != nil {
		returned = true
		return
	}
	ctx := g.ctx
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel() // runs before settle: the timer is gone when the part is done
	}
	if trace.SpanFromContext(ctx).IsRecording() {
		var span trace.Span
		ctx, span = telemetry.Start(ctx, "fanout.part",
			telemetry.Part.String(fmt.Sprint(p.Label)), attribute.Bool("custodian.part.required", p.Required))
		defer func() {
			if !returned {
				err = errPanicked // as the deferred recover above will set it
			}
			telemetry.End(span, err)
		}()
	}
	v, err = fn(ctx)
	returned = true
}

// settle records the part's outcome in the group, then publishes it on r.
func settle[L comparable, T any](g *Group[L], p Part[L], slot int, r *Result[T], v T, err error) {
	if err != nil {
		g.fail(p, slot, err)
		var zero T
		v = zero
	}
	r.mu.Lock()
	r.val, r.err = v, err
	r.settled = true
	next := r.next
	r.next = nil
	r.mu.Unlock()
	close(r.done)
	// The parts that follow this one run here, the last on this goroutine.
	for i, task := range next {
		if i == len(next)-1 {
			task()
		} else {
			spawn(task)
		}
	}
}

// register notes an optional part in start order and returns its slot; a
// required part gets -1.
func (g *Group[L]) register(p Part[L]) int {
	if p.Required {
		return -1
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.optional = append(g.optional, optionalPart[L]{label: p.Label})
	return len(g.optional) - 1
}

// fail records a part's failure. The first required failure cancels the
// group's context (fail fast); optional failures after it are not listed as
// missing, since that cancellation most likely caused them and the call
// fails anyway.
func (g *Group[L]) fail(p Part[L], slot int, err error) {
	g.mu.Lock()
	if p.Required {
		if g.failed != nil {
			g.mu.Unlock()
			return
		}
		g.failed = &PartError[L]{Label: p.Label, Err: err}
		cause := g.failed
		g.mu.Unlock()
		g.cancel(cause) // parts see context.Cause(ctx) == the *PartError
		return
	}
	if g.failed == nil {
		g.optional[slot].failed = true
	}
	g.mu.Unlock()
}

// Wait waits for every part and returns nil or the first required part's
// failure as *PartError[L] (Unwrap gives fn's error). When a required part
// fails the group's context is cancelled at once so the other parts stop
// early; their failures caused by that are not reported as missing. Wait
// then cancels the group's context; parts started after Wait fail at once.
func (g *Group[L]) Wait() error {
	g.runPending()
	g.wg.Wait()
	g.cancel(nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed != nil {
		return g.failed
	}
	return nil
}

// Missing returns the labels of optional parts that failed, each once, in
// the order the parts were started (Go or Then called). Call it after Wait.
func (g *Group[L]) Missing() []L {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []L
	for _, o := range g.optional {
		if o.failed && !slices.Contains(out, o.label) {
			out = append(out, o.label)
		}
	}
	return out
}
