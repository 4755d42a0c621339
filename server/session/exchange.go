package session

import (
	"context"
	"errors"
	"maps"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// Exchanger obtains, by RFC 8693 token exchange, a token for another
// audience from a session's access token. A Refresher that also implements
// Exchanger enables the "exchange" token policy.
type Exchanger interface {
	// Exchange returns a token for audience. An error wrapping
	// ErrRefreshRejected means the provider refused the subject token.
	Exchange(ctx context.Context, subjectToken, audience string) (Tokens, error)
}

// ExchangedToken returns a token of s for audience, exchanged from its
// access token and kept per session and audience until it nears expiry or
// the session's access token changes (a refresh here or on another
// replica). Concurrent callers share one exchange; logout and every other
// end of the session drop the kept tokens.
func (m *Manager) ExchangedToken(ctx context.Context, s *Session, audience string) (string, error) {
	if t, ok := m.cachedExchange(s.key, audience, s.Tokens().AccessToken); ok {
		m.metrics.cache.Add(ctx, 1, exchangeCacheHit)
		_, span := telemetry.Start(ctx, "custodian.cache", exchangeCacheName, telemetry.Cache.String("hit"))
		span.End()
		return t.AccessToken, nil
	}
	m.metrics.cache.Add(ctx, 1, exchangeCacheMis)
	return m.exchange(ctx, s, audience, "")
}

// RenewExchangedToken returns a token for audience other than rejected,
// which a backend just refused.
func (m *Manager) RenewExchangedToken(ctx context.Context, s *Session, audience, rejected string) (string, error) {
	if t, ok := m.cachedExchange(s.key, audience, s.Tokens().AccessToken); ok && t.AccessToken != rejected {
		return t.AccessToken, nil
	}
	m.forgetExchange(s.key, audience, rejected)
	return m.exchange(ctx, s, audience, rejected)
}

func (m *Manager) exchange(ctx context.Context, s *Session, audience, rejected string) (string, error) {
	if m.exchanger == nil {
		return "", connect.NewError(connect.CodeUnimplemented, "token exchange is not configured")
	}
	flightKey := "exchange\x00" + s.key + "\x00" + audience
	t, err := m.share(ctx, flightKey, rejected, func(ctx context.Context) (Tokens, error) {
		return m.exchangeStored(ctx, s, audience)
	}, kindExchange)
	return t.AccessToken, err
}

// exchangeStored exchanges the session's access token for audience and
// keeps the result, unless the session ended or another flight already did.
//
// Exchanges take no lease, even with a store shared by replicas: they
// present the access token, which the provider does not spend, so two
// replicas exchanging at once only get two valid tokens. What each replica
// keeps is bound to the access token it came from, which every request
// reads from the record: once any replica refreshes the session, the
// others exchange again instead of using a token derived from the
// replaced one, and once any replica ends it, the record refuses the next
// request before a kept token is looked at.
func (m *Manager) exchangeStored(ctx context.Context, s *Session, audience string) (Tokens, error) {
	if t, ok := m.cachedExchange(s.key, audience, s.Tokens().AccessToken); ok {
		return t, nil
	}
	// The caller may hold a session that has ended since it was loaded: it
	// gets the reason, not a new token (as a refresh would).
	if err := m.live(ctx, s.key); err != nil {
		return Tokens{}, err
	}
	subject, err := m.AccessToken(ctx, s)
	if err != nil {
		return Tokens{}, err
	}
	if t, ok := m.cachedExchange(s.key, audience, subject); ok {
		return t, nil // the session's token was refreshed, and exchanged already
	}
	t, err := m.exchangeOnce(ctx, subject, audience)
	if errors.Is(err, ErrRefreshRejected) {
		// The subject token may have been replaced meanwhile (a refresh
		// revokes the old access token at many providers): renew it and try
		// once more before taking the refusal as the session's end.
		renewed, rerr := m.RenewAccessToken(ctx, s, subject)
		if rerr != nil {
			return Tokens{}, rerr
		}
		if renewed != subject {
			subject = renewed
			t, err = m.exchangeOnce(ctx, subject, audience)
		}
	}
	switch {
	case errors.Is(err, ErrRefreshRejected):
		m.logger.InfoContext(ctx, "provider refused the token exchange: ending the session",
			"audience", audience, "error", err)
		_ = m.end(ctx, s.key, ReasonTokenRejected)
		return Tokens{}, Unauthenticated(ReasonTokenRejected, m.loginURL)
	case err != nil:
		m.logger.WarnContext(ctx, "token exchange failed", "audience", audience, "error", err)
		return Tokens{}, errProviderUnavailable(err)
	}
	// Ended while we exchanged (a logout won the race): do not keep the
	// token for the ended session.
	if err := m.live(ctx, s.key); err != nil {
		return Tokens{}, err
	}
	m.keepExchange(s.key, audience, subject, t)
	return t, nil
}

// exchangeOnce asks the provider for one exchange, traced and measured.
func (m *Manager) exchangeOnce(ctx context.Context, subject, audience string) (Tokens, error) {
	spanCtx, span := telemetry.Start(ctx, "custodian.token_exchange")
	start := time.Now()
	t, err := m.exchanger.Exchange(spanCtx, subject, audience)
	outcome := outcomeOf(err, errors.Is(err, ErrRefreshRejected))
	span.SetAttributes(telemetry.Outcome.String(outcome))
	telemetry.End(span, err)
	recordProvider(ctx, m.metrics.exchanges, start, outcome)
	return t, err
}

// live returns nil while the session under key lives, else the error its
// requests get.
func (m *Manager) live(ctx context.Context, key string) error {
	rec, err := m.store.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Unauthenticated(ReasonNoSession, m.loginURL)
	case err != nil:
		m.logger.ErrorContext(ctx, "session store failed", "error", err)
		return errUnavailable()
	case rec.Ended != 0:
		return Unauthenticated(rec.Ended, m.loginURL)
	}
	return nil
}

// exchangedToken is a kept exchange: the token, and the session's access
// token it was exchanged from.
type exchangedToken struct {
	Tokens
	subject string
}

// cachedExchange returns the kept token of the session under key for
// audience, if it is fresh and was exchanged from subject, the session's
// current access token.
func (m *Manager) cachedExchange(key, audience, subject string) (Tokens, bool) {
	byAudience, ok := m.exchanged.Get(key)
	if !ok {
		return Tokens{}, false
	}
	t, ok := byAudience[audience]
	return t.Tokens, ok && t.subject == subject && m.fresh(t.Tokens)
}

// keepExchange and forgetExchange copy the per-session map, so readers of
// the old one never see it change.
func (m *Manager) keepExchange(key, audience, subject string, t Tokens) {
	m.exchMu.Lock()
	defer m.exchMu.Unlock()
	old, _ := m.exchanged.Peek(key)
	next := maps.Clone(old)
	if next == nil {
		next = make(map[string]exchangedToken, 1)
	}
	next[audience] = exchangedToken{Tokens: t, subject: subject}
	m.exchanged.Add(key, next)
}

func (m *Manager) forgetExchange(key, audience, token string) {
	m.exchMu.Lock()
	defer m.exchMu.Unlock()
	old, ok := m.exchanged.Peek(key)
	if !ok || old[audience].AccessToken != token {
		return
	}
	next := maps.Clone(old)
	delete(next, audience)
	m.exchanged.Add(key, next)
}

// dropExchanged forgets every exchanged token of a session.
func (m *Manager) dropExchanged(key string) {
	m.exchanged.Remove(key)
}
