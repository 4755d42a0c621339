// Package server is Custodian's listener: one port that speaks Connect, gRPC
// and gRPC-Web over HTTP/1.1, h2c and TLS, with reflection, health checks,
// size and time limits, and a graceful shutdown that drains in-flight calls.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpcreflect/v2"

	"github.com/custodian-bff/custodian/internal/requestid"
)

// compressMinBytes is the smallest answer compressed for clients that
// accept gzip.
const compressMinBytes = 4 << 10

// Server is the gateway's listener and the routes it serves.
type Server struct {
	logger   *slog.Logger
	limits   Limits
	certFile string
	keyFile  string
	health   *health
	handler  http.Handler
	mux      *routeMux

	interceptors []connect.ServerInterceptor

	routes map[string]http.Handler // the plain routes' handlers by pattern, for Route

	mu       sync.Mutex
	services []string
	schema   *publicSchema // what reflection describes; Mount adds to it under mu
}

// New builds a Server. It fails when two services or routes collide.
func New(opts ...Option) (*Server, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt.apply(&o)
	}
	s := &Server{
		logger:   o.logger,
		limits:   o.limits.withDefaults(),
		certFile: o.certFile,
		keyFile:  o.keyFile,
	}
	if (s.certFile == "") != (s.keyFile == "") {
		return nil, errors.New("server: TLS needs both a certificate and a key file")
	}
	s.interceptors = slices.Concat(o.outer, []connect.ServerInterceptor{edgeInterceptor(s.logger)}, o.interceptors)
	s.health = newHealth()
	s.health.setReadiness(s.logger, o.readiness)
	s.mux = newRouteMux()
	// Health and reflection share the services' interceptors. Reflection
	// lists health and the mounted services, and describes only the files
	// that declare them and their imports, not every schema linked into the
	// binary.
	builtin := connect.NewServer(s.interceptors...)
	registerHealth(builtin, s.health)
	schema, err := newPublicSchema(slices.Collect(builtin.Specs())...)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.schema = schema
	grpcreflect.Register(builtin, append(s.schema.reflectionOptions(),
		grpcreflect.WithNamer(grpcreflect.NamerFunc(s.reflected)))...)
	connecthttp.Mount(s.mux, builtin, s.mountOptions(0)...)
	mux := s.mux
	mux.HandleFunc("GET /healthz", s.health.serveLive)
	mux.HandleFunc("GET /readyz", s.health.serveReady)
	s.routes = make(map[string]http.Handler, len(o.routes))
	for _, r := range o.routes {
		if err := s.handle(r.pattern, http.MaxBytesHandler(r.handler, s.limits.MaxBodyBytes)); err != nil {
			return nil, err
		}
		s.routes[r.pattern] = r.handler
	}
	for _, svc := range o.services {
		if err := s.Mount(svc); err != nil {
			return nil, err
		}
	}
	var h http.Handler = limitBodies(s.limits.MaxBodyBytes, mux)
	for i := len(o.middleware) - 1; i >= 0; i-- {
		h = o.middleware[i](h)
	}
	s.handler = requestid.Middleware(h)
	return s, nil
}

// Mount serves svc behind every interceptor of the server; its services are
// listed by reflection and the health service, and reflection describes the
// files that declare them and their imports. It fails when a procedure is
// already served, or when its schema declares a name another served file
// declares. Mount before serving: it must not run concurrently with
// calls.
func (s *Server) Mount(svc Service) (err error) {
	rpc := connect.NewServer(s.interceptors...)
	defer func() {
		// connect.Server and http.ServeMux panic on a repeated procedure or
		// pattern; report that as an error.
		if p := recover(); p != nil {
			err = fmt.Errorf("server: %v", p)
		}
	}()
	svc.Register(rpc)
	var names []string
	for spec := range rpc.Specs() {
		if name := serviceName(spec.Procedure); !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		if slices.Contains(s.services, name) || name == healthServiceName {
			return fmt.Errorf("server: service %s is already mounted", name)
		}
	}
	// Reflection describes the service's files and their imports once it
	// is mounted.
	schema, err := s.schema.load().with(slices.Collect(rpc.Specs()), svc.Files...)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	// Mount on a list first: the service's routes are added all together
	// or, when one conflicts, not at all.
	var routes routeList
	connecthttp.Mount(&routes, rpc, s.mountOptions(int(svc.MaxBodyBytes))...)
	if err := s.mux.add(routes); err != nil {
		return err
	}
	s.schema.store(schema)
	s.services = append(s.services, names...)
	s.health.add(names...)
	return nil
}

