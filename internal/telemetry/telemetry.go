// Package telemetry holds what the gateway's packages share to trace and
// measure one browser call: the names of its spans' attributes, a tracer
// taken from the call's own span, and the record of the call the access log
// writes. Spans started here are children of the span in ctx and use its
// provider, so a package needs no provider of its own to trace inside a call;
// outside a traced call they are no-ops.
package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the gateway's spans and metrics.
const ScopeName = "github.com/custodian-bff/custodian"

// Attribute keys of the gateway's spans and metrics. Every value is from a
// small fixed set (no user, session, token or URL) except RequestID, which
// only spans carry.
const (
	Backend      = attribute.Key("custodian.backend")       // a configured backend's name
	Outcome      = attribute.Key("custodian.outcome")       // ok, rejected, failed, ...
	Cache        = attribute.Key("custodian.cache")         // hit, miss, shared, joined
	CacheName    = attribute.Key("custodian.cache.name")    // which cache
	CacheHits    = attribute.Key("custodian.cache.hits")    // keys found, of a lookup of several
	CacheMisses  = attribute.Key("custodian.cache.misses")  // keys not found, of a lookup of several
	SessionState = attribute.Key("custodian.session.state") // none, active, ended, unavailable
	Reason       = attribute.Key("custodian.reason")        // why a session ended
	Part         = attribute.Key("custodian.part")          // a fan-out part's label
	Limit        = attribute.Key("custodian.limit")         // which rate limit refused
	State        = attribute.Key("custodian.state")         // a circuit breaker's new state
	Breaker      = attribute.Key("custodian.breaker")       // the state of the breaker that refused a backend call
	Flight       = attribute.Key("custodian.flight")        // joined: the caller waited for a token fetch another caller started
	Operation    = attribute.Key("custodian.operation")     // a store command
	RequestID    = attribute.Key("custodian.request_id")    // spans only
)

// Outcomes of provider calls.
const (
	OutcomeOK       = "ok"
	OutcomeRejected = "rejected" // the provider refused the grant: the session ends
	OutcomeFailed   = "failed"   // the provider could not be reached or answered badly
)

// DurationBuckets are the bucket bounds of duration histograms in seconds:
// those OpenTelemetry recommends for RPC durations, as otelconnect uses.
var DurationBuckets = metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

// CacheLookups returns the counter of lookups in the gateway's caches, by
// cache (CacheName) and result (Cache: hit, miss, joined). Every cache
// counts in this one instrument.
func CacheLookups(meter metric.Meter) metric.Int64Counter {
	c, _ := meter.Int64Counter("custodian.cache.lookups",
		metric.WithDescription("Lookups in the gateway's caches, by cache and result (hit, miss, joined)."))
	return c
}

// Start starts a span named name as a child of the span in ctx, with that
// span's provider. Under a span that is not recording (an unsampled call,
// or none) it starts nothing and returns ctx and a no-op span: the gateway's
// samplers follow the parent, so such a child would not be recorded either,
// and an unsampled call costs no allocation per span.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	return parent.TracerProvider().Tracer(ScopeName).Start(ctx, name, trace.WithAttributes(attrs...))
}

// noSpan is the no-op span.
var noSpan = trace.SpanFromContext(context.Background())

// End ends span, marking it failed when err is not nil. The error's text is
// not recorded: it may come from a backend or the provider.
func End(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// Meter returns the gateway's meter of mp, or a no-op one when mp is nil.
func Meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	return mp.Meter(ScopeName)
}
