package tracecontext_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	"github.com/custodian-bff/custodian/internal/tracecontext"
)

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
	incoming        = "00-" + incomingTraceID + "-" + incomingSpanID + "-01"
)

// spanCatalog records the span context its handler runs in and the
// traceparent that handler's own backend calls would carry.
type spanCatalog struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
	got      chan trace.SpanContext
	outbound chan http.Header
}

func (c *spanCatalog) GetProduct(ctx context.Context, _ *connect.Request[catalogv1.GetProductRequest]) (*connect.Response[catalogv1.GetProductResponse], error) {
	c.got <- trace.SpanContextFromContext(ctx)
	h := http.Header{}
	tracecontext.Inject(ctx, h)
	c.outbound <- h
	return connect.NewResponse(&catalogv1.GetProductResponse{}), nil
}

// serve runs the catalog behind the server interceptor of tp on loopback
// and calls GetProduct with header.
func serve(t *testing.T, tp trace.TracerProvider, header http.Header, clientOpts ...connect.ClientOption) (trace.SpanContext, http.Header) {
	t.Helper()
	catalog := &spanCatalog{got: make(chan trace.SpanContext, 1), outbound: make(chan http.Header, 1)}
	srv := httptest.NewServer(http.NewServeMux())
	t.Cleanup(srv.Close)
	path, handler := catalogv1connect.NewCatalogServiceHandler(catalog, connect.WithInterceptors(tracecontext.Server(tp)))
	srv.Config.Handler.(*http.ServeMux).Handle(path, handler)
	client := catalogv1connect.NewCatalogServiceClient(srv.Client(), srv.URL, clientOpts...)
	req := connect.NewRequest(&catalogv1.GetProductRequest{ProductId: "p-1"})
	for k, vv := range header {
		for _, v := range vv {
			req.Header().Add(k, v)
		}
	}
	if _, err := client.GetProduct(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	return <-catalog.got, <-catalog.outbound
}

func TestServerWithSDK(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		header    http.Header
		continues bool // the incoming trace is continued
	}{
		{"continues the caller's trace", http.Header{"Traceparent": {incoming}}, true},
		{"continues with tracestate", http.Header{"Traceparent": {incoming}, "Tracestate": {"vendor=x"}}, true},
		{"starts a trace without traceparent", nil, false},
		{"ignores a malformed traceparent", http.Header{"Traceparent": {"00-" + incomingTraceID + "-zzzz-01"}}, false},
		{"ignores a short traceparent", http.Header{"Traceparent": {"00-" + incomingTraceID[:16] + "-" + incomingSpanID + "-01"}}, false},
		{"ignores an all-zero trace id", http.Header{"Traceparent": {"00-00000000000000000000000000000000-" + incomingSpanID + "-01"}}, false},
		{"ignores an all-zero span id", http.Header{"Traceparent": {"00-" + incomingTraceID + "-0000000000000000-01"}}, false},
		{"ignores version ff", http.Header{"Traceparent": {"ff-" + incomingTraceID + "-" + incomingSpanID + "-01"}}, false},
		{"ignores garbage", http.Header{"Traceparent": {"not a traceparent"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			recorder := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			sc, outbound := serve(t, tp, c.header)
			if !sc.IsValid() {
				t.Fatalf("handler ran without a valid span context: %v", sc)
			}
			if sc.SpanID().String() == incomingSpanID {
				t.Error("the gateway's span reuses the caller's span id")
			}
			if got := sc.TraceID().String() == incomingTraceID; got != c.continues {
				t.Errorf("trace id %s, continued %v; want continued %v", sc.TraceID(), got, c.continues)
			}
			// Backend calls carry the gateway's span, not the caller's.
			want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
			if got := outbound.Get("Traceparent"); got != want {
				t.Errorf("outbound traceparent %q, want %q", got, want)
			}

			spans := recorder.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans ended, want 1", len(spans))
			}
			span := spans[0]
			if span.Name() != catalogv1connect.CatalogServiceGetProductProcedure || span.SpanKind() != trace.SpanKindServer {
				t.Errorf("span %q of kind %v", span.Name(), span.SpanKind())
			}
			if span.SpanContext().SpanID() != sc.SpanID() {
				t.Errorf("recorded span %s, handler saw %s", span.SpanContext().SpanID(), sc.SpanID())
			}
			parent := span.Parent()
			if c.continues {
				if parent.SpanID().String() != incomingSpanID || !parent.IsRemote() {
					t.Errorf("parent %v, want the caller's remote span %s", parent, incomingSpanID)
				}
			} else if parent.IsValid() {
				t.Errorf("new trace has parent %v", parent)
			}
		})
	}
}

func TestServerWithNoopProvider(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   http.Header
		want string // outbound traceparent
	}{
		{"passes the caller's trace on", http.Header{"Traceparent": {incoming}}, incoming},
		{"no trace without one", nil, ""},
		{"no trace from a malformed one", http.Header{"Traceparent": {"00-xyz"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, outbound := serve(t, noop.NewTracerProvider(), c.in)
			if got := outbound.Get("Traceparent"); got != c.want {
				t.Errorf("outbound traceparent %q, want %q", got, c.want)
			}
		})
	}
}

func TestServerIgnoresClientCalls(t *testing.T) {
	t.Parallel()
	clientRecorder := tracetest.NewSpanRecorder()
	clientTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(clientRecorder))
	t.Cleanup(func() { _ = clientTP.Shutdown(context.Background()) })
	serve(t, noop.NewTracerProvider(), nil, connect.WithInterceptors(tracecontext.Server(clientTP)))
	if n := len(clientRecorder.Started()); n != 0 {
		t.Errorf("the server interceptor started %d spans for a client call", n)
	}
}

func TestInject(t *testing.T) {
	t.Parallel()
	traceID, _ := trace.TraceIDFromHex(incomingTraceID)
	spanID, _ := trace.SpanIDFromHex(incomingSpanID)
	state, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	sampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})
	cases := []struct {
		name       string
		ctx        context.Context
		wantParent string
		wantState  string
	}{
		{"empty context", context.Background(), "", ""},
		{"invalid span context", trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), "", ""},
		{"sampled span", trace.ContextWithSpanContext(context.Background(), sampled), incoming, ""},
		{"unsampled span", trace.ContextWithSpanContext(context.Background(), sampled.WithTraceFlags(0)),
			"00-" + incomingTraceID + "-" + incomingSpanID + "-00", ""},
		{"with trace state", trace.ContextWithSpanContext(context.Background(), sampled.WithTraceState(state)), incoming, "vendor=abc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			tracecontext.Inject(c.ctx, h)
			if c.wantParent == "" {
				if len(h) != 0 {
					t.Errorf("Inject wrote %v for a context without a trace", h)
				}
				return
			}
			if got := h.Get("Traceparent"); got != c.wantParent {
				t.Errorf("traceparent %q, want %q", got, c.wantParent)
			}
			if got := h.Get("Tracestate"); got != c.wantState {
				t.Errorf("tracestate %q, want %q", got, c.wantState)
			}
		})
	}
}
