package login_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/demo"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// logoutWay is one way a browser signs out: it returns the provider's
// end-session URL the gateway sends the browser to, and everything else
// the browser received with it (headers, body), for the token scan.
type logoutWay struct {
	name   string
	logout func(t *testing.T, e *gt.Env, b *gt.Browser) (endSession, received string)
}

// logoutWays are every way out: the page routes and AuthService.Logout
// over every protocol.
func logoutWays() []logoutWay {
	hop := func(t *testing.T, h gt.Hop) (string, string) {
		var text strings.Builder
		_ = h.Header.Write(&text)
		text.WriteString(h.Body)
		return h.Location(t).String(), text.String()
	}
	ways := []logoutWay{
		{"POST /auth/logout", func(t *testing.T, e *gt.Env, b *gt.Browser) (string, string) {
			req, _ := http.NewRequest(http.MethodPost, e.Public+"/auth/logout", nil)
			req.Header.Set("X-CSRF", "1")
			req.Header.Set("Origin", e.Public)
			return hop(t, b.Do(t, req))
		}},
		{"GET /auth/logout?id=", func(t *testing.T, e *gt.Env, b *gt.Browser) (string, string) {
			return hop(t, b.Get(t, b.MustSession(t, "alice").GetLogoutUrl()))
		}},
	}
	for _, p := range gt.RPCProtocols() {
		ways = append(ways, logoutWay{"Logout over " + p.Name, func(t *testing.T, _ *gt.Env, b *gt.Browser) (string, string) {
			ctx, info := connect.NewClientContext(context.Background())
			out, err := b.Auth(p).Logout(ctx, &custodianv1.LogoutRequest{})
			if err != nil {
				t.Fatalf("Logout: %v", err)
			}
			var text strings.Builder
			for k, vs := range info.ResponseHeader().All() {
				text.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
			}
			return out.GetEndSessionUrl(), text.String()
		}})
	}
	return ways
}

// claimOf returns a claim of a JWT's payload, without verifying it.
func claimOf(t *testing.T, jwt, claim string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40q", jwt)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	v, _ := claims[claim].(string)
	return v
}

// TestLogoutSendsNoToken: signing out sends the browser to the provider's
// end-session endpoint with client_id, post_logout_redirect_uri and the
// provider's session id as logout_hint, never a token (the ID token, with
// the user's name, e-mail and that session id, would otherwise sit in the
// browser's address bar and history). The provider still ends its session
// and sends the browser back. With oidc.logout_id_token_hint, the one
// exception, the ID token goes as id_token_hint.
func TestLogoutSendsNoToken(t *testing.T) {
	t.Parallel()
	for _, withHint := range []bool{false, true} {
		name := "default"
		if withHint {
			name = "logout_id_token_hint"
		}
		for _, w := range logoutWays() {
			t.Run(name+"/"+w.name, func(t *testing.T) {
				t.Parallel()
				// Its own provider: its token log holds this login's
				// tokens, its sessions this login's.
				e := gt.NewDemoEnv(t, gt.WithConfig(func(c *config.Config) { c.OIDC.LogoutIDTokenHint = withHint }))
				b := e.Browser(t)
				b.Login(t, "alice", "")
				if n := e.World.IdP.LiveSessions("alice"); n != 1 {
					t.Fatalf("provider sessions of alice after login: %d, want 1", n)
				}
				idToken := e.Tokens.Last("authorization_code", "id_token")
				sid := claimOf(t, idToken, "sid")
				if sid == "" {
					t.Fatal("the demo provider's ID token has no sid")
				}

				endSession, received := w.logout(t, e, b)
				end, err := url.Parse(endSession)
				if err != nil {
					t.Fatalf("end-session URL %q: %v", endSession, err)
				}
				if got := end.Scheme + "://" + end.Host + end.Path; got != e.Listen+demo.IdPPath+"end-session" {
					t.Errorf("logout sends the browser to %s, want the provider's end-session endpoint", got)
				}
				q := end.Query()
				for k, want := range map[string]string{
					"client_id":                demo.ClientID,
					"post_logout_redirect_uri": e.Public + "/",
					"logout_hint":              sid,
				} {
					if got := q.Get(k); got != want {
						t.Errorf("end-session %s=%q, want %q", k, got, want)
					}
				}
				if withHint {
					if got := q.Get("id_token_hint"); got != idToken {
						t.Errorf("id_token_hint %.40q, want the session's ID token", got)
					}
				} else {
					if q.Has("id_token_hint") {
						t.Errorf("end-session URL carries id_token_hint: %v", q)
					}
					for what, text := range map[string]string{"end-session URL": endSession, "logout answer": received} {
						if tk, piece, found := e.Tokens.Find(text); found {
							t.Errorf("the %s contains %q of a %s the provider issued:\n%.1000s", what, piece, tk.Kind, text)
						}
					}
				}

				// The browser follows: the provider ends its session and
				// sends it back to the gateway.
				back := b.Get(t, endSession).Location(t)
				if back.String() != e.Public+"/" {
					t.Errorf("the provider's end-session returns to %q, want %s/", back, e.Public)
				}
				if n := e.World.IdP.LiveSessions("alice"); n != 0 {
					t.Errorf("provider sessions of alice after logout: %d, want 0", n)
				}
				b.WantNoSession(t, session.ReasonNoSession)
			})
		}
	}
}
