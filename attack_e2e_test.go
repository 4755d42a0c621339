package custodian_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/session"
)

// TestCallbackAttacks replays, forges and redirects the provider's callback;
// each attempt must fail without creating a session.
func TestCallbackAttacks(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)

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
		attack func(t *testing.T, victim *gt.Browser) (res gt.Hop, attacker *gt.Browser)
		status int
	}{
		{"tampered state", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			callback := b.SignIn(t, authURL.String(), "alice")
			return b.Get(t, withState(callback, gt.Flip(callback.Query().Get("state")))), b
		}, http.StatusBadRequest},
		{"missing state", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			callback := b.SignIn(t, authURL.String(), "alice")
			return b.Get(t, withState(callback, "")), b
		}, http.StatusBadRequest},
		{"overlong state", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			callback := b.SignIn(t, authURL.String(), "alice")
			return b.Get(t, withState(callback, strings.Repeat("s", 200))), b
		}, http.StatusBadRequest},
		{"another browser's attempt", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			callback := b.SignIn(t, authURL.String(), "alice")
			attacker := e.Browser(t)
			res := attacker.Get(t, callback.String())
			// The victim's own attempt is unharmed.
			if page := b.Get(t, callback.String()); page.Status != http.StatusOK {
				t.Errorf("the victim's callback after the attack: status %d", page.Status)
			}
			return res, attacker
		}, http.StatusBadRequest},
		{"replayed code", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			callback := b.SignIn(t, authURL.String(), "alice")
			snapshot := b.CookieHeader() // the jar before the callback: it holds the login cookie
			if page := b.Get(t, callback.String()); page.Status != http.StatusOK {
				t.Fatalf("first callback: status %d", page.Status)
			}
			b.MustSession(t, "alice")
			replayer := e.Browser(t)
			req, _ := http.NewRequest(http.MethodGet, callback.String(), nil)
			req.Header.Set("Cookie", snapshot)
			res := replayer.Do(t, req)
			if _, err := e.SessionWith(snapshot); gt.ReasonOf(err) != session.ReasonNoSession {
				t.Errorf("GetSession with the snapshot: %v, want NO_SESSION", err)
			}
			return res, replayer
		}, http.StatusForbidden},
		{"code of another attempt", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			// The attacker's code, injected into the victim's attempt: PKCE
			// binds the code to the attempt that asked for it.
			attacker := e.Browser(t)
			authURL, _ := attacker.StartLogin(t, "")
			stolen := attacker.SignIn(t, authURL.String(), "bob").Query().Get("code")
			authURL, _ = b.StartLogin(t, "")
			callback := b.SignIn(t, authURL.String(), "alice")
			u := *callback
			q := u.Query()
			q.Set("code", stolen)
			u.RawQuery = q.Encode()
			return b.Get(t, u.String()), b
		}, http.StatusForbidden},
		{"no code", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			return b.Get(t, e.Public+"/auth/callback?state="+url.QueryEscape(authURL.Query().Get("state"))), b
		}, http.StatusForbidden},
		{"wrong nonce", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			q := authURL.Query()
			q.Set("nonce", rand.Text()+rand.Text())
			authURL.RawQuery = q.Encode()
			callback := b.SignIn(t, authURL.String(), "alice")
			return b.Get(t, callback.String()), b
		}, http.StatusForbidden},
		{"provider refused", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			callback := b.CancelSignIn(t, authURL.String())
			if callback.Query().Get("error") != "access_denied" {
				t.Fatalf("canceled sign-in returns %q", callback)
			}
			res := b.Get(t, callback.String())
			if !strings.Contains(res.Body, "access_denied") {
				t.Errorf("refusal page does not name the error: %.500q", res.Body)
			}
			return res, b
		}, http.StatusForbidden},
		{"provider error text", func(t *testing.T, b *gt.Browser) (gt.Hop, *gt.Browser) {
			authURL, _ := b.StartLogin(t, "")
			res := b.Get(t, e.Public+"/auth/callback?state="+url.QueryEscape(authURL.Query().Get("state"))+
				"&error=%3Cscript%3Ealert(1)%3C%2Fscript%3E&error_description=call+0800-SCAM")
			for _, s := range []string{"script", "alert", "SCAM"} {
				if strings.Contains(res.Body, s) {
					t.Errorf("refusal page shows the provider's text %q", s)
				}
			}
			return res, b
		}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			victim := e.Browser(t)
			res, attacker := c.attack(t, victim)
			if res.Status != c.status {
				t.Fatalf("status %d, want %d; body %.300q", res.Status, c.status, res.Body)
			}
			if !strings.Contains(res.Header.Get("Content-Type"), "text/html") || res.ContinueURL() != "" {
				t.Errorf("want an error page without a continue link; got %q, continue %q", res.Header.Get("Content-Type"), res.ContinueURL())
			}
			for _, ck := range res.SetCookies(t) {
				if ck.Name == gt.SessionCookie && ck.Value != "" {
					t.Errorf("refused callback sets a session cookie")
				}
			}
			attacker.WantNoSession(t, session.ReasonNoSession)
		})
	}

	t.Run("expired attempt", func(t *testing.T) {
		t.Parallel()
		e := gt.NewDemoEnv(t)
		b := e.Browser(t)
		authURL, _ := b.StartLogin(t, "")
		callback := b.SignIn(t, authURL.String(), "alice")
		e.Clock.Advance(10*time.Minute + time.Second)
		if res := b.Get(t, callback.String()); res.Status != http.StatusBadRequest {
			t.Fatalf("callback after 10 minutes: status %d, want 400", res.Status)
		}
		b.WantNoSession(t, session.ReasonNoSession)
	})
}

