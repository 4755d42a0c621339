package clients

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"connectrpc.com/connect"

	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/config"
)

// Backend is one configured backend: where it is, which protocol it speaks
// and which token each call carries. Build generated clients from it:
//
//	catalogv1connect.NewCatalogServiceClient(b.HTTPClient(), b.URL(), b.ClientOptions()...)
type Backend struct {
	name       string
	url        string
	httpClient connect.HTTPClient
	options    []connect.ClientOption
}

// Option configures a Backend.
type Option interface {
	apply(*backendOptions)
}

type backendOptions struct {
	httpClient *http.Client
	creds      *ClientCredentials
}

type optionFunc func(*backendOptions)

func (f optionFunc) apply(o *backendOptions) { f(o) }

// WithHTTPClient sets the HTTP client. Default: a new [NewHTTPClient]; pass
// one client to every backend so they share its connection pool.
func WithHTTPClient(c *http.Client) Option {
	return optionFunc(func(o *backendOptions) { o.httpClient = c })
}

// WithClientCredentials sets the gateway's client registration, needed by
// backends with the "client" token policy. Default: none.
func WithClientCredentials(creds ClientCredentials) Option {
	return optionFunc(func(o *backendOptions) { o.creds = &creds })
}

// New returns the Backend that cfg describes; cfg is expected to have passed
// config validation.
func New(cfg config.Backend, opts ...Option) (*Backend, error) {
	var o backendOptions
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.httpClient == nil {
		o.httpClient = NewHTTPClient()
	}
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("backend %q: url %q is not an absolute http(s) URL", cfg.Name, cfg.URL)
	}
	var token tokenFunc
	switch cfg.Token {
	case config.TokenNone:
		token = noToken
	case config.TokenUser, "":
		token = userToken
	case config.TokenExchange:
		if cfg.Audience == "" {
			return nil, fmt.Errorf("backend %q: token exchange needs an audience", cfg.Name)
		}
		token = exchangedToken(cfg.Audience)
	case config.TokenClient:
		if o.creds == nil || o.creds.TokenURL == nil {
			return nil, fmt.Errorf("backend %q: the client token policy needs client credentials", cfg.Name)
		}
		idpClient := o.creds.HTTPClient
		if idpClient == nil {
			idpClient = &http.Client{Timeout: 10 * time.Second}
		}
		token = (&clientTokens{creds: *o.creds, audience: cfg.Audience, httpClient: idpClient}).get
	default:
		return nil, fmt.Errorf("backend %q: unknown token policy %q", cfg.Name, cfg.Token)
	}
	options := []connect.ClientOption{
		connect.WithInterceptors(&outbound{backend: cfg.Name, timeout: cfg.Timeout, token: token}),
	}
	switch cfg.Protocol {
	case config.ProtocolConnect, "":
	case config.ProtocolGRPC:
		options = append(options, connect.WithGRPC())
	case config.ProtocolGRPCWeb:
		options = append(options, connect.WithGRPCWeb())
	default:
		return nil, fmt.Errorf("backend %q: unknown protocol %q", cfg.Name, cfg.Protocol)
	}
	return &Backend{name: cfg.Name, url: cfg.URL, httpClient: o.httpClient, options: options}, nil
}

// Name returns the backend's configured name.
func (b *Backend) Name() string { return b.name }

// URL returns the backend's base URL.
func (b *Backend) URL() string { return b.url }

// HTTPClient returns the HTTP client for generated clients.
func (b *Backend) HTTPClient() connect.HTTPClient { return b.httpClient }

// ClientOptions returns the options for generated clients: protocol, token,
// request id and timeout.
func (b *Backend) ClientOptions() []connect.ClientOption { return b.options }

// outbound decorates every backend call: its own timeout, the bearer token
// of the backend's policy, and the request id. Nothing else from the browser's
// request is ever copied onto a backend call.
type outbound struct {
	backend string
	timeout time.Duration
	token   tokenFunc
}

func (o *outbound) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, cancel := o.prepare(ctx)
		defer cancel()
		if err := o.decorate(ctx, req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (o *outbound) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		// Streams live as long as the caller's context; only the token and
		// request id are added.
		conn := next(ctx, spec)
		if err := o.decorate(ctx, conn.RequestHeader()); err != nil {
			return &failedConn{StreamingClientConn: conn, err: err}
		}
		return conn
	}
}

func (o *outbound) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (o *outbound) prepare(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.timeout > 0 {
		return context.WithTimeout(ctx, o.timeout)
	}
	return ctx, func() {}
}

func (o *outbound) decorate(ctx context.Context, header http.Header) error {
	token, err := o.token(ctx)
	if err != nil {
		var connectErr *connect.Error
		if errors.As(err, &connectErr) {
			return connectErr
		}
		return fmt.Errorf("backend %q: %w", o.backend, err)
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	if id := requestid.FromContext(ctx); id != "" {
		header.Set(requestid.Header, id)
	}
	return nil
}

// failedConn is a stream that could not be given its token.
type failedConn struct {
	connect.StreamingClientConn
	err error
}

func (c *failedConn) Send(any) error    { return c.err }
func (c *failedConn) Receive(any) error { return c.err }
