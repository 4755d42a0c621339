package replicas_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/internal/gatewaytest"
)

// callTimeout bounds one RPC of the test.
const callTimeout = 20 * time.Second

// browser is one browser: one cookie jar for every replica. Cookies are
// kept per host, not per port (RFC 6265), so the session cookie replica 1
// sets for localhost goes to replicas 2 and 3 as well, as it would to one
// load-balanced origin.
type browser struct {
	jar  *cookiejar.Jar
	http *http.Client
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	transport := &http.Transport{
		// localhost is always 127.0.0.1: never IPv6, never a resolver.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 128,
	}
	t.Cleanup(transport.CloseIdleConnections)
	return &browser{jar: jar, http: &http.Client{
		Jar:           jar,
		Transport:     transport,
		Timeout:       callTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// clone returns a new browser holding this one's cookies now: another
// device, or a thief, with a copy of the session cookie.
func (b *browser) clone(t *testing.T) *browser {
	t.Helper()
	c := newBrowser(t)
	u := &url.URL{Scheme: "http", Host: "localhost", Path: "/"}
	var cookies []*http.Cookie
	for _, ck := range b.jar.Cookies(u) {
		cookies = append(cookies, &http.Cookie{Name: ck.Name, Value: ck.Value, Path: "/", Secure: true, HttpOnly: true})
	}
	if len(cookies) == 0 {
		t.Fatal("clone: the browser has no cookie")
	}
	c.jar.SetCookies(u, cookies)
	return c
}

// get loads rawURL without following redirects.
func (b *browser) get(t *testing.T, rawURL string) (*http.Response, string) {
	t.Helper()
	res, err := b.http.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// login signs user in through replica r's login pages and the demo
// provider's form, as a browser would.
func (b *browser) login(t *testing.T, r *replica, user string) {
	t.Helper()
	res, body := b.get(t, r.public+"/auth/login")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("gateway %d: GET /auth/login: %s, want 303; %.300s", r.n, res.Status, body)
	}
	authURL := res.Header.Get("Location")
	if res, body = b.get(t, authURL); res.StatusCode != http.StatusOK {
		t.Fatalf("provider form: %s; %.300s", res.Status, body)
	}
	form := url.Values{"username": {user}, "password": {"demo"}}
	post, err := b.http.PostForm(authURL, form)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	callback := post.Header.Get("Location")
	if post.StatusCode/100 != 3 || !strings.HasPrefix(callback, r.public+"/auth/callback?") {
		t.Fatalf("provider sign-in: %s to %q, want a redirect to gateway %d's callback", post.Status, callback, r.n)
	}
	if res, body = b.get(t, callback); res.StatusCode != http.StatusOK {
		t.Fatalf("gateway %d: callback: %s, want 200; %.300s", r.n, res.Status, body)
	}
	if s, err := b.session(r); err != nil || s.GetUser().GetSubject() != user {
		t.Fatalf("gateway %d: GetSession after login: %v, %v; want %s", r.n, s.GetUser(), err, user)
	}
}

func (b *browser) client(r *replica) *connect.Client {
	return connect.NewClient(connecthttp.NewTransport(b.http, r.public))
}

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// session calls GetSession on r; a signed-out answer comes back as the
// unauthenticated error other methods give (gatewaytest.SignedOut).
func (b *browser) session(r *replica) (*custodianv1.GetSessionResponse, error) {
	ctx, cancel := ctxTimeout()
	defer cancel()
	return gatewaytest.SignedOut(custodianv1connect.NewSessionServiceClient(b.client(r)).GetSession(ctx, &custodianv1.GetSessionRequest{}))
}

// dashboard calls the Acme store's GetDashboard on r: the profile with the
// user's access token, the orders with it too, the loyalty account with an
// exchanged token and the product names with the gateway's own.
func (b *browser) dashboard(ctx context.Context, r *replica) (*storefrontv1.GetDashboardResponse, error) {
	return storefrontv1connect.NewAccountServiceClient(b.client(r)).GetDashboard(ctx, &storefrontv1.GetDashboardRequest{})
}

// orders calls the Acme store's ListOrders on r: the orders with the
// user's access token, the product names with the gateway's own token.
func (b *browser) orders(ctx context.Context, r *replica) (*storefrontv1.ListOrdersResponse, error) {
	return storefrontv1connect.NewAccountServiceClient(b.client(r)).ListOrders(ctx, &storefrontv1.ListOrdersRequest{})
}

// logout calls AuthService.Logout on r.
func (b *browser) logout(r *replica) error {
	ctx, cancel := ctxTimeout()
	defer cancel()
	_, err := custodianv1connect.NewAuthServiceClient(b.client(r)).Logout(ctx, &custodianv1.LogoutRequest{})
	return err
}

// signOutEverywhere calls SessionService.SignOutEverywhere on r.
func (b *browser) signOutEverywhere(r *replica) (*custodianv1.SignOutEverywhereResponse, error) {
	ctx, cancel := ctxTimeout()
	defer cancel()
	return custodianv1connect.NewSessionServiceClient(b.client(r)).SignOutEverywhere(ctx, &custodianv1.SignOutEverywhereRequest{})
}

// products calls the Acme store's ListProducts on r: an anonymous call.
func products(t *testing.T, r *replica) (*storefrontv1.ListProductsResponse, error) {
	t.Helper()
	b := newBrowser(t)
	ctx, cancel := ctxTimeout()
	defer cancel()
	return storefrontv1connect.NewProductServiceClient(b.client(r)).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 3})
}

// mustUse fails the test unless the browser's session is user's on r and
// its dashboard loads whole.
func (b *browser) mustUse(t *testing.T, r *replica, user string) {
	t.Helper()
	s, err := b.session(r)
	if err != nil {
		t.Fatalf("gateway %d: GetSession: %v", r.n, err)
	}
	if got := s.GetUser().GetSubject(); got != user {
		t.Fatalf("gateway %d: GetSession: subject %q, want %q", r.n, got, user)
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	d, err := b.dashboard(ctx, r)
	if err != nil {
		t.Fatalf("gateway %d: GetDashboard: %v", r.n, err)
	}
	if d.GetProfile() == nil {
		t.Fatalf("gateway %d: GetDashboard has no profile", r.n)
	}
}

// wantRefused fails the test unless both the session and a data call are
// refused on r as unauthenticated with reason.
func (b *browser) wantRefused(t *testing.T, r *replica, reason custodianv1.SessionEndReason) {
	t.Helper()
	_, err := b.session(r)
	wantReason(t, r, "GetSession", err, reason)
	ctx, cancel := ctxTimeout()
	defer cancel()
	_, err = b.dashboard(ctx, r)
	wantReason(t, r, "GetDashboard", err, reason)
}

func wantReason(t *testing.T, r *replica, what string, err error, reason custodianv1.SessionEndReason) {
	t.Helper()
	if err == nil {
		t.Fatalf("gateway %d: %s succeeded, want unauthenticated (%v)", r.n, what, reason)
	}
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("gateway %d: %s: %v, want unauthenticated (%v)", r.n, what, err, reason)
	}
	if got := sessionReason(err); got != reason {
		t.Fatalf("gateway %d: %s: reason %v, want %v", r.n, what, got, reason)
	}
}

// wantUnavailable fails the test unless err is unavailable with a retry
// hint (google.rpc.RetryInfo), the answer while sessions cannot be read.
func wantUnavailable(t *testing.T, r *replica, what string, err error) {
	t.Helper()
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("gateway %d: %s: %v, want unavailable", r.n, what, err)
	}
	ce, _ := errors.AsType[*connect.Error](err)
	for _, d := range ce.Details() {
		if msg, err := connectproto.UnmarshalErrorDetail(d); err == nil {
			if ri, ok := msg.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
				return
			}
		}
	}
	t.Fatalf("gateway %d: %s: %v has no google.rpc.RetryInfo detail", r.n, what, err)
}

// sessionReason returns the custodian.v1.SessionError reason of err.
func sessionReason(err error) custodianv1.SessionEndReason {
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok {
		return custodianv1.SessionEndReason_SESSION_END_REASON_UNSPECIFIED
	}
	for _, d := range ce.Details() {
		if msg, err := connectproto.UnmarshalErrorDetail(d); err == nil {
			if se, ok := msg.(*custodianv1.SessionError); ok {
				return se.GetReason()
			}
		}
	}
	return custodianv1.SessionEndReason_SESSION_END_REASON_UNSPECIFIED
}
