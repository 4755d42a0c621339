package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits enforced by Validate.
const (
	minHeaderBytes          = 1 << 10
	maxHeaderBytes          = 1 << 20
	minBodyBytes            = 1 << 10
	maxBodyBytes            = 64 << 20
	maxConcurrentStreams    = 1000
	maxRefreshSkew          = time.Hour
	maxCORSMaxAge           = 24 * time.Hour
	minBackendTimeout       = time.Millisecond
	maxBackendTimeout       = 5 * time.Minute
	maxBackendNameLen       = 32
	maxRateLimitRate        = 100000
	maxRateLimitBurst       = 100000
	localHTTPHint           = "http is allowed only for localhost, 127.0.0.1 and [::1]"
	secureCookiePrefixHint  = "https, or http on localhost, 127.0.0.1 or [::1], which browsers treat as secure"
	maxQuotedValueLen       = 200
	cookieSeparatorsAndCTLs = "()<>@,;:\\\"/[]?={} \t"
)

// Validate reports every problem with c, joined with errors.Join, each one
// naming the field path ("backends[1].protocol: ..."). It does not apply
// defaults or read secrets: call [Config.ApplyDefaults] first on a Config
// built in code, and set OIDC.ClientSecret and Session.Keys directly. It
// checks that TLS files exist and are readable.
func (c *Config) Validate() error {
	if c == nil {
		return errors.New("config is nil")
	}
	return errors.Join(c.validate(secretProblems{})...)
}

// problems collects validation errors.
type problems []error

func (p *problems) addf(path, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// validate returns every problem; secrets whose loading already failed are
// not reported missing again.
func (c *Config) validate(reported secretProblems) []error {
	var p problems
	c.validateListen(&p)
	publicURL := c.validatePublicURL(&p)
	c.validateTLS(&p)
	c.Server.validate(&p)
	c.OIDC.validate(&p, reported)
	c.Session.validate(&p, reported, publicURL)
	c.CORS.validate(&p)
	validateBackends(&p, c.Backends)
	c.RateLimits.validate(&p)
	c.Routes.validate(&p, c.Backends)
	c.Telemetry.validate(&p, c.Listen)
	return p
}

func (c *Config) validateListen(p *problems) {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		p.addf("listen", "%s is not host:port, such as 127.0.0.1:8080 or :8080", quote(c.Listen))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.addf("listen", "port %s is not a number from 0 to 65535", quote(port))
	}
	if host != "" && !validHost(host) {
		p.addf("listen", "host %s is not an IP address or host name", quote(host))
	}
}

// validatePublicURL checks PublicURL and returns it parsed, or nil if it is
// not an origin at all. A non-local http origin is reported and still
// returned, so the cookie rules can explain their part of the problem.
func (c *Config) validatePublicURL(p *problems) *url.URL {
	const path = "public_url"
	if c.PublicURL == "" {
		p.addf(path, "required: the origin browsers use to reach the gateway, such as https://app.example.com")
		return nil
	}
	u, problem := parseOrigin(c.PublicURL)
	if problem != "" {
		p.addf(path, "%s", problem)
		return nil
	}
	if u.Scheme != "https" && !isLocalHost(u.Hostname()) {
		p.addf(path, "must be an absolute https URL (%s); got %s", localHTTPHint, quote(c.PublicURL))
	}
	return u
}

func (c *Config) validateTLS(p *problems) {
	if c.TLS == nil {
		return
	}
	checkReadable(p, "tls.cert_file", c.TLS.CertFile)
	checkReadable(p, "tls.key_file", c.TLS.KeyFile)
}

func checkReadable(p *problems, path, file string) {
	if file == "" {
		p.addf(path, "required when the tls block is present")
		return
	}
	f, err := os.Open(file)
	if err != nil {
		p.addf(path, "%v", err)
		return
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		p.addf(path, "%s is a directory", quote(file))
	}
}

