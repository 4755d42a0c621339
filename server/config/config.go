// Package config loads and validates Custodian's YAML configuration file.
//
// A configuration is read with [Load] (or [Parse] for bytes already in
// memory), which decodes the YAML strictly, applies defaults, reads the
// secrets it refers to and validates the result. Configurations built in
// code are checked with [Config.Validate]. See docs/config.md for every
// field, its default and its constraints.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Backend protocols: how the gateway talks to a backend.
const (
	ProtocolConnect = "connect" // Connect protocol (the default)
	ProtocolGRPC    = "grpc"    // gRPC over HTTP/2
	ProtocolGRPCWeb = "grpcweb" // gRPC-Web
)

// Token policies: which access token, if any, the gateway attaches to a
// backend call.
const (
	TokenUser     = "user"     // the user's access token (the default)
	TokenExchange = "exchange" // the user's token exchanged (RFC 8693) for one with Backend.Audience
	TokenClient   = "client"   // a client-credentials token of the gateway itself
	TokenNone     = "none"     // no token
)

// SameSite values for the session cookie. "none" is not offered: the session
// cookie is never needed on cross-site requests.
const (
	SameSiteStrict = "strict" // the default
	SameSiteLax    = "lax"
)

// Session stores.
const (
	StoreMemory = "memory" // in-process, lost on restart (the default)
	StoreRedis  = "redis"  // shared between gateway instances
)

// Environment variables read by [Load] and [Parse]. Each one, when set and
// non-empty, takes precedence over the corresponding file in the
// configuration.
const (
	// EnvOIDCClientSecret holds the OIDC client secret; it wins over
	// oidc.client_secret_file.
	EnvOIDCClientSecret = "CUSTODIAN_OIDC_CLIENT_SECRET"
	// EnvSessionKeys holds comma-separated base64 session keys, the first
	// one used for encryption; it wins over session.keys_file.
	EnvSessionKeys = "CUSTODIAN_SESSION_KEYS"
	// EnvRedisPassword holds the Redis password; it wins over a password
	// in session.redis_url.
	EnvRedisPassword = "CUSTODIAN_REDIS_PASSWORD"
)

// maxFileSize bounds the configuration file: real ones are a few KiB, and the
// bound keeps a mistaken path (a log file, a binary) from being decoded.
const maxFileSize = 1 << 20

// Config is Custodian's configuration. Zero values mean "use the default";
// [Config.ApplyDefaults] fills them in.
type Config struct {
	// Listen is the host:port the gateway listens on. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// PublicURL is the origin browsers use to reach the gateway, such as
	// https://app.example.com. It is required and has no path; http is
	// allowed only for localhost, 127.0.0.1 and [::1].
	PublicURL string `yaml:"public_url"`
	// TLS, when set, makes the gateway serve HTTPS itself. When nil, TLS
	// is expected to be terminated in front of it.
	TLS *TLS `yaml:"tls"`
	// Server holds HTTP server limits and timeouts.
	Server Server `yaml:"server"`
	// OIDC describes the OpenID Connect provider and this client.
	OIDC OIDC `yaml:"oidc"`
	// Session configures the session cookie and session storage.
	Session Session `yaml:"session"`
	// CORS lists other origins allowed to call the gateway with the session
	// cookie.
	CORS CORS `yaml:"cors"`
	// Backends are the services calls are forwarded to. At least one is
	// required.
	Backends []Backend `yaml:"backends"`
	// RateLimits bounds how fast clients may call the gateway.
	RateLimits RateLimits `yaml:"rate_limits"`
	// Routes serve backend methods to browsers under a public schema,
	// without code: see docs/routes.md. Default none.
	Routes Routes `yaml:"routes"`
	// Telemetry says what the gateway tells its operators: traces, metrics
	// and the access log (docs/operations.md).
	Telemetry Telemetry `yaml:"telemetry"`
}

// Telemetry configures traces, metrics and the access log.
type Telemetry struct {
	// AccessLog writes one line per browser-facing call (method, code,
	// duration, request and trace id, backends called, session state).
	// Default (nil): on, as observe.WithAccessLog says.
	AccessLog *bool `yaml:"access_log"`
	// Traces exports spans with OTLP.
	Traces Traces `yaml:"traces"`
	// Admin is a listener of its own for /metrics (Prometheus) and, when
	// asked, net/http/pprof; never the public port. Default: off.
	Admin Admin `yaml:"admin"`
}

// The trace exporters of [Traces.Exporter] and the OTLP protocols of
// [Traces.Protocol].
const (
	ExporterOTLP     = "otlp"
	ExporterNone     = "none"
	OTLPGRPC         = "grpc"
	OTLPHTTPProtobuf = "http/protobuf"
)

