// Package observe is the outermost layer of every browser-facing call: its
// rate, errors and duration per method (OpenTelemetry's RPC metrics through
// connectrpc.com/otelconnect), the calls in flight, and one access log line
// per call saying what it turned into. It sees every call the gateway's own
// layers refuse (CSRF, session), but not the requests the HTTP middleware
// refuses before Connect (rate limits, sizes), which count themselves.
package observe

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// Option configures an Observer.
type Option interface {
	apply(*options)
}

type options struct {
	logger    *slog.Logger
	meters    metric.MeterProvider
	accessLog bool
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger of the access log; log through
// requestid.LogHandler so each line has its request id. Default: discard.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithMeterProvider sets where the metrics go. Default: none recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.meters = mp })
}

// WithAccessLog turns the access log on or off. Default: on.
func WithAccessLog(on bool) Option {
	return optionFunc(func(o *options) { o.accessLog = on })
}

// Observer holds the two interceptors of a gateway's browser-facing calls.
type Observer struct {
	metrics connect.ServerInterceptor
	log     *accessLog
}

// New returns an Observer.
func New(opts ...Option) (*Observer, error) {
	o := options{logger: slog.New(slog.DiscardHandler), accessLog: true}
	for _, opt := range opts {
		opt.apply(&o)
	}
	meters := o.meters
	if meters == nil {
		meters = noop.NewMeterProvider()
	}
	// Without metrics there is nothing for otelconnect to do but build
	// attributes nobody reads: about 5 % of a cheap call's CPU.
	red := connect.ServerInterceptor(passThrough)
	if _, none := meters.(noop.MeterProvider); !none {
		var err error
		if red, err = otelconnect.NewServerInterceptor(otelconnect.WithMeterProvider(meters), otelconnect.WithoutTracing()); err != nil {
			return nil, fmt.Errorf("observe: %w", err)
		}
	}
	active, err := telemetry.Meter(meters).Int64UpDownCounter("custodian.server.active_calls",
		metric.WithDescription("Browser-facing calls in progress."))
	if err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	return &Observer{metrics: red, log: &accessLog{logger: o.logger, on: o.accessLog, active: active}}, nil
}

// Metrics returns the interceptor that measures calls
// (rpc.server.call.duration by method and code); put it first.
func (o *Observer) Metrics() connect.ServerInterceptor { return o.metrics }

// AccessLog returns the interceptor that counts calls in flight and writes
// the access log; put it inside the one that starts the call's span, so
// the line carries the trace id, and outside every layer that may refuse.
func (o *Observer) AccessLog() connect.ServerInterceptor { return o.log.intercept }

// passThrough is an interceptor that does nothing.
func passThrough(next connect.ServerFunc) connect.ServerFunc { return next }

// healthPrefix begins the procedures of the gRPC health service, which load
// balancers call every few seconds: measured, but not in the access log.
const healthPrefix = "/grpc.health.v1.Health/"

type accessLog struct {
	logger *slog.Logger
	on     bool
	active metric.Int64UpDownCounter
}

func (l *accessLog) intercept(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		l.active.Add(ctx, 1)
		defer l.active.Add(ctx, -1)
		if !l.on || strings.HasPrefix(spec.Procedure, healthPrefix) || !l.logger.Enabled(ctx, slog.LevelInfo) {
			return next(ctx, spec, stream)
		}
		call := &telemetry.Call{}
		start := time.Now()
		err := next(telemetry.NewContext(ctx, call), spec, stream)
		l.write(ctx, spec, call, time.Since(start), err)
		return err
	}
}

// write logs the call's line. Nothing in it comes from the request but the
// procedure, which Connect has matched to a served method.
func (l *accessLog) write(ctx context.Context, spec connect.Spec, call *telemetry.Call, d time.Duration, err error) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	protocol := ""
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		protocol = info.Protocol
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("method", strings.TrimPrefix(spec.Procedure, "/")),
		slog.String("protocol", protocol),
		slog.String("code", code),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("session", call.Session()),
	)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	if backends := call.Backends(); len(backends) > 0 {
		var b strings.Builder
		for i, bc := range backends {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(bc.Backend)
			b.WriteByte('.')
			b.WriteString(bc.Method[strings.LastIndexByte(bc.Method, '/')+1:])
			b.WriteByte('=')
			b.WriteString(bc.Code)
			b.WriteByte('/')
			b.WriteString(strconv.FormatFloat(float64(bc.Duration.Microseconds())/1000, 'f', -1, 64))
			b.WriteString("ms")
		}
		attrs = append(attrs, slog.String("backends", b.String()))
	}
	// As Logger.LogAttrs does, without the caller's program counter: every
	// line comes from here, and runtime.Callers was a tenth of its cost.
	// intercept checked that the level is enabled.
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "call", 0)
	r.AddAttrs(attrs...)
	_ = l.logger.Handler().Handle(ctx, r) // as LogAttrs, which drops it
}
