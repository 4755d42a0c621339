package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/session"
)

// TestCallbackAttacks replays, forges and redirects the provider's callback;
// each attempt must fail without creating a session.
func TestCallbackAttacks(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t)

	// withState returns callback with its query's state replaced (or
	// removed when state is "").
	withState := func(callback *url.URL, state string) string {
		u := *callback
		q := u.Query()
		if state == "" {
			q.Del("state")
		} else {
			q.Set("state", state)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}

	cases := []struct {
		name   string
		attack func(t *testing.T, victim *browser) (res hop, attacker *browser)
		status int
	}{
		{"tampered state", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			callback := b.signIn(authURL.String(), "alice")
			return b.get(withState(callback, flip(callback.Query().Get("state")))), b
		}, http.StatusBadRequest},
		{"missing state", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			callback := b.signIn(authURL.String(), "alice")
			return b.get(withState(callback, "")), b
		}, http.StatusBadRequest},
		{"overlong state", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			callback := b.signIn(authURL.String(), "alice")
			return b.get(withState(callback, strings.Repeat("s", 200))), b
		}, http.StatusBadRequest},
		{"another browser's attempt", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			callback := b.signIn(authURL.String(), "alice")
			attacker := e.browser()
			res := attacker.get(callback.String())
			// The victim's own attempt is unharmed.
			if page := b.get(callback.String()); page.status != http.StatusOK {
				t.Errorf("the victim's callback after the attack: status %d", page.status)
			}
			return res, attacker
		}, http.StatusBadRequest},
		{"replayed code", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			callback := b.signIn(authURL.String(), "alice")
			snapshot := b.cookieHeader() // the jar before the callback: it holds the login cookie
			if page := b.get(callback.String()); page.status != http.StatusOK {
				t.Fatalf("first callback: status %d", page.status)
			}
			b.mustSession("alice")
			replayer := e.browser()
			req, _ := http.NewRequest(http.MethodGet, callback.String(), nil)
			req.Header.Set("Cookie", snapshot)
			res := replayer.do(req)
			if _, err := e.sessionWith(snapshot); session.ReasonOf(err) != session.ReasonNoSession {
				t.Errorf("GetSession with the snapshot: %v, want NO_SESSION", err)
			}
			return res, replayer
		}, http.StatusForbidden},
		{"code of another attempt", func(t *testing.T, b *browser) (hop, *browser) {
			// The attacker's code, injected into the victim's attempt: PKCE
			// binds the code to the attempt that asked for it.
			attacker := e.browser()
			authURL, _ := attacker.startLogin("")
			stolen := attacker.signIn(authURL.String(), "bob").Query().Get("code")
			authURL, _ = b.startLogin("")
			callback := b.signIn(authURL.String(), "alice")
			u := *callback
			q := u.Query()
			q.Set("code", stolen)
			u.RawQuery = q.Encode()
			return b.get(u.String()), b
		}, http.StatusForbidden},
		{"no code", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			return b.get(e.public + "/auth/callback?state=" + url.QueryEscape(authURL.Query().Get("state"))), b
		}, http.StatusForbidden},
		{"wrong nonce", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			q := authURL.Query()
			q.Set("nonce", rand.Text()+rand.Text())
			authURL.RawQuery = q.Encode()
			callback := b.signIn(authURL.String(), "alice")
			return b.get(callback.String()), b
		}, http.StatusForbidden},
		{"provider refused", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			callback := b.cancelSignIn(authURL.String())
			if callback.Query().Get("error") != "access_denied" {
				t.Fatalf("canceled sign-in returns %q", callback)
			}
			res := b.get(callback.String())
			if !strings.Contains(res.body, "access_denied") {
				t.Errorf("refusal page does not name the error: %.500q", res.body)
			}
			return res, b
		}, http.StatusForbidden},
		{"provider error text", func(t *testing.T, b *browser) (hop, *browser) {
			authURL, _ := b.startLogin("")
			res := b.get(e.public + "/auth/callback?state=" + url.QueryEscape(authURL.Query().Get("state")) +
				"&error=%3Cscript%3Ealert(1)%3C%2Fscript%3E&error_description=call+0800-SCAM")
			for _, s := range []string{"script", "alert", "SCAM"} {
				if strings.Contains(res.body, s) {
					t.Errorf("refusal page shows the provider's text %q", s)
				}
			}
			return res, b
		}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			victim := e.browser()
			res, attacker := c.attack(t, victim)
			if res.status != c.status {
				t.Fatalf("status %d, want %d; body %.300q", res.status, c.status, res.body)
			}
			if !strings.Contains(res.header.Get("Content-Type"), "text/html") || res.continueURL() != "" {
				t.Errorf("want an error page without a continue link; got %q, continue %q", res.header.Get("Content-Type"), res.continueURL())
			}
			for _, ck := range res.setCookies(t) {
				if ck.Name == sessionCookie && ck.Value != "" {
					t.Errorf("refused callback sets a session cookie")
				}
			}
			attacker.wantNoSession(session.ReasonNoSession)
		})
	}

	t.Run("expired attempt", func(t *testing.T) {
		t.Parallel()
		e := newDemoEnv(t)
		b := e.browser()
		authURL, _ := b.startLogin("")
		callback := b.signIn(authURL.String(), "alice")
		e.clock.Advance(10*time.Minute + time.Second)
		if res := b.get(callback.String()); res.status != http.StatusBadRequest {
			t.Fatalf("callback after 10 minutes: status %d, want 400", res.status)
		}
		b.wantNoSession(session.ReasonNoSession)
	})
}

