package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// sessionCookie is the gateway's session cookie.
const sessionCookie = "__Host-custodian"

// browser follows a login by hand, redirect by redirect, as a browser
// would: it keeps cookies per host (ignoring Secure, which a browser relaxes
// for localhost too) and reaches localhost at 127.0.0.1, where the gateway
// listens.
type browser struct {
	client  *http.Client
	cookies map[string]map[string]string // host, name: value
}

func newBrowser() *browser {
	var d net.Dialer
	return &browser{
		client: &http.Client{
			Timeout: 20 * time.Second,
			Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
					addr = net.JoinHostPort("127.0.0.1", port)
				}
				return d.DialContext(ctx, network, addr)
			}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cookies: map[string]map[string]string{},
	}
}

// do sends a request (a POST of form when form is not nil) with the
// host's cookies and keeps the cookies of the answer.
func (b *browser) do(ctx context.Context, method, target string, form url.Values) (*http.Response, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	host := req.URL.Hostname()
	for name, value := range b.cookies[host] {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	res, err := b.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	for _, c := range res.Cookies() {
		if b.cookies[host] == nil {
			b.cookies[host] = map[string]string{}
		}
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies[host], c.Name)
		} else {
			b.cookies[host][c.Name] = c.Value
		}
	}
	return res, data, nil
}

// redirect does a request that must answer with a redirect and returns
// where to.
func (b *browser) redirect(ctx context.Context, method, target string, form url.Values) (*url.URL, error) {
	res, body, err := b.do(ctx, method, target, form)
	if err != nil {
		return nil, err
	}
	loc, err := res.Location()
	if res.StatusCode < 300 || res.StatusCode > 399 || err != nil {
		return nil, fmt.Errorf("%s %s: %s, want a redirect; body: %.300s", method, target, res.Status, body)
	}
	return loc, nil
}

// signIn signs user in at the gateway through its real login flow and
// returns the session cookie's value: the gateway sends the browser to the
// provider, the form is posted there, and the provider sends it back to the
// gateway's callback, which sets the cookie.
func signIn(ctx context.Context, public, user, password string) (string, error) {
	b := newBrowser()
	// Its connections are not used again: closed, they leave nothing
	// behind in the gateway (a soak signs in every few seconds).
	defer b.client.CloseIdleConnections()
	authorize, err := b.redirect(ctx, http.MethodGet, public+"/auth/login?return_to=/", nil)
	if err != nil {
		return "", fmt.Errorf("sign-in: %w", err)
	}
	callback, err := b.redirect(ctx, http.MethodPost, authorize.String(), url.Values{"username": {user}, "password": {password}})
	if err != nil {
		return "", fmt.Errorf("sign-in at the provider: %w", err)
	}
	// The callback sets the cookie and answers with a page that moves on
	// (a redirect would not carry a SameSite=Strict cookie after a
	// cross-site hop), or with a redirect: either is fine here.
	res, body, err := b.do(ctx, http.MethodGet, callback.String(), nil)
	if err != nil {
		return "", fmt.Errorf("sign-in callback: %w", err)
	}
	if res.StatusCode > 399 {
		return "", fmt.Errorf("sign-in callback: %s: %.300s", res.Status, body)
	}
	pub, err := url.Parse(public)
	if err != nil {
		return "", fmt.Errorf("sign-in: %w", err)
	}
	cookie := b.cookies[pub.Hostname()][sessionCookie]
	if cookie == "" {
		return "", fmt.Errorf("sign-in: the gateway set no %s cookie", sessionCookie)
	}
	return cookie, nil
}

