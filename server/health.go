package server

import (
	"context"
	"net/http"
	"sync"

	"connectrpc.com/connect/v2"

	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
)

// health implements grpc.health.v1.Health and the plain /healthz and /readyz
// routes. Every registered service is SERVING until the server starts draining.
type health struct {
	services map[string]bool

	mu       sync.Mutex
	draining bool
	changed  chan struct{} // closed and replaced when draining starts
}

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
	return &health{services: map[string]bool{"": true}, changed: make(chan struct{})}
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

func (h *health) status(service string) (healthv1.HealthCheckResponse_ServingStatus, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	status := healthv1.HealthCheckResponse_SERVING
	switch {
	case !h.services[service]:
		status = healthv1.HealthCheckResponse_SERVICE_UNKNOWN
	case h.draining:
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
// once the server is draining.
func (h *health) Watch(ctx context.Context, req *healthv1.HealthCheckRequest, stream connect.ServerStream) error {
	for {
		status, changed := h.status(req.GetService())
		if err := stream.Send(&healthv1.HealthCheckResponse{Status: status}); err != nil {
			return err
		}
		if changed == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// serveLive answers /healthz: the process is up and serving HTTP.
func (h *health) serveLive(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// serveReady answers /readyz: 200 while taking traffic, 503 once draining.
func (h *health) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if status, _ := h.status(""); status != healthv1.HealthCheckResponse_SERVING {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
