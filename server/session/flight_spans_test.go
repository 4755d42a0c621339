package session_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestJoinedFlightSpans: of two traced callers that need the same
// exchange, the one that starts it gets the exchange's span and the one
// that joins it a span of the same name marked custodian.flight=joined,
// each in its own trace.
func TestJoinedFlightSpans(t *testing.T) {
	t.Parallel()
	e, x := newExchangeEnv(t)
	x.gate = make(chan struct{})
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))

	firstCtx, first := tp.Tracer("test").Start(t.Context(), "first")
	firstDone := make(chan tokenResult, 1)
	go func() {
		tok, err := e.m.ExchangedToken(firstCtx, e.load(t, h), aud)
		firstDone <- tokenResult{tok, err}
	}()
	await(t, x.entered, "the exchange")

	secondCtx, second := tp.Tracer("test").Start(t.Context(), "second")
	var joined sync.WaitGroup
	joined.Add(1)
	secondDone := make(chan tokenResult, 1)
	go func() {
		ctx := &joinCtx{Context: secondCtx, joined: joined.Done}
		tok, err := e.m.ExchangedToken(ctx, e.load(t, h), aud)
		secondDone <- tokenResult{tok, err}
	}()
	await(t, waitGroupDone(&joined), "the second caller to wait for the exchange")
	close(x.gate)
	for _, done := range []chan tokenResult{firstDone, secondDone} {
		if r := await(t, done, "a result"); r.err != nil || r.token != exToken(1, original) {
			t.Fatalf("ExchangedToken = %q, %v", r.token, r.err)
		}
	}
	first.End()
	second.End()

	byTrace := map[string][]string{}
	for _, s := range recorder.Ended() {
		if s.Name() != "custodian.token_exchange" {
			continue
		}
		desc := "flight"
		for _, kv := range s.Attributes() {
			if kv.Key == "custodian.flight" {
				desc = kv.Value.AsString()
			}
		}
		byTrace[s.SpanContext().TraceID().String()] = append(byTrace[s.SpanContext().TraceID().String()], desc)
	}
	if got := byTrace[first.SpanContext().TraceID().String()]; !slices.Equal(got, []string{"flight"}) {
		t.Errorf("the first caller's trace has exchange spans %v, want the flight's", got)
	}
	if got := byTrace[second.SpanContext().TraceID().String()]; !slices.Equal(got, []string{"joined"}) {
		t.Errorf("the second caller's trace has exchange spans %v, want one joined", got)
	}
}
