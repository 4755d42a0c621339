package server

import (
	"context"
	"log/slog"
	"net/http"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Option configures a Server.
type Option interface {
	apply(*options)
}

// Service is a set of browser-facing Connect services registered together.
type Service struct {
	// Register registers the services on the server's connect.Server, for
	// example with a generated RegisterXServiceHandler. New calls it once.
	Register func(*connect.Server)
	// MaxBodyBytes bounds each request message of these services more
	// tightly than Limits.MaxBodyBytes, and a message over it is answered
	// as one over the server's limit is. Zero, or a larger value, keeps the
	// server's limit.
	MaxBodyBytes int64
	// Files are schema files that reflection describes besides those of
	// the services, such as the error details the services send.
	Files []protoreflect.FileDescriptor
}

type options struct {
	logger       *slog.Logger
	limits       Limits
	certFile     string
	keyFile      string
	services     []Service
	routes       []route
	interceptors []connect.ServerInterceptor
	outer        []connect.ServerInterceptor
	middleware   []func(http.Handler) http.Handler
	readiness    []func(context.Context) error
}

type route struct {
	pattern string
	handler http.Handler
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger. Default: a logger that discards everything.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithLimits sets timeouts and size limits; zero fields keep their defaults
// (see Limits).
func WithLimits(limits Limits) Option {
	return optionFunc(func(o *options) { o.limits = limits })
}

// WithTLS serves TLS with the certificate and key in these PEM files.
// Default: plaintext, with HTTP/2 over cleartext (h2c) for gRPC.
func WithTLS(certFile, keyFile string) Option {
	return optionFunc(func(o *options) { o.certFile, o.keyFile = certFile, keyFile })
}

// WithService registers Connect services behind every interceptor of the
// server; they are also listed by reflection and the health service. May be
// given several times.
func WithService(s Service) Option {
	return optionFunc(func(o *options) { o.services = append(o.services, s) })
}

// WithHandler serves a plain HTTP route (an http.ServeMux pattern) on the same
// listener, e.g. the login routes. Its request bodies are bounded by
// Limits.MaxBodyBytes: once a read goes over it, the route's answer,
// whatever it is, is replaced by a 413. May be given several times.
func WithHandler(pattern string, handler http.Handler) Option {
	return optionFunc(func(o *options) { o.routes = append(o.routes, route{pattern, handler}) })
}

// WithInterceptors adds interceptors to every service, inside the server's own
// error-sanitizing interceptor, in the order given. Default: none.
func WithInterceptors(interceptors ...connect.ServerInterceptor) Option {
	return optionFunc(func(o *options) { o.interceptors = append(o.interceptors, interceptors...) })
}

// WithOuterInterceptors adds interceptors to every service outside the
// server's own error-sanitizing interceptor, in the order given, so that
// they see the error exactly as the client gets it: for measuring and
// tracing, never for refusing. Default: none.
func WithOuterInterceptors(interceptors ...connect.ServerInterceptor) Option {
	return optionFunc(func(o *options) { o.outer = append(o.outer, interceptors...) })
}

// WithMiddleware wraps every route (RPCs and plain routes) in mw, inside
// the request-id middleware. Given several times, the first is outermost.
// A nil mw is skipped.
func WithMiddleware(mw func(http.Handler) http.Handler) Option {
	return optionFunc(func(o *options) {
		if mw != nil {
			o.middleware = append(o.middleware, mw)
		}
	})
}

// WithReadiness makes the server ready only while check returns nil, such
// as a ping of a session store the replicas share: while it fails, /readyz
// answers 503 and the health service reports NOT_SERVING for the whole
// server and every service, and both recover by themselves once it passes
// again. The check runs at most once a second, whoever asks, within a
// second; the answers in between reuse its verdict. Why it fails is
// logged, never answered. May be given several times: every check must
// pass. A nil check is skipped. Default: ready until the server drains.
func WithReadiness(check func(ctx context.Context) error) Option {
	return optionFunc(func(o *options) {
		if check != nil {
			o.readiness = append(o.readiness, check)
		}
	})
}
