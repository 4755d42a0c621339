package gatewaytest

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server/session"
)

// Browser is one browser: a cookie jar shared by page loads (HTTP/1.1, no
// redirects followed, every hop inspected) and RPCs over Connect, gRPC-Web
// and gRPC (h2c).
type Browser struct {
	e    *Env
	jar  *cookiejar.Jar
	web  *http.Client
	h2c  *http.Client
	seen *ResponseLog // when set, every response from the gateway
}

// Browser returns a new browser with an empty cookie jar.
func (e *Env) Browser(t testing.TB) *Browser { return e.BrowserRecording(t, nil) }

// BrowserRecording returns a new browser that records in seen every
// response it receives from the gateway (not the demo provider's). It
// accepts no compressed messages, so that seen holds them in the clear.
func (e *Env) BrowserRecording(t testing.TB, seen *ResponseLog) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	wrap := func(rt http.RoundTripper) http.RoundTripper {
		if seen == nil {
			return rt
		}
		return &recordingTransport{next: rt, log: seen}
	}
	h1 := &http.Transport{DialContext: e.Dialer(), MaxIdleConnsPerHost: 16}
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	h2t := &http.Transport{DialContext: e.Dialer(), Protocols: h2}
	t.Cleanup(h1.CloseIdleConnections)
	t.Cleanup(h2t.CloseIdleConnections)
	return &Browser{
		e:    e,
		jar:  jar,
		web:  &http.Client{Jar: jar, Transport: wrap(h1), CheckRedirect: noRedirect, Timeout: 30 * time.Second},
		h2c:  &http.Client{Jar: jar, Transport: wrap(h2t), CheckRedirect: noRedirect, Timeout: 30 * time.Second},
		seen: seen,
	}
}

// SignedIn returns a new browser signed in as user through the login
// pages.
func (e *Env) SignedIn(t testing.TB, user string) *Browser {
	t.Helper()
	b := e.Browser(t)
	b.Login(t, user, "")
	return b
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Web returns the browser's HTTP/1.1 client: its cookies, no redirects
// followed.
func (b *Browser) Web() *http.Client { return b.web }

// Hop is one response, its body read.
type Hop struct {
	URL    string
	Status int
	Header http.Header
	Body   string
}

// Location returns where the response redirects to, failing the test if it
// is not a redirect.
func (h Hop) Location(t testing.TB) *url.URL {
	t.Helper()
	if h.Status < 300 || h.Status > 399 {
		t.Fatalf("%s: status %d, want a redirect; body %.300q", h.URL, h.Status, h.Body)
	}
	u, err := url.Parse(h.Header.Get("Location"))
	if err != nil {
		t.Fatalf("%s: Location: %v", h.URL, err)
	}
	return u
}

// SetCookies returns the response's cookies, attributes included.
func (h Hop) SetCookies(t testing.TB) []*http.Cookie {
	t.Helper()
	var cs []*http.Cookie
	for _, line := range h.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("%s: Set-Cookie %q: %v", h.URL, line, err)
		}
		cs = append(cs, c)
	}
	return cs
}

var continueRE = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]*)">`)

