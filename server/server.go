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
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

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
	services []string
}

// New builds a Server. It fails when two services or routes collide.
func New(opts ...Option) (s *Server, err error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt.apply(&o)
	}
	s = &Server{
		logger:   o.logger,
		limits:   o.limits.withDefaults(),
		certFile: o.certFile,
		keyFile:  o.keyFile,
	}
	if (s.certFile == "") != (s.keyFile == "") {
		return nil, errors.New("server: TLS needs both a certificate and a key file")
	}
	// http.ServeMux panics on conflicting patterns; report that as an error.
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("server: %v", p)
		}
	}()
	handlerOpts := append(codecs(),
		connect.WithReadMaxBytes(int(s.limits.MaxBodyBytes)),
		// Small answers are sent as they are: compressing them costs more
		// than it saves.
		connect.WithCompressMinBytes(compressMinBytes),
		connect.WithRecover(recoverPanic(s.logger)),
		connect.WithInterceptors(append([]connect.Interceptor{&edgeInterceptor{logger: s.logger}}, o.interceptors...)...),
	)
	mux := http.NewServeMux()
	for _, build := range o.services {
		path, h := build(handlerOpts...)
		mux.Handle(path, h)
		s.services = append(s.services, strings.Trim(path, "/"))
	}
	s.health = newHealth(s.services)
	mux.Handle(healthHandler(s.health, handlerOpts...))
	reflector := grpcreflect.NewStaticReflector(append([]string{healthServiceName}, s.services...)...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, handlerOpts...))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, handlerOpts...))
	mux.HandleFunc("GET /healthz", s.health.serveLive)
	mux.HandleFunc("GET /readyz", s.health.serveReady)
	for _, r := range o.routes {
		mux.Handle(r.pattern, http.MaxBytesHandler(r.handler, s.limits.MaxBodyBytes))
	}
	var h http.Handler = mux
	for i := len(o.middleware) - 1; i >= 0; i-- {
		h = o.middleware[i](h)
	}
	s.handler = requestid.Middleware(h)
	return s, nil
}

// Services lists the fully-qualified names of the registered services.
func (s *Server) Services() []string {
	return append([]string(nil), s.services...)
}

// Handler returns the server's routes, for tests and for embedding.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Serve serves on ln until ctx ends, then drains: health turns NOT_SERVING,
// /readyz answers 503, new connections are refused, and in-flight calls get
// Limits.ShutdownTimeout to finish before the remaining connections close.
// It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	errc := make(chan error, 1)
	go func() {
		if s.certFile != "" {
			errc <- srv.ServeTLS(ln, s.certFile, s.keyFile)
			return
		}
		errc <- srv.Serve(ln)
	}()
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

func (s *Server) httpServer() *http.Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	if s.certFile == "" {
		protocols.SetUnencryptedHTTP2(true) // gRPC without TLS needs h2c.
	}
	return &http.Server{
		Handler:           s.handler,
		Protocols:         protocols,
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout:       s.limits.ReadTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    s.limits.MaxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:      s.limits.MaxConcurrentStreams,
			MaxReceiveBufferPerStream: 1 << 20,
		},
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		ErrorLog:  slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
}
