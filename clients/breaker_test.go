package clients_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/clients"
)

// failWith answers every call with code.
func failWith(code connect.Code) func(context.Context, int, http.Header) error {
	return func(context.Context, int, http.Header) error {
		return connect.NewError(code, "backend says "+code.String())
	}
}

// newBreakerBackend returns a backend without tokens in front of answer.
func newBreakerBackend(t *testing.T, spec clients.Spec, answer func(context.Context, int, http.Header) error, s clients.BreakerSettings) (*scriptedBackend, *clients.Backend) {
	t.Helper()
	backend := &scriptedBackend{answer: answer}
	spec.Name, spec.URL, spec.Token = "catalog", startScripted(t, backend), clients.TokenNone
	b, err := clients.New(spec, clients.WithBreaker(s))
	if err != nil {
		t.Fatal(err)
	}
	return backend, b
}

// wantOpen fails unless a call is refused CodeUnavailable without reaching
// the backend.
func wantOpen(t *testing.T, backend *scriptedBackend, b *clients.Backend) {
	t.Helper()
	before := backend.Calls()
	// An open circuit answers at once; the timeout only guards against
	// hanging on a call that was let through and is held.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := getProduct(ctx, b); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("call through an open circuit: %v, want unavailable", err)
	}
	if n := backend.Calls() - before; n != 0 {
		t.Errorf("an open circuit let %d calls through", n)
	}
}

// wantReached fails unless a call reaches the backend and ends with code
// (0: success).
func wantReached(t *testing.T, backend *scriptedBackend, b *clients.Backend, code connect.Code) {
	t.Helper()
	before := backend.Calls()
	err := getProduct(t.Context(), b)
	if (code == 0 && err != nil) || (code != 0 && connect.CodeOf(err) != code) {
		t.Errorf("call: %v, want code %v", err, code)
	}
	if n := backend.Calls() - before; n != 1 {
		t.Errorf("call reached the backend %d times, want once", n)
	}
}

func TestBreakerCountsOnlyBackendFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code  connect.Code
		opens bool
	}{
		{connect.CodeUnavailable, true},
		{connect.CodeInternal, true},
		{connect.CodeUnknown, true},
		{connect.CodeResourceExhausted, true},
		{connect.CodeDataLoss, true},
		{connect.CodeNotFound, false},
		{connect.CodeInvalidArgument, false},
		{connect.CodePermissionDenied, false},
		{connect.CodeFailedPrecondition, false},
		{connect.CodeUnauthenticated, false},
		{connect.CodeAlreadyExists, false},
	}
	for _, c := range cases {
		t.Run(c.code.String(), func(t *testing.T) {
			t.Parallel()
			backend, b := newBreakerBackend(t, clients.Spec{}, failWith(c.code), clients.BreakerSettings{OpenFor: time.Minute})
			for range 5 {
				wantReached(t, backend, b, c.code)
			}
			if c.opens {
				wantOpen(t, backend, b)
				return
			}
			for range 5 {
				wantReached(t, backend, b, c.code)
			}
		})
	}
}

func TestBreakerNeedsConsecutiveFailures(t *testing.T) {
	t.Parallel()
	// Every fifth call succeeds: never five failures in a row.
	backend, b := newBreakerBackend(t, clients.Spec{}, func(_ context.Context, n int, _ http.Header) error {
		if n%5 == 0 {
			return nil
		}
		return connect.NewError(connect.CodeUnavailable, "down")
	}, clients.BreakerSettings{OpenFor: time.Minute})
	for i := 1; i <= 20; i++ {
		want := connect.CodeUnavailable
		if i%5 == 0 {
			want = 0
		}
		wantReached(t, backend, b, want)
	}
}

