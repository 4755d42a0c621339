package session

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// Refresher renews a session's tokens at the provider.
type Refresher interface {
	// Refresh redeems refreshToken. The answer's RefreshToken and IDToken
	// may be empty when the provider did not rotate them. An error that
	// wraps ErrRefreshRejected means the refresh token is dead; any other
	// error is taken as a passing outage.
	Refresh(ctx context.Context, refreshToken string) (Tokens, error)
}

// ErrRefreshRejected marks a refresh the provider refused for good
// (invalid_grant): retrying cannot help, the session must end.
var ErrRefreshRejected = errors.New("refresh token rejected")

// Revoker revokes refresh tokens at the provider (RFC 7009). A Refresher
// that also implements Revoker has the refresh tokens of the sessions that
// [Manager.EndUser] ends revoked.
type Revoker interface {
	Revoke(ctx context.Context, refreshToken string) error
}

// refreshTimeout bounds one refresh. It runs on its own context so that no
// single caller's cancellation fails the others waiting for it.
const refreshTimeout = 15 * time.Second

// flight is one refresh in progress; every caller that needs the session's
// token meanwhile waits for it instead of starting another.
type flight struct {
	done   chan struct{}
	tokens Tokens
	err    error
}

// AccessToken returns a valid access token of s, refreshing it first when
// it expires within the refresh skew. Concurrent callers for one session
// share a single refresh; each waits only as long as its own ctx allows.
// When the provider refuses the refresh token the session ends and the
// error is an [*Error] with reason REFRESH_FAILED; a provider outage gives
// CodeUnavailable and keeps the session.
func (m *Manager) AccessToken(ctx context.Context, s *Session) (string, error) {
	if t := s.Tokens(); m.fresh(t) {
		return t.AccessToken, nil
	}
	t, err := m.refresh(ctx, s.key, "")
	if err != nil {
		return "", err
	}
	s.setTokens(t)
	return t.AccessToken, nil
}

// RenewAccessToken returns an access token other than rejected, which a
// backend just refused: it refreshes unless another call already did. The
// refusal rules of AccessToken apply.
func (m *Manager) RenewAccessToken(ctx context.Context, s *Session, rejected string) (string, error) {
	t, err := m.refresh(ctx, s.key, rejected)
	if err != nil {
		return "", err
	}
	s.setTokens(t)
	return t.AccessToken, nil
}

// Reject ends s because a backend kept refusing its tokens after a renewal,
// and returns the error for the browser (reason TOKEN_REJECTED).
func (m *Manager) Reject(ctx context.Context, s *Session) error {
	m.logger.InfoContext(ctx, "a backend refused the renewed token: ending the session")
	m.dropExchanged(s.key)
	_ = m.end(ctx, s.key, ReasonTokenRejected)
	return Unauthenticated(ReasonTokenRejected, m.loginURL)
}

// fresh reports whether t's access token outlives the refresh skew. A token
// without an expiry is taken as fresh: the backend's 401 will tell.
func (m *Manager) fresh(t Tokens) bool {
	return t.AccessToken != "" && (t.AccessExpiry.IsZero() || m.now().Add(m.skew).Before(t.AccessExpiry))
}

// refresh returns the session's tokens after a refresh, unless the stored
// access token is fresh and is not stale (the token a backend just refused).
// Refreshes of one session never overlap: a caller that joins a flight which
// handed back its stale token starts one more.
func (m *Manager) refresh(ctx context.Context, key, stale string) (Tokens, error) {
	return m.share(ctx, key, stale, func(ctx context.Context) (Tokens, error) {
		return m.refreshStored(ctx, key, stale)
	}, kindRefresh)
}

// share runs fetch as the one flight under key, or waits for the flight
// already under way; each caller waits only as long as its own ctx allows,
// and the flight runs on its own context, bounded by refreshTimeout, so no
// caller's cancellation fails the others. A caller that gets back the stale
// token it wanted replaced (the flight it joined started before its
// refusal) starts one more flight.
//
// The flight's own span is in the trace of the caller that started it; a
// caller that joins one gets a span of the same name, marked
// custodian.flight=joined, for its wait.
func (m *Manager) share(ctx context.Context, key, stale string, fetch func(context.Context) (Tokens, error), kind flightKind) (Tokens, error) {
	for range 2 {
		m.mu.Lock()
		f, ok := m.flights[key]
		if !ok {
			f = &flight{done: make(chan struct{})}
			m.flights[key] = f
			go m.fly(context.WithoutCancel(ctx), key, f, fetch)
		}
		m.mu.Unlock()
		var wait trace.Span
		if ok {
			m.metrics.joined.Add(ctx, 1, kind.joined)
			_, wait = telemetry.Start(ctx, kind.span, telemetry.Flight.String("joined"))
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			endWait(wait, ctx.Err())
			return Tokens{}, connect.NewError(connect.CodeCanceled, ctx.Err().Error()).WithCause(ctx.Err())
		}
		endWait(wait, f.err)
		if f.err != nil || stale == "" || f.tokens.AccessToken != stale {
			return f.tokens, f.err
		}
	}
	return Tokens{}, errProviderUnavailable(nil)
}

