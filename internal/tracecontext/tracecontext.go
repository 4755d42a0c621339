// Package tracecontext carries the W3C trace context through the gateway:
// the browser-facing handler continues the caller's trace (or starts one)
// with a span of its own, and every backend call carries it on. It is thin
// glue over OpenTelemetry's propagation and tracing APIs; export spans by
// passing a TracerProvider that has an exporter.
package tracecontext

import (
	"context"

	"connectrpc.com/connect/v2"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var propagator = propagation.TraceContext{}

// Server returns the server interceptor: it reads traceparent and
// tracestate from the request and starts a server span named after the
// procedure, so backend calls get a span id of the gateway's own.
func Server(tp trace.TracerProvider) connect.ServerInterceptor {
	tracer := tp.Tracer("github.com/custodian-bff/custodian")
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			if info, ok := connect.CallInfoForServerContext(ctx); ok {
				ctx = propagator.Extract(ctx, headerCarrier{info.RequestHeader()})
			}
			ctx, span := tracer.Start(ctx, spec.Procedure, trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			return next(ctx, spec, stream)
		}
	}
}

// Inject writes the trace context of ctx into a backend call's request
// header; it writes nothing when ctx has none.
func Inject(ctx context.Context, header *connect.Header) {
	propagator.Inject(ctx, headerCarrier{header})
}

// headerCarrier adapts a *connect.Header to propagation.TextMapCarrier.
type headerCarrier struct{ h *connect.Header }

func (c headerCarrier) Get(key string) string { return c.h.Get(key) }

func (c headerCarrier) Set(key, value string) { c.h.Set(key, value) }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, c.h.Len())
	for k := range c.h.All() {
		keys = append(keys, k)
	}
	return keys
}
