package tracecontext_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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
// on a loopback listener and returns a client of it. wrap, if not nil, wraps
// the HTTP handler, as an embedder's middleware would.
func startServer(t *testing.T, tp trace.TracerProvider, trust bool, handler catalogv1connect.CatalogServiceHandler, wrap func(http.Handler) http.Handler) catalogv1connect.CatalogServiceClient {
	t.Helper()
	server := connect.NewServer(tracecontext.Server(tp, trust))
	catalogv1connect.RegisterCatalogServiceHandler(server, handler)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server)
	var h http.Handler = mux
	if wrap != nil {
		h = wrap(mux)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return catalogv1connect.NewCatalogServiceClient(connect.NewClient(connecthttp.NewTransport(srv.Client(), srv.URL)))
}

// serve runs the catalog behind the server interceptor of tp on loopback
// and calls GetProduct with header; it returns the span context the handler
// ran in and the header its backend calls would carry.
func serve(t *testing.T, tp trace.TracerProvider, trust bool, header http.Header, wrap func(http.Handler) http.Handler) (trace.SpanContext, *connect.Header) {
	t.Helper()
	catalog := &spanCatalog{got: make(chan trace.SpanContext, 1), outbound: make(chan *connect.Header, 1)}
	client := startServer(t, tp, trust, catalog, wrap)
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

// sdkProvider returns an SDK provider (sampling every new root, as the
// gateway's default does) recording into a new recorder.
func sdkProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, recorder
}

// onlySpan returns the one span recorder ended, checking its name, kind
// and that it is the span the handler ran in.
func onlySpan(t *testing.T, recorder *tracetest.SpanRecorder, sc trace.SpanContext) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := recorder.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	span := spans[0]
	if span.Name() != strings.TrimPrefix(catalogv1connect.CatalogServiceGetProductProcedure, "/") || span.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q of kind %v", span.Name(), span.SpanKind())
	}
	if span.SpanContext().SpanID() != sc.SpanID() {
		t.Errorf("recorded span %s, handler saw %s", span.SpanContext().SpanID(), sc.SpanID())
	}
	return span
}

// wantOutbound checks that backend calls carry the gateway's span sc and
// no tracestate but sc's.
func wantOutbound(t *testing.T, outbound *connect.Header, sc trace.SpanContext) {
	t.Helper()
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
	if got := outbound.Values("Traceparent"); len(got) != 1 || got[0] != want {
		t.Errorf("outbound traceparent %q, want %q", got, want)
	}
	if got, want := outbound.Get("Tracestate"), sc.TraceState().String(); got != want {
		t.Errorf("outbound tracestate %q, want %q", got, want)
	}
}

// marker is a tracestate entry the caller sends; it must reach no backend
// unless inbound trace context is trusted.
const marker = "browser=marker-7f3a"

