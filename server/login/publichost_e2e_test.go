package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// TestLoginOnAnotherHost opens /auth/login on the gateway's listen address
// (http://127.0.0.1:PORT) instead of its public URL (http://localhost:PORT),
// as a person typing the address would: the browser is sent to the public
// URL first, keeps return_to, and ends signed in on the page it asked for,
// instead of failing at the callback for want of the attempt's cookie.
func TestLoginOnAnotherHost(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	const returnTo = "/orders?page=2"
	for _, c := range []struct {
		name     string
		header   http.Header
		query    url.Values
		toPublic bool // sent to the public URL first, rather than on to the provider
	}{
		{name: "listen address", query: url.Values{"return_to": {returnTo}}, toPublic: true},
		{name: "proxy names the public host", header: http.Header{"X-Forwarded-Host": {hostOf(t, e.Public)}}, query: url.Values{"return_to": {returnTo}}},
		{name: "already sent once: no loop", query: url.Values{"return_to": {returnTo}, "via_public_url": {"1"}}},
		{name: "forwarded for another host", header: http.Header{"X-Forwarded-Host": {"evil.example"}}, query: url.Values{"return_to": {returnTo}}, toPublic: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := e.Browser(t)
			req, err := http.NewRequest(http.MethodGet, e.Listen+"/auth/login?"+c.query.Encode(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vv := range c.header {
				req.Header[k] = vv
			}
			h := b.Do(t, req)
			loc := h.Location(t)
			if h.Status != http.StatusSeeOther {
				t.Fatalf("status %d, want 303", h.Status)
			}
			if !c.toPublic {
				if loc.Query().Get("client_id") == "" {
					t.Fatalf("sent to %s, want the provider", loc)
				}
				return
			}
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != e.Public+"/auth/login" {
				t.Fatalf("sent to %s, want %s/auth/login", loc, e.Public)
			}
			if loc.Query().Get("return_to") != returnTo {
				t.Fatalf("return_to lost: %s", loc)
			}
			if b.Cookie(gt.SessionCookie) != "" {
				t.Fatal("a session cookie before sign-in")
			}
			// Follow on as the browser would: provider, callback, continue page.
			start := b.Get(t, loc.String())
			callback := b.SignIn(t, start.Location(t).String(), "alice")
			page := b.Get(t, callback.String())
			if page.Status != http.StatusOK {
				t.Fatalf("callback: status %d; body %.300q", page.Status, page.Body)
			}
			if !strings.Contains(page.Body, "/orders?page=2") {
				t.Errorf("the page after sign-in does not continue to %s: %.500q", returnTo, page.Body)
			}
			b.MustSession(t, "alice")
		})
	}
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