// endWait ends the span of a joined flight's wait, if there is one.
func endWait(span trace.Span, err error) {
	if span != nil {
		telemetry.End(span, err)
	}
}

func (m *Manager) fly(ctx context.Context, key string, f *flight, fetch func(context.Context) (Tokens, error)) {
	defer func() {
		m.mu.Lock()
		delete(m.flights, key)
		m.mu.Unlock()
		close(f.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	f.tokens, f.err = fetch(ctx)
}

// RefreshLeaseTTL is how long a session's refresh lease lasts without
// renewal, when the store is a [Leaser] (shared by several replicas). The
// replica that refreshes a session holds the lease while the provider
// answers and renews it every RefreshLeaseTTL/3, so a slow provider never
// lets a second replica present the same refresh token; a replica that
// dies holding it delays the session's refresh on the others by at most
// RefreshLeaseTTL.
const RefreshLeaseTTL = 5 * time.Second

// Waits between two attempts to take a lease another replica holds: they
// double from leasePollMin up to leasePollMax, with jitter. After each wait
// the record is read again, so a refresh the holder finished is used at
// once.
const (
	leasePollMin = 10 * time.Millisecond
	leasePollMax = 200 * time.Millisecond
)

// unsavedCacheSize bounds the refreshed tokens kept while the store could
// not take them (see unsavedTokens).
const unsavedCacheSize = 1024

// unsavedTokens are tokens a refresh got from the provider but could not
// store: redeemed is the refresh token that was presented, still in the
// record. With a provider that rotates refresh tokens it is spent, so the
// next refresh of the session on this replica stores these tokens (or
// presents their refresh token) instead of presenting it again, which
// would end the session.
type unsavedTokens struct {
	redeemed string
	tokens   Tokens
}

// refreshStored refreshes the tokens stored under key, unless another flight
// (here or, with a shared store, on another replica) already did. With a
// Leaser store it holds the session's refresh lease from before it reads
// the refresh token to after it stores the new one, so one refresh token is
// presented once across every replica.
func (m *Manager) refreshStored(ctx context.Context, key, stale string) (Tokens, error) {
	rec, p, err := m.read(ctx, key)
	if err != nil {
		return Tokens{}, err
	}
	if m.usable(p.Tokens, stale) {
		return p.Tokens, nil
	}
	if m.leaser != nil {
		lease, stored, err := m.takeLease(ctx, key, stale)
		if err != nil {
			return Tokens{}, err
		}
		if lease == nil {
			return stored, nil // another replica refreshed meanwhile
		}
		defer m.holdLease(ctx, lease)()
		// Read again under the lease: another replica may have refreshed
		// between the first read and the lease.
		if rec, p, err = m.read(ctx, key); err != nil {
			return Tokens{}, err
		}
		if m.usable(p.Tokens, stale) {
			return p.Tokens, nil
		}
	}
	return m.redeem(ctx, key, rec, p, stale)
}

// read returns the live record under key and its payload, or the error a
// caller gets: the session verdict for a session that is gone, has ended or
// cannot be opened, CodeUnavailable when the store fails.
func (m *Manager) read(ctx context.Context, key string) (Record, payload, error) {
	rec, err := m.store.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Record{}, payload{}, Unauthenticated(ReasonNoSession, m.loginURL)
	case err != nil:
		m.logger.ErrorContext(ctx, "session store failed", "error", err)
		return Record{}, payload{}, errUnavailable()
	case rec.Ended != 0:
		return Record{}, payload{}, Unauthenticated(rec.Ended, m.loginURL)
	}
	p, err := m.open(key, rec.Sealed)
	if err != nil {
		m.logger.WarnContext(ctx, "session record cannot be opened", "error", err)
		_ = m.end(ctx, key, ReasonExpired)
		return Record{}, payload{}, Unauthenticated(ReasonExpired, m.loginURL)
	}
	return rec, p, nil
}

// usable reports whether t's access token can be handed out instead of
// refreshing: it is fresh, and it is not stale, the one a backend refused.
func (m *Manager) usable(t Tokens, stale string) bool {
	return m.fresh(t) && t.AccessToken != stale
}

// takeLease takes the refresh lease of the session under key. While another
// replica holds it, it waits and reads the record again: when the holder
// has stored new tokens it returns them and no lease. It gives up with
// CodeUnavailable when the store fails or ctx ends first; a holder that
// died loses the lease within its TTL, and this replica takes it then.
func (m *Manager) takeLease(ctx context.Context, key, stale string) (Lease, Tokens, error) {
	name := leaseName(key)
	wait := leasePollMin
	for {
		lease, err := m.leaser.Lease(ctx, name, m.leaseTTL)
		if err == nil {
			return lease, Tokens{}, nil
		}
		if !errors.Is(err, ErrLeaseHeld) {
			m.logger.ErrorContext(ctx, "session store failed to lease", "error", err)
			return nil, Tokens{}, errUnavailable()
		}
		timer := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			timer.Stop()
			m.logger.WarnContext(ctx, "gave up waiting for another replica's token refresh", "error", ctx.Err())
			return nil, Tokens{}, errUnavailable()
		case <-timer.C:
		}
		wait = min(2*wait, leasePollMax)
		_, p, err := m.read(ctx, key)
		if err != nil {
			return nil, Tokens{}, err
		}
		if m.usable(p.Tokens, stale) {
			return nil, p.Tokens, nil
		}
	}
}