// ContinueURL returns where the page's meta refresh goes, "" without one.
func (h Hop) ContinueURL() string {
	m := continueRE.FindStringSubmatch(h.Body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// Do sends req over HTTP/1.1 with the browser's cookies and returns the
// response, failing the test if there is none.
func (b *Browser) Do(t testing.TB, req *http.Request) Hop {
	t.Helper()
	res, err := b.web.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return Hop{URL: req.URL.String(), Status: res.StatusCode, Header: res.Header, Body: string(body)}
}

// Get loads rawURL.
func (b *Browser) Get(t testing.TB, rawURL string) Hop {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.Do(t, req)
}

// PostForm posts form to rawURL.
func (b *Browser) PostForm(t testing.TB, rawURL string, form url.Values) Hop {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(t, req)
}

// StartLogin opens /auth/login (with return_to unless it is "") and
// returns the provider's authorization URL and the response.
func (b *Browser) StartLogin(t testing.TB, returnTo string) (*url.URL, Hop) {
	t.Helper()
	u := b.e.Public + "/auth/login"
	if returnTo != "" {
		u += "?return_to=" + url.QueryEscape(returnTo)
	}
	h := b.Get(t, u)
	if h.Status != http.StatusSeeOther {
		t.Fatalf("GET /auth/login: status %d, want 303; body %.300q", h.Status, h.Body)
	}
	return h.Location(t), h
}

// SignIn goes through the provider at authURL as user and returns where the
// provider sends the browser back: the callback with code and state. The
// demo provider shows a form that posts to the same URL; the fake provider
// redirects at once.
func (b *Browser) SignIn(t testing.TB, authURL, user string) *url.URL {
	t.Helper()
	h := b.Get(t, authURL)
	if h.Status == http.StatusOK {
		h = b.PostForm(t, authURL, url.Values{"username": {user}, "password": {"demo"}})
	}
	return h.Location(t)
}

// CancelSignIn presses the demo provider's Cancel button.
func (b *Browser) CancelSignIn(t testing.TB, authURL string) *url.URL {
	t.Helper()
	if h := b.Get(t, authURL); h.Status != http.StatusOK {
		t.Fatalf("provider form: status %d", h.Status)
	}
	return b.PostForm(t, authURL, url.Values{"cancel": {"1"}}).Location(t)
}

// Login signs user in through the login pages and returns the callback
// page.
func (b *Browser) Login(t testing.TB, user, returnTo string) Hop {
	t.Helper()
	authURL, _ := b.StartLogin(t, returnTo)
	callback := b.SignIn(t, authURL.String(), user)
	h := b.Get(t, callback.String())
	if h.Status != http.StatusOK {
		t.Fatalf("callback: status %d, want 200; body %.300q", h.Status, h.Body)
	}
	return h
}

// LoginFake signs subject in at a fake provider, which takes the subject
// from login_hint, and checks the session.
func (b *Browser) LoginFake(t testing.TB, subject string) {
	t.Helper()
	authURL, _ := b.StartLogin(t, "")
	q := authURL.Query()
	q.Set("login_hint", subject)
	authURL.RawQuery = q.Encode()
	if res := b.Get(t, b.SignIn(t, authURL.String(), subject).String()); res.Status != http.StatusOK {
		t.Fatalf("login of %s: status %d", subject, res.Status)
	}
	b.MustSession(t, subject)
}

// Cookie returns the value of the browser's cookie name for the gateway,
// "" without one.
func (b *Browser) Cookie(name string) string {
	u, _ := url.Parse(b.e.Public + "/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// CookieHeader returns the Cookie header the browser would send to the
// gateway now: a snapshot of its jar.
func (b *Browser) CookieHeader() string {
	u, _ := url.Parse(b.e.Public + "/")
	var parts []string
	for _, c := range b.jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// SetCookie stores a cookie for the gateway in the browser's jar, as a
// script on a sibling site or an attacker with the device could.
func (b *Browser) SetCookie(name, value string) {
	u, _ := url.Parse(b.e.Public + "/")
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true}})
}

// RPC is how a browser's RPCs travel.
type RPC struct {
	Name string
	Opts []connecthttp.Option
	H2C  bool // over HTTP/2 without TLS, as gRPC needs
}

// RPCProtocols are the protocols browsers call the gateway with: Connect
// (JSON and binary) and gRPC-Web over HTTP/1.1, gRPC over h2c.
func RPCProtocols() []RPC {
	return []RPC{
		{Name: "connect json", Opts: []connecthttp.Option{connecthttp.WithProtoJSON()}},
		{Name: "connect binary"},
		{Name: "grpc-web", Opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
		{Name: "grpc", Opts: []connecthttp.Option{connecthttp.WithGRPC()}, H2C: true},
	}
}

// Connect is the default protocol: Connect with binary messages.
var Connect = RPC{Name: "connect"}

// HTTPClient returns the browser's HTTP client for p.
func (b *Browser) HTTPClient(p RPC) *http.Client {
	if p.H2C {
		return b.h2c
	}
	return b.web
}

// Client returns a connect client of the browser to the gateway over p. A
// recording browser accepts no compressed messages, so that its record
// holds them in the clear.
func (b *Browser) Client(p RPC, interceptors ...connect.ClientInterceptor) *connect.Client {
	opts := p.Opts
	if b.seen != nil {
		opts = append([]connecthttp.Option{connecthttp.WithCompressors()}, opts...)
	}
	return connect.NewClient(connecthttp.NewTransport(b.HTTPClient(p), b.e.Public, opts...), interceptors...)
}

// Sessions returns a SessionService client.
func (b *Browser) Sessions(p RPC) custodianv1connect.SessionServiceClient {
	return custodianv1connect.NewSessionServiceClient(b.Client(p))
}

// Auth returns an AuthService client.
func (b *Browser) Auth(p RPC) custodianv1connect.AuthServiceClient {
	return custodianv1connect.NewAuthServiceClient(b.Client(p))
}

// Profiles returns a ProfileService client, for a gateway started
// [WithProfileService].
func (b *Browser) Profiles(p RPC) profilesv1connect.ProfileServiceClient {
	return profilesv1connect.NewProfileServiceClient(b.Client(p))
}

// Account returns an Acme AccountService client.
func (b *Browser) Account(p RPC) storefrontv1connect.AccountServiceClient {
	return storefrontv1connect.NewAccountServiceClient(b.Client(p))
}

// Products returns an Acme ProductService client.
func (b *Browser) Products(p RPC) storefrontv1connect.ProductServiceClient {
	return storefrontv1connect.NewProductServiceClient(b.Client(p))
}

// GetSession calls GetSession over Connect. A signed-out answer comes back
// as the unauthenticated error every other method gives (see [SignedOut]),
// so tests of how sessions end read the same for every method.
func (b *Browser) GetSession() (*custodianv1.GetSessionResponse, error) {
	return SignedOut(b.Sessions(Connect).GetSession(context.Background(), &custodianv1.GetSessionRequest{}))
}

// MustSession returns the browser's session, failing the test unless it
// is subject's.
func (b *Browser) MustSession(t testing.TB, subject string) *custodianv1.GetSessionResponse {
	t.Helper()
	s, err := b.GetSession()
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if got := s.GetUser().GetSubject(); got != subject {
		t.Fatalf("GetSession: subject %q, want %q", got, subject)
	}
	return s
}

// WantNoSession asserts GetSession is refused for reason.
func (b *Browser) WantNoSession(t testing.TB, reason session.Reason) {
	t.Helper()
	_, err := b.GetSession()
	WantReason(t, "GetSession", err, reason)
}

// SessionWith calls GetSession with exactly this Cookie header ("" for
// none).
func (e *Env) SessionWith(cookieHeader string) (*custodianv1.GetSessionResponse, error) {
	client := custodianv1connect.NewSessionServiceClient(connect.NewClient(connecthttp.NewTransport(e.Plain, e.Public)))
	ctx, info := connect.NewClientContext(context.Background())
	if cookieHeader != "" {
		info.RequestHeader().Set("Cookie", cookieHeader)
	}
	return SignedOut(client.GetSession(ctx, &custodianv1.GetSessionRequest{}))
}

// PostBackchannel POSTs a logout token to the gateway as a provider would
// and returns the status.
func (e *Env) PostBackchannel(t testing.TB, token string) int {
	t.Helper()
	res, err := e.Plain.PostForm(e.Public+"/auth/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}
