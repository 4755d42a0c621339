package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/custodian-bff/custodian/server/keyring"
	"github.com/custodian-bff/custodian/server/security"
	"github.com/custodian-bff/custodian/server/session"
)

// Routes of the gateway's own login pages.
const (
	LoginPath       = "/auth/login"
	CallbackPath    = "/auth/callback"
	LogoutPath      = "/auth/logout"
	BackchannelPath = "/auth/backchannel-logout"
)

// Config is what the login flow needs besides the provider.
type Config struct {
	// PublicURL is the origin browsers use, e.g. https://app.example.com.
	PublicURL string
	// AppRedirectPath receives the provider's redirect in the API-driven
	// login. Default "/login/callback".
	AppRedirectPath string
	// PostLogoutRedirectPath is where the provider sends the browser after
	// logout. Default "/".
	PostLogoutRedirectPath string
	// LogoutIDTokenHint sends the ID token as id_token_hint in the
	// redirect to the provider's end-session endpoint. Default false: the
	// redirect names the client (client_id) and, where the provider names
	// its sessions with sid, the session (logout_hint), and no token
	// passes through the browser. Set it only for a provider that
	// requires the hint.
	LogoutIDTokenHint bool
	// Guard refuses cross-site POSTs to the logout route. Default: only the
	// public URL's origin (or none) may post.
	Guard *security.Guard
}

// Flow serves the login routes and custodian.v1.AuthService.
type Flow struct {
	cfg      Config
	provider *Provider
	sessions *session.Manager
	keys     *keyring.Ring
	logger   *slog.Logger
	now      func() time.Time
	replays  *replayCache
}

// Option configures a Flow.
type Option interface {
	apply(*Flow)
}

type optionFunc func(*Flow)

func (f optionFunc) apply(fl *Flow) { f(fl) }

// WithLogger sets the logger. Default: discard.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(f *Flow) { f.logger = logger })
}

// WithClock sets the clock for login attempts and logout tokens. Default:
// time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(f *Flow) { f.now = now })
}

// NewFlow returns the login flow of provider, creating sessions in sessions
// and sealing login attempts with keys.
func NewFlow(cfg Config, provider *Provider, sessions *session.Manager, keys *keyring.Ring, opts ...Option) *Flow {
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.AppRedirectPath == "" {
		cfg.AppRedirectPath = "/login/callback"
	}
	if cfg.PostLogoutRedirectPath == "" {
		cfg.PostLogoutRedirectPath = "/"
	}
	if cfg.Guard == nil {
		cfg.Guard = security.NewGuard(sessions.CookieName(), security.NewOrigins(cfg.PublicURL, nil))
	}
	f := &Flow{
		cfg:      cfg,
		provider: provider,
		sessions: sessions,
		keys:     keys,
		logger:   slog.New(slog.DiscardHandler),
		now:      time.Now,
	}
	for _, opt := range opts {
		opt.apply(f)
	}
	f.replays = newReplayCache(10000, f.now)
	return f
}

// Handler serves every route under /auth/.
func (f *Flow) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LoginPath, f.serveLogin)
	mux.HandleFunc("GET "+CallbackPath, f.serveCallback)
	mux.HandleFunc("POST "+LogoutPath, f.serveLogoutPost)
	mux.HandleFunc("GET "+LogoutPath, f.serveLogoutGet)
	mux.HandleFunc("POST "+BackchannelPath, f.serveBackchannel)
	mux.HandleFunc("/auth/", func(w http.ResponseWriter, r *http.Request) {
		f.page(w, r, http.StatusNotFound, pageNotFound, "")
	})
	return mux
}

// start begins a login attempt: it returns the provider's authorization URL
// and the cookies to set: deletions of the browser's attempts this one
// replaces (see maxLoginAttempts), then the cookie that binds the new
// attempt to this browser.
func (f *Flow) start(ctx context.Context, header http.Header, redirectPath, returnTo string) (string, []*http.Cookie, error) {
	d, err := f.provider.discover(ctx)
	if err != nil {
		return "", nil, err
	}
	now := f.now()
	st := newLoginState(f.cfg.PublicURL+redirectPath, returnTo, f.sessions.Ref(ctx, header), now)
	cookie, err := sealState(f.keys, st)
	if err != nil {
		return "", nil, err
	}
	cookies := append(pruneStates(f.keys, header, now), cookie)
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(st.Verifier),
		oidc.Nonce(st.Nonce),
	}
	if len(f.provider.cfg.Audiences) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("audience", strings.Join(f.provider.cfg.Audiences, " ")))
	}
	return f.provider.oauth2Config(d, st.RedirectURI).AuthCodeURL(st.State, opts...), cookies, nil
}

// errLoginRefused means the provider or the code refused the login; the
// browser must start again.
var errLoginRefused = errors.New("login: the provider refused the sign-in")

