package custodian_test

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect/v2"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/config"
)

// TestRateLimits checks that the configured limits are wired in front of
// every route: the login bucket, shared by the browser routes and
// AuthService, refuses in each protocol, and health checks are never
// refused.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t, gt.WithConfig(func(c *config.Config) {
		// Two logins, then practically never again.
		c.RateLimits.Login = &config.RateLimit{Rate: 0.001, Burst: 2}
	}))
	b := e.Browser(t)
	b.StartLogin(t, "")
	b.StartLogin(t, "")

	h := b.Get(t, e.Public+"/auth/login")
	if h.Status != http.StatusTooManyRequests {
		t.Fatalf("third GET /auth/login: status %d, want 429; body %.300q", h.Status, h.Body)
	}
	if h.Header.Get("Retry-After") == "" || h.Header.Get(requestid.Header) == "" {
		t.Errorf("refusal headers %v: want Retry-After and %s", h.Header, requestid.Header)
	}
	for _, p := range gt.RPCProtocols() {
		_, err := b.Auth(p).StartLogin(context.Background(), &custodianv1.StartLoginRequest{})
		if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
			t.Errorf("%s: StartLogin: code %v (%v), want resource_exhausted", p.Name, got, err)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if h := b.Get(t, e.Public+path); h.Status != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200 whatever the limits", path, h.Status)
		}
	}
}
