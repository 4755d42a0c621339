package clients

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// UserTokens hands out valid access tokens of the signed-in user. The
// session layer provides them through [WithUserTokens]; aggregator code never
// handles tokens itself.
type UserTokens interface {
	// AccessToken returns the session's access token, refreshed if needed.
	AccessToken(ctx context.Context) (string, error)
	// ExchangedToken returns a token for audience obtained by RFC 8693
	// token exchange from the session's access token.
	ExchangedToken(ctx context.Context, audience string) (string, error)
	// RenewAccessToken returns an access token other than rejected, which
	// a backend just refused.
	RenewAccessToken(ctx context.Context, rejected string) (string, error)
	// RenewExchangedToken is RenewAccessToken for an exchanged token.
	RenewExchangedToken(ctx context.Context, audience, rejected string) (string, error)
	// Reject ends the session because a backend kept refusing its tokens,
	// and returns the error for the browser.
	Reject(ctx context.Context) error
}

// userSource returns the tokens of the user a call acts for; nil when no
// [WithUserTokens] was given.
type userSource func(context.Context) UserTokens

// get returns the user's tokens for ctx, or the error of a call without a
// signed-in user.
func (s userSource) get(ctx context.Context) (UserTokens, error) {
	if s == nil {
		return nil, errNoUser()
	}
	ut := s(ctx)
	if ut == nil {
		return nil, errNoUser()
	}
	return ut, nil
}

// errNoUser is returned for user-token calls made without a signed-in user.
func errNoUser() error {
	return connect.NewError(connect.CodeUnauthenticated, "sign-in required")
}

// tokenPolicy gets the bearer token of one call ("" for none) and, for
// the user's tokens, a renewed one after a backend refused it.
type tokenPolicy interface {
	token(ctx context.Context) (string, error)
	// renew returns a token other than rejected and the user's tokens, or
	// ok false when the policy does not act for a user.
	renew(ctx context.Context, rejected string) (token string, ut UserTokens, ok bool, err error)
}

type noToken struct{}

func (noToken) token(context.Context) (string, error) { return "", nil }
func (noToken) renew(context.Context, string) (string, UserTokens, bool, error) {
	return "", nil, false, nil
}

type userToken struct{ users userSource }

func (u userToken) token(ctx context.Context) (string, error) {
	ut, err := u.users.get(ctx)
	if err != nil {
		return "", err
	}
	return ut.AccessToken(ctx)
}

func (u userToken) renew(ctx context.Context, rejected string) (string, UserTokens, bool, error) {
	ut, err := u.users.get(ctx)
	if err != nil {
		return "", nil, false, err
	}
	tok, err := ut.RenewAccessToken(ctx, rejected)
	return tok, ut, true, err
}

type exchangedToken struct {
	users    userSource
	audience string
}

func (e exchangedToken) token(ctx context.Context) (string, error) {
	ut, err := e.users.get(ctx)
	if err != nil {
		return "", err
	}
	return ut.ExchangedToken(ctx, e.audience)
}

func (e exchangedToken) renew(ctx context.Context, rejected string) (string, UserTokens, bool, error) {
	ut, err := e.users.get(ctx)
	if err != nil {
		return "", nil, false, err
	}
	tok, err := ut.RenewExchangedToken(ctx, e.audience, rejected)
	return tok, ut, true, err
}

// ClientCredentials is the gateway's own OAuth client registration, used for
// backends whose token policy is TokenClient.
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
	fetches    metric.Float64Histogram

	mu     sync.Mutex
	cached *oauth2.Token
}

func newClientTokens(creds ClientCredentials, audience string, httpClient *http.Client, mp metric.MeterProvider) *clientTokens {
	fetches, _ := telemetry.Meter(mp).Float64Histogram("custodian.token.client_credentials.duration",
		metric.WithUnit("s"), telemetry.DurationBuckets,
		metric.WithDescription("Client-credentials token requests to the provider, by outcome (ok, failed)."))
	return &clientTokens{creds: creds, audience: audience, httpClient: httpClient, fetches: fetches}
}

func (c *clientTokens) renew(context.Context, string) (string, UserTokens, bool, error) {
	return "", nil, false, nil
}

// token returns a cached token or fetches a new one within ctx.
func (c *clientTokens) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached != nil && time.Until(c.cached.Expiry) > 30*time.Second {
		return c.cached.AccessToken, nil
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
	ctx, span := telemetry.Start(ctx, "custodian.client_credentials")
	start := time.Now()
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, c.httpClient))
	telemetry.End(span, err)
	outcome := telemetry.OutcomeOK
	if err != nil {
		outcome = telemetry.OutcomeFailed
	}
	c.fetches.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(telemetry.Outcome.String(outcome)))
	if err != nil {
		return "", fmt.Errorf("client credentials for audience %q: %w", c.audience, err)
	}
	c.cached = tok
	return tok.AccessToken, nil
}