// TestIDTokenValidation runs the login against a provider that issues bad
// ID tokens: each must be refused with the sign-in failed page.
func TestIDTokenValidation(t *testing.T) {
	t.Parallel()
	otherKey := gt.NewKey()
	cases := []struct {
		name   string
		tamper func(op *gt.FakeOP, claims map[string]any) *ecdsa.PrivateKey
		status int
	}{
		{"valid", func(*gt.FakeOP, map[string]any) *ecdsa.PrivateKey { return nil }, http.StatusOK},
		{"expired", func(_ *gt.FakeOP, c map[string]any) *ecdsa.PrivateKey {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return nil
		}, http.StatusForbidden},
		{"no expiry", func(_ *gt.FakeOP, c map[string]any) *ecdsa.PrivateKey {
			delete(c, "exp")
			return nil
		}, http.StatusForbidden},
		{"foreign issuer", func(_ *gt.FakeOP, c map[string]any) *ecdsa.PrivateKey {
			c["iss"] = "https://evil.example"
			return nil
		}, http.StatusForbidden},
		{"signed by another key", func(*gt.FakeOP, map[string]any) *ecdsa.PrivateKey {
			return otherKey
		}, http.StatusForbidden},
		{"another audience", func(_ *gt.FakeOP, c map[string]any) *ecdsa.PrivateKey {
			c["aud"] = "someone-else"
			return nil
		}, http.StatusForbidden},
		{"no nonce", func(_ *gt.FakeOP, c map[string]any) *ecdsa.PrivateKey {
			delete(c, "nonce")
			return nil
		}, http.StatusForbidden},
		{"wrong nonce", func(_ *gt.FakeOP, c map[string]any) *ecdsa.PrivateKey {
			c["nonce"] = rand.Text()
			return nil
		}, http.StatusForbidden},
		{"no subject", func(_ *gt.FakeOP, c map[string]any) *ecdsa.PrivateKey {
			delete(c, "sub")
			return nil
		}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			op := gt.NewFakeOP(t)
			op.SetTamper(func(claims map[string]any) *ecdsa.PrivateKey { return c.tamper(op, claims) })
			e := gt.NewFakeEnv(t, op)
			b := e.Browser(t)
			authURL, _ := b.StartLogin(t, "/next")
			res := b.Get(t, b.SignIn(t, authURL.String(), "alice").String())
			if res.Status != c.status {
				t.Fatalf("callback: status %d, want %d; body %.300q", res.Status, c.status, res.Body)
			}
			if c.status == http.StatusOK {
				b.MustSession(t, "alice")
				return
			}
			if !strings.Contains(res.Body, "Sign-in failed") {
				t.Errorf("want the sign-in failed page; body %.300q", res.Body)
			}
			b.WantNoSession(t, session.ReasonNoSession)
		})
	}
}

