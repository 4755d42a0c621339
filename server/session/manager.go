package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/otel/metric"

	"github.com/custodian-bff/custodian/internal/telemetry"
	"github.com/custodian-bff/custodian/server/keyring"
)

// Manager creates, loads and ends sessions, and hands out their access
// tokens, refreshing them when needed.
type Manager struct {
	store     Store
	keys      *keyring.Ring
	refresher Refresher
	logger    *slog.Logger
	now       func() time.Time
	cookie    Cookie
	idle      time.Duration
	absolute  time.Duration
	skew      time.Duration
	loginURL  string

	opened    *lru.Cache[string, openedPayload]
	exchanger Exchanger                                     // nil when the refresher cannot exchange tokens
	exchanged *lru.Cache[string, map[string]exchangedToken] // by store key, then audience
	exchMu    sync.Mutex                                    // read-modify-write of exchanged
	revoker   Revoker                                       // nil when the refresher cannot revoke tokens

	leaser   Leaser        // nil unless the store is shared by replicas
	leaseTTL time.Duration // RefreshLeaseTTL but in tests
	unsaved  *lru.Cache[string, unsavedTokens]

	mu      sync.Mutex
	flights map[string]*flight // refreshes in progress, by store key

	anonymous state // what UserTokens acts for when no session was attached

	meters  metric.MeterProvider
	metrics instruments
}

// Option configures a Manager.
type Option interface {
	apply(*Manager)
}

type optionFunc func(*Manager)

func (f optionFunc) apply(m *Manager) { f(m) }

// WithLogger sets the logger. Default: discard.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(m *Manager) { m.logger = logger })
}

// WithClock sets the clock for expiry decisions. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(m *Manager) { m.now = now })
}

// WithCookie sets the session cookie's name and SameSite mode. Default:
// DefaultCookieName, SameSite=Strict.
func WithCookie(c Cookie) Option {
	return optionFunc(func(m *Manager) { m.cookie = c })
}

// WithTimeouts sets the idle (sliding) and absolute session lifetimes.
// Default: DefaultIdleTimeout and DefaultAbsoluteTimeout.
func WithTimeouts(idle, absolute time.Duration) Option {
	return optionFunc(func(m *Manager) { m.idle, m.absolute = idle, absolute })
}

// WithRefreshSkew refreshes access tokens this long before they expire.
// Default: DefaultRefreshSkew.
func WithRefreshSkew(d time.Duration) Option {
	return optionFunc(func(m *Manager) { m.skew = d })
}

// WithLoginURL sets where SessionError details send users to sign in.
// Default: "/auth/login".
func WithLoginURL(u string) Option {
	return optionFunc(func(m *Manager) { m.loginURL = u })
}

// NewManager returns a Manager keeping sessions in store, sealed with keys,
// refreshing tokens with refresher.
func NewManager(store Store, keys *keyring.Ring, refresher Refresher, opts ...Option) *Manager {
	m := &Manager{
		store:     store,
		keys:      keys,
		refresher: refresher,
		logger:    slog.New(slog.DiscardHandler),
		now:       time.Now,
		idle:      DefaultIdleTimeout,
		absolute:  DefaultAbsoluteTimeout,
		skew:      DefaultRefreshSkew,
		loginURL:  "/auth/login",
		flights:   make(map[string]*flight),
		leaseTTL:  RefreshLeaseTTL,
	}
	for _, opt := range opts {
		opt.apply(m)
	}
	m.opened, _ = lru.New[string, openedPayload](openedCacheSize) // fails only for a size <= 0
	m.exchanged, _ = lru.New[string, map[string]exchangedToken](openedCacheSize)
	m.unsaved, _ = lru.New[string, unsavedTokens](unsavedCacheSize)
	m.exchanger, _ = refresher.(Exchanger)
	m.revoker, _ = refresher.(Revoker)
	m.leaser, _ = store.(Leaser)
	m.cookie = m.cookie.withDefaults()
	m.anonymous = state{m: m}
	m.metrics = newInstruments(m.meters)
	return m
}