// finish completes a login attempt with the code the provider sent: it
// exchanges the code with the attempt's PKCE verifier, verifies the ID token
// (signature, issuer, audience, expiry, nonce) and creates a new session.
func (f *Flow) finish(ctx context.Context, st loginState, code string) (*http.Cookie, *session.Session, error) {
	if code == "" || len(code) > 2048 {
		return nil, nil, fmt.Errorf("%w: no code", errLoginRefused)
	}
	d, err := f.provider.discover(ctx)
	if err != nil {
		return nil, nil, err
	}
	tok, err := f.provider.oauth2Config(d, st.RedirectURI).Exchange(f.provider.ctx(ctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, nil, fmt.Errorf("%w: code exchange: %w", errLoginRefused, err)
		}
		return nil, nil, fmt.Errorf("login: code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, nil, fmt.Errorf("%w: no ID token", errLoginRefused)
	}
	idToken, err := d.idVerifier.Verify(f.provider.ctx(ctx), raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ID token: %w", errLoginRefused, err)
	}
	if idToken.Nonce != st.Nonce {
		return nil, nil, fmt.Errorf("%w: ID token nonce does not match the login attempt", errLoginRefused)
	}
	// go-oidc does not require sub, but every ID token has one (OpenID
	// Connect Core 1.0 §2); a session must never belong to nobody.
	if idToken.Subject == "" {
		return nil, nil, fmt.Errorf("%w: ID token has no subject", errLoginRefused)
	}
	var claims struct {
		Name    string `json:"name"`
		Email   string `json:"email"`
		Picture string `json:"picture"`
		SID     string `json:"sid"`
	}
	if err := idToken.Claims(&claims); err != nil {
		return nil, nil, fmt.Errorf("%w: ID token claims: %w", errLoginRefused, err)
	}
	user := session.User{Subject: idToken.Subject, Name: claims.Name, Email: claims.Email, Picture: claims.Picture}
	tokens := session.Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, IDToken: raw, AccessExpiry: tok.Expiry}
	cookie, s, err := f.sessions.Create(ctx, user, claims.SID, tokens)
	if err != nil {
		return nil, nil, err
	}
	f.logger.InfoContext(ctx, "signed in", "subject", user.Subject)
	return cookie, s, nil
}

// endPrevious ends the sessions the browser had, if any: the one it had when
// the login started (kept in the attempt) and the one its cookie names now.
// A login always creates a new session, and the old one must not linger.
func (f *Flow) endPrevious(ctx context.Context, st loginState, header http.Header) {
	_ = f.sessions.EndRef(ctx, st.Previous)
	_ = f.sessions.EndRef(ctx, f.sessions.Ref(ctx, header))
}

func (f *Flow) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch target, looped := publicLoginRedirect(f.cfg.PublicURL, r); {
	case target != "":
		noStore(w)
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	case looped:
		f.logger.WarnContext(r.Context(), "login reached the gateway on another host than public_url's after a redirect there; a proxy in front should set X-Forwarded-Host", "host", r.Host)
	}
	authURL, cookies, err := f.start(r.Context(), r.Header, CallbackPath, r.URL.Query().Get("return_to"))
	if err != nil {
		f.logger.ErrorContext(r.Context(), "login could not start", "error", err)
		f.page(w, r, http.StatusBadGateway, pageProviderDown, "")
		return
	}
	for _, c := range cookies {
		http.SetCookie(w, c)
	}
	noStore(w)
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

func (f *Flow) serveCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	st, err := openState(f.keys, r.Header, q.Get("state"), f.now())
	if err != nil {
		f.logger.InfoContext(ctx, "callback without a valid login attempt")
		f.page(w, r, http.StatusBadRequest, pageBadAttempt, "")
		return
	}
	// The attempt is spent whatever happens next.
	http.SetCookie(w, clearState(st.State))
	if e := q.Get("error"); e != "" {
		f.logger.InfoContext(ctx, "provider returned an error", "error", e)
		f.page(w, r, http.StatusForbidden, pageProviderRefused, providerError(e))
		return
	}
	cookie, _, err := f.finish(ctx, st, q.Get("code"))
	if err != nil {
		f.logger.WarnContext(ctx, "sign-in failed", "error", err)
		if errors.Is(err, errLoginRefused) {
			f.page(w, r, http.StatusForbidden, pageLoginFailed, "")
		} else {
			f.page(w, r, http.StatusBadGateway, pageProviderDown, "")
		}
		return
	}
	f.endPrevious(ctx, st, r.Header)
	http.SetCookie(w, cookie)
	// A page that navigates on its own instead of a redirect: the provider
	// started this navigation on another site, and a SameSite=Strict cookie
	// is only sent once a same-site page starts the next one. So the very
	// first page after login already carries the session.
	f.page(w, r, http.StatusOK, pageContinue, st.ReturnTo)
}

// providerError keeps only the standard OAuth error codes of a provider's
// error, never its free text.
func providerError(code string) string {
	switch code {
	case "access_denied", "login_required", "consent_required", "interaction_required",
		"temporarily_unavailable", "server_error", "invalid_request", "invalid_scope":
		return code
	default:
		return "error"
	}
}
