// Package login is the gateway's OpenID Connect relying party: the login,
// callback, logout and back-channel logout routes, the API-driven login for
// single-page apps (custodian.v1.AuthService), and token refresh. It uses
// golang.org/x/oauth2 for the protocol and github.com/coreos/go-oidc/v3 to
// verify ID and logout tokens.
package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/custodian-bff/custodian/server/session"
)

// ProviderConfig is the gateway's registration with its provider.
type ProviderConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes asked for at login; they must include "openid".
	Scopes []string
	// Audiences asked for at login with the "audience" parameter, for
	// backends that take the user's token as it is. None by default.
	Audiences []string
}

// Provider is the OpenID Connect provider as the gateway sees it. Its
// metadata is discovered on first use and kept; a failed discovery is tried
// again by the next caller, so the gateway starts while the provider is down.
type Provider struct {
	cfg    ProviderConfig
	client *http.Client

	mu         sync.Mutex
	discovered *discovered
}

// discovered is what discovery yields.
type discovered struct {
	provider      *oidc.Provider
	endpoint      oauth2.Endpoint
	idVerifier    *oidc.IDTokenVerifier
	revocationURL string
	endSessionURL string
	// sessionIDs: the provider says it names its sessions with the sid
	// claim (back- or front-channel logout with sessions), so a sid
	// identifies the session to end at its end-session endpoint.
	sessionIDs bool
}

// NewProvider returns the provider cfg describes; client makes every call to
// it (nil means a client with a 10 second timeout).
func NewProvider(cfg ProviderConfig, client *http.Client) *Provider {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Provider{cfg: cfg, client: client}
}

func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.discovered != nil {
		return p.discovered, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("login: discovery of %s: %w", p.cfg.Issuer, err)
	}
	var meta struct {
		RevocationEndpoint        string `json:"revocation_endpoint"`
		EndSessionEndpoint        string `json:"end_session_endpoint"`
		BackchannelLogoutSession  bool   `json:"backchannel_logout_session_supported"`
		FrontchannelLogoutSession bool   `json:"frontchannel_logout_session_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("login: discovery of %s: %w", p.cfg.Issuer, err)
	}
	endpoint := op.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	p.discovered = &discovered{
		provider:      op,
		endpoint:      endpoint,
		idVerifier:    op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID}),
		revocationURL: meta.RevocationEndpoint,
		endSessionURL: meta.EndSessionEndpoint,
		sessionIDs:    meta.BackchannelLogoutSession || meta.FrontchannelLogoutSession,
	}
	return p.discovered, nil
}

// ctx returns ctx with the provider's HTTP client for x/oauth2 and go-oidc.
func (p *Provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.client)
}

// oauth2Config returns the client configuration for redirectURL.
func (p *Provider) oauth2Config(d *discovered, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		Endpoint:     d.endpoint,
		RedirectURL:  redirectURL,
		Scopes:       p.cfg.Scopes,
	}
}

// TokenURL returns the provider's token endpoint.
func (p *Provider) TokenURL(ctx context.Context) (string, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return d.endpoint.TokenURL, nil
}

// Refresh redeems a refresh token. A refusal by the provider (invalid_grant)
// wraps session.ErrRefreshRejected; outages and misconfiguration do not, so
// they keep the session.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (session.Tokens, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return session.Tokens{}, err
	}
	tok, err := p.oauth2Config(d, "").TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return session.Tokens{}, fmt.Errorf("%w: %w", session.ErrRefreshRejected, err)
		}
		return session.Tokens{}, fmt.Errorf("login: refresh: %w", err)
	}
	t := session.Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, AccessExpiry: tok.Expiry}
	// A renewed ID token is kept only if it verifies; the old one still
	// serves as the logout hint (with Config.LogoutIDTokenHint) otherwise.
	if raw, ok := tok.Extra("id_token").(string); ok && raw != "" {
		if _, err := d.idVerifier.Verify(p.ctx(ctx), raw); err == nil {
			t.IDToken = raw
		}
	}
	return t, nil
}

// Token exchange (RFC 8693) parameters.
const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// Exchange obtains a token for audience from the user's access token by
// RFC 8693 token exchange. A refusal of the subject token (invalid_grant)
// wraps session.ErrRefreshRejected.
func (p *Provider) Exchange(ctx context.Context, subjectToken, audience string) (session.Tokens, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return session.Tokens{}, err
	}
	// x/oauth2's client-credentials client lets grant_type be replaced;
	// it then posts a token exchange with the client's own authentication.
	cc := clientcredentials.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		TokenURL:     d.endpoint.TokenURL,
		AuthStyle:    oauth2.AuthStyleInHeader,
		EndpointParams: url.Values{
			"grant_type":         {grantTokenExchange},
			"subject_token":      {subjectToken},
			"subject_token_type": {tokenTypeAccessToken},
			"audience":           {audience},
		},
	}
	tok, err := cc.Token(p.ctx(ctx))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return session.Tokens{}, fmt.Errorf("%w: token exchange: %w", session.ErrRefreshRejected, err)
		}
		return session.Tokens{}, fmt.Errorf("login: token exchange for %q: %w", audience, err)
	}
	return session.Tokens{AccessToken: tok.AccessToken, AccessExpiry: tok.Expiry}, nil
}

// Revoke revokes refreshToken at the provider (RFC 7009), where the
// provider has a revocation endpoint. It makes the Provider a
// session.Revoker, so "sign out everywhere" revokes the refresh tokens of
// the sessions it ends.
func (p *Provider) Revoke(ctx context.Context, refreshToken string) error {
	d, err := p.discover(ctx)
	if err != nil {
		return err
	}
	return p.revoke(ctx, d, refreshToken)
}

var _ session.Revoker = (*Provider)(nil)

// revoke revokes a refresh token (RFC 7009) where the provider supports it.
func (p *Provider) revoke(ctx context.Context, d *discovered, refreshToken string) error {
	if d.revocationURL == "" || refreshToken == "" {
		return nil
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.revocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("login: revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.cfg.ClientSecret))
	res, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("login: revoke: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("login: revoke: provider answered %s", res.Status)
	}
	return nil
}