func TestServerUntrusted(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		header http.Header
		link   string // the traceparent of the span's one link; "" for none
	}{
		{"links a valid traceparent", http.Header{"Traceparent": {incoming}}, incoming},
		{"links a valid traceparent, not its tracestate", http.Header{"Traceparent": {incoming}, "Tracestate": {marker}}, incoming},
		{"links an unsampled traceparent", http.Header{"Traceparent": {"00-" + incomingTraceID + "-" + incomingSpanID + "-00"}}, "00-" + incomingTraceID + "-" + incomingSpanID + "-00"},
		{"links a future version's traceparent", http.Header{"Traceparent": {"cc-" + incomingTraceID + "-" + incomingSpanID + "-01-what-the-future-holds"}}, incoming},
		{"tracestate alone", http.Header{"Tracestate": {marker}}, ""},
		{"no trace context", nil, ""},
		{"two traceparents", http.Header{"Traceparent": {incoming, "00-" + incomingTraceID + "-" + "1111111111111111-01"}}, ""},
		{"malformed traceparent", http.Header{"Traceparent": {"00-" + incomingTraceID + "-zzzz-01"}, "Tracestate": {marker}}, ""},
		{"upper-case hex", http.Header{"Traceparent": {"00-4BF92F3577B34DA6A3CE929D0E0E4736-" + incomingSpanID + "-01"}}, ""},
		{"short trace id", http.Header{"Traceparent": {"00-" + incomingTraceID[:16] + "-" + incomingSpanID + "-01"}}, ""},
		{"all-zero trace id", http.Header{"Traceparent": {"00-00000000000000000000000000000000-" + incomingSpanID + "-01"}}, ""},
		{"all-zero span id", http.Header{"Traceparent": {"00-" + incomingTraceID + "-0000000000000000-01"}}, ""},
		{"version ff", http.Header{"Traceparent": {"ff-" + incomingTraceID + "-" + incomingSpanID + "-01"}}, ""},
		{"version 00 with more fields", http.Header{"Traceparent": {incoming + "-00"}}, ""},
		{"garbage", http.Header{"Traceparent": {"not a traceparent"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tp, recorder := sdkProvider(t)
			sc, outbound := serve(t, tp, false, c.header, nil)
			if !sc.IsValid() || !sc.IsSampled() {
				t.Fatalf("handler ran in span context %v, want a valid sampled one", sc)
			}
			if sc.TraceID().String() == incomingTraceID || sc.SpanID().String() == incomingSpanID {
				t.Errorf("the gateway's span %s-%s reuses the caller's ids", sc.TraceID(), sc.SpanID())
			}
			if sc.TraceState().Len() != 0 {
				t.Errorf("the gateway's span has the tracestate %q", sc.TraceState())
			}
			wantOutbound(t, outbound, sc)

			span := onlySpan(t, recorder, sc)
			if span.Parent().IsValid() {
				t.Errorf("new trace has the parent %v", span.Parent())
			}
			links := span.Links()
			if c.link == "" {
				if len(links) != 0 {
					t.Errorf("links %v, want none", links)
				}
				return
			}
			if len(links) != 1 {
				t.Fatalf("links %v, want one", links)
			}
			l := links[0].SpanContext
			if got := "00-" + l.TraceID().String() + "-" + l.SpanID().String() + "-" + l.TraceFlags().String(); got != c.link || !l.IsRemote() {
				t.Errorf("link to %s (remote %v), want the caller's %s", got, l.IsRemote(), c.link)
			}
			if l.TraceState().Len() != 0 {
				t.Errorf("link keeps the caller's tracestate %q", l.TraceState())
			}
		})
	}
}

