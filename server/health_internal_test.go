package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect/v2"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
)

func TestHealthDrain(t *testing.T) {
	t.Parallel()
	const svc = "acme.storefront.v1.ProductService"
	h := newHealth()
	h.add(svc)

	ready := func() (int, string) {
		rec := httptest.NewRecorder()
		h.serveReady(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	check := func(service string) (healthv1.HealthCheckResponse_ServingStatus, error) {
		res, err := h.Check(t.Context(), &healthv1.HealthCheckRequest{Service: service})
		if err != nil {
			return 0, err
		}
		return res.GetStatus(), nil
	}

	if code, body := ready(); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz before draining = %d %q, want 200 %q", code, body, "ready\n")
	}
	_, changed := h.status(svc)
	if changed == nil {
		t.Fatal("status before draining returned no change channel")
	}
	for _, s := range []string{"", svc} {
		if got, err := check(s); err != nil || got != healthv1.HealthCheckResponse_SERVING {
			t.Fatalf("Check(%q) before draining = %v, %v; want SERVING", s, got, err)
		}
	}

	h.drain()
	h.drain() // a second drain must not panic on the closed channel

	select {
	case <-changed:
	default:
		t.Fatal("drain did not wake watchers")
	}
	if code, body := ready(); code != http.StatusServiceUnavailable || body != "draining\n" {
		t.Errorf("/readyz while draining = %d %q, want 503 %q", code, body, "draining\n")
	}
	rec := httptest.NewRecorder()
	h.serveLive(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/healthz while draining = %d, want 200: the process is still alive", rec.Code)
	}
	for _, s := range []string{"", svc} {
		if got, err := check(s); err != nil || got != healthv1.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check(%q) while draining = %v, %v; want NOT_SERVING", s, got, err)
		}
		if _, ch := h.status(s); ch != nil {
			t.Errorf("status(%q) while draining returned a change channel; Watch would never end", s)
		}
	}
	if _, err := check("no.such.Service"); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Check(unknown) while draining = %v, want NotFound", err)
	}
	// A service added while draining is known, and not serving.
	const late = "acme.storefront.v1.AccountService"
	h.add(late)
	if got, err := check(late); err != nil || got != healthv1.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Check(%q) added while draining = %v, %v; want NOT_SERVING", late, got, err)
	}
}

func TestHealthAdd(t *testing.T) {
	t.Parallel()
	h := newHealth()
	const svc = "acme.storefront.v1.ProductService"
	if _, err := h.Check(t.Context(), &healthv1.HealthCheckRequest{Service: svc}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("Check(%q) before add = %v, want NotFound", svc, err)
	}
	res, err := h.Check(t.Context(), &healthv1.HealthCheckRequest{})
	if err != nil || res.GetStatus() != healthv1.HealthCheckResponse_SERVING {
		t.Fatalf("Check(\"\") of a server without services = %v, %v; want SERVING", res, err)
	}
	h.add(svc)
	res, err = h.Check(t.Context(), &healthv1.HealthCheckRequest{Service: svc})
	if err != nil || res.GetStatus() != healthv1.HealthCheckResponse_SERVING {
		t.Fatalf("Check(%q) after add = %v, %v; want SERVING", svc, res, err)
	}
}
