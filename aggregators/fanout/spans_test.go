package fanout_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/custodian-bff/custodian/aggregators/fanout"
)

// TestPartSpans: inside a traced call each part gets a span, child of the
// call's, named by its label, failed when the part failed; outside a traced
// call there are none.
func TestPartSpans(t *testing.T) {
	t.Parallel()
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	ctx, call := tp.Tracer("test").Start(t.Context(), "call")

	g := fanout.New[string](ctx)
	fanout.Go(g, fanout.Part[string]{Label: "profile", Required: true}, func(context.Context) (int, error) { return 1, nil })
	fanout.Go(g, fanout.Part[string]{Label: "loyalty"}, func(context.Context) (int, error) { return 0, errors.New("down") })
	if err := g.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	call.End()

	parts := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range recorder.Ended() {
		if s.Name() != "fanout.part" {
			continue
		}
		for _, kv := range s.Attributes() {
			if kv.Key == "custodian.part" {
				parts[kv.Value.AsString()] = s
			}
		}
		if s.Parent().SpanID() != call.SpanContext().SpanID() {
			t.Errorf("part span's parent %v, want the call's span", s.Parent().SpanID())
		}
	}
	if len(parts) != 2 {
		t.Fatalf("part spans %v, want profile and loyalty", parts)
	}
	if got := parts["profile"].Status().Code; got != codes.Unset {
		t.Errorf("profile's span status %v, want unset", got)
	}
	if got := parts["loyalty"].Status(); got.Code != codes.Error || got.Description != "" {
		t.Errorf("loyalty's span status %+v, want Error without the part's error text", got)
	}

	before := len(recorder.Ended())
	g = fanout.New[string](t.Context())
	fanout.Go(g, fanout.Part[string]{Label: "profile"}, func(context.Context) (int, error) { return 1, nil })
	_ = g.Wait()
	if after := len(recorder.Ended()); after != before {
		t.Errorf("%d spans ended for an untraced call, want none", after-before)
	}
}
