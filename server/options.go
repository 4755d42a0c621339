package server

import (
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
)

// Option configures a Server.
type Option interface {
	apply(*options)
}

// ServiceFunc builds one Connect service handler with the options the server
// gives every service. Wrap a generated constructor:
//
//	func(o ...connect.HandlerOption) (string, http.Handler) {
//		return storefrontv1connect.NewProductServiceHandler(impl, o...)
//	}
type ServiceFunc func(...connect.HandlerOption) (string, http.Handler)

type options struct {
	logger       *slog.Logger
	limits       Limits
	certFile     string
	keyFile      string
	services     []ServiceFunc
	routes       []route
	interceptors []connect.Interceptor
	middleware   []func(http.Handler) http.Handler
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

// WithService registers a Connect service; it is also listed by reflection and
// the health service. May be given several times.
func WithService(build ServiceFunc) Option {
	return optionFunc(func(o *options) { o.services = append(o.services, build) })
}

// WithHandler serves a plain HTTP route (an http.ServeMux pattern) on the same
// listener, e.g. the login routes. May be given several times.
func WithHandler(pattern string, handler http.Handler) Option {
	return optionFunc(func(o *options) { o.routes = append(o.routes, route{pattern, handler}) })
}

// WithInterceptors adds interceptors to every service, inside the server's own
// error-sanitizing interceptor. Default: none.
func WithInterceptors(interceptors ...connect.Interceptor) Option {
	return optionFunc(func(o *options) { o.interceptors = append(o.interceptors, interceptors...) })
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
