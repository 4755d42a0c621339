package session_test

// End-to-end tests of sessions through a whole gateway on loopback: the
// demo provider, a browser, and a clock the test moves.

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/custodian-bff/custodian"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/sessiontest"
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

// TestSignOutEverywhereGateway: alice signed in with two browsers calls
// SignOutEverywhere in one, over each protocol: both sessions end (the
// other browser is refused with SIGNED_OUT), the caller's cookie is
// cleared, bob is untouched, and anonymous callers are refused.
func TestSignOutEverywhereGateway(t *testing.T) {
	t.Parallel()
	e := gatewaytest.NewDemoEnv(t)
	ctx := context.Background()
	bob := e.SignedIn(t, "bob")
	for _, p := range gatewaytest.RPCProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			here, there := e.SignedIn(t, "alice"), e.SignedIn(t, "alice")
			old := here.CookieHeader()
			res, err := here.Sessions(p).SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{})
			if err != nil {
				t.Fatalf("SignOutEverywhere: %v", err)
			}
			if n := res.GetEndedSessions(); n != 2 {
				t.Errorf("ended %d sessions, want 2", n)
			}
			if c := here.Cookie(e.Gateway.Sessions().CookieName()); c != "" {
				t.Errorf("the caller's cookie was not cleared: %q", c)
			}
			_, err = e.SessionWith(old)
			gatewaytest.WantReason(t, "GetSession with the caller's old cookie", err, session.ReasonSignedOut)
			there.WantNoSession(t, session.ReasonSignedOut)
			bob.MustSession(t, "bob")

			_, err = e.Browser(t).Sessions(p).SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{})
			gatewaytest.WantReason(t, "anonymous SignOutEverywhere", err, session.ReasonNoSession)
			_, err = there.Sessions(p).SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{})
			gatewaytest.WantReason(t, "SignOutEverywhere from the other browser", err, session.ReasonSignedOut)
		})
	}
}

// TestStoreDownGateway: while the session store is down, every call that
// needs a session fails with unavailable and a retry hint over every
// protocol, /readyz answers 503 (health's NOT_SERVING, which follows the
// same check, is tested in package server), anonymous calls work, and the
// same session works again once the store is back.
func TestStoreDownGateway(t *testing.T) {
	t.Parallel()
	mem, err := session.NewMemoryStore(1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := newFlakyStore(mem, sessiontest.NewLeaseTable())
	e := gatewaytest.NewDemoEnv(t,
		gatewaytest.WithGatewayOption(custodian.WithSessionStore(store)),
		gatewaytest.WithProfileService(),
	)
	ctx := context.Background()
	alice := e.SignedIn(t, "alice")
	alice.MustSession(t, "alice")
	readyz := func() int {
		res, err := e.Plain.Get(e.Public + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	waitReady := func(want int) {
		t.Helper()
		waitFor(t, "/readyz to answer "+http.StatusText(want), func() bool { return readyz() == want })
	}
	waitReady(http.StatusOK)

	store.down()
	waitReady(http.StatusServiceUnavailable)
	for _, p := range gatewaytest.RPCProtocols() {
		_, err := alice.Sessions(p).GetSession(ctx, &custodianv1.GetSessionRequest{})
		wantUnavailable(t, p.Name+": GetSession", err)
		_, err = alice.Profiles(p).GetProfile(ctx, &profilesv1.GetProfileRequest{})
		wantUnavailable(t, p.Name+": GetProfile", err)
		_, err = alice.Sessions(p).SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{})
		wantUnavailable(t, p.Name+": SignOutEverywhere", err)
		if _, err := e.Browser(t).Products(p).ListProducts(ctx, &storefrontv1.ListProductsRequest{}); err != nil {
			t.Errorf("%s: anonymous ListProducts while the store is down: %v", p.Name, err)
		}
	}
	// Signing out cannot end a session the store cannot reach: the answer
	// says so, and the cookie stays for a later try.
	logout, err := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	logout.Header.Set("X-CSRF", "1")
	if hop := alice.Do(t, logout); hop.Status != http.StatusServiceUnavailable || len(hop.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("POST /auth/logout while the store is down: %d, Set-Cookie %q; want 503 and no cookie change", hop.Status, hop.Header.Values("Set-Cookie"))
	}
	if alice.Cookie(e.Gateway.Sessions().CookieName()) == "" {
		t.Fatal("the browser lost its cookie while the store was down")
	}

	store.heal()
	waitReady(http.StatusOK)
	alice.MustSession(t, "alice")
	if res, err := alice.Profiles(gatewaytest.Connect).GetProfile(ctx, &profilesv1.GetProfileRequest{}); err != nil || res.GetProfile().GetSubject() != "alice" {
		t.Errorf("GetProfile after the store came back: %v, %v", res, err)
	}
}
