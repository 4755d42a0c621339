// Package replicas_test proves, with real processes, that the gateway runs
// as several replicas on one Redis: it builds cmd/custodian and
// cmd/custodian-demo, starts one redis-server (internal/redistest), the demo
// world in a process of its own (a provider that rotates refresh tokens and
// refuses their reuse, with access tokens of a few seconds) and three
// gateway processes on its configurations, and drives them with a browser's
// cookie jar, all on 127.0.0.1. It fails, never skips, when redis-server is
// missing: scripts/test.sh installs it.
package replicas_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/internal/redistest"
	"github.com/custodian-bff/custodian/server/session"
)

const (
	// accessLifetime is the demo provider's access token lifetime. The
	// replicas refresh a fifth of it before expiry (custodian-demo writes
	// session.refresh_skew so), so a token is used for usableFor.
	accessLifetime = 8 * time.Second
	usableFor      = accessLifetime - accessLifetime/5
	// stormCalls is how many calls a refresh storm makes at once.
	stormCalls = 300
)

// Grant types the demo provider counts.
const (
	grantCode    = "authorization_code"
	grantRefresh = "refresh_token"
)

// Reasons of refused calls: a session ended by a logout, here or anywhere,
// and a call without a session cookie.
const (
	signedOut = custodianv1.SessionEndReason_SESSION_END_REASON_SIGNED_OUT
	noSession = custodianv1.SessionEndReason_SESSION_END_REASON_NO_SESSION
)

