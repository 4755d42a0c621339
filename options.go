package custodian

import (
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect/v2"
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

// WithTracerProvider sets where the gateway's spans go. Default: spans with
// real ids that are not exported, so the W3C trace context still reaches
// the backends.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) { o.tracer = tp })
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