func TestBreakerIgnoresCallersThatGaveUp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// call makes one call whose caller gives up while the backend
		// holds it (entered receives when the backend has it).
		call func(t *testing.T, b *clients.Backend, entered <-chan struct{}) error
	}{
		{"caller cancelled", func(t *testing.T, b *clients.Backend, entered <-chan struct{}) error {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			result := make(chan error, 1)
			go func() { result <- getProduct(ctx, b) }()
			await(t, entered, "the backend to hold the call")
			cancel()
			return await(t, result, "the cancelled call")
		}},
		{"caller's deadline passed", func(t *testing.T, b *clients.Backend, _ <-chan struct{}) error {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			defer cancel()
			return getProduct(ctx, b)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var hold atomic.Bool
			entered := make(chan struct{}, 100)
			backend, b := newBreakerBackend(t, clients.Spec{}, func(ctx context.Context, _ int, _ http.Header) error {
				if hold.Load() {
					select {
					case entered <- struct{}{}:
					default:
					}
					<-ctx.Done()
					return ctx.Err()
				}
				return connect.NewError(connect.CodeUnavailable, "down")
			}, clients.BreakerSettings{OpenFor: time.Minute})
			for range 4 {
				wantReached(t, backend, b, connect.CodeUnavailable)
			}
			hold.Store(true)
			for range 10 {
				if err := c.call(t, b, entered); err == nil || connect.CodeOf(err) == connect.CodeUnavailable {
					t.Fatalf("call whose caller gave up: %v", err)
				}
			}
			hold.Store(false)
			// The calls that were given up neither opened the circuit nor
			// broke the run of failures: the fifth real failure opens it.
			wantReached(t, backend, b, connect.CodeUnavailable)
			wantOpen(t, backend, b)
		})
	}
}

func TestBreakerCountsBackendTimeouts(t *testing.T) {
	t.Parallel()
	backend, b := newBreakerBackend(t, clients.Spec{Timeout: 20 * time.Millisecond}, func(ctx context.Context, _ int, _ http.Header) error {
		<-ctx.Done()
		return ctx.Err()
	}, clients.BreakerSettings{OpenFor: time.Minute})
	for range 5 {
		wantReached(t, backend, b, connect.CodeDeadlineExceeded)
	}
	wantOpen(t, backend, b)
}

func TestBreakerProbe(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		probe    connect.Code // the probe's answer; 0: success
		closes   bool
		nextCode connect.Code // answer to calls after the probe
	}{
		{"successful probe closes the circuit", 0, true, 0},
		{"failed probe opens it again", connect.CodeUnavailable, false, connect.CodeUnavailable},
		{"not_found probe closes the circuit", connect.CodeNotFound, true, connect.CodeNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			const (
				failing = iota
				probing
				after
			)
			var mode atomic.Int32
			entered := make(chan struct{}, 1)
			gate := make(chan struct{})
			answer := func(ctx context.Context, _ int, _ http.Header) error {
				switch mode.Load() {
				case probing:
					select {
					case entered <- struct{}{}:
					case <-ctx.Done():
						return ctx.Err()
					}
					select {
					case <-gate:
					case <-ctx.Done():
						return ctx.Err()
					}
					if c.probe != 0 {
						return connect.NewError(c.probe, "probe answer")
					}
					return nil
				case after:
					if c.nextCode != 0 {
						return connect.NewError(c.nextCode, "answer")
					}
					return nil
				default:
					return connect.NewError(connect.CodeUnavailable, "down")
				}
			}
			backend, b := newBreakerBackend(t, clients.Spec{}, answer, clients.BreakerSettings{OpenFor: 300 * time.Millisecond})
			for range 5 {
				wantReached(t, backend, b, connect.CodeUnavailable)
			}
			wantOpen(t, backend, b)

			// Poll until the circuit lets a probe through; the backend
			// holds it.
			mode.Store(probing)
			var probe chan error
			deadline := time.Now().Add(10 * time.Second)
		poll:
			for {
				result := make(chan error, 1)
				go func() { result <- getProduct(t.Context(), b) }()
				select {
				case <-entered:
					probe = result
					break poll
				case err := <-result:
					if connect.CodeOf(err) != connect.CodeUnavailable {
						t.Fatalf("call through an open circuit: %v", err)
					}
				}
				if time.Now().After(deadline) {
					t.Fatal("the circuit never let a probe through")
				}
				time.Sleep(5 * time.Millisecond) // poll interval
			}
			// Only one probe at a time.
			wantOpen(t, backend, b)
			mode.Store(after)
			close(gate)
			if err := await(t, probe, "the probe"); connect.CodeOf(err) != c.probe && !(c.probe == 0 && err == nil) {
				t.Errorf("probe: %v, want code %v", err, c.probe)
			}
			if !c.closes {
				wantOpen(t, backend, b)
				return
			}
			for range 6 {
				wantReached(t, backend, b, c.nextCode)
			}
		})
	}
}

// await fails the test if ch does not deliver soon. The timeout only guards
// against hanging.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