func (s *Server) validate(p *problems) {
	positive(p, "server.read_header_timeout", s.ReadHeaderTimeout)
	positive(p, "server.read_timeout", s.ReadTimeout)
	if s.WriteTimeout < 0 {
		p.addf("server.write_timeout", "%v is negative; use 0 for no timeout", s.WriteTimeout)
	}
	positive(p, "server.idle_timeout", s.IdleTimeout)
	positive(p, "server.shutdown_timeout", s.ShutdownTimeout)
	between(p, "server.max_header_bytes", int64(s.MaxHeaderBytes), minHeaderBytes, maxHeaderBytes, "1 KiB", "1 MiB")
	between(p, "server.max_body_bytes", s.MaxBodyBytes, minBodyBytes, maxBodyBytes, "1 KiB", "64 MiB")
	between(p, "server.max_concurrent_streams", int64(s.MaxConcurrentStreams), 1, maxConcurrentStreams, "", "")
	for i, cidr := range s.TrustedProxies {
		path := fmt.Sprintf("server.trusted_proxies[%d]", i)
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil {
			hint := ""
			if _, err := netip.ParseAddr(cidr); err == nil {
				hint = "; for a single address write it with /32 or /128"
			}
			p.addf(path, "%s is not a CIDR prefix such as 10.0.0.0/8%s", quote(cidr), hint)
			continue
		}
		if prefix.Masked() != prefix {
			p.addf(path, "%s has bits set past the prefix length; did you mean %q?", quote(cidr), prefix.Masked().String())
		}
	}
}

func (o *OIDC) validate(p *problems, reported secretProblems) {
	switch u, err := url.Parse(o.Issuer); {
	case o.Issuer == "":
		p.addf("oidc.issuer", "required: the OpenID provider's issuer URL")
	case err != nil:
		p.addf("oidc.issuer", "%s is not a valid URL: %v", quote(o.Issuer), urlError(err))
	case !(u.Scheme == "https" || u.Scheme == "http" && isLocalHost(u.Hostname())) || u.Host == "" || u.Opaque != "":
		p.addf("oidc.issuer", "must be an absolute https URL (%s); got %s", localHTTPHint, quote(o.Issuer))
	case u.User != nil:
		p.addf("oidc.issuer", "must not contain user information")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		p.addf("oidc.issuer", "must not have a query or fragment; got %s", quote(o.Issuer))
	}

	if o.ClientID == "" {
		p.addf("oidc.client_id", "required")
	} else if !isVSChars(o.ClientID) {
		p.addf("oidc.client_id", "must be printable ASCII")
	}
	if o.ClientSecret == "" && !reported.clientSecret {
		p.addf("oidc.client_secret_file", "required unless %s is set; no client secret was loaded", EnvOIDCClientSecret)
	}

	hasOpenID := false
	seen := map[string]bool{}
	for i, scope := range o.Scopes {
		path := fmt.Sprintf("oidc.scopes[%d]", i)
		switch {
		case !isScopeToken(scope):
			p.addf(path, "%s is not a valid scope (printable ASCII without spaces, quotes or backslashes)", quote(scope))
		case seen[scope]:
			p.addf(path, "%s is listed twice", quote(scope))
		}
		seen[scope] = true
		hasOpenID = hasOpenID || scope == "openid"
	}
	if !hasOpenID {
		p.addf("oidc.scopes", "must include openid")
	}

	if rp := o.PostLogoutRedirectPath; !isLocalPath(rp) {
		p.addf("oidc.post_logout_redirect_path", "%s must be a path on public_url starting with a single \"/\"", quote(rp))
	}
	if ap := o.AppRedirectPath; !isLocalPath(ap) || strings.HasPrefix(ap, "/auth/") {
		p.addf("oidc.app_redirect_path", "%s must be a path on public_url starting with a single \"/\", outside /auth/", quote(ap))
	}
}