func TestReplicasShareSessions(t *testing.T) {
	start := time.Now()
	bins := buildBinaries(t)
	t.Logf("binaries built in %v (gateway with -race: %v)", time.Since(start).Round(time.Millisecond), raceEnabled)
	redis := redistest.Start(t)
	c := startCluster(t, bins, redis.URL(), 3, accessLifetime)
	r1, r2, r3 := c.replicas[0], c.replicas[1], c.replicas[2]
	t.Logf("three replicas ready after %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		for _, r := range c.replicas {
			r.proc.checkLog(t)
		}
	})

	alice := newBrowser(t)
	// step runs one part of the story; a failed part ends the test, since
	// the next ones build on it.
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		began := time.Now()
		if !t.Run(name, f) {
			t.FailNow()
		}
		t.Logf("%s: %v", name, time.Since(began).Round(time.Millisecond))
	}

	// issued bounds from above when the session's access token was issued.
	var issued time.Time
	step("login on 1, use on 2 and 3", func(t *testing.T) {
		alice.login(t, r1, "alice")
		issued = time.Now()
		for _, r := range c.replicas {
			alice.mustUse(t, r, "alice")
		}
		if got := c.tokenRequests(t)[grantRefresh].Requests; got != 0 {
			t.Fatalf("%d refresh requests before the token expired, want 0", got)
		}
	})

	step("refresh storm over three replicas: one refresh, no failure", func(t *testing.T) {
		sleepUntil(issued.Add(usableFor + 200*time.Millisecond))
		before := c.tokenRequests(t)[grantRefresh]
		calls := make([]*replica, stormCalls)
		for i := range calls {
			calls[i] = c.replicas[i%len(c.replicas)]
		}
		began := time.Now()
		results := storm(calls, func(ctx context.Context, r *replica) error {
			d, err := alice.dashboard(ctx, r)
			if err == nil && d.GetProfile() == nil {
				err = fmt.Errorf("dashboard without a profile")
			}
			return err
		})
		took := time.Since(began)
		issued = time.Now()
		failed := 0
		for i, err := range results {
			if err != nil {
				failed++
				if failed <= 5 {
					t.Errorf("call %d on gateway %d: %v", i, calls[i].n, err)
				}
			}
		}
		after := c.tokenRequests(t)[grantRefresh]
		t.Logf("%d calls in %v; refresh requests %+v", stormCalls, took.Round(time.Millisecond), after)
		if failed > 0 {
			t.Errorf("%d of %d calls failed, want 0", failed, stormCalls)
		}
		if n := after.Requests - before.Requests; n != 1 || after.Succeeded-before.Succeeded != 1 {
			t.Errorf("the storm made %d refresh requests (%d succeeded), want exactly 1", n, after.Succeeded-before.Succeeded)
		}
		if took >= usableFor {
			t.Errorf("the storm took %v, longer than a token is used (%v): more refreshes were due", took, usableFor)
		}
	})

	step("kill -9 of the replica refreshing, mid-storm: others carry on", func(t *testing.T) {
		victim, others := r3, []*replica{r1, r2}
		sleepUntil(issued.Add(usableFor + 200*time.Millisecond))
		before := c.tokenRequests(t)[grantRefresh]
		// The provider holds refresh requests, so the victim is caught
		// holding the session's refresh lease with its request in flight.
		c.control(t, "token-delay", url.Values{"grant_type": {grantRefresh}, "delay": {"30s"}})
		var victimCalls sync.WaitGroup
		for range 20 {
			victimCalls.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				defer cancel()
				_, _ = alice.orders(ctx, victim) // it dies: these fail
			})
		}
		waitFor(t, "the victim's refresh to reach the provider", 10*time.Second, func() bool {
			s := c.tokenRequests(t)[grantRefresh]
			return s.Requests == before.Requests+1 && s.InFlight == 1
		})
		c.control(t, "token-delay", url.Values{"grant_type": {grantRefresh}, "delay": {"0s"}})
		calls := make([]*replica, stormCalls)
		for i := range calls {
			calls[i] = others[i%len(others)]
		}
		var results []error
		var firstAnswer atomic.Int64 // unix nanoseconds of the first success
		stormDone := make(chan struct{})
		go func() {
			defer close(stormDone)
			results = storm(calls, func(ctx context.Context, r *replica) error {
				_, err := alice.orders(ctx, r)
				if err == nil {
					firstAnswer.CompareAndSwap(0, time.Now().UnixNano())
				}
				return err
			})
		}()
		// The others find the lease held and wait for it.
		time.Sleep(300 * time.Millisecond)
		killed := time.Now()
		victim.proc.kill()
		victimCalls.Wait()
		<-stormDone
		allAnswered := time.Since(killed)
		recovered := time.Unix(0, firstAnswer.Load()).Sub(killed)
		failed := 0
		for i, err := range results {
			if err != nil {
				failed++
				if failed <= 5 {
					t.Errorf("call %d on gateway %d: %v", i, calls[i].n, err)
				}
			}
		}
		after := c.tokenRequests(t)[grantRefresh]
		t.Logf("the others answered %v after the kill, all %d calls %v after it; refresh requests %+v",
			recovered.Round(time.Millisecond), stormCalls, allAnswered.Round(time.Millisecond), after)
		if failed > 0 {
			t.Errorf("%d of %d calls on the surviving replicas failed, want 0", failed, stormCalls)
		}
		// The victim's request died with it, unseen by the provider; one
		// survivor took the lease when it expired and refreshed once.
		if got := after.Dropped - before.Dropped; got != 1 {
			t.Errorf("%d refresh requests dropped with the victim, want 1", got)
		}
		if got := after.Succeeded - before.Succeeded; got != 1 {
			t.Errorf("%d refreshes succeeded after the kill, want 1", got)
		}
		if got := after.Refused - before.Refused; got != 0 {
			t.Errorf("%d refresh requests refused (a reused refresh token), want 0", got)
		}
		if limit := session.RefreshLeaseTTL + 2*time.Second; firstAnswer.Load() == 0 || recovered > limit {
			t.Errorf("the survivors waited %v for the dead replica's lease, want at most its TTL (%v) and a margin", recovered, session.RefreshLeaseTTL)
		}
		for _, r := range others {
			alice.mustUse(t, r, "alice")
		}
		// The same session on the victim once it is back: no new login.
		codes := c.tokenRequests(t)[grantCode].Requests
		victim.restart(t)
		alice.mustUse(t, victim, "alice")
		if got := c.tokenRequests(t)[grantCode].Requests; got != codes {
			t.Errorf("%d new logins, want none", got-codes)
		}
	})

	step("logout on 2: refused on 3 at once", func(t *testing.T) {
		for _, r := range c.replicas {
			alice.mustUse(t, r, "alice") // every replica has the session cached
		}
		// The logout clears this browser's cookie; a copy of it (another
		// tab's snapshot, a thief's) must be refused too.
		copied := alice.clone(t)
		if err := alice.logout(r2); err != nil {
			t.Fatalf("gateway 2: Logout: %v", err)
		}
		for _, r := range []*replica{r3, r1, r2} {
			copied.wantRefused(t, r, signedOut)
			alice.wantRefused(t, r, noSession)
		}
	})

	bob := newBrowser(t)
	step("back-channel logout to 1 ends the user's sessions on all three", func(t *testing.T) {
		bob.login(t, r2, "bob")
		for _, per := range []string{"session", "subject"} {
			var browsers []*browser
			for _, r := range c.replicas {
				b := newBrowser(t)
				b.login(t, r, "alice")
				browsers = append(browsers, b)
			}
			for _, b := range browsers {
				for _, r := range c.replicas {
					b.mustUse(t, r, "alice")
				}
			}
			// The provider posts its logout tokens to replica 1, the
			// client's back-channel logout URI: per session (sub and sid)
			// or per subject (sub alone).
			c.control(t, "backchannel-logout", url.Values{"subject": {"alice"}, "per": {per}})
			for _, b := range browsers {
				for _, r := range c.replicas {
					b.wantRefused(t, r, signedOut)
				}
			}
			for _, r := range c.replicas {
				bob.mustUse(t, r, "bob")
			}
		}
	})

	step("sign out everywhere on 2 ends the user's sessions on all three", func(t *testing.T) {
		first, second := newBrowser(t), newBrowser(t)
		first.login(t, r1, "alice")
		second.login(t, r3, "alice")
		for _, r := range c.replicas {
			first.mustUse(t, r, "alice")
			second.mustUse(t, r, "alice")
		}
		copied := first.clone(t)
		res, err := first.signOutEverywhere(r2)
		if err != nil {
			t.Fatalf("gateway 2: SignOutEverywhere: %v", err)
		}
		if res.GetEndedSessions() != 2 {
			t.Errorf("SignOutEverywhere ended %d sessions, want 2", res.GetEndedSessions())
		}
		for _, r := range c.replicas {
			second.wantRefused(t, r, signedOut)
			copied.wantRefused(t, r, signedOut)
			first.wantRefused(t, r, noSession) // its cookie was cleared
			bob.mustUse(t, r, "bob")
		}
	})

	step("Redis down: unavailable everywhere, then the same session again", func(t *testing.T) {
		for _, r := range c.replicas {
			bob.mustUse(t, r, "bob")
		}
		codes := c.tokenRequests(t)[grantCode].Requests
		redis.Stop()
		for _, r := range c.replicas {
			if err := waitReadyz(r, http.StatusServiceUnavailable, 10*time.Second); err != nil {
				t.Fatalf("gateway %d with Redis stopped: %v", r.n, err)
			}
			if status, err := health(r); err != nil || status != healthv1.HealthCheckResponse_NOT_SERVING {
				t.Errorf("gateway %d with Redis stopped: gRPC health %v, %v; want NOT_SERVING", r.n, status, err)
			}
		}
		for _, r := range c.replicas {
			_, err := bob.session(r)
			wantUnavailable(t, r, "GetSession", err)
			ctx, cancel := ctxTimeout()
			_, err = bob.dashboard(ctx, r)
			cancel()
			wantUnavailable(t, r, "GetDashboard", err)
			// Anonymous routes keep working.
			if _, err := products(t, r); err != nil {
				t.Errorf("gateway %d: anonymous ListProducts with Redis stopped: %v", r.n, err)
			}
		}
		redis.Restart()
		for _, r := range c.replicas {
			if err := waitReadyz(r, http.StatusOK, 10*time.Second); err != nil {
				t.Fatalf("gateway %d with Redis back: %v", r.n, err)
			}
			if status, err := health(r); err != nil || status != healthv1.HealthCheckResponse_SERVING {
				t.Errorf("gateway %d with Redis back: gRPC health %v, %v; want SERVING", r.n, status, err)
			}
		}
		for _, r := range c.replicas {
			bob.mustUse(t, r, "bob")
		}
		if got := c.tokenRequests(t)[grantCode].Requests; got != codes {
			t.Errorf("%d new logins, want none", got-codes)
		}
	})
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}

// storm makes one call per entry of replicas, all at once, and returns
// their errors in the same order.
func storm(replicas []*replica, call func(context.Context, *replica) error) []error {
	errs := make([]error, len(replicas))
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			<-ready
			errs[i] = call(ctx, r)
		})
	}
	close(ready)
	wg.Wait()
	return errs
}

// sleepUntil sleeps until t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
