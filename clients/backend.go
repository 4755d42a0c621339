package clients

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/telemetry"
	"github.com/custodian-bff/custodian/internal/tracecontext"
)

// Protocol is the wire protocol a backend speaks.
type Protocol string

// The protocols of [Spec.Protocol].
const (
	ProtocolConnect Protocol = "connect" // Connect protocol (the default)
	ProtocolGRPC    Protocol = "grpc"    // gRPC over HTTP/2
	ProtocolGRPCWeb Protocol = "grpcweb" // gRPC-Web
)

// TokenPolicy says which bearer token a backend's calls carry.
type TokenPolicy string

// The token policies of [Spec.Token].
const (
	TokenUser     TokenPolicy = "user"     // the user's access token (the default)
	TokenExchange TokenPolicy = "exchange" // the user's token exchanged (RFC 8693) for one with Spec.Audience
	TokenClient   TokenPolicy = "client"   // a client-credentials token of the gateway itself
	TokenNone     TokenPolicy = "none"     // no token
)

// Spec describes one backend.
type Spec struct {
	// Name identifies the backend in errors and logs.
	Name string
	// URL is the backend's absolute http or https base URL.
	URL string
	// Protocol is the wire protocol. Default ProtocolConnect.
	Protocol Protocol
	// Token is the token policy. Default TokenUser.
	Token TokenPolicy
	// Audience is the token audience: required for TokenExchange, optional
	// for TokenClient.
	Audience string
	// Timeout bounds one unary call. Default: none but the caller's deadline.
	Timeout time.Duration
}

// Backend is one backend: where it is, which protocol it speaks and which
// token each call carries. Build generated clients from it:
//
//	catalogv1connect.NewCatalogServiceClient(b.Client())
type Backend struct {
	name   string
	client *connect.Client
}

// Option configures a Backend.
type Option interface {
	apply(*backendOptions)
}

type backendOptions struct {
	httpClient *http.Client
	creds      *ClientCredentials
	userTokens func(context.Context) UserTokens
	logger     *slog.Logger
	breaker    BreakerSettings
	codecs     []connect.Codec
	meters     metric.MeterProvider
}

type optionFunc func(*backendOptions)

func (f optionFunc) apply(o *backendOptions) { f(o) }

// WithHTTPClient sets the HTTP client. Default: a new [NewHTTPClient]; pass
// one client to every backend so they share its connection pool.
func WithHTTPClient(c *http.Client) Option {
	return optionFunc(func(o *backendOptions) { o.httpClient = c })
}

// WithClientCredentials sets the gateway's client registration, needed by
// backends with the TokenClient policy. Default: none.
func WithClientCredentials(creds ClientCredentials) Option {
	return optionFunc(func(o *backendOptions) { o.creds = &creds })
}

// WithUserTokens sets where the tokens of the user a call acts for come
// from: tokens returns them for the call's context. Default: none, and calls
// to TokenUser and TokenExchange backends fail with CodeUnauthenticated
// "sign-in required".
func WithUserTokens(tokens func(ctx context.Context) UserTokens) Option {
	return optionFunc(func(o *backendOptions) { o.userTokens = tokens })
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

// WithCodecs puts codecs before connect-go's default binary protobuf and
// JSON codecs, replacing those of the same name. The first codec is the one
// requests are sent with; config-only routes give theirs
// (routes.BackendCodec) to read backend answers undecoded.
func WithCodecs(codecs ...connect.Codec) Option {
	return optionFunc(func(o *backendOptions) { o.codecs = append(o.codecs, codecs...) })
}

// WithMeterProvider sets where the backend's metrics go: call rate, errors
// and duration per backend method (rpc.client.call.duration), circuit
// breaker changes and client-credentials fetches. Default: none recorded.
// Spans need no provider: a call made for a traced browser call gets a
// client span from that call's provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *backendOptions) { o.meters = mp })
}

