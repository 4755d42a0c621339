package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestWaterfallFromSpans records a call's spans as the gateway would make
// them and draws them: nested by parent, failures marked, and only the
// allow-listed attributes shown.
func TestWaterfallFromSpans(t *testing.T) {
	t.Parallel()
	rec := NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracer := tp.Tracer("test")

	start := time.Now()
	ctx, server := tracer.Start(context.Background(), "acme.storefront.v1.AccountService/GetDashboard",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String(RequestIDAttribute, "req1"), attribute.String("rpc.method", "GetDashboard")))
	_, session := tracer.Start(ctx, "custodian.session", trace.WithAttributes(attribute.String("custodian.session.state", "active")))
	session.End()
	_, backend := tracer.Start(ctx, "acme.loyalty.v1.LoyaltyService/GetAccount",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("custodian.backend", "loyalty"),
			attribute.String("rpc.method", "acme.loyalty.v1.LoyaltyService/GetAccount"),
			attribute.String("rpc.connect_rpc.error_code", "unavailable"),
			attribute.String("enduser.id", "alice-secret"),
			attribute.String("http.url", "http://ledger-1.acme.internal/x"),
		))
	backend.AddEvent("ledger-1.acme.internal: lock wait timeout")
	backend.SetStatus(codes.Error, "ledger-1.acme.internal: lock wait timeout")
	backend.End()
	server.End()

	// A request the recorder never saw has no trace; the page draws the
	// call as it saw it.
	w := buildWaterfall(context.Background(), rec, []call{
		{procedure: "AccountService/GetDashboard", requestID: "req1", start: start, end: time.Now()},
		{procedure: "SessionService/GetSession", requestID: "unknown", start: start, end: time.Now()},
	})
	if w == nil || len(w.Rows) != 4 {
		t.Fatalf("waterfall: %+v", w)
	}
	want := []struct {
		name   string
		depth  int
		kind   string
		failed bool
	}{
		{"acme.storefront.v1.AccountService/GetDashboard", 0, "server", false},
		{"custodian.session", 1, "internal", false},
		{"GetAccount", 1, "client", true},
		{"SessionService/GetSession", 0, "page", false},
	}
	for i, row := range w.Rows {
		if row.Name != want[i].name || row.Depth != want[i].depth || row.Kind != want[i].kind || row.Failed != want[i].failed {
			t.Errorf("row %d: %+v, want %+v", i, row, want[i])
		}
	}
	if got := w.Rows[2].Summary; got != "backend=loyalty · code=unavailable" {
		t.Errorf("backend span summary %q", got)
	}
	if !w.Rows[3].Untraced {
		t.Error("the call without a trace is not marked untraced")
	}
	for _, row := range w.Rows {
		if s := row.Name + row.Summary; strings.Contains(s, "secret") || strings.Contains(s, "acme.internal") || strings.Contains(s, "req1") || strings.Contains(s, "acme.loyalty") {
			t.Errorf("row %+v shows what it must not", row)
		}
	}
}

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/orders?page=abc":      "/orders?page=abc",
		"/":                     "/",
		"":                      "/",
		"//evil.example/":       "/",
		`/\evil.example`:        "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"/a\r\nSet-Cookie: x":   "/",
		"orders":                "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