// openedCacheSize bounds the cache of opened payloads: the sessions active
// in the last moments, not every session.
const openedCacheSize = 4096

// payload is what a record seals: everything about the user and the tokens.
type payload struct {
	User     User   `json:"u"`
	LogoutID string `json:"l"`
	Tokens   Tokens `json:"t"`
}

// Create starts a new session for user with tokens and returns the cookie
// that names it. sid is the provider's session id, if it sent one. A new
// random id is made every time: whatever id the browser had is never reused.
func (m *Manager) Create(ctx context.Context, user User, sid string, tokens Tokens) (*http.Cookie, *Session, error) {
	id := randomString(idBytes)
	now := m.now()
	s := &Session{
		key:            storeKey(id),
		User:           user,
		SID:            sid,
		LogoutID:       randomString(16),
		Created:        now,
		AbsoluteExpiry: now.Add(m.absolute),
		tokens:         tokens,
	}
	s.IdleExpiry = m.idleExpiry(now, s.AbsoluteExpiry)
	sealed, err := m.seal(s.key, payload{User: user, LogoutID: s.LogoutID, Tokens: tokens})
	if err != nil {
		return nil, nil, err
	}
	rec := Record{
		Subject:        user.Subject,
		SID:            sid,
		Created:        now,
		LastSeen:       now,
		AbsoluteExpiry: s.AbsoluteExpiry,
		Expires:        m.storeExpiry(s.IdleExpiry),
		Sealed:         sealed,
	}
	if err := m.store.Put(ctx, s.key, rec); err != nil {
		return nil, nil, fmt.Errorf("session: create: %w", err)
	}
	m.metrics.started.Add(ctx, 1)
	return m.cookie.cookie(id), s, nil
}

// FromHeader loads the session named by the request's cookie. Without a
// usable one it returns an [*Error] saying why; when the store fails,
// CodeUnavailable.
func (m *Manager) FromHeader(ctx context.Context, header http.Header) (*Session, error) {
	return m.fromCookies(ctx, header.Values("Cookie"))
}

// fromCookies is FromHeader for the request's Cookie lines.
func (m *Manager) fromCookies(ctx context.Context, cookies []string) (*Session, error) {
	id := m.cookie.idFrom(cookies)
	if id == "" {
		return nil, Unauthenticated(ReasonNoSession, m.loginURL)
	}
	return m.load(ctx, storeKey(id))
}

// load returns the live session under key, sliding its idle expiry.
func (m *Manager) load(ctx context.Context, key string) (*Session, error) {
	rec, err := m.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, Unauthenticated(ReasonNoSession, m.loginURL)
	}
	if err != nil {
		m.logger.ErrorContext(ctx, "session store failed", "error", err)
		return nil, errUnavailable()
	}
	if rec.Ended != 0 {
		return nil, Unauthenticated(rec.Ended, m.loginURL)
	}
	now := m.now()
	if !now.Before(rec.AbsoluteExpiry) || !now.Before(rec.LastSeen.Add(m.idle)) {
		m.end(ctx, key, ReasonExpired)
		return nil, Unauthenticated(ReasonExpired, m.loginURL)
	}
	p, err := m.open(key, rec.Sealed)
	if err != nil {
		// Sealed with a key that has left the ring, or damaged.
		m.logger.WarnContext(ctx, "session record cannot be opened", "error", err)
		m.end(ctx, key, ReasonExpired)
		return nil, Unauthenticated(ReasonExpired, m.loginURL)
	}
	s := &Session{
		key:            key,
		User:           p.User,
		SID:            rec.SID,
		LogoutID:       p.LogoutID,
		Created:        rec.Created,
		AbsoluteExpiry: rec.AbsoluteExpiry,
		IdleExpiry:     m.idleExpiry(rec.LastSeen, rec.AbsoluteExpiry),
		tokens:         p.Tokens,
	}
	// Slide the idle expiry, but write at most once per idle/32 (about a
	// minute for 30 minutes) so a busy page does not write on every call.
	if now.Sub(rec.LastSeen) >= m.idle/32 {
		s.IdleExpiry = m.idleExpiry(now, rec.AbsoluteExpiry)
		if err := m.store.Touch(ctx, key, now, m.storeExpiry(s.IdleExpiry)); err != nil {
			m.logger.WarnContext(ctx, "session touch failed", "error", err)
		}
	}
	return s, nil
}

