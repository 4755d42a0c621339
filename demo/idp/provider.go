// Package idp is a strict, in-memory OpenID Connect provider for the demo and
// for tests. Not for production.
//
// Its protocol core is github.com/ory/fosite: authorization code flow with
// mandatory PKCE (S256), refresh token rotation, client credentials, token
// exchange (RFC 8693), revocation (RFC 7009) and introspection. Access tokens
// are RS256 JWTs that backends verify against the JWKS. On top it offers a
// login form, RP-initiated logout and back-channel logout.
package idp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/hmac"
)

// authorizeCodeLifetime bounds the time between login and code exchange.
const authorizeCodeLifetime = 5 * time.Minute

// idTokenLifetime is how long ID tokens are valid.
const idTokenLifetime = time.Hour

// Provider is an OpenID Connect provider serving every endpoint under its
// issuer URL's path. Create it with [New]; it is safe for concurrent use.
type Provider struct {
	issuer              string
	basePath            string // the issuer URL's path, under which every endpoint lives
	accessTokenLifetime time.Duration
	logger              *slog.Logger
	httpClient          *http.Client
	key                 *signingKey
	clients             map[string]Client
	users               map[string]User // by username
	defaultUsers        bool            // the login form then mentions the demo accounts
	store               *store
	sessions            *sessions
	pages               *pages
	oauth2              fosite.OAuth2Provider

	grantsMu sync.Mutex
	grants   map[string]int64 // successful token responses by grant type
}

// New returns a provider for issuer, an absolute http(s) URL such as
// "http://127.0.0.1:8080/demo/idp". A trailing slash is dropped. Each
// provider has a new 2048-bit RSA signing key.
func New(issuer string, opts ...Option) (*Provider, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("idp: issuer: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("idp: issuer %q is not an absolute http(s) URL without query, fragment or user info", issuer)
	}
	o := newOptions(opts)
	if o.accessTokenLifetime < time.Second {
		return nil, fmt.Errorf("idp: access token lifetime %v is shorter than 1s", o.accessTokenLifetime)
	}
	if o.refreshTokenLifetime < time.Second {
		return nil, fmt.Errorf("idp: refresh token lifetime %v is shorter than 1s", o.refreshTokenLifetime)
	}
	clients, err := validateClients(o.clients)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	users, err := validateUsers(o.users)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	globalSecret, err := randomSecret(32)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	pg, err := newPages()
	if err != nil {
		return nil, fmt.Errorf("idp: parse pages: %w", err)
	}
	p := &Provider{
		issuer:              issuer,
		basePath:            u.EscapedPath(),
		accessTokenLifetime: o.accessTokenLifetime,
		logger:              o.logger,
		httpClient:          o.httpClient,
		key:                 key,
		clients:             clients,
		users:               users,
		defaultUsers:        !o.usersSet,
		store:               newStore(clients),
		sessions:            newSessions(),
		pages:               pg,
		grants:              make(map[string]int64),
	}
	p.oauth2 = p.compose(globalSecret, o)
	return p, nil
}

// compose builds the fosite provider: strict settings and only the grants
// this provider offers.
func (p *Provider) compose(globalSecret []byte, o *options) fosite.OAuth2Provider {
	config := &fosite.Config{
		AccessTokenLifespan:            o.accessTokenLifetime,
		RefreshTokenLifespan:           o.refreshTokenLifetime,
		AuthorizeCodeLifespan:          authorizeCodeLifetime,
		IDTokenLifespan:                idTokenLifetime,
		IDTokenIssuer:                  p.issuer,
		AccessTokenIssuer:              p.issuer,
		TokenURL:                       p.issuer + "/token",
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.ExactAudienceMatchingStrategy,
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		GlobalSecret:                   globalSecret,
		ClientSecretsHasher:            secretHasher{},
		SendDebugMessagesToClients:     false,
		RefreshTokenScopes:             []string{"offline_access"},
	}
	strategy := &compose.CommonStrategy{
		CoreStrategy: &accessTokenStrategy{
			HMACSHAStrategy: oauth2.NewHMACSHAStrategy(&hmac.HMACStrategy{Config: config}, config),
			key:             p.key,
			issuer:          p.issuer,
			lifetime:        o.accessTokenLifetime,
		},
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: p.key.signer, Config: config},
		Signer:                     p.key.signer,
	}
	return compose.Compose(config, p.store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
		p.tokenExchangeFactory,
	)
}

// Issuer returns the issuer URL, the iss claim of every token.
func (p *Provider) Issuer() string { return p.issuer }

// JWKSURL returns the URL of the public key set.
func (p *Provider) JWKSURL() string { return p.issuer + "/jwks" }

// GrantCount returns how many token requests of grantType were answered
// successfully, such as "refresh_token".
func (p *Provider) GrantCount(grantType string) int64 {
	p.grantsMu.Lock()
	defer p.grantsMu.Unlock()
	return p.grants[grantType]
}

// LiveSessions returns how many sign-ins of subject are live at the
// provider: not yet ended by an RP-initiated or back-channel logout.
func (p *Provider) LiveSessions(subject string) int {
	return p.sessions.count(subject)
}

func (p *Provider) countGrant(grantType string) {
	p.grantsMu.Lock()
	defer p.grantsMu.Unlock()
	p.grants[grantType]++
}

// ServeHTTP serves the provider's endpoints under the issuer URL's path and
// answers 404 elsewhere. Mount it with mux.Handle("/demo/idp/", p).
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), p.basePath)
	if !ok {
		http.NotFound(w, r)
		return
	}
	type route struct {
		handler func(http.ResponseWriter, *http.Request)
		methods []string
	}
	var rt route
	switch rest {
	case "/.well-known/openid-configuration":
		rt = route{p.handleDiscovery, []string{http.MethodGet, http.MethodHead}}
	case "/jwks":
		rt = route{p.handleJWKS, []string{http.MethodGet, http.MethodHead}}
	case "/authorize":
		rt = route{p.handleAuthorize, []string{http.MethodGet, http.MethodPost}}
	case "/token":
		rt = route{p.handleToken, []string{http.MethodPost}}
	case "/userinfo":
		rt = route{p.handleUserinfo, []string{http.MethodGet, http.MethodPost}}
	case "/revoke":
		rt = route{p.handleRevoke, []string{http.MethodPost}}
	case "/introspect":
		rt = route{p.handleIntrospect, []string{http.MethodPost}}
	case "/end-session":
		rt = route{p.handleEndSession, []string{http.MethodGet, http.MethodPost}}
	default:
		http.NotFound(w, r)
		return
	}
	for _, m := range rt.methods {
		if r.Method == m {
			rt.handler(w, r)
			return
		}
	}
	w.Header().Set("Allow", strings.Join(rt.methods, ", "))
	http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
}

// maxFormBytes bounds request bodies; OAuth requests are small.
const maxFormBytes = 64 << 10

// limitBody caps the request body before fosite or the form parser reads it.
func limitBody(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
}

// logRequestError logs a refused protocol request. Only the OAuth error code
// and fosite's debug text are logged; fosite never puts tokens there.
func (p *Provider) logRequestError(ctx context.Context, msg string, err error, attrs ...any) {
	rfc := fosite.ErrorToRFC6749Error(err)
	attrs = append(attrs, "error", rfc.ErrorField, "hint", rfc.HintField)
	p.logger.InfoContext(ctx, msg, attrs...)
}
