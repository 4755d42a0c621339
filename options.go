package custodian

import (
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect/v2"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/server/session"
)

// Option configures a Gateway.
type Option interface {
	apply(*options)
}

type options struct {
	logger       *slog.Logger
	now          func() time.Time
	tracer       trace.TracerProvider
	meters       metric.MeterProvider
	processors   []sdktrace.SpanProcessor
	store        session.Store
	routes       []route
	interceptors []connect.ServerInterceptor
}

type route struct {
	pattern string
	handler http.Handler
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger. Every record logged during a request gets the
// request's id as "request_id". Default: a logger that discards everything.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithClock sets the clock of sessions and logins. Default: time.Now; tests
// move it to expire tokens without waiting.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

// WithTracerProvider sets where the gateway's spans go, in place of the
// configuration's telemetry.traces. Default: the configuration's OTLP
// exporter, or, without one, spans with real ids that are neither recorded
// nor exported, so the W3C trace context still reaches the backends.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) { o.tracer = tp })
}

// WithSpanProcessor adds a span processor to the tracer provider the gateway
// builds from the configuration's telemetry.traces, beside its exporter if
// any: for example an in-memory recorder behind a page that shows what a
// call did. With one, spans are recorded even without an exporter, at
// telemetry.traces.sample_ratio. Ignored with [WithTracerProvider]. May be
// given several times. Default: none.
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return optionFunc(func(o *options) { o.processors = append(o.processors, sp) })
}

// WithMeterProvider sets where the gateway's metrics go, in place of the
// Prometheus exporter of the configuration's telemetry.admin listener.
// Default: that exporter, or, without an admin listener, none.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.meters = mp })
}

// WithSessionStore sets where sessions are kept, in place of the store the
// configuration names. Default: the configuration's session.store.
func WithSessionStore(store session.Store) Option {
	return optionFunc(func(o *options) { o.store = store })
}

// WithHandler serves a plain HTTP route (an http.ServeMux pattern) on the
// gateway's port, behind its security headers, CORS, rate limits and size
// limits, for example a server-rendered page. May be given several times.
func WithHandler(pattern string, handler http.Handler) Option {
	return optionFunc(func(o *options) { o.routes = append(o.routes, route{pattern, handler}) })
}

// WithInterceptors adds interceptors to every browser-facing service, inside
// the gateway's own (edge error sanitizer, CSRF guard, trace context,
// session), in the order given. Default: none.
func WithInterceptors(interceptors ...connect.ServerInterceptor) Option {
	return optionFunc(func(o *options) { o.interceptors = append(o.interceptors, interceptors...) })
}

// MountOption configures one Mount.
type MountOption interface {
	applyMount(*mountOptions)
}

type mountOptions struct {
	maxBodyBytes int64
}

type mountOptionFunc func(*mountOptions)

func (f mountOptionFunc) applyMount(o *mountOptions) { f(o) }

// WithReadMaxBytes bounds each request message of the mounted services more
// tightly than the configuration's server.max_body_bytes. Default: that
// limit.
func WithReadMaxBytes(n int64) MountOption {
	return mountOptionFunc(func(o *mountOptions) { o.maxBodyBytes = n })
}
