package config

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/custodian-bff/custodian/server"
	"github.com/custodian-bff/custodian/server/session"
	"github.com/custodian-bff/custodian/server/session/redisstore"
)

// Defaults for fields left empty or zero.
const (
	defaultListen                 = "127.0.0.1:8080"
	defaultPostLogoutRedirectPath = "/"
	defaultAppRedirectPath        = "/login/callback"
	defaultCORSMaxAge             = 2 * time.Hour
	defaultBackendTimeout         = 2 * time.Second
)

// Default rate limits, taken by rate_limits entries that are absent.
var (
	defaultPerIPLimit      = RateLimit{Rate: 100, Burst: 200}
	defaultPerSessionLimit = RateLimit{Rate: 50, Burst: 100}
	defaultLoginLimit      = RateLimit{Rate: 1, Burst: 10}
)

// defaultScopes returns a new slice each time, so configs never share one.
func defaultScopes() []string {
	return []string{"openid", "profile", "email", "offline_access"}
}

// ApplyDefaults sets every empty or zero field that has a default to that
// default, and drops a trailing "/" from PublicURL and CORS origins, which
// are origins. [Load] and [Parse] call it; call it on a Config built in code
// before [Config.Validate]. Server.WriteTimeout defaults to 0 (no timeout);
// rate limits are defaulted only when nil, since a zero one is turned off.
func (c *Config) ApplyDefaults() {
	setDefault(&c.Listen, defaultListen)
	c.PublicURL = trimOriginSlash(c.PublicURL)

	// The listener's own defaults, so that each is defined once.
	s, limits := &c.Server, server.DefaultLimits()
	setDefault(&s.ReadHeaderTimeout, limits.ReadHeaderTimeout)
	setDefault(&s.ReadTimeout, limits.ReadTimeout)
	setDefault(&s.IdleTimeout, limits.IdleTimeout)
	setDefault(&s.MaxHeaderBytes, limits.MaxHeaderBytes)
	setDefault(&s.MaxBodyBytes, limits.MaxBodyBytes)
	setDefault(&s.MaxConcurrentStreams, limits.MaxConcurrentStreams)
	setDefault(&s.ShutdownTimeout, limits.ShutdownTimeout)

	o := &c.OIDC
	if len(o.Scopes) == 0 {
		o.Scopes = defaultScopes()
	}
	setDefault(&o.PostLogoutRedirectPath, defaultPostLogoutRedirectPath)
	setDefault(&o.AppRedirectPath, defaultAppRedirectPath)

	ss := &c.Session
	setDefault(&ss.CookieName, session.DefaultCookieName)
	setDefault(&ss.SameSite, SameSiteStrict)
	setDefault(&ss.IdleTimeout, session.DefaultIdleTimeout)
	setDefault(&ss.AbsoluteTimeout, session.DefaultAbsoluteTimeout)
	setDefault(&ss.Store, StoreMemory)
	setDefault(&ss.MaxSessions, session.DefaultMaxSessions)
	setDefault(&ss.RefreshSkew, session.DefaultRefreshSkew)
	if ss.Store == StoreRedis {
		// The store's own defaults, so that each is defined once; only for
		// Redis, so that they are refused with the memory store.
		setDefault(&ss.RedisPoolSize, redisstore.DefaultPoolSize)
		setDefault(&ss.RedisDialTimeout, redisstore.DefaultDialTimeout)
		setDefault(&ss.RedisReadTimeout, redisstore.DefaultReadTimeout)
		setDefault(&ss.RedisWriteTimeout, redisstore.DefaultWriteTimeout)
	}

	for i, o := range c.CORS.AllowedOrigins {
		c.CORS.AllowedOrigins[i] = trimOriginSlash(o)
	}
	setDefault(&c.CORS.MaxAge, defaultCORSMaxAge)

	for i := range c.Backends {
		b := &c.Backends[i]
		setDefault(&b.Protocol, ProtocolConnect)
		setDefault(&b.Token, TokenUser)
		setDefault(&b.Timeout, defaultBackendTimeout)
	}

	// A rate limit written as zero turns the limit off, so only absent
	// ones are defaulted.
	rl := &c.RateLimits
	setDefaultLimit(&rl.PerIP, defaultPerIPLimit)
	setDefaultLimit(&rl.PerSession, defaultPerSessionLimit)
	setDefaultLimit(&rl.Login, defaultLoginLimit)
}

// setDefaultLimit points an absent limit at a copy of value.
func setDefaultLimit(field **RateLimit, value RateLimit) {
	if *field == nil {
		*field = &value
	}
}

func setDefault[T comparable](field *T, value T) {
	var zero T
	if *field == zero {
		*field = value
	}
}

// trimOriginSlash drops the single "/" path of an origin written as
// "https://host/"; browsers send origins without it.
func trimOriginSlash(s string) string {
	if strings.Count(s, "/") == 3 && strings.HasSuffix(s, "/") && strings.Contains(s, "://") {
		return strings.TrimSuffix(s, "/")
	}
	return s
}

// resolvePaths makes relative file paths relative to dir, the directory of
// the configuration file.
func (c *Config) resolvePaths(dir string) {
	if dir == "" {
		return
	}
	resolve := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if c.TLS != nil {
		resolve(&c.TLS.CertFile)
		resolve(&c.TLS.KeyFile)
	}
	resolve(&c.OIDC.ClientSecretFile)
	resolve(&c.Session.KeysFile)
	resolve(&c.Routes.Descriptors)
}