func (s *Session) validate(p *problems, reported secretProblems, publicURL *url.URL) {
	switch name := s.CookieName; {
	case !isCookieToken(name):
		p.addf("session.cookie_name", "%s is not a valid cookie name (ASCII letters, digits and !#$%%&'*+-.^_`|~)", quote(name))
	case hasPrefixFold(name, "__Host-") || hasPrefixFold(name, "__Secure-"):
		prefix := "__Secure-"
		if hasPrefixFold(name, "__Host-") {
			prefix = "__Host-"
		}
		// The gateway sets Secure on such cookies, and browsers store Secure
		// cookies only from secure origins.
		if publicURL != nil && publicURL.Scheme != "https" && !isLocalHost(publicURL.Hostname()) {
			p.addf("session.cookie_name", "%q cookies require a secure public_url (%s); public_url is %s",
				prefix, secureCookiePrefixHint, quote(publicURL.String()))
		}
	}

	switch s.SameSite {
	case SameSiteStrict, SameSiteLax:
	default:
		p.addf("session.same_site", "%s is not one of %s, %s", quote(s.SameSite), SameSiteStrict, SameSiteLax)
	}

	positive(p, "session.idle_timeout", s.IdleTimeout)
	positive(p, "session.absolute_timeout", s.AbsoluteTimeout)
	if s.IdleTimeout > s.AbsoluteTimeout && s.AbsoluteTimeout > 0 {
		p.addf("session.idle_timeout", "%v is longer than session.absolute_timeout (%v)", s.IdleTimeout, s.AbsoluteTimeout)
	}

	switch s.Store {
	case StoreMemory:
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"redis_url", s.RedisURL != ""},
			{"redis_addrs", len(s.RedisAddrs) > 0},
			{"redis_cluster", s.RedisCluster},
			{"redis_master_name", s.RedisMasterName != ""},
			{"redis_pool_size", s.RedisPoolSize != 0},
			{"redis_dial_timeout", s.RedisDialTimeout != 0},
			{"redis_read_timeout", s.RedisReadTimeout != 0},
			{"redis_write_timeout", s.RedisWriteTimeout != 0},
		} {
			if f.set {
				p.addf("session."+f.name, "set, but session.store is %q; set store to %q or remove %s", StoreMemory, StoreRedis, f.name)
			}
		}
	case StoreRedis:
		s.validateRedis(p)
	default:
		p.addf("session.store", "%s is not one of %s, %s", quote(s.Store), StoreMemory, StoreRedis)
	}
	if s.MaxSessions <= 0 {
		p.addf("session.max_sessions", "%d must be positive", s.MaxSessions)
	}

	if len(s.Keys) == 0 && !reported.sessionKeys {
		p.addf("session.keys_file", "required unless %s is set; no session keys were loaded", EnvSessionKeys)
	}
	for i, key := range s.Keys {
		if len(key) != sessionKeySize {
			p.addf(fmt.Sprintf("session.keys[%d]", i), "key is %d bytes, want %d", len(key), sessionKeySize)
		}
	}

	if s.RefreshSkew < 0 || s.RefreshSkew > maxRefreshSkew {
		p.addf("session.refresh_skew", "%v is not between 0s and %v", s.RefreshSkew, maxRefreshSkew)
	}
}

// maxRedisPoolSize bounds session.redis_pool_size: Redis's default limit
// of clients is 10000, shared by every replica.
const maxRedisPoolSize = 10000

func (s *Session) validateRedis(p *problems) {
	// Messages about the URL never quote it: it may hold a password.
	u, err := url.Parse(s.RedisURL)
	switch {
	case s.RedisURL == "":
		p.addf("session.redis_url", "required when session.store is %q", StoreRedis)
	case err != nil:
		p.addf("session.redis_url", "is not a valid URL")
	case u.Scheme != "redis" && u.Scheme != "rediss" || u.Hostname() == "" || u.Opaque != "":
		p.addf("session.redis_url", "must be a redis:// or rediss:// URL with a host")
	case u.RawQuery != "" || u.Fragment != "":
		p.addf("session.redis_url", "must have no query or fragment; the session.redis_* fields are the settings")
	default:
		if db := strings.TrimPrefix(u.Path, "/"); db != "" {
			n, err := strconv.Atoi(db)
			switch {
			case err != nil || n < 0:
				p.addf("session.redis_url", "path must be a database number, such as /0")
			case n != 0 && s.RedisCluster:
				p.addf("session.redis_url", "database %d: a Redis Cluster has only database 0", n)
			}
		}
	}
	for i, addr := range s.RedisAddrs {
		host, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || !validHost(host) {
			p.addf(fmt.Sprintf("session.redis_addrs[%d]", i), "%s is not host:port, such as redis-2.internal:6379", quote(addr))
		}
	}
	switch {
	case s.RedisCluster && s.RedisMasterName != "":
		p.addf("session.redis_master_name", "set with redis_cluster: a Sentinel master and a Redis Cluster exclude each other")
	case len(s.RedisAddrs) > 0 && !s.RedisCluster && s.RedisMasterName == "":
		p.addf("session.redis_addrs", "set, but neither redis_cluster nor redis_master_name is: one server needs only redis_url")
	}
	if s.RedisPoolSize <= 0 || s.RedisPoolSize > maxRedisPoolSize {
		p.addf("session.redis_pool_size", "%d is not between 1 and %d", s.RedisPoolSize, maxRedisPoolSize)
	}
	positive(p, "session.redis_dial_timeout", s.RedisDialTimeout)
	positive(p, "session.redis_read_timeout", s.RedisReadTimeout)
	positive(p, "session.redis_write_timeout", s.RedisWriteTimeout)
}

