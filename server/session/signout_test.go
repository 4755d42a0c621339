package session_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/session"
)

var bob = session.User{Subject: "bob-sub", Name: "Bob Example"}

// TestSignOutEverywhere: SignOutEverywhere on one replica ends every
// session of the caller's user on every replica, revokes their current
// refresh tokens, clears the caller's cookie and leaves other users alone.
func TestSignOutEverywhere(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, session.RefreshLeaseTTL)
	a1, _ := c.login(t, alice, time.Hour)
	a2, _ := c.login(t, alice, time.Hour)
	// A third session whose refresh token rotated on the other replica:
	// the stored one is revoked, not the spent one.
	a3, _ := c.login(t, alice, -time.Second)
	if s, err := c.m[0].FromHeader(t.Context(), a3); err != nil {
		t.Fatal(err)
	} else if tok, err := c.m[0].AccessToken(t.Context(), s); err != nil || tok != "at-1" {
		t.Fatalf("AccessToken = %q, %v", tok, err)
	}
	b, _ := c.login(t, bob, time.Hour)

	client := serve(t, c.m[1], session.NewService("/auth/logout"))
	ctx, info := withHeader(t.Context(), a1)
	res, err := client.SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{})
	if err != nil {
		t.Fatalf("SignOutEverywhere: %v", err)
	}
	if n := res.GetEndedSessions(); n != 3 {
		t.Errorf("ended %d sessions, want 3", n)
	}
	cleared := false
	for _, line := range info.ResponseHeader().Values("Set-Cookie") {
		if ck, err := http.ParseSetCookie(line); err == nil && ck.Name == c.m[1].CookieName() && ck.MaxAge < 0 {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("Set-Cookie %q does not clear the session cookie", info.ResponseHeader().Values("Set-Cookie"))
	}
	if got := info.ResponseHeader().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	for i, m := range c.m {
		for j, h := range []http.Header{a1, a2, a3} {
			if _, err := m.FromHeader(t.Context(), h); err == nil {
				t.Errorf("replica %d: alice's session %d still lives", i, j+1)
			} else {
				wantRefused(t, err, session.ReasonSignedOut)
			}
		}
		if _, err := m.FromHeader(t.Context(), b); err != nil {
			t.Errorf("replica %d: bob's session: %v", i, err)
		}
	}
	revoked := c.idp.revokedTokens()
	slices.Sort(revoked)
	if want := []string{"rt-1", "rt-login-0", "rt-login-1"}; !slices.Equal(revoked, want) {
		t.Errorf("revoked %q, want %q", revoked, want)
	}

	// The caller's old cookie, and anonymous callers, are refused.
	for name, c := range map[string]struct {
		header http.Header
		reason session.Reason
	}{
		"signed out": {a1, session.ReasonSignedOut},
		"anonymous":  {http.Header{}, session.ReasonNoSession},
	} {
		ctx, _ := withHeader(t.Context(), c.header)
		res, err := client.SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{})
		ce, ok := errors.AsType[*connect.Error](err)
		if res != nil || !ok || ce.Code() != connect.CodeUnauthenticated {
			t.Fatalf("%s: SignOutEverywhere = %v, %v; want unauthenticated", name, res, err)
		}
		if d := detailOf(t, ce); d.GetReason() != c.reason {
			t.Errorf("%s: reason %v, want %v", name, d.GetReason(), c.reason)
		}
	}
}

// TestSignOutEverywhereRevocationFails: a provider that cannot revoke does
// not keep the sessions alive, nor fail the call.
func TestSignOutEverywhereRevocationFails(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, session.RefreshLeaseTTL)
	c.idp.revokeFail = errors.New("revocation endpoint down")
	a1, _ := c.login(t, alice, time.Hour)
	a2, _ := c.login(t, alice, time.Hour)
	s, err := c.m[0].FromHeader(t.Context(), a1)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.m[0].EndUser(t.Context(), s); err != nil || n != 2 {
		t.Fatalf("EndUser = %d, %v; want 2", n, err)
	}
	for _, h := range []http.Header{a1, a2} {
		_, err := c.m[0].FromHeader(t.Context(), h)
		wantRefused(t, err, session.ReasonSignedOut)
	}
	if n := len(c.idp.revokedTokens()); n != 2 {
		t.Errorf("%d revocations tried, want 2", n)
	}
}

// TestSignOutEverywhereKeepsCallerOnFailure: when ending another session
// fails, the caller's own session lives on, so that it can try again.
func TestSignOutEverywhereKeepsCallerOnFailure(t *testing.T) {
	t.Parallel()
	c, f, m := flakyCluster(t)
	a1, _ := c.login(t, alice, time.Hour)
	c.login(t, alice, time.Hour)
	s, err := m.FromHeader(t.Context(), a1)
	if err != nil {
		t.Fatal(err)
	}
	f.fail("Put", errStoreDown)
	_, err = m.EndUser(t.Context(), s)
	wantUnavailable(t, "EndUser", err)
	f.heal()
	s, err = m.FromHeader(t.Context(), a1)
	if err != nil {
		t.Fatalf("the caller's session after a failed EndUser: %v", err)
	}
	if n, err := m.EndUser(t.Context(), s); err != nil || n != 2 {
		t.Errorf("EndUser again = %d, %v; want 2", n, err)
	}
}