// leaseName names the refresh lease of the session under key.
func leaseName(key string) string { return "refresh:" + key }

// holdLease renews lease every TTL/3 until the returned function is called;
// that function stops the renewals and releases the lease.
func (m *Manager) holdLease(ctx context.Context, lease Lease) (release func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(m.leaseTTL / 3)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
			}
			renewCtx, cancel := context.WithTimeout(ctx, m.leaseTTL/3)
			err := lease.Renew(renewCtx)
			cancel()
			if err != nil {
				// Nothing better to do than go on: the provider has the
				// refresh token already. A lost lease needs the store to
				// fail for most of a TTL.
				m.logger.WarnContext(ctx, "renewing the refresh lease failed", "error", err)
			}
		}
	})
	return func() {
		close(stop)
		wg.Wait()
		// On a context of its own: the flight's may be over.
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.leaseTTL/3)
		defer cancel()
		if err := lease.Release(releaseCtx); err != nil {
			// It expires within its TTL.
			m.logger.WarnContext(ctx, "releasing the refresh lease failed", "error", err)
		}
	}
}

// redeem presents the refresh token of p, the payload of rec under key, and
// stores the new tokens. Tokens refreshed earlier on this replica that the
// store did not take are used first.
func (m *Manager) redeem(ctx context.Context, key string, rec Record, p payload, stale string) (Tokens, error) {
	now := m.now()
	// The store keeps records an idle period past their idle expiry (see
	// storeExpiry): a session that has idled out is not refreshed.
	if !now.Before(rec.AbsoluteExpiry) || !now.Before(rec.LastSeen.Add(m.idle)) || p.Tokens.RefreshToken == "" {
		_ = m.end(ctx, key, ReasonExpired)
		return Tokens{}, Unauthenticated(ReasonExpired, m.loginURL)
	}
	stored := p.Tokens.RefreshToken
	held := p.Tokens
	if u, ok := m.unsaved.Get(key); ok {
		if u.redeemed == stored {
			held = u.tokens
		} else {
			m.unsaved.Remove(key) // the record moved on
		}
	}
	renewed := held
	if !m.usable(held, stale) {
		var err error
		spanCtx, span := telemetry.Start(ctx, "custodian.refresh")
		start := time.Now()
		renewed, err = m.refresher.Refresh(spanCtx, held.RefreshToken)
		outcome := outcomeOf(err, errors.Is(err, ErrRefreshRejected))
		span.SetAttributes(telemetry.Outcome.String(outcome))
		telemetry.End(span, err)
		recordProvider(ctx, m.metrics.refreshes, start, outcome)
		if errors.Is(err, ErrRefreshRejected) {
			m.logger.InfoContext(ctx, "provider refused the refresh token: ending the session", "error", err)
			m.unsaved.Remove(key)
			_ = m.end(ctx, key, ReasonRefreshFailed)
			return Tokens{}, Unauthenticated(ReasonRefreshFailed, m.loginURL)
		}
		if err != nil {
			m.logger.WarnContext(ctx, "token refresh failed; keeping the session", "error", err)
			return Tokens{}, errProviderUnavailable(err)
		}
		if renewed.RefreshToken == "" {
			renewed.RefreshToken = held.RefreshToken
		}
		if renewed.IDToken == "" {
			renewed.IDToken = held.IDToken
		}
	}
	p.Tokens = renewed
	sealed, err := m.seal(key, p)
	if err != nil {
		return Tokens{}, err
	}
	switch err := m.store.UpdateSealed(ctx, key, sealed); {
	case errors.Is(err, ErrNotFound):
		// Ended while we refreshed (a logout won the race): stay ended.
		m.unsaved.Remove(key)
		rec, err := m.store.Get(ctx, key)
		switch {
		case err == nil && rec.Ended != 0:
			return Tokens{}, Unauthenticated(rec.Ended, m.loginURL)
		case err != nil && !errors.Is(err, ErrNotFound):
			m.logger.ErrorContext(ctx, "session store failed", "error", err)
			return Tokens{}, errUnavailable()
		}
		return Tokens{}, Unauthenticated(ReasonSignedOut, m.loginURL)
	case err != nil:
		// The new tokens work for this call. The next refresh here stores
		// them instead of presenting the spent refresh token again.
		m.logger.ErrorContext(ctx, "storing refreshed tokens failed", "error", err)
		m.unsaved.Add(key, unsavedTokens{redeemed: stored, tokens: renewed})
	default:
		m.unsaved.Remove(key)
	}
	return renewed, nil
}
