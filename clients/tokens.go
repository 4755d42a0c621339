package clients

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// UserTokens hands out valid access tokens of the signed-in user. The session
// layer puts one into the request context with [WithUserTokens]; aggregator
// code never handles tokens itself.
type UserTokens interface {
	// AccessToken returns the session's access token, refreshed if needed.
	AccessToken(ctx context.Context) (string, error)
	// ExchangedToken returns a token for audience obtained by RFC 8693
	// token exchange from the session's access token.
	ExchangedToken(ctx context.Context, audience string) (string, error)
}

type userTokensKey struct{}

// WithUserTokens returns a copy of ctx whose backend calls act for the user
// whose tokens ut holds.
func WithUserTokens(ctx context.Context, ut UserTokens) context.Context {
	return context.WithValue(ctx, userTokensKey{}, ut)
}

// UserTokensFromContext returns the user's tokens carried by ctx, if any.
func UserTokensFromContext(ctx context.Context) (UserTokens, bool) {
	ut, ok := ctx.Value(userTokensKey{}).(UserTokens)
	return ut, ok && ut != nil
}

// errNoUser is returned for user-token calls made without a signed-in user.
func errNoUser() error {
	return connect.NewError(connect.CodeUnauthenticated, errors.New("sign-in required"))
}

// tokenFunc returns the bearer token for one call, "" for none.
type tokenFunc func(ctx context.Context) (string, error)

func noToken(context.Context) (string, error) { return "", nil }

func userToken(ctx context.Context) (string, error) {
	ut, ok := UserTokensFromContext(ctx)
	if !ok {
		return "", errNoUser()
	}
	return ut.AccessToken(ctx)
}

func exchangedToken(audience string) tokenFunc {
	return func(ctx context.Context) (string, error) {
		ut, ok := UserTokensFromContext(ctx)
		if !ok {
			return "", errNoUser()
		}
		return ut.ExchangedToken(ctx, audience)
	}
}

// ClientCredentials is the gateway's own OAuth client registration, used for
// backends whose token policy is "client".
type ClientCredentials struct {
	// TokenURL returns the provider's token endpoint; it may discover it on
	// first use, so the gateway starts even while the provider is down.
	TokenURL     func(context.Context) (string, error)
	ClientID     string
	ClientSecret string
	// HTTPClient calls the provider. Default: a client with a 10s timeout.
	HTTPClient *http.Client
}

// clientTokens caches the gateway's client-credentials token for one
// audience and shares it between calls until 30s before it expires.
type clientTokens struct {
	creds      ClientCredentials
	audience   string
	httpClient *http.Client

	mu    sync.Mutex
	token *oauth2.Token
}

// token returns a cached token or fetches a new one within ctx.
func (c *clientTokens) get(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != nil && time.Until(c.token.Expiry) > 30*time.Second {
		return c.token.AccessToken, nil
	}
	tokenURL, err := c.creds.TokenURL(ctx)
	if err != nil {
		return "", fmt.Errorf("client credentials: token endpoint: %w", err)
	}
	cfg := clientcredentials.Config{
		ClientID:     c.creds.ClientID,
		ClientSecret: c.creds.ClientSecret,
		TokenURL:     tokenURL,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if c.audience != "" {
		cfg.EndpointParams = url.Values{"audience": {c.audience}}
	}
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, c.httpClient))
	if err != nil {
		return "", fmt.Errorf("client credentials for audience %q: %w", c.audience, err)
	}
	c.token = tok
	return tok.AccessToken, nil
}
