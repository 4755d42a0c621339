// Package observe is the outermost layer of every browser-facing call: its
// rate, errors and duration per method (OpenTelemetry's RPC metrics through
// connectrpc.com/otelconnect), the calls in flight, and one access log line
// per call saying what it turned into. Its interceptors see every call the
// gateway's own layers refuse (CSRF, session); its HTTP middleware logs and
// counts the requests refused before a method runs (rate limits, sizes, a
// wrong content type) and those no method serves (login routes, pages).
package observe

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/attribute"
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
	route     func(*http.Request) string
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

// WithRoutes sets how Middleware names a request in its line: by the
// pattern that serves it (such as server.Server.Route), never by its path,
// which may hold a user's data. Default: no name, every route "".
func WithRoutes(route func(*http.Request) string) Option {
	return optionFunc(func(o *options) { o.route = route })
}

// WithAccessLog turns the access log on or off. Default: on.
func WithAccessLog(on bool) Option {
	return optionFunc(func(o *options) { o.accessLog = on })
}

// Observer holds the two interceptors of a gateway's browser-facing calls
// and the HTTP middleware around them.
type Observer struct {
	metrics  connect.ServerInterceptor
	log      *accessLog
	refusals metric.Int64Counter
	measured bool // metrics are recorded
}

// New returns an Observer.
func New(opts ...Option) (*Observer, error) {
	o := options{logger: slog.New(slog.DiscardHandler), accessLog: true, route: func(*http.Request) string { return "" }}
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
	// Calls in flight are counted in an atomic and read at collection: an
	// SDK Add per call start and end cost 1 % of a cheap call's CPU.
	log := &accessLog{logger: o.logger, on: o.accessLog, route: o.route}
	if _, err := telemetry.Meter(meters).Int64ObservableUpDownCounter("custodian.server.active_calls",
		metric.WithDescription("Browser-facing calls in progress."),
		metric.WithInt64Callback(func(_ context.Context, obs metric.Int64Observer) error {
			obs.Observe(log.active.Load())
			return nil
		})); err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	refusals, err := telemetry.Meter(meters).Int64Counter("custodian.http.refusals",
		metric.WithDescription("Requests answered with an HTTP error status before any browser-facing method ran (rate and size limits, a wrong method or content type, an unknown path), by status."))
	if err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	_, unmeasured := meters.(noop.MeterProvider)
	return &Observer{
		metrics:  red,
		log:      log,
		refusals: refusals,
		measured: !unmeasured,
	}, nil
}

// Metrics returns the interceptor that measures calls
// (rpc.server.call.duration by method and code); put it first.
func (o *Observer) Metrics() connect.ServerInterceptor { return o.metrics }

// AccessLog returns the interceptor that counts calls in flight and writes
// the access log; put it inside the one that starts the call's span, so
// the line carries the trace id, and outside every layer that may refuse.
func (o *Observer) AccessLog() connect.ServerInterceptor { return o.log.intercept }

// Middleware logs, as the access log's "request" lines, the requests that
// reach no browser-facing method: those a middleware or Connect refused
// before the method ran, the login routes and the gateway's own pages. The
// line names the route (see WithRoutes), never the path or query (a user's
// data, a login's code and state). Error statuses are counted in
// custodian.http.refusals. Put it outside every middleware that may refuse,
// inside the request id's.
func (o *Observer) Middleware(next http.Handler) http.Handler {
	if !o.log.on && !o.measured {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			// The server's probes, which load balancers call every few
			// seconds, as the gRPC health service is left out below.
			next.ServeHTTP(w, r)
			return
		}
		rec := &request{w: w}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(telemetry.NewContext(r.Context(), &rec.call)))
		if rec.call.Taken() {
			return
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		ctx := r.Context()
		if status >= http.StatusBadRequest && o.measured {
			o.refusals.Add(ctx, 1, metric.WithAttributes(attribute.Int("http.response.status_code", status)))
		}
		if o.log.on && o.log.logger.Enabled(ctx, slog.LevelInfo) {
			o.log.writeRequest(ctx, r, status, time.Since(start))
		}
	})
}

// request is the record of one request that Middleware passes on as its
// http.ResponseWriter, keeping the status written.
type request struct {
	call   telemetry.Call
	w      http.ResponseWriter
	status int
}

func (r *request) Header() http.Header { return r.w.Header() }

func (r *request) WriteHeader(status int) {
	if r.status == 0 && status >= http.StatusOK {
		r.status = status
	}
	r.w.WriteHeader(status)
}

func (r *request) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.w.Write(p)
}

// Flush flushes the response, as http.Flusher, for streams.
func (r *request) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.w).Flush()
}

// Unwrap returns the ResponseWriter underneath, for http.ResponseController.
func (r *request) Unwrap() http.ResponseWriter { return r.w }

// passThrough is an interceptor that does nothing.
func passThrough(next connect.ServerFunc) connect.ServerFunc { return next }

// healthPrefix begins the procedures of the gRPC health service, which load
// balancers call every few seconds: measured, but not in the access log.
const healthPrefix = "/grpc.health.v1.Health/"

type accessLog struct {
	logger *slog.Logger
	on     bool
	active atomic.Int64 // calls in flight
	route  func(*http.Request) string
}

func (l *accessLog) intercept(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		l.active.Add(1)
		defer l.active.Add(-1)
		call := telemetry.FromContext(ctx) // Middleware's, if it is in front
		if call != nil {
			call.Take()
		}
		if !l.on || strings.HasPrefix(spec.Procedure, healthPrefix) || !l.logger.Enabled(ctx, slog.LevelInfo) {
			return next(ctx, spec, stream)
		}
		if call == nil {
			call = &telemetry.Call{}
			ctx = telemetry.NewContext(ctx, call)
		}
		start := time.Now()
		err := next(ctx, spec, stream)
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

// httpMethod is method if it is one of HTTP's, else "_OTHER" (as
// OpenTelemetry names it): a client may send any token there.
func httpMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "_OTHER"
}

// writeRequest logs the line of a request no method served. Of the request
// it names the HTTP method and the route only; the path, query, headers and
// body may hold a user's data, a login's code and state or a cookie.
func (l *accessLog) writeRequest(ctx context.Context, req *http.Request, status int, d time.Duration) {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("http_method", httpMethod(req.Method)),
		slog.String("route", l.route(req)),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	)
	_ = l.logger.Handler().Handle(ctx, r)
}