// Ref returns an opaque reference to the session named by header's cookie,
// or "" when there is none. A login keeps it to end that session once the
// new one exists: the callback itself, a cross-site navigation, does not
// carry a SameSite=Strict cookie.
func (m *Manager) Ref(ctx context.Context, header http.Header) string {
	if s, err := m.FromHeader(ctx, header); err == nil {
		return s.key
	}
	return ""
}

// EndRef ends the session ref names, if it still lives.
func (m *Manager) EndRef(ctx context.Context, ref string) error {
	if ref == "" {
		return nil
	}
	if _, err := m.load(ctx, ref); err != nil {
		return nil // already ended or gone
	}
	return m.end(ctx, ref, ReasonSignedOut)
}

// End ends the session: its record becomes a tombstone that tells later
// requests with its cookie why they are refused.
func (m *Manager) End(ctx context.Context, s *Session, reason Reason) error {
	return m.end(ctx, s.key, reason)
}

// EndMatching ends every live session of subject (when not empty) and sid
// (when not empty), as back-channel logout asks, and returns how many.
func (m *Manager) EndMatching(ctx context.Context, subject, sid string) (int, error) {
	keys, err := m.store.Find(ctx, subject, sid)
	if err != nil {
		return 0, fmt.Errorf("session: find: %w", err)
	}
	var errs []error
	for _, key := range keys {
		errs = append(errs, m.end(ctx, key, ReasonSignedOut))
	}
	return len(keys), errors.Join(errs...)
}

// revokeTimeout bounds the revocations of one EndUser, and revokeParallel
// how many run at once.
const (
	revokeTimeout  = 5 * time.Second
	revokeParallel = 4
)

// EndUser ends every live session of s's user on every replica sharing the
// store, s last, as "sign out everywhere" asks, and returns how many ended.
// When the refresher is a [Revoker], the refresh tokens of the ended
// sessions are then revoked at the provider, best effort: a failure is
// logged, not returned. When the store fails, the error is CodeUnavailable
// and s has not ended, so the caller can try again with its session.
func (m *Manager) EndUser(ctx context.Context, s *Session) (int, error) {
	keys, err := m.store.Find(ctx, s.User.Subject, "")
	if err != nil {
		m.logger.ErrorContext(ctx, "session store failed", "error", err)
		return 0, errUnavailable()
	}
	var refreshTokens []string
	ended := 0
	var failed error
	for _, key := range keys {
		if key == s.key {
			continue
		}
		// Read the refresh token before the record becomes a tombstone; a
		// record that cannot be read or opened is ended all the same.
		if rec, err := m.store.Get(ctx, key); err == nil && rec.Ended == 0 {
			if p, err := m.open(key, rec.Sealed); err == nil && p.Tokens.RefreshToken != "" {
				refreshTokens = append(refreshTokens, p.Tokens.RefreshToken)
			}
		}
		if err := m.end(ctx, key, ReasonSignedOut); err != nil {
			failed = err
			continue
		}
		ended++
	}
	if failed == nil {
		// s's own tokens, as stored now: a refresh may have rotated them.
		if _, p, err := m.read(ctx, s.key); err == nil {
			refreshTokens = append(refreshTokens, p.Tokens.RefreshToken)
		} else if connect.CodeOf(err) == connect.CodeUnavailable {
			failed = err
		}
	}
	if failed == nil {
		if failed = m.end(ctx, s.key, ReasonSignedOut); failed == nil {
			ended++
		}
	}
	m.revoke(ctx, refreshTokens)
	if failed != nil {
		m.logger.ErrorContext(ctx, "signing out everywhere failed", "subject", s.User.Subject, "sessions", ended, "error", failed)
		return ended, errUnavailable()
	}
	m.logger.InfoContext(ctx, "signed out everywhere", "subject", s.User.Subject, "sessions", ended)
	return ended, nil
}