// New returns the Backend that spec describes.
func New(spec Spec, opts ...Option) (*Backend, error) {
	o := backendOptions{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.httpClient == nil {
		o.httpClient = NewHTTPClient()
	}
	if u, err := url.Parse(spec.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("backend %q: url %q is not an absolute http(s) URL", spec.Name, spec.URL)
	}
	users := userSource(o.userTokens)
	var policy tokenPolicy
	switch spec.Token {
	case TokenNone:
		policy = noToken{}
	case TokenUser, "":
		policy = userToken{users: users}
	case TokenExchange:
		if spec.Audience == "" {
			return nil, fmt.Errorf("backend %q: token exchange needs an audience", spec.Name)
		}
		policy = exchangedToken{users: users, audience: spec.Audience}
	case TokenClient:
		if o.creds == nil || o.creds.TokenURL == nil {
			return nil, fmt.Errorf("backend %q: the client token policy needs client credentials", spec.Name)
		}
		idpClient := o.creds.HTTPClient
		if idpClient == nil {
			idpClient = &http.Client{Timeout: 10 * time.Second}
		}
		policy = newClientTokens(*o.creds, spec.Audience, idpClient, o.meters)
	default:
		return nil, fmt.Errorf("backend %q: unknown token policy %q", spec.Name, spec.Token)
	}
	// Backends are near: compression would cost more CPU than it saves time.
	transportOpts := []connecthttp.Option{connecthttp.WithCompressors()}
	switch spec.Protocol {
	case ProtocolConnect, "":
	case ProtocolGRPC:
		transportOpts = append(transportOpts, connecthttp.WithGRPC())
	case ProtocolGRPCWeb:
		transportOpts = append(transportOpts, connecthttp.WithGRPCWeb())
	default:
		return nil, fmt.Errorf("backend %q: unknown protocol %q", spec.Name, spec.Protocol)
	}
	if len(o.codecs) > 0 {
		// connecthttp keeps the first codec of each name: the defaults stay
		// for the names o.codecs do not have.
		codecs := append(slices.Clone(o.codecs), connectproto.NewBinaryCodec(), connectproto.NewJSONCodec())
		transportOpts = append(transportOpts, connecthttp.WithCodecs(codecs...))
	}
	meters := meterProvider(o.meters)
	metrics, err := newCallMetrics(meters, spec.Protocol, spec.URL)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", spec.Name, err)
	}
	out := &outbound{
		backend: spec.Name,
		timeout: spec.Timeout,
		policy:  policy,
		breaker: newBreaker(spec.Name, o.breaker, meters),
		logger:  o.logger,
		metrics: metrics,
	}
	// Outermost, so its span covers the token and every attempt. It runs
	// only under a sampled span, where it has a span to record: otherwise
	// propagate gives the backend the caller's trace context, and every
	// call's duration is recorded by outbound (callMetrics), from attribute
	// sets built once.
	observe, err := otelconnect.NewClientInterceptor(
		otelconnect.WithTracerProvider(telemetry.CallTracerProvider()),
		otelconnect.WithoutMetrics(),
		otelconnect.WithPropagator(propagation.TraceContext{}),
		otelconnect.WithFilter(func(ctx context.Context, _ connect.Spec) bool {
			return trace.SpanFromContext(ctx).IsRecording()
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("backend %q: telemetry: %w", spec.Name, err)
	}
	client := connect.NewClient(connecthttp.NewTransport(o.httpClient, spec.URL, transportOpts...), observe, propagate, out.intercept)
	return &Backend{name: spec.Name, client: client}, nil
}

// Name returns the backend's name.
func (b *Backend) Name() string { return b.name }

// Client returns the backend's client for generated service clients: it
// speaks the backend's protocol and gives every call its timeout, token,
// request id, trace context and circuit breaker.
func (b *Backend) Client() *connect.Client { return b.client }

// propagate writes the trace context of ctx into a backend call's request
// header unless otelconnect already wrote its own span's.
func propagate(next connect.ClientFunc) connect.ClientFunc {
	return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
		info, ok := connect.CallInfoForClientContext(ctx)
		if !ok {
			ctx, info = connect.NewClientContext(ctx)
		}
		if info.RequestHeader().Get(traceparentHeader) == "" {
			tracecontext.Inject(ctx, info.RequestHeader())
		}
		return next(ctx, spec)
	}
}

// traceparentHeader carries the W3C trace context.
const traceparentHeader = "traceparent"

// meterProvider returns mp, or a no-op provider when it is nil.
func meterProvider(mp metric.MeterProvider) metric.MeterProvider {
	if mp == nil {
		return noop.NewMeterProvider()
	}
	return mp
}