// signOut signs out the session whose cookie value is cookie, as a page of
// the gateway's would: POST /auth/logout with the cookie, X-CSRF: 1 and
// the gateway's origin. The gateway ends the session, clears the cookie
// and sends the browser to the provider's end-session endpoint, which is
// followed (it ends the provider's session and sends the browser back).
func signOut(ctx context.Context, public, cookie string) error {
	b := newBrowser()
	defer b.client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, public+"/auth/logout", nil)
	if err != nil {
		return fmt.Errorf("sign-out: %w", err)
	}
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Origin", public)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	res, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("sign-out: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("sign-out: %w", err)
	}
	if res.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign-out: POST /auth/logout: %s, want 303 See Other; body: %.300s", res.Status, body)
	}
	cleared := false
	for _, c := range res.Cookies() {
		cleared = cleared || (c.Name == sessionCookie && (c.MaxAge < 0 || c.Value == ""))
	}
	if !cleared {
		return fmt.Errorf("sign-out: the gateway did not clear the %s cookie", sessionCookie)
	}
	next, err := res.Location()
	if err != nil {
		return fmt.Errorf("sign-out: %w", err)
	}
	pub, err := url.Parse(public)
	if err != nil {
		return fmt.Errorf("sign-out: %w", err)
	}
	if next.Host == pub.Host {
		return nil // the gateway's post-logout page: the provider has no end-session endpoint
	}
	res, body, err = b.do(ctx, http.MethodGet, next.String(), nil)
	if err != nil {
		return fmt.Errorf("sign-out at the provider: %w", err)
	}
	if res.StatusCode > 399 {
		return fmt.Errorf("sign-out at the provider: %s: %.300s", res.Status, body)
	}
	return nil
}

// userTokenMaxAge is how long a floor token is used before a new one is
// fetched: well within the demo provider's 5 minutes.
const userTokenMaxAge = time.Minute

// userToken is an access token of a user for some backends (its audience
// holds theirs), as the gateway holds one, for the floors: a backend called
// directly, without the gateway, and the library floor calling backends.
// The harness gets it as the gateway does, with the gateway's own client at
// the demo provider (authorization code with PKCE), so the backend answers
// the user's data exactly as it does to the gateway.
type userToken struct {
	world    *world
	user     string
	password string
	backends []string

	mu      sync.Mutex
	token   string
	fetched time.Time
}

// get returns a token no older than userTokenMaxAge.
func (t *userToken) get(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && time.Since(t.fetched) < userTokenMaxAge {
		return t.token, nil
	}
	token, err := t.fetch(ctx)
	if err != nil {
		return "", fmt.Errorf("%s's token for the backends %s: %w", t.user, strings.Join(t.backends, ", "), err)
	}
	t.token, t.fetched = token, time.Now()
	return token, nil
}

func (t *userToken) fetch(ctx context.Context) (string, error) {
	cfg := t.world.config
	audiences := make([]string, len(t.backends))
	for i, name := range t.backends {
		_, aud, err := cfg.backend(name)
		if err != nil {
			return "", err
		}
		audiences[i] = aud
	}
	audience := strings.Join(audiences, " ")
	secret, err := os.ReadFile(filepath.Join(t.world.dir, cfg.OIDC.ClientSecretFile))
	if err != nil {
		return "", fmt.Errorf("the client secret: %w", err)
	}
	// A PKCE verifier is 43 to 128 unreserved characters: 52 here.
	verifier, state := rand.Text()+rand.Text(), rand.Text()
	challenge := sha256.Sum256([]byte(verifier))
	redirectURI := t.world.public + "/auth/callback" // registered; never followed
	query := url.Values{
		"client_id":             {cfg.OIDC.ClientID},
		"redirect_uri":          {redirectURI},
		"response_type":         {"code"},
		"scope":                 {"openid"},
		"audience":              {audience},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	b := newBrowser()
	back, err := b.redirect(ctx, http.MethodPost, cfg.OIDC.Issuer+"/authorize?"+query.Encode(),
		url.Values{"username": {t.user}, "password": {t.password}})
	if err != nil {
		return "", err
	}
	code := back.Query().Get("code")
	if code == "" || back.Query().Get("state") != state {
		return "", fmt.Errorf("the provider sent back no code for our state: %s", back.Redacted())
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.OIDC.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(cfg.OIDC.ClientID), url.QueryEscape(strings.TrimSpace(string(secret))))
	res, err := b.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer res.Body.Close()
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&tokens); err != nil || res.StatusCode != http.StatusOK || tokens.AccessToken == "" {
		return "", fmt.Errorf("token request: %s (%v)", res.Status, err)
	}
	return tokens.AccessToken, nil
}
