package gateway_test

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/config"
)

// TestRateLimits checks that the configured limits are wired in front of
// every route: the login bucket, shared by the browser routes and
// AuthService, refuses in each protocol, and health checks are never
// refused.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t, withConfig(func(c *config.Config) {
		// Two logins, then practically never again.
		c.RateLimits.Login = &config.RateLimit{Rate: 0.001, Burst: 2}
	}))
	b := e.browser()
	b.startLogin("")
	b.startLogin("")

	h := b.get(e.public + "/auth/login")
	if h.status != http.StatusTooManyRequests {
		t.Fatalf("third GET /auth/login: status %d, want 429; body %.300q", h.status, h.body)
	}
	if h.header.Get("Retry-After") == "" || h.header.Get(requestid.Header) == "" {
		t.Errorf("refusal headers %v: want Retry-After and %s", h.header, requestid.Header)
	}
	for _, p := range rpcProtocols() {
		_, err := b.auth(p).StartLogin(context.Background(), connect.NewRequest(&custodianv1.StartLoginRequest{}))
		if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
			t.Errorf("%s: StartLogin: code %v (%v), want resource_exhausted", p.name, got, err)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if h := b.get(e.public + path); h.status != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200 whatever the limits", path, h.status)
		}
	}
}