// Traces configures span export. Each field left empty takes the standard
// OpenTelemetry environment variable named next to it, then the default.
type Traces struct {
	// Exporter is "otlp" or "none" (OTEL_TRACES_EXPORTER). Default none:
	// spans are made, so backends get a trace context, but not exported.
	Exporter string `yaml:"exporter"`
	// Protocol is "grpc" or "http/protobuf"
	// (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL).
	// Default http/protobuf.
	Protocol string `yaml:"protocol"`
	// Endpoint is the collector's URL, such as http://collector:4318 for
	// http/protobuf (spans go to its /v1/traces unless the URL has a path)
	// or http://collector:4317 for grpc (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
	// OTEL_EXPORTER_OTLP_ENDPOINT). Default: the exporter's, on localhost.
	// Headers, TLS and timeouts come from the other OTEL_EXPORTER_OTLP_*
	// variables.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces kept, from 0 to 1
	// (OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG). Default 1. A
	// continued trace (server.trust_trace_context) follows its caller's
	// sampling decision.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// Admin configures the admin listener.
type Admin struct {
	// Listen is its host:port, such as 127.0.0.1:9090. Default: none, and
	// no admin listener.
	Listen string `yaml:"listen"`
	// Pprof serves net/http/pprof under /debug/pprof/ on it. Default false.
	Pprof bool `yaml:"pprof"`
}

// TLS names the certificate and key the gateway serves HTTPS with. Relative
// paths in a file are resolved against the configuration file's directory.
type TLS struct {
	CertFile string `yaml:"cert_file"` // PEM certificate chain, required
	KeyFile  string `yaml:"key_file"`  // PEM private key, required
}

// Server holds HTTP server limits and timeouts.
type Server struct {
	// ReadHeaderTimeout bounds reading request headers. Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. Default 0 (none), so that
	// server streams are not cut off.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds request headers. Default 16384; 1 KiB to 1 MiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request body. A larger one is answered as too
	// large (413, invalid_argument), never as rate-limited. Default
	// 1048576; 1 KiB to 64 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxConcurrentStreams bounds HTTP/2 streams per connection. Default
	// 100; 1 to 1000.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`
	// ShutdownTimeout bounds a graceful shutdown. Default 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TrustedProxies are the CIDR prefixes (such as 10.0.0.0/8) whose
	// X-Forwarded-For and Forwarded headers are believed when finding the
	// client address for rate limits. Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TrustTraceContext continues the W3C trace context (traceparent,
	// tracestate) that callers send. Default false: a browser must not
	// choose the gateway's trace ids or reach backends with its tracestate,
	// so every call starts a new trace and keeps the caller's as a link.
	// Turn it on only behind a proxy that sets or strips these headers.
	TrustTraceContext bool `yaml:"trust_trace_context"`
}

// TrustedPrefixes returns TrustedProxies parsed. Entries that do not parse
// are left out; [Config.Validate] reports them.
func (s *Server) TrustedPrefixes() []netip.Prefix {
	prefixes := make([]netip.Prefix, 0, len(s.TrustedProxies))
	for _, cidr := range s.TrustedProxies {
		if p, err := netip.ParsePrefix(cidr); err == nil {
			prefixes = append(prefixes, p.Masked())
		}
	}
	return prefixes
}

// OIDC describes the OpenID Connect provider and the gateway's client
// registration with it.
type OIDC struct {
	// Issuer is the provider's issuer URL, required; https unless the host
	// is localhost, 127.0.0.1 or [::1].
	Issuer string `yaml:"issuer"`
	// ClientID is the gateway's client ID, required.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile is a file holding the client secret. Required
	// unless CUSTODIAN_OIDC_CLIENT_SECRET is set, which wins.
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientSecret is the loaded client secret, trailing newlines removed.
	// It is never read from YAML.
	ClientSecret string `yaml:"-"`
	// Scopes requested at login. Default [openid profile email
	// offline_access]; must include openid.
	Scopes []string `yaml:"scopes"`
	// PostLogoutRedirectPath is the path on PublicURL the provider sends
	// the browser back to after logout. Default "/".
	PostLogoutRedirectPath string `yaml:"post_logout_redirect_path"`
	// AppRedirectPath is the page of a single-page app that receives the
	// provider's redirect in the API-driven login (custodian.v1.AuthService)
	// and hands its query to FinishLogin. Register public_url + this path
	// (and public_url + "/auth/callback") at the provider. Default
	// "/login/callback".
	AppRedirectPath string `yaml:"app_redirect_path"`
	// LogoutIDTokenHint sends the ID token as id_token_hint in the
	// RP-initiated logout redirect. Default false: the redirect names
	// client_id (and, where the provider identifies sessions by sid,
	// logout_hint with the session's sid) instead, since the ID token, with the
	// user's name, e-mail and provider session id, would pass through the
	// browser. Turn it on only for a provider that requires the hint.
	LogoutIDTokenHint bool `yaml:"logout_id_token_hint"`
}

// Session configures the session cookie and where sessions are stored.
type Session struct {
	// CookieName is the session cookie's name. Default "__Host-custodian".
	CookieName string `yaml:"cookie_name"`
	// SameSite is SameSiteStrict (the default) or SameSiteLax.
	SameSite string `yaml:"same_site"`
	// IdleTimeout ends a session unused for this long. Default 30m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after login, however it is
	// used. Default 12h; at least IdleTimeout.
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
	// Store is StoreMemory (the default) or StoreRedis.
	Store string `yaml:"store"`
	// MaxSessions caps the memory store. Default 100000.
	MaxSessions int `yaml:"max_sessions"`
	// RedisURL is redis://[user[:password]@]host[:port][/db], or
	// rediss:// for TLS, required when Store is StoreRedis. Its host is
	// the Redis server; with RedisCluster a Cluster node, with
	// RedisMasterName a Sentinel.
	RedisURL string `yaml:"redis_url"`
	// RedisPassword is the Redis password from CUSTODIAN_REDIS_PASSWORD;
	// when non-empty it replaces any password in RedisURL. It is never
	// read from YAML.
	RedisPassword string `yaml:"-"`
	// RedisAddrs are more host:port addresses: Redis Cluster nodes with
	// RedisCluster, Sentinels with RedisMasterName. Default none.
	RedisAddrs []string `yaml:"redis_addrs"`
	// RedisCluster says that the Redis servers are Redis Cluster nodes.
	RedisCluster bool `yaml:"redis_cluster"`
	// RedisMasterName, when set, is the name of the master that Redis
	// Sentinel monitors; the Redis addresses are then the Sentinels'.
	RedisMasterName string `yaml:"redis_master_name"`
	// RedisPoolSize is the most connections to one Redis server. Default
	// 100 when Store is StoreRedis.
	RedisPoolSize int `yaml:"redis_pool_size"`
	// RedisDialTimeout, RedisReadTimeout and RedisWriteTimeout bound
	// connecting to Redis, waiting for a reply and sending a command.
	// Defaults 2s, 1s and 1s when Store is StoreRedis.
	RedisDialTimeout  time.Duration `yaml:"redis_dial_timeout"`
	RedisReadTimeout  time.Duration `yaml:"redis_read_timeout"`
	RedisWriteTimeout time.Duration `yaml:"redis_write_timeout"`
	// KeysFile holds session keys, one base64 32-byte key per line.
	// Required unless CUSTODIAN_SESSION_KEYS is set, which wins.
	KeysFile string `yaml:"keys_file"`
	// Keys are the loaded 32-byte session keys. Keys[0] encrypts; every
	// key decrypts, so older keys keep existing sessions valid during a
	// rotation. It is never read from YAML.
	Keys [][]byte `yaml:"-"`
	// RefreshSkew refreshes an access token this long before it expires.
	// Default 60s.
	RefreshSkew time.Duration `yaml:"refresh_skew"`
}

// CORS lists the other origins allowed to make credentialed calls to the
// gateway.
type CORS struct {
	// AllowedOrigins are origins (scheme://host[:port]). "*" is refused
	// because credentials are always allowed. Default none.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxAge is how long browsers may cache a preflight answer. Default 2h.
	MaxAge time.Duration `yaml:"max_age"`
}

// RateLimits are token buckets that bound how fast clients may call the
// gateway: in Redis, shared by every replica, when session.store is redis
// (each replica falls back to its own buckets while Redis is unreachable),
// and otherwise in memory by each gateway instance. Unlike other fields, a
// limit that is present but zero is not defaulted: it is turned off. Only
// an absent (nil) limit takes its default.
type RateLimits struct {
	// PerIP applies to every request, per client address (behind
	// Server.TrustedProxies, the address they forward). Default 100 a
	// second, burst 200.
	PerIP *RateLimit `yaml:"per_ip"`
	// PerSession applies to requests carrying the session cookie, per
	// cookie. Default 50 a second, burst 100.
	PerSession *RateLimit `yaml:"per_session"`
	// Login applies, in addition, to the login routes, per client
	// address. Default 1 a second, burst 10.
	Login *RateLimit `yaml:"login"`
	// Methods adds a bucket for a procedure ("/pkg.Service/Method"), per
	// session, or per client address for calls without one. Default none.
	Methods map[string]RateLimit `yaml:"methods"`
}

// RateLimit is a token bucket: Rate requests a second on average, Burst at
// once. A Rate of 0 turns it off.
type RateLimit struct {
	// Rate is the sustained rate, per second; 0 to 100000.
	Rate float64 `yaml:"rate"`
	// Burst is how many requests may come at once; 1 to 100000 when Rate
	// is positive, unset when it is 0.
	Burst int `yaml:"burst"`
}

// Backend is a service the gateway forwards calls to.
type Backend struct {
	// Name identifies the backend: unique, matching [a-z][a-z0-9-]{0,31}.
	Name string `yaml:"name"`
	// URL is the backend's absolute http or https base URL, required.
	URL string `yaml:"url"`
	// Protocol is ProtocolConnect (the default), ProtocolGRPC or
	// ProtocolGRPCWeb.
	Protocol string `yaml:"protocol"`
	// Token is the token policy: TokenUser (the default), TokenExchange,
	// TokenClient or TokenNone.
	Token string `yaml:"token"`
	// Audience is the token audience; required for TokenExchange, optional
	// for TokenClient and TokenUser, refused for TokenNone.
	Audience string `yaml:"audience"`
	// Timeout bounds one call to the backend. Default 2s; 1ms to 5m.
	Timeout time.Duration `yaml:"timeout"`
}

// Routes are config-only routes: public methods answered by backend
// methods, each answer built afresh from the public type's own fields.
type Routes struct {
	// Descriptors is the descriptor set (the output of `buf build -o
	// public.binpb`) that holds the public and the backend schemas.
	// Required when Methods is set; a relative path is resolved against
	// the configuration file's directory.
	Descriptors string `yaml:"descriptors"`
	// Methods are the routes, each public method at most once.
	Methods []Route `yaml:"methods"`
}

// Claims a route may bind backend request fields to: the session user's
// subject, email address and name.
const (
	ClaimSubject = "sub"
	ClaimEmail   = "email"
	ClaimName    = "name"
)

// Route is one public method answered by one backend method.
type Route struct {
	// Public is the browser-facing method, "package.Service/Method", from
	// the public schema. Required.
	Public string `yaml:"public"`
	// Backend names the backend (from backends) that answers. Required.
	Backend string `yaml:"backend"`
	// Method is the backend's method, "package.Service/Method". Required.
	Method string `yaml:"method"`
	// Token overrides the backend's token policy for this route: TokenUser,
	// TokenExchange, TokenClient or TokenNone. Default: the backend's.
	Token string `yaml:"token"`
	// Anonymous lets callers without a session call the route. Only with
	// a client or no token (TokenClient, TokenNone), and never with Bind.
	// Default false: the route needs a session.
	Anonymous bool `yaml:"anonymous"`
	// AllowDynamicTypes lets public fields be google.protobuf.Any,
	// Struct, Value or ListValue, which carry arbitrary (internal) data.
	// Default false: such fields refuse the route.
	AllowDynamicTypes bool `yaml:"allow_dynamic_types"`
	// Bind sets backend request fields from the session's claims, e.g.
	// {account_id: sub}; ClaimSubject, ClaimEmail or ClaimName. A bound
	// field must not be in the public request, so a browser cannot name
	// another user's data.
	Bind map[string]string `yaml:"bind"`
}

// Load reads the configuration file at path and returns it with defaults
// applied, secrets loaded and everything validated. Relative secret and TLS
// paths are resolved against the file's directory. getenv looks up the
// CUSTODIAN_* variables; pass os.Getenv in production, nil for none.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(data, filepath.Dir(path), path, getenv)
}

// Parse is [Load] for a configuration already in memory. Relative paths are
// resolved against dir ("" for the working directory).
func Parse(data []byte, dir string, getenv func(string) string) (*Config, error) {
	return parse(data, dir, "", getenv)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: file is larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// parse does the work of Load and Parse; name, when set, prefixes errors.
func parse(data []byte, dir, name string, getenv func(string) string) (*Config, error) {
	prefix := "config: "
	if name != "" {
		prefix += name + ": "
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%sfile is larger than %d bytes", prefix, maxFileSize)
	}
	cfg, errs := decode(data)
	if len(errs) > 0 {
		return nil, prefixErrors(prefix, errs)
	}
	cfg.ApplyDefaults()
	cfg.resolvePaths(dir)
	problems, loaded := cfg.loadSecrets(getenv)
	problems = append(problems, cfg.validate(loaded)...)
	if len(problems) > 0 {
		return nil, prefixErrors(prefix, problems)
	}
	return cfg, nil
}

// prefixErrors joins errs, prefixing each message and keeping each error
// reachable with errors.Is and errors.As.
func prefixErrors(prefix string, errs []error) error {
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = fmt.Errorf("%s%w", prefix, err)
	}
	return errors.Join(out...)
}
