// Package tracecontext carries the W3C trace context through the gateway:
// the browser-facing handler continues the caller's trace (or starts one)
// with a span of its own, and every backend call carries it on. It is thin
// glue over OpenTelemetry's propagation and tracing APIs; export spans by
// passing a TracerProvider that has an exporter.
package tracecontext

import (
	"context"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var propagator = propagation.TraceContext{}

// Server returns the handler interceptor: it reads traceparent and
// tracestate from the request and starts a server span named after the
// procedure, so backend calls get a span id of the gateway's own.
func Server(tp trace.TracerProvider) connect.Interceptor {
	return &server{tracer: tp.Tracer("github.com/custodian-bff/custodian")}
}

type server struct {
	tracer trace.Tracer
}

func (s *server) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx = propagator.Extract(ctx, propagation.HeaderCarrier(req.Header()))
		ctx, span := s.tracer.Start(ctx, req.Spec().Procedure, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		return next(ctx, req)
	}
}

func (s *server) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (s *server) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx = propagator.Extract(ctx, propagation.HeaderCarrier(conn.RequestHeader()))
		ctx, span := s.tracer.Start(ctx, conn.Spec().Procedure, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		return next(ctx, conn)
	}
}

// Inject writes the trace context of ctx into a backend call's headers; it
// writes nothing when ctx has none.
func Inject(ctx context.Context, header map[string][]string) {
	propagator.Inject(ctx, propagation.HeaderCarrier(header))
}
