package session

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// WithMeterProvider sets where the manager's metrics go: sessions started
// and ended by reason, refreshes and token exchanges by outcome and
// duration, refresh and exchange flights joined, and exchanged tokens found
// kept. Default: none recorded. Spans need no provider: those of a traced
// call use its provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(m *Manager) { m.meters = mp })
}

// instruments are the manager's metrics.
type instruments struct {
	started   metric.Int64Counter
	ended     metric.Int64Counter
	refreshes metric.Float64Histogram
	exchanges metric.Float64Histogram
	joined    metric.Int64Counter
	cache     metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) instruments {
	meter := telemetry.Meter(mp)
	var in instruments
	// Instruments fail only for invalid names; these are constant.
	in.started, _ = meter.Int64Counter("custodian.sessions.started",
		metric.WithDescription("Sessions started by a completed login."))
	in.ended, _ = meter.Int64Counter("custodian.sessions.ended",
		metric.WithDescription("Sessions ended, by reason (expired, signed_out, refresh_failed, token_rejected)."))
	in.refreshes, _ = meter.Float64Histogram("custodian.token.refresh.duration", metric.WithUnit("s"), telemetry.DurationBuckets,
		metric.WithDescription("Refresh-token grants at the provider, by outcome (ok, rejected, failed)."))
	in.exchanges, _ = meter.Float64Histogram("custodian.token.exchange.duration", metric.WithUnit("s"), telemetry.DurationBuckets,
		metric.WithDescription("Token exchanges (RFC 8693) at the provider, by outcome (ok, rejected, failed)."))
	in.joined, _ = meter.Int64Counter("custodian.token.flights.joined",
		metric.WithDescription("Calls that waited for a refresh or exchange already under way instead of starting one, by kind."))
	in.cache = telemetry.CacheLookups(meter)
	return in
}

// Attribute sets of the manager's metrics, built once.
var (
	exchangeCacheName = telemetry.CacheName.String("exchanged_token")
	exchangeCacheHit  = metric.WithAttributeSet(attribute.NewSet(exchangeCacheName, telemetry.Cache.String("hit")))
	exchangeCacheMis  = metric.WithAttributeSet(attribute.NewSet(exchangeCacheName, telemetry.Cache.String("miss")))
)

// flightKind is a kind of shared token fetch: how a caller that joins one
// is counted, and the name of the span of its wait.
type flightKind struct {
	joined metric.AddOption
	span   string
}

// The kinds of token fetch that callers share.
var (
	kindRefresh  = flightKind{metric.WithAttributeSet(attribute.NewSet(attribute.String("custodian.kind", "refresh"))), "custodian.refresh"}
	kindExchange = flightKind{metric.WithAttributeSet(attribute.NewSet(attribute.String("custodian.kind", "exchange"))), "custodian.token_exchange"}
)

// reasonLabel is reason as a metric label: expired, signed_out, ...
func reasonLabel(reason Reason) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(reason.String(), "SESSION_END_REASON_"), "SESSION_"))
}

// outcomeOf is the outcome of a provider call that returned err.
func outcomeOf(err error, rejected bool) string {
	switch {
	case err == nil:
		return telemetry.OutcomeOK
	case rejected:
		return telemetry.OutcomeRejected
	default:
		return telemetry.OutcomeFailed
	}
}

// recordProvider records a provider call of hist that started at start.
func recordProvider(ctx context.Context, hist metric.Float64Histogram, start time.Time, outcome string) {
	hist.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(telemetry.Outcome.String(outcome)))
}