// handle registers a plain route, reporting a conflicting pattern as an
// error instead of http.ServeMux's panic.
func (s *Server) handle(pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("server: %v", p)
		}
	}()
	s.mux.Handle(pattern, h)
	return nil
}

// mountOptions returns the handler options of every service: codecs,
// compression and the read limit: maxBodyBytes, never more than the
// server's.
func (s *Server) mountOptions(maxBodyBytes int) []connecthttp.Option {
	if maxBodyBytes <= 0 || maxBodyBytes > int(s.limits.MaxBodyBytes) {
		maxBodyBytes = int(s.limits.MaxBodyBytes)
	}
	return append(codecs(),
		connecthttp.WithReadMaxBytes(maxBodyBytes),
		// Small answers are sent as they are: compressing them costs more
		// than it saves.
		connecthttp.WithCompressMinBytes(compressMinBytes),
	)
}

// reflected lists what reflection describes: health and the mounted
// services.
func (s *Server) reflected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{healthServiceName}, s.services...)
}

// serviceName returns the service of a procedure "/pkg.Service/Method".
func serviceName(procedure string) string {
	name := strings.TrimPrefix(procedure, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	return name
}

// Services lists the fully-qualified names of the registered services.
func (s *Server) Services() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.services...)
}

// Route returns the pattern that serves r: the pattern of the innermost
// http.ServeMux r would reach through a plain route's handler, else the
// server's own (a procedure's path, GET /readyz), "" for none. It names a
// request without its path parameters; it is not on the path of a call.
func (s *Server) Route(r *http.Request) string {
	_, pattern := s.mux.Handler(r)
	h := s.routes[pattern]
	for range maxRouteDepth {
		mux, ok := h.(interface {
			Handler(*http.Request) (http.Handler, string)
		})
		if !ok {
			break
		}
		var inner string
		if h, inner = mux.Handler(r); inner == "" {
			break
		}
		pattern = inner
	}
	return pattern
}

// maxRouteDepth bounds how many muxes in muxes Route looks through.
const maxRouteDepth = 4

// Handler returns the server's routes, for tests and for embedding.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Serve serves on ln until ctx ends, then drains: health turns NOT_SERVING,
// /readyz answers 503, new connections are refused, and in-flight calls get
// Limits.ShutdownTimeout to finish before the remaining connections close.
// It returns nil after a clean drain.
//
// Every HTTP/1.x request is inspected before it is served: one whose length
// a front proxy could read differently (request smuggling) gets 400 and its
// connection is closed, before any handler runs (see framing.go).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	ln, err := s.listener(ln, srv)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("shutting down: draining in-flight calls", slog.Duration("timeout", s.limits.ShutdownTimeout))
	s.health.drain()
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.limits.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		_ = srv.Close()
		<-errc
		return fmt.Errorf("server: drain did not finish: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// httpServer returns the http.Server Serve runs, with every limit of HTTP/2
// stated (framing.go lists what Go bounds by itself). Serve's listener
// terminates TLS; TLSConfig names h2 so that net/http serves HTTP/2 on the
// connections that negotiated it.
func (s *Server) httpServer() *http.Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.certFile == "" {
		protocols.SetUnencryptedHTTP2(true) // gRPC without TLS needs h2c.
	} else {
		tlsConfig.NextProtos = []string{"h2", "http/1.1"}
	}
	logger := s.logger
	return &http.Server{
		Handler:           s.handler,
		Protocols:         protocols,
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout:       s.limits.ReadTimeout,
		WriteTimeout:      s.limits.WriteTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    s.limits.MaxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          s.limits.MaxConcurrentStreams,
			MaxDecoderHeaderTableSize:     h2HeaderTableSize,
			MaxEncoderHeaderTableSize:     h2HeaderTableSize,
			MaxReadFrameSize:              h2MaxReadFrameSize,
			MaxReceiveBufferPerConnection: h2MaxReceiveBufferPerConnection,
			MaxReceiveBufferPerStream:     h2MaxReceiveBufferPerStream,
			SendPingTimeout:               h2SendPingTimeout,
			PingTimeout:                   h2PingTimeout,
			WriteByteTimeout:              h2WriteByteTimeout,
			CountError: func(errType string) {
				logger.LogAttrs(context.Background(), slog.LevelDebug, "HTTP/2 protocol error", slog.String("type", errType))
			},
		},
		ConnState: framingConnState,
		TLSConfig: tlsConfig,
		ErrorLog:  slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
}
