package session_test

// End-to-end tests of sessions through a whole gateway on loopback: the
// demo provider, a browser, and a clock the test moves.

import (
	"context"
	"sync"
	"testing"
	"time"

	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// TestRefresh lets the session's access token expire on the
// gateway's clock while a burst of calls needs it: the provider sees one
// refresh. Once the provider revokes the user's tokens, the next refresh
// ends the session.
//
// The demo provider's tokens live 10 minutes, but its answer at login claims
// 60 seconds: moving the clock 2 minutes then expires the first token only,
// and every refreshed token (10 real minutes) is fresh on the moved clock, so
// a second refresh could only come from calls that did not share the first.
func TestRefresh(t *testing.T) {
	t.Parallel()
	e := gatewaytest.NewDemoEnv(t,
		gatewaytest.WithAccessLifetime(10*time.Minute),
		gatewaytest.WithCodeExpiresIn(60),
		gatewaytest.WithConfig(func(c *config.Config) { c.Session.RefreshSkew = time.Second }),
		gatewaytest.WithProfileService(),
	)
	ctx := context.Background()
	b := e.Browser(t)
	b.Login(t, "alice", "")
	getProfile := func(p gatewaytest.RPC) (*profilesv1.Profile, error) {
		res, err := b.Profiles(p).GetProfile(ctx, &profilesv1.GetProfileRequest{})
		if err != nil {
			return nil, err
		}
		return res.GetProfile(), nil
	}
	refreshes := func() int64 { return e.World.IdP.GrantCount("refresh_token") }

	if p, err := getProfile(gatewaytest.Connect); err != nil || p.GetSubject() != "alice" {
		t.Fatalf("GetProfile with a fresh token: %v, %v", p, err)
	}
	if n := refreshes(); n != 0 {
		t.Fatalf("%d refreshes while the token is fresh", n)
	}

	e.Clock.Advance(2 * time.Minute)
	const calls = 200
	protocols := gatewaytest.RPCProtocols()
	start := make(chan struct{})
	errs := make(chan error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-start
			p, err := getProfile(protocols[i%len(protocols)])
			if err == nil && p.GetSubject() != "alice" {
				t.Errorf("call %d: profile of %q", i, p.GetSubject())
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed++; failed <= 3 {
				t.Errorf("GetProfile: %v", err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d calls failed", failed, calls)
	}
	if n := refreshes(); n != 1 {
		t.Fatalf("%d concurrent calls made %d refreshes, want 1", calls, n)
	}

	// The refreshed token is used from now on, without refreshing again.
	if _, err := getProfile(gatewaytest.Connect); err != nil {
		t.Fatalf("GetProfile after the refresh: %v", err)
	}
	if n := refreshes(); n != 1 {
		t.Fatalf("%d refreshes after a call with the refreshed token, want 1", n)
	}
	b.MustSession(t, "alice")

	// The provider revokes everything of alice; the next refresh fails and
	// ends the session for good.
	e.World.IdP.RevokeSubject(ctx, "alice")
	e.Clock.Advance(10 * time.Minute)
	for _, p := range []gatewaytest.RPC{protocols[0], protocols[3]} {
		_, err := getProfile(p)
		gatewaytest.WantReason(t, p.Name+": GetProfile after revocation", err, session.ReasonRefreshFailed)
	}
	b.WantNoSession(t, session.ReasonRefreshFailed)
	if n := refreshes(); n != 1 {
		t.Errorf("%d successful refreshes, want 1", n)
	}
}
