package tracecontext_test

// Benchmarks of the trace-context server interceptor on a unary call
// dispatched by connect.Server.Call, as a transport does, with the headers
// of a signed-in browser's Connect GET in the call's CallInfo: without and
// with an incoming traceparent, distrusted (the default: a new root, the
// caller's traceparent a link) and trusted (continued). The provider is
// the gateway's default: an SDK provider without exporter, which samples
// nothing, so spans get real ids and are not recorded. "baseline" is the same server without the
// interceptor. BenchmarkInject is a backend call's header.
//
//	go test -run '^$' -bench . -benchmem ./internal/tracecontext/

import (
	"context"
	"errors"
	"testing"

	"connectrpc.com/connect/v2"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/tracecontext"
)

const (
	benchProcedure   = "/acme.storefront.v1.AccountService/GetOrder"
	benchTraceID     = "0af7651916cd43dd8448eb211c80319c"
	benchTraceparent = "00-" + benchTraceID + "-b7ad6b7169203331-01"
)

// benchStream is a ServerStream for calls whose handler reads nothing.
type benchStream struct{}

func (benchStream) Receive(any) error  { return errors.New("benchStream: no message") }
func (benchStream) SendHeaders() error { return nil }
func (benchStream) Send(any) error     { return nil }

// benchInfo returns the CallInfo of a browser's call, with traceparent
// when it is not empty.
func benchInfo(traceparent string) *connect.CallInfo {
	info := &connect.CallInfo{}
	h := info.RequestHeader()
	h.Set("Cookie", "__Host-custodian=Q2hhbmdlIG1lIHRvIGEgcmVhbCBzZXNzaW9uIGlkIHA; theme=dark")
	h.Set("X-Csrf", "1")
	h.Set("Origin", "https://shop.example.com")
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	h.Set("Accept-Encoding", "gzip")
	if traceparent != "" {
		h.Set("Traceparent", traceparent)
	}
	return info
}

func BenchmarkServer(b *testing.B) {
	// As the gateway's provider when nothing is exported (telemetry.go).
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var seen trace.SpanContext
	method := connect.Method{
		Spec: connect.Spec{Procedure: benchProcedure, StreamType: connect.StreamTypeUnary},
		Handler: func(ctx context.Context, _ connect.Spec, _ connect.ServerStream) error {
			seen = trace.SpanContextFromContext(ctx)
			return nil
		},
	}
	newServer := func(interceptors ...connect.ServerInterceptor) *connect.Server {
		s := connect.NewServer(interceptors...)
		s.Register(method)
		return s
	}
	ctx := context.Background()
	bare := newServer()
	cases := []struct {
		name    string
		srv     *connect.Server
		info    *connect.CallInfo
		trusted bool // the handler's span continues the incoming trace
	}{
		{"baseline", bare, benchInfo(benchTraceparent), false},
		{"untrusted/no-traceparent", newServer(tracecontext.Server(tp, false)), benchInfo(""), false},
		{"untrusted/traceparent", newServer(tracecontext.Server(tp, false)), benchInfo(benchTraceparent), false},
		{"trusted/no-traceparent", newServer(tracecontext.Server(tp, true)), benchInfo(""), false},
		{"trusted/traceparent", newServer(tracecontext.Server(tp, true)), benchInfo(benchTraceparent), true},
	}
	for _, c := range cases {
		seen = trace.SpanContext{}
		if err := c.srv.Call(ctx, benchProcedure, c.info, benchStream{}); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		switch {
		case c.srv == bare:
			if seen.IsValid() {
				b.Fatalf("%s: the handler ran in span %v", c.name, seen)
			}
		case !seen.IsValid():
			b.Fatalf("%s: the handler ran in span %v, want a span of the gateway's", c.name, seen)
		case c.trusted != (seen.TraceID().String() == benchTraceID):
			b.Fatalf("%s: the handler ran in trace %v", c.name, seen.TraceID())
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.srv.Call(ctx, benchProcedure, c.info, benchStream{})
			}
		})
	}
}

func BenchmarkInject(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("bench").Start(context.Background(), benchProcedure)
	defer span.End()
	h := new(connect.Header)
	tracecontext.Inject(ctx, h)
	if got, want := h.Get("Traceparent"), "00-"+span.SpanContext().TraceID().String()+"-"+span.SpanContext().SpanID().String()+"-01"; got != want {
		b.Fatalf("traceparent = %q, want %q", got, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		tracecontext.Inject(ctx, h)
	}
}