// TestSessionFixation plants session cookies before login: the login must
// make a new session id and leave the planted ones useless.
func TestSessionFixation(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)

	t.Run("attacker-chosen id", func(t *testing.T) {
		t.Parallel()
		b := e.Browser(t)
		planted := strings.Repeat("A", 22) + strings.Repeat("b", 21)
		b.SetCookie(gt.SessionCookie, planted)
		b.WantNoSession(t, session.ReasonNoSession)
		b.Login(t, "alice", "")
		if got := b.Cookie(gt.SessionCookie); got == planted || got == "" {
			t.Fatalf("session id after login %q, planted %q", got, planted)
		}
		b.MustSession(t, "alice")
		_, err := e.SessionWith(gt.SessionCookie + "=" + planted)
		gt.WantReason(t, "GetSession with the planted id", err, session.ReasonNoSession)
	})

	t.Run("earlier session of the same browser", func(t *testing.T) {
		t.Parallel()
		b := e.SignedIn(t, "alice")
		earlier := b.Cookie(gt.SessionCookie)
		b.Login(t, "bob", "")
		if got := b.Cookie(gt.SessionCookie); got == earlier {
			t.Fatal("a second login kept the session id")
		}
		b.MustSession(t, "bob")
		_, err := e.SessionWith(gt.SessionCookie + "=" + earlier)
		gt.WantReason(t, "GetSession with the earlier id", err, session.ReasonSignedOut)
	})

	t.Run("earlier session, API login", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := e.SignedIn(t, "alice")
		earlier := b.Cookie(gt.SessionCookie)
		auth := b.Auth(gt.Connect)
		start, err := auth.StartLogin(ctx, &custodianv1.StartLoginRequest{})
		if err != nil {
			t.Fatal(err)
		}
		callback := b.SignIn(t, start.GetAuthorizationUrl(), "bob")
		if _, err := auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery}); err != nil {
			t.Fatal(err)
		}
		if b.Cookie(gt.SessionCookie) == earlier {
			t.Fatal("FinishLogin kept the session id")
		}
		b.MustSession(t, "bob")
		_, err = e.SessionWith(gt.SessionCookie + "=" + earlier)
		gt.WantReason(t, "GetSession with the earlier id", err, session.ReasonSignedOut)
	})
}

// TestOpenRedirect logs in with hostile return_to values: the page after
// login, and FinishLogin's return_to, must stay on the gateway's origin.
func TestOpenRedirect(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
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
			b := e.Browser(t)
			page := b.Login(t, "alice", c.returnTo)
			if got := page.ContinueURL(); got != c.want {
				t.Errorf("page continues to %q, want %q", got, c.want)
			}
			ctx := context.Background()
			auth := b.Auth(gt.Connect)
			start, err := auth.StartLogin(ctx, &custodianv1.StartLoginRequest{ReturnTo: c.returnTo})
			if err != nil {
				t.Fatal(err)
			}
			callback := b.SignIn(t, start.GetAuthorizationUrl(), "alice")
			finish, err := auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: callback.RawQuery})
			if err != nil {
				t.Fatal(err)
			}
			if got := finish.GetReturnTo(); got != c.want {
				t.Errorf("FinishLogin return_to %q, want %q", got, c.want)
			}
		})
	}
}

// TestForgedSessionCookies sends cookies that are not, or no longer, a live
// session's.
func TestForgedSessionCookies(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	b := e.SignedIn(t, "alice")
	real := b.Cookie(gt.SessionCookie)
	cases := []struct {
		name   string
		cookie string
	}{
		{"tampered", gt.Flip(real)},
		{"truncated", real[:len(real)-1]},
		{"extended", real + "A"},
		{"empty", ""},
		{"not base64url", strings.Repeat("!", len(real))},
		{"random", strings.Repeat("Z", len(real))},
		{"padded", real + "="},
		{"another name", ""},
	}
	// The forged cookies run in parallel inside a group that returns only
	// once they all have: the real session is checked after every one of
	// them was tried.
	t.Run("forged", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				header := gt.SessionCookie + "=" + c.cookie
				if c.name == "another name" {
					header = "__Host-custodian2=" + real + "; custodian=" + real
				}
				_, err := e.SessionWith(header)
				gt.WantReason(t, "GetSession", err, session.ReasonNoSession)
			})
		}
	})
	b.MustSession(t, "alice")

	t.Run("logged out", func(t *testing.T) {
		t.Parallel()
		b := e.SignedIn(t, "bob")
		old := b.Cookie(gt.SessionCookie)
		req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
		req.Header.Set("X-CSRF", "1")
		b.Do(t, req)
		_, err := e.SessionWith(gt.SessionCookie + "=" + old)
		gt.WantReason(t, "GetSession", err, session.ReasonSignedOut)
	})

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		e := gt.NewDemoEnv(t)
		b := e.SignedIn(t, "alice")
		b.MustSession(t, "alice")
		e.Clock.Advance(e.Config.Session.IdleTimeout + time.Second)
		_, err := b.GetSession()
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("GetSession after the idle timeout: %v, want unauthenticated", err)
		}
		gt.WantReason(t, "GetSession after the idle timeout", err, session.ReasonExpired)
	})
}
