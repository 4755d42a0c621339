package session

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect/v2"
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
	})
}

// share runs fetch as the one flight under key, or waits for the flight
// already under way; each caller waits only as long as its own ctx allows,
// and the flight runs on its own context, bounded by refreshTimeout, so no
// caller's cancellation fails the others. A caller that gets back the stale
// token it wanted replaced (the flight it joined started before its
// refusal) starts one more flight.
func (m *Manager) share(ctx context.Context, key, stale string, fetch func(context.Context) (Tokens, error)) (Tokens, error) {
	for range 2 {
		m.mu.Lock()
		f, ok := m.flights[key]
		if !ok {
			f = &flight{done: make(chan struct{})}
			m.flights[key] = f
			go m.fly(context.WithoutCancel(ctx), key, f, fetch)
		}
		m.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return Tokens{}, connect.NewError(connect.CodeCanceled, ctx.Err().Error()).WithCause(ctx.Err())
		}
		if f.err != nil || stale == "" || f.tokens.AccessToken != stale {
			return f.tokens, f.err
		}
	}
	return Tokens{}, errProviderUnavailable(nil)
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

// refreshStored refreshes the tokens stored under key, unless another flight
// (here or, with a shared store, on another replica) already did.
func (m *Manager) refreshStored(ctx context.Context, key, stale string) (Tokens, error) {
	rec, err := m.store.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Tokens{}, Unauthenticated(ReasonNoSession, m.loginURL)
	case err != nil:
		m.logger.ErrorContext(ctx, "session store failed", "error", err)
		return Tokens{}, errUnavailable()
	case rec.Ended != 0:
		return Tokens{}, Unauthenticated(rec.Ended, m.loginURL)
	}
	p, err := m.open(key, rec.Sealed)
	if err != nil {
		m.end(ctx, key, ReasonExpired)
		return Tokens{}, Unauthenticated(ReasonExpired, m.loginURL)
	}
	if m.fresh(p.Tokens) && p.Tokens.AccessToken != stale {
		return p.Tokens, nil
	}
	now := m.now()
	// The store keeps records an idle period past their idle expiry (see
	// storeExpiry): a session that has idled out is not refreshed.
	if !now.Before(rec.AbsoluteExpiry) || !now.Before(rec.LastSeen.Add(m.idle)) || p.Tokens.RefreshToken == "" {
		m.end(ctx, key, ReasonExpired)
		return Tokens{}, Unauthenticated(ReasonExpired, m.loginURL)
	}
	renewed, err := m.refresher.Refresh(ctx, p.Tokens.RefreshToken)
	if errors.Is(err, ErrRefreshRejected) {
		m.logger.InfoContext(ctx, "provider refused the refresh token: ending the session", "error", err)
		m.end(ctx, key, ReasonRefreshFailed)
		return Tokens{}, Unauthenticated(ReasonRefreshFailed, m.loginURL)
	}
	if err != nil {
		m.logger.WarnContext(ctx, "token refresh failed; keeping the session", "error", err)
		return Tokens{}, errProviderUnavailable(err)
	}
	if renewed.RefreshToken == "" {
		renewed.RefreshToken = p.Tokens.RefreshToken
	}
	if renewed.IDToken == "" {
		renewed.IDToken = p.Tokens.IDToken
	}
	p.Tokens = renewed
	sealed, err := m.seal(key, p)
	if err != nil {
		return Tokens{}, err
	}
	if err := m.store.UpdateSealed(ctx, key, sealed); errors.Is(err, ErrNotFound) {
		// Ended while we refreshed (a logout won the race): stay ended.
		if rec, err := m.store.Get(ctx, key); err == nil && rec.Ended != 0 {
			return Tokens{}, Unauthenticated(rec.Ended, m.loginURL)
		}
		return Tokens{}, Unauthenticated(ReasonSignedOut, m.loginURL)
	} else if err != nil {
		// The new tokens work for this call; the next one will refresh again.
		m.logger.ErrorContext(ctx, "storing refreshed tokens failed", "error", err)
	}
	return renewed, nil
}
