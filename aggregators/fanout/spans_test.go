package fanout_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

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

// TestLookupAll: the values found and the keys missing, in order and each
// once, and, in a traced call, one custodian.cache span for the lookup
// with its hits and misses; none outside a traced call.
func TestLookupAll(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		keys        []string
		traced      bool
		wantFound   map[string]string
		wantMissing []string
		wantResult  string
	}{
		{name: "all cached", keys: []string{"a", "b", "a"}, traced: true,
			wantFound: map[string]string{"a": "A", "b": "B"}, wantResult: "hit"},
		{name: "some cached", keys: []string{"x", "a", "y", "x"}, traced: true,
			wantFound: map[string]string{"a": "A"}, wantMissing: []string{"x", "y"}, wantResult: "miss"},
		{name: "none cached", keys: []string{"x"}, traced: true,
			wantFound: map[string]string{}, wantMissing: []string{"x"}, wantResult: "miss"},
		{name: "not traced", keys: []string{"a", "x"},
			wantFound: map[string]string{"a": "A"}, wantMissing: []string{"x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reader := sdkmetric.NewManualReader()
			cache, err := fanout.NewCache[string, string](8, time.Minute, nil,
				fanout.WithCacheMetrics("things", sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
			if err != nil {
				t.Fatal(err)
			}
			cache.Add("a", "A")
			cache.Add("b", "B")
			recorder := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
			ctx := t.Context()
			var call trace.Span
			if c.traced {
				ctx, call = tp.Tracer("test").Start(ctx, "call")
			}
			found, missing := cache.LookupAll(ctx, c.keys)
			if !maps.Equal(found, c.wantFound) || !slices.Equal(missing, c.wantMissing) {
				t.Errorf("LookupAll(%v) = %v, %v; want %v, %v", c.keys, found, missing, c.wantFound, c.wantMissing)
			}
			// Each key is counted once, as a hit or a miss.
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(t.Context(), &rm); err != nil {
				t.Fatal(err)
			}
			counted := map[string]int64{}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "custodian.cache.lookups" {
						for _, dp := range sum.DataPoints {
							result, _ := dp.Attributes.Value("custodian.cache")
							counted[result.AsString()] += dp.Value
						}
					}
				}
			}
			if counted["hit"] != int64(len(c.wantFound)) || counted["miss"] != int64(len(c.wantMissing)) {
				t.Errorf("lookups counted %v, want %d hits and %d misses", counted, len(c.wantFound), len(c.wantMissing))
			}
			if !c.traced {
				if n := len(recorder.Ended()); n != 0 {
					t.Errorf("%d spans outside a traced call", n)
				}
				return
			}
			call.End()
			var spans []sdktrace.ReadOnlySpan
			for _, s := range recorder.Ended() {
				if s.Name() == "custodian.cache" {
					spans = append(spans, s)
				}
			}
			if len(spans) != 1 {
				t.Fatalf("%d custodian.cache spans, want 1", len(spans))
			}
			attrs := map[string]string{}
			for _, kv := range spans[0].Attributes() {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
			want := map[string]string{
				"custodian.cache": c.wantResult, "custodian.cache.name": "things",
				"custodian.cache.hits": strconv.Itoa(len(c.wantFound)), "custodian.cache.misses": strconv.Itoa(len(c.wantMissing)),
			}
			if !maps.Equal(attrs, want) {
				t.Errorf("span attributes %v, want %v", attrs, want)
			}
			if spans[0].Parent().SpanID() != call.SpanContext().SpanID() {
				t.Errorf("the span's parent is not the call's")
			}
		})
	}
}
