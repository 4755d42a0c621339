// Package ratelimit bounds how fast clients may call the gateway: token
// buckets per client address, per session, for the login routes and per
// procedure, applied by an HTTP middleware in front of every route. A
// refused request is answered in the caller's protocol (Connect, gRPC,
// gRPC-Web or plain HTTP) with a Retry-After.
//
// The client address is found by [ClientIP], which believes forwarding
// headers only from trusted proxies. Buckets live in memory, per gateway
// instance, in LRUs of bounded size, or, with [WithShared], in a store that
// every replica shares (package redislimit), with the in-memory buckets as
// the fallback while that store is unreachable.
package ratelimit

import (
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/custodian-bff/custodian/internal/cookieheader"
	"github.com/custodian-bff/custodian/internal/telemetry"
)

// isLoginPath reports whether path is a login route. Starting and finishing
// a login costs a round trip to the OpenID provider, and is what a
// credential-stuffing or state-flooding client hammers, so these routes
// have a stricter bucket of their own, whatever the HTTP method.
func isLoginPath(path string) bool {
	switch path {
	case "/auth/login", "/auth/callback",
		"/custodian.v1.AuthService/StartLogin", "/custodian.v1.AuthService/FinishLogin":
		return true
	}
	return false
}

// healthServicePrefix is the gRPC health service, which load balancers
// call, like /healthz and /readyz.
const healthServicePrefix = "/grpc.health.v1.Health/"

// Config says which buckets apply. A zero Limit turns its bucket off.
type Config struct {
	// PerIP applies to every request, per client address (IPv6 addresses
	// per /64, which one subscriber usually holds whole).
	PerIP Limit
	// PerSession applies to requests carrying the session cookie, per
	// cookie value, whatever it is: an invalid cookie costs as much to
	// turn away.
	PerSession Limit
	// Login applies to the login routes (/auth/login, /auth/callback,
	// custodian.v1.AuthService StartLogin and FinishLogin), per client
	// address, in addition to the others.
	Login Limit
	// Methods adds a bucket for one procedure ("/pkg.Service/Method"), per
	// session, or per client address for calls without a session.
	Methods map[string]Limit
}

// Limiter applies a Config to requests. It is safe for concurrent use.
type Limiter struct {
	logger     *slog.Logger
	now        func() time.Time
	cookieName string
	trusted    []netip.Prefix

	perIP      *Buckets
	perSession *Buckets
	login      *Buckets
	methods    map[string]*Buckets

	shared Shared // nil: the buckets above decide alone
	state  sharedState

	refusals metric.Int64Counter
}

// New returns a Limiter for cfg. cookieName is the session cookie's name;
// trusted are the proxies whose forwarding headers are believed (see
// [ClientIP]).
func New(cfg Config, cookieName string, trusted []netip.Prefix, opts ...Option) *Limiter {
	o := options{logger: slog.New(slog.DiscardHandler), now: time.Now, capacity: DefaultCapacity}
	for _, opt := range opts {
		opt.apply(&o)
	}
	l := &Limiter{
		logger:     o.logger,
		now:        o.now,
		cookieName: cookieName,
		trusted:    append([]netip.Prefix(nil), trusted...),
		perIP:      NewBuckets(cfg.PerIP, o.capacity, o.now),
		perSession: NewBuckets(cfg.PerSession, o.capacity, o.now),
		login:      NewBuckets(cfg.Login, o.capacity, o.now),
		methods:    make(map[string]*Buckets, len(cfg.Methods)),
		shared:     o.shared,
	}
	l.refusals, _ = telemetry.Meter(o.meters).Int64Counter("custodian.ratelimit.refusals",
		metric.WithDescription("Requests refused by a rate limit, by limit (per_ip, per_session, login, method)."))
	for procedure, limit := range cfg.Methods {
		if b := NewBuckets(limit, o.capacity, o.now); b != nil {
			l.methods[procedure] = b
		}
	}
	return l
}

