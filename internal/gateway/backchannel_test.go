package gateway_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/session"
)

// TestBackchannelLogoutFromDemoProvider signs alice in twice and bob once,
// then has the demo provider log alice out everywhere.
func TestBackchannelLogoutFromDemoProvider(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t)
	alice1, alice2, bob := e.browser(), e.browser(), e.browser()
	alice1.login("alice", "")
	alice2.login("alice", "")
	bob.login("bob", "")
	if err := e.world.IdP.BackchannelLogout(context.Background(), "alice"); err != nil {
		t.Fatalf("BackchannelLogout: %v", err)
	}
	alice1.wantNoSession(session.ReasonSignedOut)
	alice2.wantNoSession(session.ReasonSignedOut)
	bob.mustSession("bob")
	// Alice can sign in again.
	alice1.login("alice", "")
	alice1.mustSession("alice")
}

// loginFake signs subject in at the fake provider.
func (b *browser) loginFake(subject string) {
	b.t.Helper()
	authURL, _ := b.startLogin("")
	q := authURL.Query()
	q.Set("login_hint", subject)
	authURL.RawQuery = q.Encode()
	if res := b.get(b.signIn(authURL.String(), subject).String()); res.status != http.StatusOK {
		b.t.Fatalf("login of %s: status %d", subject, res.status)
	}
	b.mustSession(subject)
}

// TestBackchannelLogoutTokens POSTs crafted logout tokens to the gateway.
// The fake provider's key signs them, so only the claim under test is wrong.
func TestBackchannelLogoutTokens(t *testing.T) {
	t.Parallel()
	op := newFakeOP(t)
	e := newFakeEnv(t, op)
	alice, bob := e.browser(), e.browser()
	alice.loginFake("alice")
	bob.loginFake("bob")
	unaffected := func(t *testing.T) {
		t.Helper()
		alice.mustSession("alice")
		bob.mustSession("bob")
	}

	const event = "http://schemas.openid.net/event/backchannel-logout"
	now := time.Now()
	cases := []struct {
		name   string
		token  func() string
		status int
	}{
		{"garbage", func() string { return "not.a.jwt" }, http.StatusBadRequest},
		{"empty", func() string { return "" }, http.StatusBadRequest},
		{"unsigned", func() string {
			return "eyJhbGciOiJub25lIn0." + "eyJzdWIiOiJhbGljZSJ9."
		}, http.StatusBadRequest},
		{"signed by another key", func() string {
			return signJWT(newKey(), op.kid, "logout+jwt", op.logoutClaims("alice"))
		}, http.StatusBadRequest},
		{"another audience", func() string {
			c := op.logoutClaims("alice")
			c["aud"] = "someone-else"
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"another issuer", func() string {
			c := op.logoutClaims("alice")
			c["iss"] = "https://evil.example"
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"with a nonce", func() string {
			c := op.logoutClaims("alice")
			c["nonce"] = "n-0123456789"
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"without events", func() string {
			c := op.logoutClaims("alice")
			delete(c, "events")
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"another event", func() string {
			c := op.logoutClaims("alice")
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"event not an object", func() string {
			c := op.logoutClaims("alice")
			c["events"] = map[string]any{event: "yes"}
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"neither sub nor sid", func() string {
			c := op.logoutClaims("alice")
			delete(c, "sub")
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"stale iat", func() string {
			c := op.logoutClaims("alice")
			c["iat"] = now.Add(-11 * time.Minute).Unix()
			c["exp"] = now.Add(time.Minute).Unix()
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"iat in the future", func() string {
			c := op.logoutClaims("alice")
			c["iat"] = now.Add(5 * time.Minute).Unix()
			c["exp"] = now.Add(10 * time.Minute).Unix()
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"no iat", func() string {
			c := op.logoutClaims("alice")
			delete(c, "iat")
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"expired", func() string {
			c := op.logoutClaims("alice")
			c["iat"] = now.Add(-3 * time.Minute).Unix()
			c["exp"] = now.Add(-time.Minute).Unix()
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"no jti", func() string {
			c := op.logoutClaims("alice")
			delete(c, "jti")
			return op.sign("logout+jwt", c)
		}, http.StatusBadRequest},
		{"typ of an access token", func() string {
			return op.sign("at+jwt", op.logoutClaims("alice"))
		}, http.StatusBadRequest},
		{"naming nobody", func() string {
			return op.sign("logout+jwt", op.logoutClaims("ghost"))
		}, http.StatusOK},
		{"naming no session by sid", func() string {
			c := op.logoutClaims("")
			delete(c, "sub")
			c["sid"] = "no-such-sid"
			return op.sign("logout+jwt", c)
		}, http.StatusOK},
		{"sub and sid of different users", func() string {
			c := op.logoutClaims("alice")
			c["sid"] = op.sid("bob")
			return op.sign("logout+jwt", c)
		}, http.StatusOK},
	}
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				if got := e.postBackchannel(c.token()); got != c.status {
					t.Errorf("status %d, want %d", got, c.status)
				}
				unaffected(t)
			})
		}
	})

	t.Run("token in the query", func(t *testing.T) {
		token := url.QueryEscape(op.sign("logout+jwt", op.logoutClaims("alice")))
		res, err := e.plain.Post(e.public+"/auth/backchannel-logout?logout_token="+token, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400: the token belongs in the body", res.StatusCode)
		}
		unaffected(t)
	})

	t.Run("by subject, then replayed", func(t *testing.T) {
		carol1, carol2 := e.browser(), e.browser()
		carol1.loginFake("carol")
		carol2.loginFake("carol")
		token := op.sign("logout+jwt", op.logoutClaims("carol"))
		if got := e.postBackchannel(token); got != http.StatusOK {
			t.Fatalf("status %d, want 200", got)
		}
		carol1.wantNoSession(session.ReasonSignedOut)
		carol2.wantNoSession(session.ReasonSignedOut)
		carol1.loginFake("carol")
		if got := e.postBackchannel(token); got != http.StatusBadRequest {
			t.Errorf("replay: status %d, want 400", got)
		}
		carol1.mustSession("carol")
		unaffected(t)
	})

	t.Run("by sid", func(t *testing.T) {
		dave1, dave2 := e.browser(), e.browser()
		dave1.loginFake("dave")
		dave2.loginFake("dave")
		c := op.logoutClaims("")
		delete(c, "sub")
		c["sid"] = op.sid("dave") // dave2's provider session
		if got := e.postBackchannel(op.sign("logout+jwt", c)); got != http.StatusOK {
			t.Fatalf("status %d, want 200", got)
		}
		dave2.wantNoSession(session.ReasonSignedOut)
		dave1.mustSession("dave")
		unaffected(t)
	})
}