// revoke revokes refreshTokens at the provider, if the refresher can.
func (m *Manager) revoke(ctx context.Context, refreshTokens []string) {
	if m.revoker == nil || len(refreshTokens) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	sem := make(chan struct{}, revokeParallel)
	var wg sync.WaitGroup
	for _, rt := range refreshTokens {
		if rt == "" {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := m.revoker.Revoke(ctx, rt); err != nil {
				m.logger.WarnContext(ctx, "refresh token revocation failed", "error", err)
			}
		})
	}
	wg.Wait()
}

func (m *Manager) end(ctx context.Context, key string, reason Reason) error {
	// The session's tokens leave memory with it, not when the caches are
	// full.
	m.dropExchanged(key)
	m.unsaved.Remove(key)
	m.opened.Remove(key)
	now := m.now()
	// A tombstone lives as long as an idle session would have, long enough
	// for the browser's next call to learn the reason.
	err := m.store.Put(ctx, key, Record{Created: now, LastSeen: now, AbsoluteExpiry: now, Expires: now.Add(m.idle), Ended: reason})
	if err != nil {
		m.logger.ErrorContext(ctx, "ending a session failed", "error", err)
		return fmt.Errorf("session: end: %w", err)
	}
	m.metrics.ended.Add(ctx, 1, metric.WithAttributes(telemetry.Reason.String(reasonLabel(reason))))
	return nil
}

// ClearCookie returns a cookie that deletes the session cookie.
func (m *Manager) ClearCookie() *http.Cookie { return m.cookie.clear() }

// CookieName returns the session cookie's name.
func (m *Manager) CookieName() string { return m.cookie.Name }

// LoginURL returns where users without a session are sent.
func (m *Manager) LoginURL() string { return m.loginURL }

func (m *Manager) idleExpiry(lastSeen, absolute time.Time) time.Time {
	if e := lastSeen.Add(m.idle); e.Before(absolute) {
		return e
	}
	return absolute
}

// storeExpiry is when the store may forget a session that idles out at
// idleExpiry: an idle period later, as long as a tombstone lives, so that
// the browser's next call still finds the record and learns that its session
// expired instead of being told it never had one.
func (m *Manager) storeExpiry(idleExpiry time.Time) time.Time {
	return idleExpiry.Add(m.idle)
}

func (m *Manager) seal(key string, p payload) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("session: payload: %w", err)
	}
	return m.keys.Seal(b, []byte(key)), nil
}

// open returns the payload sealed in a record. Opened payloads are kept in
// a bounded cache keyed by store key and checked against the sealed bytes,
// so the common request (same record as last time) skips AES-GCM and JSON.
func (m *Manager) open(key string, sealed []byte) (payload, error) {
	if c, ok := m.opened.Get(key); ok && bytes.Equal(c.sealed, sealed) {
		return c.payload, nil
	}
	var p payload
	b, err := m.keys.Open(sealed, []byte(key))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("session: payload: %w", err)
	}
	m.opened.Add(key, openedPayload{sealed: bytes.Clone(sealed), payload: p})
	return p, nil
}

// openedPayload is a cache entry of open: the box and what it holds.
type openedPayload struct {
	sealed  []byte
	payload payload
}

// storeKey is what the store knows a session by: a hash of its id, so that a
// copy of the store does not hand out working cookies.
func storeKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return base64.RawURLEncoding.EncodeToString(b)
}
