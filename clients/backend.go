package clients

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"connectrpc.com/connect"

	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/internal/tracecontext"
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
	logger     *slog.Logger
	breaker    BreakerSettings
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

// WithLogger sets the logger. Default: discard.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *backendOptions) { o.logger = logger })
}

// WithBreaker sets the circuit breaker's thresholds; zero fields keep the
// defaults of BreakerSettings.
func WithBreaker(s BreakerSettings) Option {
	return optionFunc(func(o *backendOptions) { o.breaker = s })
}

// New returns the Backend that cfg describes; cfg is expected to have passed
// config validation.
func New(cfg config.Backend, opts ...Option) (*Backend, error) {
	o := backendOptions{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.httpClient == nil {
		o.httpClient = NewHTTPClient()
	}
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("backend %q: url %q is not an absolute http(s) URL", cfg.Name, cfg.URL)
	}
	var policy tokenPolicy
	switch cfg.Token {
	case config.TokenNone:
		policy = noToken{}
	case config.TokenUser, "":
		policy = userToken{}
	case config.TokenExchange:
		if cfg.Audience == "" {
			return nil, fmt.Errorf("backend %q: token exchange needs an audience", cfg.Name)
		}
		policy = exchangedToken{audience: cfg.Audience}
	case config.TokenClient:
		if o.creds == nil || o.creds.TokenURL == nil {
			return nil, fmt.Errorf("backend %q: the client token policy needs client credentials", cfg.Name)
		}
		idpClient := o.creds.HTTPClient
		if idpClient == nil {
			idpClient = &http.Client{Timeout: 10 * time.Second}
		}
		policy = &clientTokens{creds: *o.creds, audience: cfg.Audience, httpClient: idpClient}
	default:
		return nil, fmt.Errorf("backend %q: unknown token policy %q", cfg.Name, cfg.Token)
	}
	options := []connect.ClientOption{
		// Backends are near: gzip would cost more CPU than it saves time.
		connect.WithAcceptCompression("gzip", nil, nil),
		connect.WithInterceptors(&outbound{
			backend: cfg.Name,
			timeout: cfg.Timeout,
			policy:  policy,
			breaker: newBreaker(cfg.Name, o.breaker),
			logger:  o.logger,
		}),
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
// request id, trace context, timeout and circuit breaker.
func (b *Backend) ClientOptions() []connect.ClientOption { return b.options }

// outbound decorates every backend call: its own timeout, the bearer token
// of the backend's policy, the request id, the circuit breaker, and one
// renewal of a refused user token. Nothing from the browser's request is
// ever copied onto a backend call.
type outbound struct {
	backend string
	timeout time.Duration
	policy  tokenPolicy
	breaker *breaker
	logger  *slog.Logger
}

func (o *outbound) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		callCtx, cancel := o.prepare(ctx)
		defer cancel()
		token, err := o.decorate(callCtx, req.Header())
		if err != nil {
			return nil, err
		}
		res, err := o.breaker.call(ctx, func() (connect.AnyResponse, error) { return next(callCtx, req) })
		if connect.CodeOf(err) != connect.CodeUnauthenticated || token == "" {
			return res, err
		}
		// The backend refused the user's token: renew it once.
		renewed, ut, acting, renewErr := o.policy.renew(ctx, token)
		if !acting {
			return res, err
		}
		if renewErr != nil {
			return nil, renewErr
		}
		if !idempotent(req.Spec()) {
			// Not safe to send twice; the next call carries the new token.
			return nil, connect.NewError(connect.CodeUnavailable, errors.New(o.backend+" refused the request; try again"))
		}
		req.Header().Set("Authorization", "Bearer "+renewed)
		res, err = o.breaker.call(ctx, func() (connect.AnyResponse, error) { return next(callCtx, req) })
		if connect.CodeOf(err) == connect.CodeUnauthenticated {
			o.logger.WarnContext(ctx, "backend refused a renewed user token", "request_id", requestid.FromContext(ctx),
				"backend", o.backend, "procedure", req.Spec().Procedure)
			return nil, ut.Reject(ctx)
		}
		return res, err
	}
}

func (o *outbound) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		// Streams live as long as the caller's context; only the token and
		// request id are added.
		conn := next(ctx, spec)
		if _, err := o.decorate(ctx, conn.RequestHeader()); err != nil {
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

// decorate sets the bearer token and request id and returns the token.
func (o *outbound) decorate(ctx context.Context, header http.Header) (string, error) {
	token, err := o.policy.token(ctx)
	if err != nil {
		var connectErr *connect.Error
		if errors.As(err, &connectErr) {
			return "", connectErr
		}
		return "", fmt.Errorf("backend %q: %w", o.backend, err)
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	if id := requestid.FromContext(ctx); id != "" {
		header.Set(requestid.Header, id)
	}
	tracecontext.Inject(ctx, header)
	return token, nil
}

// idempotent reports whether a method may be sent twice.
func idempotent(spec connect.Spec) bool {
	return spec.IdempotencyLevel == connect.IdempotencyNoSideEffects || spec.IdempotencyLevel == connect.IdempotencyIdempotent
}

// failedConn is a stream that could not be given its token.
type failedConn struct {
	connect.StreamingClientConn
	err error
}

func (c *failedConn) Send(any) error    { return c.err }
func (c *failedConn) Receive(any) error { return c.err }
