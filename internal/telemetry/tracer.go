package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// CallTracerProvider returns a TracerProvider whose spans are started with
// the provider of the span already in the context: instrumentation built
// once (such as a backend client's) then traces with whatever provider the
// browser call it serves uses, and does nothing outside a recorded call.
func CallTracerProvider() trace.TracerProvider { return callTracerProvider{} }

type callTracerProvider struct{ embedded.TracerProvider }

func (callTracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return callTracer{name: name, opts: opts}
}

type callTracer struct {
	embedded.Tracer

	name string
	opts []trace.TracerOption
}

func (t callTracer) Start(ctx context.Context, spanName string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		// As telemetry.Start: nothing under an unsampled call. ctx keeps the
		// call's span context, which the client still propagates.
		return ctx, noSpan
	}
	ctx, span := parent.TracerProvider().Tracer(t.name, t.opts...).Start(ctx, spanName, opts...)
	return ctx, codeOnlySpan{span}
}

// codeOnlySpan drops the description of the statuses set on it: the
// instrumentation sets an error's message there, which may be a backend's
// text (hostnames, internal ids). The code is kept.
type codeOnlySpan struct{ trace.Span }

func (s codeOnlySpan) SetStatus(code codes.Code, _ string) { s.Span.SetStatus(code, "") }
