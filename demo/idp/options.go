package idp

import (
	"log/slog"
	"net/http"
	"time"
)

// Option configures a [Provider] created by [New].
type Option interface {
	apply(*options)
}

// WithLogger sets the logger for the provider's diagnostics. The default
// discards everything; nil keeps the default. Tokens and secrets are never
// logged.
func WithLogger(logger *slog.Logger) Option {
	return loggerOption{logger: logger}
}

// WithAccessTokenLifetime sets how long access tokens are valid. The default
// is 5 minutes; it must be at least one second.
func WithAccessTokenLifetime(d time.Duration) Option {
	return accessTokenLifetimeOption(d)
}

// WithRefreshTokenLifetime sets how long refresh tokens are valid. The
// default is 24 hours; it must be at least one second.
func WithRefreshTokenLifetime(d time.Duration) Option {
	return refreshTokenLifetimeOption(d)
}

// WithClient registers an OAuth 2.0 client. It may be given several times;
// client IDs must be unique. The default is no clients.
func WithClient(c Client) Option {
	return clientOption{client: c}
}

// WithUsers sets the users who can sign in, replacing the default
// [DefaultUsers].
func WithUsers(users ...User) Option {
	return usersOption{users: users}
}

// WithHTTPClient sets the client used for back-channel logout deliveries.
// The default has a 5 second timeout and does not follow redirects; nil keeps
// the default.
func WithHTTPClient(client *http.Client) Option {
	return httpClientOption{client: client}
}

// options holds the settings gathered from Options.
type options struct {
	logger               *slog.Logger
	accessTokenLifetime  time.Duration
	refreshTokenLifetime time.Duration
	clients              []Client
	users                []User
	usersSet             bool
	httpClient           *http.Client
}

func newOptions(opts []Option) *options {
	o := &options{
		logger:               slog.New(slog.DiscardHandler),
		accessTokenLifetime:  5 * time.Minute,
		refreshTokenLifetime: 24 * time.Hour,
		httpClient: &http.Client{
			Timeout: 5 * time.Second,
			// A logout receiver answers directly; a redirect is a failed delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(o)
		}
	}
	if !o.usersSet {
		o.users = DefaultUsers()
	}
	return o
}

type loggerOption struct{ logger *slog.Logger }

func (l loggerOption) apply(o *options) {
	if l.logger != nil {
		o.logger = l.logger
	}
}

type accessTokenLifetimeOption time.Duration

func (d accessTokenLifetimeOption) apply(o *options) { o.accessTokenLifetime = time.Duration(d) }

type refreshTokenLifetimeOption time.Duration

func (d refreshTokenLifetimeOption) apply(o *options) { o.refreshTokenLifetime = time.Duration(d) }

type clientOption struct{ client Client }

func (c clientOption) apply(o *options) { o.clients = append(o.clients, c.client) }

type usersOption struct{ users []User }

func (u usersOption) apply(o *options) {
	o.users = append([]User(nil), u.users...)
	o.usersSet = true
}

type httpClientOption struct{ client *http.Client }

func (h httpClientOption) apply(o *options) {
	if h.client != nil {
		o.httpClient = h.client
	}
}