// TestIDTokenValidation runs the login against a provider that issues bad
// ID tokens: each must be refused with the sign-in failed page.
func TestIDTokenValidation(t *testing.T) {
	t.Parallel()
	otherKey := newKey()
	cases := []struct {
		name   string
		tamper func(op *fakeOP, claims map[string]any) *ecdsa.PrivateKey
		status int
	}{
		{"valid", func(*fakeOP, map[string]any) *ecdsa.PrivateKey { return nil }, http.StatusOK},
		{"expired", func(_ *fakeOP, c map[string]any) *ecdsa.PrivateKey {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return nil
		}, http.StatusForbidden},
		{"no expiry", func(_ *fakeOP, c map[string]any) *ecdsa.PrivateKey {
			delete(c, "exp")
			return nil
		}, http.StatusForbidden},
		{"foreign issuer", func(_ *fakeOP, c map[string]any) *ecdsa.PrivateKey {
			c["iss"] = "https://evil.example"
			return nil
		}, http.StatusForbidden},
		{"signed by another key", func(*fakeOP, map[string]any) *ecdsa.PrivateKey {
			return otherKey
		}, http.StatusForbidden},
		{"another audience", func(_ *fakeOP, c map[string]any) *ecdsa.PrivateKey {
			c["aud"] = "someone-else"
			return nil
		}, http.StatusForbidden},
		{"no nonce", func(_ *fakeOP, c map[string]any) *ecdsa.PrivateKey {
			delete(c, "nonce")
			return nil
		}, http.StatusForbidden},
		{"wrong nonce", func(_ *fakeOP, c map[string]any) *ecdsa.PrivateKey {
			c["nonce"] = rand.Text()
			return nil
		}, http.StatusForbidden},
		{"no subject", func(_ *fakeOP, c map[string]any) *ecdsa.PrivateKey {
			delete(c, "sub")
			return nil
		}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			op := newFakeOP(t)
			op.setTamper(func(claims map[string]any) *ecdsa.PrivateKey { return c.tamper(op, claims) })
			e := newFakeEnv(t, op)
			b := e.browser()
			authURL, _ := b.startLogin("/next")
			res := b.get(b.signIn(authURL.String(), "alice").String())
			if res.status != c.status {
				t.Fatalf("callback: status %d, want %d; body %.300q", res.status, c.status, res.body)
			}
			if c.status == http.StatusOK {
				b.mustSession("alice")
				return
			}
			if !strings.Contains(res.body, "Sign-in failed") {
				t.Errorf("want the sign-in failed page; body %.300q", res.body)
			}
			b.wantNoSession(session.ReasonNoSession)
		})
	}
}

// TestSessionFixation plants session cookies before login: the login must
// make a new session id and leave the planted ones useless.
func TestSessionFixation(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t)

	t.Run("attacker-chosen id", func(t *testing.T) {
		t.Parallel()
		b := e.browser()
		planted := strings.Repeat("A", 22) + strings.Repeat("b", 21)
		b.setCookie(sessionCookie, planted)
		b.wantNoSession(session.ReasonNoSession)
		b.login("alice", "")
		if got := b.cookie(sessionCookie); got == planted || got == "" {
			t.Fatalf("session id after login %q, planted %q", got, planted)
		}
		b.mustSession("alice")
		_, err := e.sessionWith(sessionCookie + "=" + planted)
		wantReason(t, "GetSession with the planted id", err, session.ReasonNoSession)
	})

	t.Run("earlier session of the same browser", func(t *testing.T) {
		t.Parallel()
		b := e.browser()
		b.login("alice", "")
		earlier := b.cookie(sessionCookie)
		b.login("bob", "")
		if got := b.cookie(sessionCookie); got == earlier {
			t.Fatal("a second login kept the session id")
		}
		b.mustSession("bob")
		_, err := e.sessionWith(sessionCookie + "=" + earlier)
		wantReason(t, "GetSession with the earlier id", err, session.ReasonSignedOut)
	})

	t.Run("earlier session, API login", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := e.browser()
		b.login("alice", "")
		earlier := b.cookie(sessionCookie)
		auth := b.auth(rpc{name: "connect"})
		start, err := auth.StartLogin(ctx, connect.NewRequest(&custodianv1.StartLoginRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		callback := b.signIn(start.Msg.GetAuthorizationUrl(), "bob")
		if _, err := auth.FinishLogin(ctx, connect.NewRequest(&custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery})); err != nil {
			t.Fatal(err)
		}
		if b.cookie(sessionCookie) == earlier {
			t.Fatal("FinishLogin kept the session id")
		}
		b.mustSession("bob")
		_, err = e.sessionWith(sessionCookie + "=" + earlier)
		wantReason(t, "GetSession with the earlier id", err, session.ReasonSignedOut)
	})
}

