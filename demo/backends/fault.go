package backends

import (
	"context"
	"errors"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
)

// Fault describes how a backend misbehaves, so tests can show how the gateway
// copes with slow and failing services. The zero Fault means normal service.
type Fault struct {
	// Delay makes the backend wait this long, or until the caller's context
	// ends, before it answers.
	Delay time.Duration
	// Code, when non-zero, makes the backend answer with this code after
	// authentication and after Delay. The error message deliberately looks
	// internal (it names a host ending in ".acme.internal"), so gateway tests
	// can prove such text never reaches a browser. CodeUnauthenticated
	// simulates a backend that rejects an otherwise good token.
	Code connect.Code
}

// faultInjector holds a backend's current Fault.
type faultInjector struct {
	message string // the internal-looking error message

	mu    sync.Mutex
	fault Fault
}

func (f *faultInjector) set(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
}

func (f *faultInjector) get() Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fault
}

// interceptor applies the current Fault. It runs after authentication.
func (f *faultInjector) interceptor() connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			fault := f.get()
			if fault.Delay > 0 {
				if err := sleep(ctx, fault.Delay); err != nil {
					return err
				}
			}
			if fault.Code != 0 {
				// Deliberately sent to the caller: gateway tests prove that
				// such internal text never reaches a browser.
				return connect.NewError(fault.Code, f.message)
			}
			return next(ctx, spec, stream)
		}
	}
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return contextError(ctx)
	}
}

// contextError turns the end of ctx into the matching Connect error.
func contextError(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, err.Error()).WithCause(err)
	}
	return connect.NewError(connect.CodeCanceled, err.Error()).WithCause(err)
}