func (c *CORS) validate(p *problems) {
	seen := map[string]bool{}
	for i, origin := range c.AllowedOrigins {
		path := fmt.Sprintf("cors.allowed_origins[%d]", i)
		if origin == "*" {
			p.addf(path, "\"*\" is refused because credentials are always allowed; list each origin")
			continue
		}
		if _, problem := parseOrigin(origin); problem != "" {
			p.addf(path, "%s", problem)
			continue
		}
		if seen[origin] {
			p.addf(path, "%s is listed twice", quote(origin))
		}
		seen[origin] = true
	}
	if c.MaxAge < time.Second || c.MaxAge > maxCORSMaxAge {
		p.addf("cors.max_age", "%v is not between 1s and %v", c.MaxAge, maxCORSMaxAge)
	}
}

func validateBackends(p *problems, backends []Backend) {
	if len(backends) == 0 {
		p.addf("backends", "at least one backend is required")
		return
	}
	names := map[string]int{}
	for i, b := range backends {
		path := fmt.Sprintf("backends[%d]", i)
		switch first, dup := names[b.Name]; {
		case b.Name == "":
			p.addf(path+".name", "required")
		case !isBackendName(b.Name):
			p.addf(path+".name", "%s must match [a-z][a-z0-9-]{0,31}", quote(b.Name))
		case dup:
			p.addf(path+".name", "%s is already used by backends[%d]", quote(b.Name), first)
		default:
			names[b.Name] = i
		}

		switch u, err := url.Parse(b.URL); {
		case b.URL == "":
			p.addf(path+".url", "required")
		case err != nil:
			p.addf(path+".url", "%s is not a valid URL: %v", quote(b.URL), urlError(err))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "":
			p.addf(path+".url", "%s is not an absolute http or https URL", quote(b.URL))
		case u.User != nil:
			p.addf(path+".url", "must not contain user information")
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			p.addf(path+".url", "must not have a query or fragment; got %s", quote(b.URL))
		}

		switch b.Protocol {
		case ProtocolConnect, ProtocolGRPC, ProtocolGRPCWeb:
		default:
			p.addf(path+".protocol", "%s is not one of %s, %s, %s", quote(b.Protocol), ProtocolConnect, ProtocolGRPC, ProtocolGRPCWeb)
		}

		switch b.Token {
		case TokenExchange:
			if b.Audience == "" {
				p.addf(path+".audience", "required when token is %q", TokenExchange)
			}
		case TokenNone:
			if b.Audience != "" {
				p.addf(path+".audience", "not used when token is %q; remove it", TokenNone)
			}
		case TokenUser, TokenClient:
		default:
			p.addf(path+".token", "%s is not one of %s, %s, %s, %s", quote(b.Token), TokenUser, TokenExchange, TokenClient, TokenNone)
		}

		if b.Timeout < minBackendTimeout || b.Timeout > maxBackendTimeout {
			p.addf(path+".timeout", "%v is not between %v and %v", b.Timeout, minBackendTimeout, maxBackendTimeout)
		}
	}
}

func (r *RateLimits) validate(p *problems) {
	validateRateLimit(p, "rate_limits.per_ip", r.PerIP)
	validateRateLimit(p, "rate_limits.per_session", r.PerSession)
	validateRateLimit(p, "rate_limits.login", r.Login)
	for _, procedure := range slices.Sorted(maps.Keys(r.Methods)) {
		path := fmt.Sprintf("rate_limits.methods[%s]", quote(procedure))
		if !isProcedure(procedure) {
			p.addf(path, "%s is not a procedure such as \"/acme.storefront.v1.ProductService/ListProducts\"", quote(procedure))
		}
		limit := r.Methods[procedure]
		validateRateLimit(p, path, &limit)
	}
}