// TestOpenRedirect logs in with hostile return_to values: the page after
// login, and FinishLogin's return_to, must stay on the gateway's origin.
func TestOpenRedirect(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t)
	cases := []struct {
		returnTo string
		want     string
	}{
		{"https://evil.example", "/"},
		{"http://evil.example/path", "/"},
		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{`/\evil.example`, "/"},
		{`\\evil.example`, "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2F/evil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%5C%5Cevil.example", "/"},
		{"\t//evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"JaVaScRiPt:alert(1)", "/"},
		{"data:text/html,<script>alert(1)</script>", "/"},
		{"http:/evil.example", "/"},
		{"evil.example", "/"},
		{"", "/"},
		{"/", "/"},
		{"/ok?x=1", "/ok?x=1"},
		{"/ok?x=1&y=<b>#frag", "/ok?x=1&y=<b>#frag"},
		{"/.//evil.example", "/.//evil.example"}, // the path //evil.example on the gateway's own origin
	}
	for _, c := range cases {
		t.Run(c.returnTo, func(t *testing.T) {
			t.Parallel()
			b := e.browser()
			page := b.login("alice", c.returnTo)
			if got := page.continueURL(); got != c.want {
				t.Errorf("page continues to %q, want %q", got, c.want)
			}
			ctx := context.Background()
			auth := b.auth(rpc{name: "connect"})
			start, err := auth.StartLogin(ctx, connect.NewRequest(&custodianv1.StartLoginRequest{ReturnTo: c.returnTo}))
			if err != nil {
				t.Fatal(err)
			}
			callback := b.signIn(start.Msg.GetAuthorizationUrl(), "alice")
			finish, err := auth.FinishLogin(ctx, connect.NewRequest(&custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery}))
			if err != nil {
				t.Fatal(err)
			}
			if got := finish.Msg.GetReturnTo(); got != c.want {
				t.Errorf("FinishLogin return_to %q, want %q", got, c.want)
			}
		})
	}
}

// TestForgedSessionCookies sends cookies that are not, or no longer, a live
// session's.
func TestForgedSessionCookies(t *testing.T) {
	t.Parallel()
	e := newDemoEnv(t)
	b := e.browser()
	b.login("alice", "")
	real := b.cookie(sessionCookie)
	cases := []struct {
		name   string
		cookie string
	}{
		{"tampered", flip(real)},
		{"truncated", real[:len(real)-1]},
		{"extended", real + "A"},
		{"empty", ""},
		{"not base64url", strings.Repeat("!", len(real))},
		{"random", strings.Repeat("Z", len(real))},
		{"padded", real + "="},
		{"another name", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			header := sessionCookie + "=" + c.cookie
			if c.name == "another name" {
				header = "__Host-custodian2=" + real + "; custodian=" + real
			}
			_, err := e.sessionWith(header)
			wantReason(t, "GetSession", err, session.ReasonNoSession)
		})
	}
	b.mustSession("alice")

	t.Run("logged out", func(t *testing.T) {
		t.Parallel()
		b := e.browser()
		b.login("bob", "")
		old := b.cookie(sessionCookie)
		req, _ := http.NewRequest(http.MethodPost, e.public+"/auth/logout", nil)
		req.Header.Set("X-CSRF", "1")
		b.do(req)
		_, err := e.sessionWith(sessionCookie + "=" + old)
		wantReason(t, "GetSession", err, session.ReasonSignedOut)
	})

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		e := newDemoEnv(t)
		b := e.browser()
		b.login("alice", "")
		b.mustSession("alice")
		e.clock.Advance(e.cfg.Session.IdleTimeout + time.Second)
		_, err := b.getSession()
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("GetSession after the idle timeout: %v, want unauthenticated", err)
		}
		wantReason(t, "GetSession after the idle timeout", err, session.ReasonExpired)
	})
}