// Middleware refuses requests over a limit, before they reach next, and
// stores the client address in the context of those it lets through (see
// [FromContext]). Health checks (/healthz, /readyz, grpc.health.v1.Health)
// are never limited: load balancers must not be refused. Put it inside
// the request-id middleware, and log through requestid.LogHandler, so
// refusals are logged with an id.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := FromContext(r.Context())
		if !ip.IsValid() {
			ip = ClientIP(r, l.trusted)
			r = r.WithContext(NewContext(r.Context(), ip))
		}
		path := r.URL.Path
		if path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, healthServicePrefix) {
			next.ServeHTTP(w, r)
			return
		}
		if ok, retryAfter, bucket := l.allow(r, ip); !ok {
			l.logger.LogAttrs(r.Context(), slog.LevelDebug, "request refused by rate limit",
				slog.String("client_ip", ip.String()),
				slog.String("path", path),
				slog.String("limit", bucket),
				slog.Duration("retry_after", retryAfter))
			l.refusals.Add(r.Context(), 1, metric.WithAttributes(telemetry.Limit.String(bucket)))
			writeRefusal(w, r, retryAfter)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// dimension is one bucket that applies to a request.
type dimension struct {
	name      string // per_ip, per_session, login or method, as logged
	buckets   *Buckets
	procedure string // for method buckets
	key       string // the client's key in buckets
}

// sharedKey names the bucket in a Shared store: the kind of bucket, the
// procedure for a method bucket, and the client's key.
func (d dimension) sharedKey() string {
	if d.procedure != "" {
		return d.name + ":" + d.procedure + ":" + d.key
	}
	return d.name + ":" + d.key
}

// allow takes a token from each bucket that applies to r, or from none, and
// names the bucket that refused. The buckets are the shared store's when
// there is one and it answers, the Limiter's own otherwise.
func (l *Limiter) allow(r *http.Request, ip netip.Addr) (ok bool, retryAfter time.Duration, refusedBy string) {
	var (
		dims [4]dimension
		n    int
	)
	add := func(name string, b *Buckets, procedure, key string) {
		if b != nil {
			dims[n] = dimension{name: name, buckets: b, procedure: procedure, key: key}
			n++
		}
	}
	// Most specific first: see allowShared.
	ipKey := addrKey(ip)
	sessionKey, hasSession := l.sessionKey(r)
	path := r.URL.Path
	if b := l.methods[path]; b != nil {
		if hasSession {
			add("method", b, path, "session:"+sessionKey)
		} else {
			add("method", b, path, "ip:"+ipKey)
		}
	}
	if isLoginPath(path) {
		add("login", l.login, "", ipKey)
	}
	if hasSession {
		add("per_session", l.perSession, "", sessionKey)
	}
	add("per_ip", l.perIP, "", ipKey)
	if n == 0 {
		return true, 0, ""
	}
	if l.shared != nil {
		if ok, retryAfter, i, answered := l.allowShared(r.Context(), dims[:n]); answered {
			if !ok {
				return false, retryAfter, dims[i].name
			}
			return true, 0, ""
		}
	}
	var buckets [len(dims)]*rate.Limiter
	for i, d := range dims[:n] {
		buckets[i] = d.buckets.bucket(d.key)
	}
	ok, retryAfter, i := take(l.now(), buckets[:n])
	if !ok {
		return false, retryAfter, dims[i].name
	}
	return true, 0, ""
}

// sessionDigestContext separates the limiter's digests of session ids from
// any other hash of them, such as the session store's keys.
const sessionDigestContext = "custodian rate limit session\x00"

// sessionKey returns a digest of the request's first non-empty session
// cookie, base64url-encoded: the limiter keeps no session ids, which are
// bearer credentials, in memory or in a shared store.
func (l *Limiter) sessionKey(r *http.Request) (string, bool) {
	if l.cookieName == "" {
		return "", false
	}
	v, ok := cookieheader.First(r.Header["Cookie"], l.cookieName, nonEmpty)
	if !ok {
		return "", false
	}
	var buf [128]byte
	sum := sha256.Sum256(append(append(buf[:0], sessionDigestContext...), v...))
	return base64.RawURLEncoding.EncodeToString(sum[:]), true
}

func nonEmpty(v string) bool { return v != "" }

// addrKey is the per-address key: the address itself for IPv4, its /64
// for IPv6, since one subscriber is routinely given a whole /64 and could
// otherwise take a fresh bucket for every request.
func addrKey(ip netip.Addr) string {
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}
