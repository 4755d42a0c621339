package server

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect/v2"

	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
)

// health implements grpc.health.v1.Health and the plain /healthz and /readyz
// routes. Every registered service is SERVING until the server starts
// draining, except while a readiness check fails.
type health struct {
	services map[string]bool

	mu       sync.Mutex
	draining bool
	changed  chan struct{} // closed and replaced when draining starts

	logger *slog.Logger
	checks []func(context.Context) error // see WithReadiness

	readyMu   sync.Mutex
	readyErr  error     // the last checks' verdict
	checkedAt time.Time // when it was reached; zero: never
	checking  bool      // a caller is running the checks
}

// Readiness checks (see WithReadiness) run at most once per
// readinessInterval, whoever asks (/readyz, Check, every Watch), each time
// within readinessTimeout; the callers in between get the last verdict.
const (
	readinessInterval = time.Second
	readinessTimeout  = time.Second
)

// healthServiceName is the standard gRPC health service. Its messages come
// from grpc-go's generated package so the schema is registered once per
// binary, whoever else links it.
const healthServiceName = "grpc.health.v1.Health"

// registerHealth registers grpc.health.v1.Health on srv. Its generated
// code is grpc-go's, so the methods are registered by hand.
func registerHealth(srv *connect.Server, h *health) {
	methods := healthv1.File_grpc_health_v1_health_proto.Services().ByName("Health").Methods()
	srv.Register(
		connect.Method{
			Spec: connect.Spec{
				StreamType:       connect.StreamTypeUnary,
				IdempotencyLevel: connect.IdempotencyNoSideEffects,
				Schema:           methods.ByName("Check"),
				Procedure:        healthv1.Health_Check_FullMethodName,
			},
			Handler: func(ctx context.Context, _ connect.Spec, stream connect.ServerStream) error {
				var req healthv1.HealthCheckRequest
				if err := stream.Receive(&req); err != nil {
					return err
				}
				res, err := h.Check(ctx, &req)
				if err != nil {
					return err
				}
				return stream.Send(res)
			},
		},
		connect.Method{
			Spec: connect.Spec{
				StreamType: connect.StreamTypeServer,
				Schema:     methods.ByName("Watch"),
				Procedure:  healthv1.Health_Watch_FullMethodName,
			},
			Handler: func(ctx context.Context, _ connect.Spec, stream connect.ServerStream) error {
				var req healthv1.HealthCheckRequest
				if err := stream.Receive(&req); err != nil {
					return err
				}
				return h.Watch(ctx, &req, stream)
			},
		},
	)
}

func newHealth() *health {
	return &health{services: map[string]bool{"": true}, changed: make(chan struct{}), logger: slog.New(slog.DiscardHandler)}
}

// setReadiness makes the server's readiness depend on checks; logger hears
// when the verdict changes. Call it before serving.
func (h *health) setReadiness(logger *slog.Logger, checks []func(context.Context) error) {
	h.logger, h.checks = logger, checks
}

// ready returns nil while every readiness check passes, else why not. It
// runs the checks when the last verdict is older than readinessInterval
// and no other caller is running them; otherwise it returns that verdict.
func (h *health) ready() error {
	if len(h.checks) == 0 {
		return nil
	}
	h.readyMu.Lock()
	if h.checking || (!h.checkedAt.IsZero() && time.Since(h.checkedAt) < readinessInterval) {
		err := h.readyErr
		h.readyMu.Unlock()
		return err
	}
	h.checking = true
	h.readyMu.Unlock()

	var err error
	defer func() {
		h.readyMu.Lock()
		was := h.readyErr
		h.readyErr, h.checkedAt, h.checking = err, time.Now(), false
		h.readyMu.Unlock()
		switch {
		case err != nil && was == nil:
			h.logger.Warn("not ready: a readiness check fails", slog.String("error", err.Error()))
		case err == nil && was != nil:
			h.logger.Info("ready again: every readiness check passes")
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
	defer cancel()
	for _, check := range h.checks {
		if err = check(ctx); err != nil {
			return err
		}
	}
	return nil
}

// add makes services known, and as serving as the server is.
func (h *health) add(services ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range services {
		h.services[s] = true
	}
}

// drain marks every service NOT_SERVING so load balancers stop sending new
// calls, and wakes Watch streams so they end before shutdown waits on them.
func (h *health) drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.draining {
		h.draining = true
		close(h.changed)
	}
}

// status returns the status of service ("" for the whole server), and a
// channel closed when draining starts (nil once it has). Readiness checks
// may change the status without closing the channel: Watch polls them.
func (h *health) status(service string) (healthv1.HealthCheckResponse_ServingStatus, <-chan struct{}) {
	notReady := h.ready() != nil
	h.mu.Lock()
	defer h.mu.Unlock()
	status := healthv1.HealthCheckResponse_SERVING
	switch {
	case !h.services[service]:
		status = healthv1.HealthCheckResponse_SERVICE_UNKNOWN
	case h.draining, notReady:
		status = healthv1.HealthCheckResponse_NOT_SERVING
	}
	if h.draining {
		return status, nil // nothing changes after draining starts
	}
	return status, h.changed
}

// Check answers for the whole server ("") or one registered service.
func (h *health) Check(_ context.Context, req *healthv1.HealthCheckRequest) (*healthv1.HealthCheckResponse, error) {
	status, _ := h.status(req.GetService())
	if status == healthv1.HealthCheckResponse_SERVICE_UNKNOWN {
		return nil, connect.NewError(connect.CodeNotFound, "unknown service")
	}
	return &healthv1.HealthCheckResponse{Status: status}, nil
}

// Watch sends the current status, and the new one when it changes. It ends
// once the server is draining. With readiness checks it looks at them every
// readinessInterval.
func (h *health) Watch(ctx context.Context, req *healthv1.HealthCheckRequest, stream connect.ServerStream) error {
	var tick <-chan time.Time
	if len(h.checks) > 0 {
		ticker := time.NewTicker(readinessInterval)
		defer ticker.Stop()
		tick = ticker.C
	}
	sent := false
	var last healthv1.HealthCheckResponse_ServingStatus
	for {
		status, changed := h.status(req.GetService())
		if !sent || status != last {
			if err := stream.Send(&healthv1.HealthCheckResponse{Status: status}); err != nil {
				return err
			}
			sent, last = true, status
		}
		if changed == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick:
		}
	}
}

// serveLive answers /healthz: the process is up and serving HTTP.
func (h *health) serveLive(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// serveReady answers /readyz: 200 while taking traffic, 503 once draining
// or while a readiness check fails. Why a check fails goes to the log, not
// to the caller.
func (h *health) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	h.mu.Lock()
	draining := h.draining
	h.mu.Unlock()
	switch {
	case draining:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
	case h.ready() != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}