func TestServerTrusted(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		header    http.Header
		continues bool   // the incoming trace is continued
		state     string // the tracestate backends get
	}{
		{"continues the caller's trace", http.Header{"Traceparent": {incoming}}, true, ""},
		{"continues with tracestate", http.Header{"Traceparent": {incoming}, "Tracestate": {marker}}, true, marker},
		{"starts a trace without traceparent", nil, false, ""},
		{"ignores tracestate without traceparent", http.Header{"Tracestate": {marker}}, false, ""},
		{"ignores a malformed traceparent", http.Header{"Traceparent": {"00-" + incomingTraceID + "-zzzz-01"}, "Tracestate": {marker}}, false, ""},
		{"ignores a short traceparent", http.Header{"Traceparent": {"00-" + incomingTraceID[:16] + "-" + incomingSpanID + "-01"}}, false, ""},
		{"ignores an all-zero trace id", http.Header{"Traceparent": {"00-00000000000000000000000000000000-" + incomingSpanID + "-01"}}, false, ""},
		{"ignores an all-zero span id", http.Header{"Traceparent": {"00-" + incomingTraceID + "-0000000000000000-01"}}, false, ""},
		{"ignores version ff", http.Header{"Traceparent": {"ff-" + incomingTraceID + "-" + incomingSpanID + "-01"}}, false, ""},
		{"ignores garbage", http.Header{"Traceparent": {"not a traceparent"}}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tp, recorder := sdkProvider(t)
			sc, outbound := serve(t, tp, true, c.header, nil)
			if !sc.IsValid() {
				t.Fatalf("handler ran without a valid span context: %v", sc)
			}
			if sc.SpanID().String() == incomingSpanID {
				t.Error("the gateway's span reuses the caller's span id")
			}
			if got := sc.TraceID().String() == incomingTraceID; got != c.continues {
				t.Errorf("trace id %s, continued %v; want continued %v", sc.TraceID(), got, c.continues)
			}
			if got := sc.TraceState().String(); got != c.state {
				t.Errorf("tracestate %q, want %q", got, c.state)
			}
			// Backend calls carry the gateway's span, not the caller's.
			wantOutbound(t, outbound, sc)

			span := onlySpan(t, recorder, sc)
			if len(span.Links()) != 0 {
				t.Errorf("links %v, want none", span.Links())
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
	withState := http.Header{"Traceparent": {incoming}, "Tracestate": {marker}}
	cases := []struct {
		name  string
		trust bool
		in    http.Header
		want  string // outbound traceparent
		state string // outbound tracestate
	}{
		{"untrusted: nothing of the caller's", false, withState, "", ""},
		{"trusted: passes the caller's trace on", true, withState, incoming, marker},
		{"trusted: no trace without one", true, nil, "", ""},
		{"trusted: no trace from a malformed one", true, http.Header{"Traceparent": {"00-xyz"}}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, outbound := serve(t, noop.NewTracerProvider(), c.trust, c.in, nil)
			if got := outbound.Get("Traceparent"); got != c.want {
				t.Errorf("outbound traceparent %q, want %q", got, c.want)
			}
			if got := outbound.Get("Tracestate"); got != c.state {
				t.Errorf("outbound tracestate %q, want %q", got, c.state)
			}
		})
	}
}

// TestServerUntrustedIgnoresContext: untrusted, a span context that
// something ahead of the interceptor put in the request's context (an HTTP
// middleware that extracted the caller's headers) is not continued either,
// with the SDK or a no-op provider.
func TestServerUntrustedIgnoresContext(t *testing.T) {
	t.Parallel()
	traceID, _ := trace.TraceIDFromHex(incomingTraceID)
	spanID, _ := trace.SpanIDFromHex(incomingSpanID)
	state, err := trace.ParseTraceState(marker)
	if err != nil {
		t.Fatal(err)
	}
	callers := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, TraceState: state, Remote: true})
	extracting := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(trace.ContextWithRemoteSpanContext(r.Context(), callers)))
		})
	}
	sdk, _ := sdkProvider(t)
	for name, tp := range map[string]trace.TracerProvider{"sdk": sdk, "noop": noop.NewTracerProvider()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, outbound := serve(t, tp, false, nil, extracting)
			if sc.TraceID() == traceID || sc.TraceState().Len() != 0 {
				t.Errorf("handler ran in %v, a continuation of %v", sc, callers)
			}
			if got := outbound.Get("Traceparent"); strings.Contains(got, incomingTraceID) {
				t.Errorf("outbound traceparent %q continues the caller's trace", got)
			}
			if got := outbound.Get("Tracestate"); got != "" {
				t.Errorf("outbound tracestate %q", got)
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
// only spans are the two server spans. Trusted, the inner one is a child of
// the outer; untrusted, it starts a trace of its own linked to the outer.
func TestServerIgnoresClientCalls(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{true, false} {
		t.Run(fmt.Sprintf("trust=%v", trust), func(t *testing.T) {
			t.Parallel()
			tp, recorder := sdkProvider(t)
			catalog := &forwardingCatalog{}
			client := startServer(t, tp, trust, catalog, nil)
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
			outer, inner := byName[strings.TrimPrefix(catalogv1connect.CatalogServiceGetProductProcedure, "/")], byName[strings.TrimPrefix(catalogv1connect.CatalogServiceListProductsProcedure, "/")]
			if outer == nil || inner == nil {
				t.Fatalf("spans %v, want one per procedure", byName)
			}
			if trust {
				if inner.Parent().SpanID() != outer.SpanContext().SpanID() || inner.SpanContext().TraceID() != outer.SpanContext().TraceID() {
					t.Errorf("inner span's parent %v, want the outer span %v", inner.Parent(), outer.SpanContext())
				}
				return
			}
			if inner.Parent().IsValid() || inner.SpanContext().TraceID() == outer.SpanContext().TraceID() {
				t.Errorf("inner span %v with parent %v continues the outer span %v", inner.SpanContext(), inner.Parent(), outer.SpanContext())
			}
			if links := inner.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != outer.SpanContext().SpanID() ||
				links[0].SpanContext.TraceID() != outer.SpanContext().TraceID() {
				t.Errorf("inner span's links %v, want one to the outer span %v", links, outer.SpanContext())
			}
		})
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
