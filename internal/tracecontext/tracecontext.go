// Package tracecontext carries the W3C trace context through the gateway:
// the browser-facing handler starts a span of its own for every call, and
// every backend call carries that span's context on. By default the span is
// the root of a new trace: what a browser sends in traceparent and
// tracestate never reaches a backend, and a valid traceparent is kept only
// as a link on the span. A deployment behind a proxy that sets or strips
// these headers may trust them instead, and continue the caller's trace.
// It is thin glue over OpenTelemetry's propagation and tracing APIs; export
// spans by passing a TracerProvider that has an exporter.
package tracecontext

import (
	"context"
	"strings"

	"connectrpc.com/connect/v2"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/internal/telemetry"
)

var propagator = propagation.TraceContext{}

const traceparentHeader = "traceparent"

// Server returns the server interceptor: it starts a server span named
// after the procedure, so backend calls carry a span id of the gateway's
// own.
//
// With trustInbound false, the span is the root of a new trace (a trace id
// of the gateway's, sampled by the provider's sampler, with no tracestate),
// whatever the request and the context carry; a traceparent the caller sent
// is kept only as a link on the span, and only when it is one valid W3C
// traceparent. The caller's tracestate is never read. With trustInbound
// true, the span continues the caller's traceparent and tracestate.
func Server(tp trace.TracerProvider, trustInbound bool) connect.ServerInterceptor {
	tracer := tp.Tracer("github.com/custodian-bff/custodian")
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
			info, ok := connect.CallInfoForServerContext(ctx)
			switch {
			case trustInbound && ok:
				ctx = propagator.Extract(ctx, headerCarrier{info.RequestHeader()})
			case !trustInbound:
				// Forget any span context already in ctx, so that not even a
				// provider that ignores WithNewRoot (such as the no-op one)
				// carries one on.
				ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
				opts = append(opts, trace.WithNewRoot())
				if ok {
					if link, valid := callerLink(info.RequestHeader()); valid {
						opts = append(opts, trace.WithLinks(link))
					}
				}
			}
			ctx, span := tracer.Start(ctx, strings.TrimPrefix(spec.Procedure, "/"), opts...)
			defer span.End()
			if span.IsRecording() {
				span.SetAttributes(
					semconv.RPCMethodKey.String(strings.TrimPrefix(spec.Procedure, "/")),
					telemetry.RequestID.String(requestid.FromContext(ctx)),
				)
			}
			err := next(ctx, spec, stream)
			if err != nil {
				// The code only: the text may be a backend's.
				span.SetStatus(codes.Error, "")
				if span.IsRecording() {
					span.SetAttributes(semconv.RPCResponseStatusCodeKey.String(connect.CodeOf(err).String()))
				}
			}
			return err
		}
	}
}

// callerLink returns a link to the span context of the caller's
// traceparent, without its tracestate, when header holds exactly one valid
// traceparent.
func callerLink(header *connect.Header) (trace.Link, bool) {
	values := header.Values(traceparentHeader)
	if len(values) != 1 {
		return trace.Link{}, false
	}
	sc := trace.SpanContextFromContext(propagator.Extract(context.Background(), traceparentOnly(values[0])))
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
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

// traceparentOnly is a read-only carrier holding one traceparent and no
// tracestate.
type traceparentOnly string

func (c traceparentOnly) Get(key string) string {
	if key == traceparentHeader {
		return string(c)
	}
	return ""
}

func (traceparentOnly) Set(string, string) {}

func (traceparentOnly) Keys() []string { return []string{traceparentHeader} }