// validateRateLimit checks one limit; nil is a limit left to its default.
func validateRateLimit(p *problems, path string, l *RateLimit) {
	if l == nil {
		return
	}
	if !(l.Rate >= 0 && l.Rate <= maxRateLimitRate) { // also refuses NaN
		p.addf(path+".rate", "%v is not between 0 (off) and %d requests a second", l.Rate, maxRateLimitRate)
		return
	}
	if l.Rate == 0 {
		if l.Burst != 0 {
			p.addf(path+".burst", "%d is set, but rate 0 turns this limit off; set a rate or remove burst", l.Burst)
		}
		return
	}
	if l.Burst < 1 || l.Burst > maxRateLimitBurst {
		p.addf(path+".burst", "%d is not between 1 and %d; a positive rate needs a burst", l.Burst, maxRateLimitBurst)
	}
}

// isProcedure reports whether s names a procedure as it appears in a
// Connect or gRPC path: "/" package-qualified service "/" method, each part
// an identifier.
func isProcedure(s string) bool {
	rest, ok := strings.CutPrefix(s, "/")
	if !ok {
		return false
	}
	service, method, ok := strings.Cut(rest, "/")
	if !ok || !isIdentifier(method) || !strings.Contains(service, ".") {
		return false
	}
	for part := range strings.SplitSeq(service, ".") {
		if !isIdentifier(part) {
			return false
		}
	}
	return true
}

// isIdentifier reports whether s is a protobuf identifier:
// [A-Za-z_][A-Za-z0-9_]*.
func isIdentifier(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parseOrigin parses an origin (scheme://host[:port], http or https, lower
// case) and returns it, or a problem.
func parseOrigin(raw string) (*url.URL, string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("%s is not a valid URL: %v", quote(raw), urlError(err))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return nil, fmt.Sprintf("%s is not an origin such as https://app.example.com", quote(raw))
	case u.User != nil:
		return nil, "must not contain user information"
	case u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Sprintf("%s has a path, query or fragment; an origin is scheme://host[:port]", quote(raw))
	case u.Hostname() == "":
		return nil, fmt.Sprintf("%s has no host", quote(raw))
	case raw != strings.ToLower(raw):
		return nil, fmt.Sprintf("%s must be lower case, as browsers send origins", quote(raw))
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Sprintf("%s has port %s, not a number from 1 to 65535", quote(raw), quote(port))
		}
	}
	return u, ""
}

// urlError drops the URL that url.Parse repeats in its errors.
func urlError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func positive(p *problems, path string, d time.Duration) {
	if d <= 0 {
		p.addf(path, "%v must be positive", d)
	}
}

func between(p *problems, path string, n, lo, hi int64, loText, hiText string) {
	if n >= lo && n <= hi {
		return
	}
	if loText == "" {
		p.addf(path, "%d is not between %d and %d", n, lo, hi)
		return
	}
	p.addf(path, "%d is not between %d (%s) and %d (%s)", n, lo, loText, hi, hiText)
}

// isLocalHost reports whether browsers treat http on host as a secure
// context.
func isLocalHost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// validHost reports whether host is an IP address or a DNS name.
func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// isBackendName reports whether name matches [a-z][a-z0-9-]{0,31}.
func isBackendName(name string) bool {
	if len(name) == 0 || len(name) > maxBackendNameLen || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// isCookieToken reports whether name is an RFC 6265 cookie name: a token of
// visible ASCII without separators.
func isCookieToken(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(cookieSeparatorsAndCTLs, c) >= 0 {
			return false
		}
	}
	return true
}

// isScopeToken reports whether s is an RFC 6749 scope token (NQCHAR).
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isVSChars reports whether s is RFC 6749 VSCHAR: printable ASCII.
func isVSChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// isLocalPath reports whether s is a path on this origin: it starts with a
// single "/" (not "//" or "/\", which browsers read as another host) and
// holds no control characters or spaces.
func isLocalPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// quote quotes a value for a message, shortened so that a huge value does
// not flood the output. Only non-secret values are quoted.
func quote(s string) string {
	if len(s) > maxQuotedValueLen {
		s = s[:maxQuotedValueLen] + "..."
	}
	return strconv.Quote(s)
}

