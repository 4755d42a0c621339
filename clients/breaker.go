package clients

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// BreakerSettings are the thresholds of a backend's circuit breaker. A zero
// field takes the default stated next to it.
type BreakerSettings struct {
	// ConsecutiveFailures opens the circuit. Default 5.
	ConsecutiveFailures uint32
	// OpenFor is how long an open circuit refuses calls before it lets one
	// through to probe. Default 5s.
	OpenFor time.Duration
	// Interval clears the failure counts of a closed circuit. Default 10s.
	Interval time.Duration
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = 5
	}
	if s.OpenFor <= 0 {
		s.OpenFor = 5 * time.Second
	}
	if s.Interval <= 0 {
		s.Interval = 10 * time.Second
	}
	return s
}

// breaker is a backend's circuit breaker (sony/gobreaker). Only the
// backend's own faults count as failures: answers such as not_found are
// successes, and a caller that gave up is no evidence either way.
type breaker struct {
	name string
	cb   *gobreaker.CircuitBreaker[struct{}]
}

// errCallerGone marks a call whose caller went away; the breaker ignores it.
var errCallerGone = errors.New("caller gone")

func newBreaker(name string, s BreakerSettings, mp metric.MeterProvider) *breaker {
	s = s.withDefaults()
	changes, _ := telemetry.Meter(mp).Int64Counter("custodian.backend.breaker.changes",
		metric.WithDescription("Circuit breaker state changes of a backend, by the state entered (open, half-open, closed)."))
	return &breaker{name: name, cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		OnStateChange: func(_ string, _, to gobreaker.State) {
			changes.Add(context.Background(), 1, metric.WithAttributes(telemetry.Backend.String(name), telemetry.State.String(to.String())))
		},
		Interval: s.Interval,
		Timeout:  s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= s.ConsecutiveFailures
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
		IsSuccessful: func(err error) bool {
			switch connect.CodeOf(err) {
			case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeInternal,
				connect.CodeUnknown, connect.CodeDataLoss, connect.CodeResourceExhausted:
				return err == nil
			default:
				return true
			}
		},
	})}
}

// deadlineSlack is how early a backend may enforce the caller's deadline,
// which the call carries rounded down (to the millisecond for Connect).
const deadlineSlack = 10 * time.Millisecond

// callerGone reports whether a call failed because its caller gave up: its
// context ended, or the backend answered deadline_exceeded for the caller's
// own deadline a moment before the caller's context saw it expire.
func callerGone(callerCtx context.Context, err error) bool {
	if callerCtx.Err() != nil {
		return true
	}
	deadline, ok := callerCtx.Deadline()
	return ok && connect.CodeOf(err) == connect.CodeDeadlineExceeded && time.Until(deadline) < deadlineSlack
}

// call runs fn through the breaker. callerCtx is the caller's context,
// before the backend's own timeout, which tells a caller that gave up from a
// backend that is slow. An open circuit answers at once with
// CodeUnavailable.
func (b *breaker) call(callerCtx context.Context, fn func() error) error {
	var callErr error
	_, err := b.cb.Execute(func() (struct{}, error) {
		callErr = fn()
		if callErr != nil && callerGone(callerCtx, callErr) {
			return struct{}{}, errCallerGone
		}
		return struct{}{}, callErr
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		// The call's span says the breaker refused it, never having left.
		if span := trace.SpanFromContext(callerCtx); span.IsRecording() {
			state := gobreaker.StateOpen
			if errors.Is(err, gobreaker.ErrTooManyRequests) {
				state = gobreaker.StateHalfOpen
			}
			span.SetAttributes(telemetry.Breaker.String(state.String()))
		}
		return connect.NewError(connect.CodeUnavailable, b.name+" is unavailable (circuit open)")
	case errors.Is(err, errCallerGone):
		return callErr
	}
	return err
}
