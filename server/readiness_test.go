package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/server"
)

// pinger is a readiness check the test turns on and off, as a session
// store's Ping would fail while the store is unreachable.
type pinger struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error
	hang  bool // block until the check's context ends
}

func (p *pinger) set(err error, hang bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err, p.hang = err, hang
}

func (p *pinger) Ping(ctx context.Context) error {
	p.calls.Add(1)
	p.mu.Lock()
	err, hang := p.err, p.hang
	p.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

// readyz returns the status and body of GET /readyz.
func readyz(t *testing.T, client *http.Client, base string) (int, string) {
	t.Helper()
	res, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// eventually retries check (in real time) until it returns nil, and fails
// with its last error after within.
func eventually(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadiness: while the readiness check fails, /readyz answers 503 and
// the health service reports NOT_SERVING for the server and every service,
// over every protocol; both recover without a restart once it passes.
func TestReadiness(t *testing.T) {
	t.Parallel()
	p := &pinger{}
	h := startServer(t, server.WithReadiness(p.Ping), server.WithReadiness(nil))
	httpClient, _ := http1Client(t)
	h2c, _ := h2cClient(t)
	protocols := []struct {
		name   string
		client *http.Client
		opts   []connecthttp.Option
	}{
		{"connect", httpClient, nil},
		{"gRPC", h2c, []connecthttp.Option{connecthttp.WithGRPC()}},
		{"gRPC-Web", httpClient, []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	}
	services := []string{"", storefrontv1connect.ProductServiceName}
	// statuses checks /readyz and Check of every service over every
	// protocol against want.
	statuses := func(want healthv1.HealthCheckResponse_ServingStatus) error {
		code, body := readyz(t, httpClient, h.URL())
		wantCode, wantBody := http.StatusOK, "ready\n"
		if want != healthv1.HealthCheckResponse_SERVING {
			wantCode, wantBody = http.StatusServiceUnavailable, "not ready\n"
		}
		if code != wantCode || body != wantBody {
			return errors.New("/readyz = " + http.StatusText(code) + " " + body)
		}
		for _, pr := range protocols {
			client := newConnectClient(pr.client, h.URL(), pr.opts...)
			for _, svc := range services {
				var res healthv1.HealthCheckResponse
				if err := client.CallUnary(t.Context(), healthCheckSpec, &healthv1.HealthCheckRequest{Service: svc}, &res); err != nil {
					return err
				}
				if got := res.GetStatus(); got != want {
					return errors.New(pr.name + ": Check(" + svc + ") = " + got.String() + ", want " + want.String())
				}
			}
			var res healthv1.HealthCheckResponse
			err := client.CallUnary(t.Context(), healthCheckSpec, &healthv1.HealthCheckRequest{Service: "no.such.Service"}, &res)
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("%s: Check(unknown) = %v, want not_found whatever the readiness", pr.name, err)
			}
		}
		return nil
	}

	// A Watch stream sees every change.
	stream, err := newConnectClient(h2c, h.URL(), connecthttp.WithGRPC()).CallServerStream(t.Context(), healthWatchSpec, &healthv1.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer stream.Close()
	watched := make(chan healthv1.HealthCheckResponse_ServingStatus, 10)
	go func() {
		for {
			var msg healthv1.HealthCheckResponse
			if err := stream.Receive(&msg); err != nil {
				close(watched)
				return
			}
			watched <- msg.GetStatus()
		}
	}()
	nextWatched := func(want healthv1.HealthCheckResponse_ServingStatus) {
		t.Helper()
		select {
		case got := <-watched:
			if got != want {
				t.Fatalf("Watch sent %v, want %v", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Watch sent nothing, want %v", want)
		}
	}

	if err := statuses(healthv1.HealthCheckResponse_SERVING); err != nil {
		t.Fatalf("while the check passes: %v", err)
	}
	nextWatched(healthv1.HealthCheckResponse_SERVING)

	p.set(errors.New("dial tcp 10.0.0.7:6379: connect: connection refused"), false)
	eventually(t, 3*time.Second, func() error { return statuses(healthv1.HealthCheckResponse_NOT_SERVING) })
	nextWatched(healthv1.HealthCheckResponse_NOT_SERVING)
	if !strings.Contains(h.Logs.String(), "10.0.0.7:6379") {
		t.Error("why the server is not ready is not logged")
	}

	p.set(nil, false)
	eventually(t, 3*time.Second, func() error { return statuses(healthv1.HealthCheckResponse_SERVING) })
	nextWatched(healthv1.HealthCheckResponse_SERVING)

	// A check that hangs counts as failing once its timeout passes.
	p.set(nil, true)
	eventually(t, 5*time.Second, func() error { return statuses(healthv1.HealthCheckResponse_NOT_SERVING) })
	nextWatched(healthv1.HealthCheckResponse_NOT_SERVING)
	p.set(nil, false)
	eventually(t, 5*time.Second, func() error { return statuses(healthv1.HealthCheckResponse_SERVING) })
	nextWatched(healthv1.HealthCheckResponse_SERVING)

	// Draining still wins, and ends the Watch.
	h.Stop()
	nextWatched(healthv1.HealthCheckResponse_NOT_SERVING)
	if _, ok := <-watched; ok {
		t.Error("Watch went on after the drain")
	}
}

// TestReadinessIsCached: a burst of probes runs the check about once a
// second, not once per probe.
func TestReadinessIsCached(t *testing.T) {
	t.Parallel()
	p := &pinger{}
	h := startServer(t, server.WithReadiness(p.Ping))
	httpClient, _ := http1Client(t)
	start := time.Now()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if code, _ := readyz(t, httpClient, h.URL()); code != http.StatusOK {
				t.Errorf("/readyz = %d", code)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if limit := int64(elapsed/time.Second) + 2; p.calls.Load() > limit {
		t.Errorf("100 probes in %v ran the check %d times, want at most %d", elapsed, p.calls.Load(), limit)
	}
}
