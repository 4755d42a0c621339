package tracecontext_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
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
	outbound chan *connect.Header
}

func (c *spanCatalog) GetProduct(ctx context.Context, _ *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	c.got <- trace.SpanContextFromContext(ctx)
	h := new(connect.Header)
	tracecontext.Inject(ctx, h)
	c.outbound <- h
	return &catalogv1.GetProductResponse{}, nil
}

// startServer serves handler's catalog behind the server interceptor of tp
// on a loopback listener and returns a client of it.
func startServer(t *testing.T, tp trace.TracerProvider, handler catalogv1connect.CatalogServiceHandler) catalogv1connect.CatalogServiceClient {
	t.Helper()
	server := connect.NewServer(tracecontext.Server(tp))
	catalogv1connect.RegisterCatalogServiceHandler(server, handler)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return catalogv1connect.NewCatalogServiceClient(connect.NewClient(connecthttp.NewTransport(srv.Client(), srv.URL)))
}

// serve runs the catalog behind the server interceptor of tp on loopback
// and calls GetProduct with header.
func serve(t *testing.T, tp trace.TracerProvider, header http.Header) (trace.SpanContext, *connect.Header) {
	t.Helper()
	catalog := &spanCatalog{got: make(chan trace.SpanContext, 1), outbound: make(chan *connect.Header, 1)}
	client := startServer(t, tp, catalog)
	ctx, info := connect.NewClientContext(t.Context())
	for k, vv := range header {
		for _, v := range vv {
			info.RequestHeader().Add(k, v)
		}
	}
	if _, err := client.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: "p-1"}); err != nil {
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

// forwardingCatalog's GetProduct calls ListProducts on the same server, the
// way a handler calls a backend: with the trace context injected.
type forwardingCatalog struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
	client catalogv1connect.CatalogServiceClient
}

func (c *forwardingCatalog) GetProduct(ctx context.Context, _ *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	callCtx, info := connect.NewClientContext(ctx)
	tracecontext.Inject(ctx, info.RequestHeader())
	if _, err := c.client.ListProducts(callCtx, &catalogv1.ListProductsRequest{}); err != nil {
		return nil, err
	}
	return &catalogv1.GetProductResponse{}, nil
}

func (*forwardingCatalog) ListProducts(context.Context, *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	return &catalogv1.ListProductsResponse{}, nil
}

// TestServerIgnoresClientCalls: a server interceptor cannot be installed on
// a client in v2 (it is a connect.ServerInterceptor), so what remains to
// prove is that a handler's outbound calls start no span of their own: the
// only spans are the two server spans, the inner one a child of the outer.
func TestServerIgnoresClientCalls(t *testing.T) {
	t.Parallel()
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	catalog := &forwardingCatalog{}
	client := startServer(t, tp, catalog)
	catalog.client = client
	if _, err := client.GetProduct(t.Context(), &catalogv1.GetProductRequest{ProductId: "p-1"}); err != nil {
		t.Fatal(err)
	}
	spans := recorder.Ended()
	if n := len(recorder.Started()); n != 2 || len(spans) != 2 {
		t.Fatalf("%d spans started, %d ended; want 2 server spans", n, len(spans))
	}
	byName := make(map[string]sdktrace.ReadOnlySpan)
	for _, span := range spans {
		if span.SpanKind() != trace.SpanKindServer {
			t.Errorf("span %q of kind %v, want server", span.Name(), span.SpanKind())
		}
		byName[span.Name()] = span
	}
	outer, inner := byName[catalogv1connect.CatalogServiceGetProductProcedure], byName[catalogv1connect.CatalogServiceListProductsProcedure]
	if outer == nil || inner == nil {
		t.Fatalf("spans %v, want one per procedure", byName)
	}
	if inner.Parent().SpanID() != outer.SpanContext().SpanID() || inner.SpanContext().TraceID() != outer.SpanContext().TraceID() {
		t.Errorf("inner span's parent %v, want the outer span %v", inner.Parent(), outer.SpanContext())
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
			h := new(connect.Header)
			tracecontext.Inject(c.ctx, h)
			if c.wantParent == "" {
				if h.Len() != 0 {
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