// validate checks the routes as far as the configuration goes; the
// descriptors are checked when the gateway starts.
func (r *Routes) validate(p *problems, backends []Backend) {
	if len(r.Methods) == 0 {
		if r.Descriptors != "" {
			p.addf("routes.methods", "no routes, but routes.descriptors is set")
		}
		return
	}
	if r.Descriptors == "" {
		p.addf("routes.descriptors", "required with routes.methods: the descriptor set of `buf build -o public.binpb`")
	}
	tokens := map[string]string{}
	for _, b := range backends {
		tokens[b.Name] = b.Token
	}
	seen := map[string]int{}
	for i, rt := range r.Methods {
		path := fmt.Sprintf("routes.methods[%d]", i)
		switch first, dup := seen[rt.Public]; {
		case !isMethodName(rt.Public):
			p.addf(path+".public", "%s is not package.Service/Method", quote(rt.Public))
		case dup:
			p.addf(path+".public", "%s is already routed by routes.methods[%d]", quote(rt.Public), first)
		default:
			seen[rt.Public] = i
		}
		if !isMethodName(rt.Method) {
			p.addf(path+".method", "%s is not package.Service/Method", quote(rt.Method))
		}
		token, ok := tokens[rt.Backend]
		if !ok {
			p.addf(path+".backend", "%s is not a configured backend", quote(rt.Backend))
		}
		switch rt.Token {
		case "":
		case TokenUser, TokenExchange, TokenClient, TokenNone:
			token = rt.Token
		default:
			p.addf(path+".token", "%s is not one of %s, %s, %s, %s", quote(rt.Token), TokenUser, TokenExchange, TokenClient, TokenNone)
		}
		if rt.Anonymous && ok && (token == TokenUser || token == TokenExchange) {
			p.addf(path+".anonymous", "a route with the %q token policy needs a session; set token: %s or %s for anonymous callers", token, TokenClient, TokenNone)
		}
		if rt.Anonymous && len(rt.Bind) > 0 {
			p.addf(path+".bind", "binds claims of the session, so the route cannot be anonymous")
		}
		for _, field := range slices.Sorted(maps.Keys(rt.Bind)) {
			switch claim := rt.Bind[field]; claim {
			case ClaimSubject, ClaimEmail, ClaimName:
			default:
				p.addf(path+".bind."+field, "%s is not one of %s, %s, %s", quote(claim), ClaimSubject, ClaimEmail, ClaimName)
			}
		}
	}
}

// isMethodName reports whether s looks like "package.Service/Method".
func isMethodName(s string) bool {
	service, method, ok := strings.Cut(s, "/")
	return ok && strings.Contains(service, ".") && method != "" && !strings.ContainsAny(method, "/.") &&
		!strings.HasPrefix(service, ".") && !strings.HasSuffix(service, ".")
}

func (t *Telemetry) validate(p *problems, listen string) {
	tr := &t.Traces
	switch tr.Exporter {
	case "", ExporterOTLP, ExporterNone:
	default:
		p.addf("telemetry.traces.exporter", "%s is not otlp or none", quote(tr.Exporter))
	}
	switch tr.Protocol {
	case "", OTLPGRPC, OTLPHTTPProtobuf:
	default:
		p.addf("telemetry.traces.protocol", "%s is not grpc or http/protobuf", quote(tr.Protocol))
	}
	if tr.Endpoint != "" {
		if u, err := url.Parse(tr.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.addf("telemetry.traces.endpoint", "%s is not an http(s) URL", quote(tr.Endpoint))
		}
	}
	if r := tr.SampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		p.addf("telemetry.traces.sample_ratio", "%v is not between 0 and 1", *r)
	}
	a := &t.Admin
	if a.Listen == "" {
		if a.Pprof {
			p.addf("telemetry.admin.pprof", "needs telemetry.admin.listen")
		}
		return
	}
	_, port, err := net.SplitHostPort(a.Listen)
	if err != nil || port == "" {
		p.addf("telemetry.admin.listen", "%s is not host:port", quote(a.Listen))
		return
	}
	if a.Listen == listen && port != "0" {
		p.addf("telemetry.admin.listen", "is the public listen address; the admin listener needs its own")
	}
}
