package login_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// keptAttempts is how many login attempts a browser keeps, as the README
// states: the newest four.
const keptAttempts = 4

// loginCookies returns the names of the browser's login cookies.
func loginCookies(b *gt.Browser) []string {
	var names []string
	for part := range strings.SplitSeq(b.CookieHeader(), "; ") {
		if name, _, _ := strings.Cut(part, "="); strings.HasPrefix(name, "__Host-custodian-login-") {
			names = append(names, name)
		}
	}
	return names
}

// wantBrowserWorks fails the test unless b is still served: its Cookie
// header within the server's limit, /healthz, and an RPC.
func wantBrowserWorks(t *testing.T, e *gt.Env, b *gt.Browser) {
	t.Helper()
	if n := len(loginCookies(b)); n > keptAttempts {
		t.Errorf("the browser holds %d login cookies, want at most %d", n, keptAttempts)
	}
	if n, limit := len(b.CookieHeader()), e.Config.Server.MaxHeaderBytes; n >= limit/4 {
		t.Errorf("the Cookie header has %d bytes, want well under the server's %d", n, limit)
	}
	if h := b.Get(t, e.Public+"/healthz"); h.Status != http.StatusOK {
		t.Errorf("/healthz: status %d, want 200", h.Status)
	}
	if _, err := b.Products(gt.Connect).ListProducts(context.Background(), &storefrontv1.ListProductsRequest{}); err != nil {
		t.Errorf("ListProducts: %v", err)
	}
}

// TestAbandonedLoginsAreBounded: a browser that starts a hundred logins
// and finishes none (a user clicking "sign in" again and again, a page
// that embeds the login URL) keeps only the newest few attempts, so its
// Cookie header stays small and every request still works; the newest
// attempts still finish, the older ones are gone. Before the bound, each
// start added a 10-minute cookie of about 530 bytes, and after about 31
// every request of that browser, /healthz included, got 431.
func TestAbandonedLoginsAreBounded(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	const starts = 100

	// finish signs in at the provider with the attempts (oldest first) and
	// returns the callbacks, to be opened in any order.
	signIn := func(t *testing.T, b *gt.Browser, authURLs []string) []*url.URL {
		var callbacks []*url.URL
		for _, u := range authURLs {
			callbacks = append(callbacks, b.SignIn(t, u, "alice"))
		}
		return callbacks
	}

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		b := e.Browser(t)
		var authURLs []string
		most := 0
		for i := range starts {
			authURL, _ := b.StartLogin(t, "/tab-"+string(rune('a'+i%26)))
			authURLs = append(authURLs, authURL.String())
			most = max(most, len(loginCookies(b)))
		}
		if most > keptAttempts {
			t.Errorf("the browser held up to %d login cookies, want at most %d", most, keptAttempts)
		}
		wantBrowserWorks(t, e, b)

		// The oldest kept attempt and the one before it, then the
		// newest ones, newest first.
		callbacks := signIn(t, b, authURLs[starts-keptAttempts-1:])
		dropped := b.Get(t, callbacks[0].String())
		if dropped.Status != http.StatusBadRequest {
			t.Errorf("callback of the attempt dropped by the bound: status %d, want 400", dropped.Status)
		}
		for i := len(callbacks) - 1; i >= 1; i-- {
			page := b.Get(t, callbacks[i].String())
			want := "/tab-" + string(rune('a'+(starts-keptAttempts-1+i)%26))
			if page.Status != http.StatusOK || page.ContinueURL() != want {
				t.Fatalf("callback of attempt %d of %d: status %d, continue %q; want 200 and %q", starts-keptAttempts+i, starts, page.Status, page.ContinueURL(), want)
			}
			b.MustSession(t, "alice")
		}
		wantBrowserWorks(t, e, b)
	})

	for _, p := range gt.RPCProtocols() {
		t.Run("StartLogin over "+p.Name, func(t *testing.T) {
			t.Parallel()
			b := e.Browser(t)
			auth := b.Auth(p)
			ctx := context.Background()
			var authURLs []string
			for i := range starts {
				res, err := auth.StartLogin(ctx, &custodianv1.StartLoginRequest{})
				if err != nil {
					t.Fatalf("StartLogin %d: %v", i+1, err)
				}
				authURLs = append(authURLs, res.GetAuthorizationUrl())
			}
			wantBrowserWorks(t, e, b)
			callbacks := signIn(t, b, authURLs[starts-keptAttempts-1:])
			if _, err := auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: callbacks[0].RawQuery}); err == nil {
				t.Error("FinishLogin of the attempt dropped by the bound succeeded")
			}
			for i := len(callbacks) - 1; i >= 1; i-- {
				if _, err := auth.FinishLogin(ctx, &custodianv1.FinishLoginRequest{CallbackQuery: callbacks[i].RawQuery}); err != nil {
					t.Fatalf("FinishLogin of attempt %d of %d: %v", starts-keptAttempts+i, starts, err)
				}
				b.MustSession(t, "alice")
			}
			wantBrowserWorks(t, e, b)
		})
	}

	// Two tabs start at once after the browser abandoned many attempts:
	// both finish, whichever start the gateway answered first.
	t.Run("two tabs at once", func(t *testing.T) {
		t.Parallel()
		b := e.Browser(t)
		for range starts {
			b.StartLogin(t, "")
		}
		var (
			wg       sync.WaitGroup
			authURLs [2]string
		)
		for i := range authURLs {
			wg.Go(func() {
				res, err := b.Auth(gt.Connect).StartLogin(context.Background(), &custodianv1.StartLoginRequest{ReturnTo: []string{"/one", "/two"}[i]})
				if err != nil {
					t.Errorf("tab %d: StartLogin: %v", i+1, err)
					return
				}
				authURLs[i] = res.GetAuthorizationUrl()
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		callbacks := signIn(t, b, authURLs[:])
		for i, cb := range callbacks {
			res, err := b.Auth(gt.Connect).FinishLogin(context.Background(), &custodianv1.FinishLoginRequest{CallbackQuery: cb.RawQuery})
			if want := []string{"/one", "/two"}[i]; err != nil || res.GetReturnTo() != want {
				t.Fatalf("tab %d: FinishLogin = %v, %v; want return_to %q", i+1, res, err, want)
			}
		}
		wantBrowserWorks(t, e, b)
	})
}
