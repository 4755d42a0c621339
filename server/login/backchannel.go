package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

const (
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenMaxAge bounds how old a logout token may be; together with
	// the jti replay cache it makes a captured token useless.
	logoutTokenMaxAge = 10 * time.Minute
	maxLogoutToken    = 16 << 10
)

// serveBackchannel implements OpenID Connect Back-Channel Logout 1.0: the
// provider POSTs a signed logout token, and every session it names ends.
func (f *Flow) serveBackchannel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	noStore(w)
	raw := r.PostFormValue("logout_token")
	sub, sid, err := f.verifyLogoutToken(ctx, raw)
	if err != nil {
		f.logger.WarnContext(ctx, "back-channel logout refused", "error", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
		return
	}
	n, err := f.sessions.EndMatching(ctx, sub, sid)
	if err != nil {
		f.logger.ErrorContext(ctx, "back-channel logout failed", "error", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	f.logger.InfoContext(ctx, "back-channel logout", "subject", sub, "sid", sid, "sessions", n)
	w.WriteHeader(http.StatusOK)
}

// verifyLogoutToken validates a logout token as the specification asks:
// signature, issuer and audience (go-oidc), the "typ" header, the
// back-channel event, no nonce, a sub and/or sid, an exp not past when
// there is one, a fresh iat and a jti never seen before. It returns the
// subject and sid to log out.
//
// OpenID Connect Back-Channel Logout 1.0 (final) requires exp, but its
// drafts did not, and providers that follow them send none (Ory Hydra
// v2.3: docs/providers.md). Such a token is accepted: the iat window
// (logoutTokenMaxAge) and the jti cache bound its use as an exp would.
func (f *Flow) verifyLogoutToken(ctx context.Context, raw string) (sub, sid string, err error) {
	if raw == "" || len(raw) > maxLogoutToken {
		return "", "", errors.New("no logout token, or one too large")
	}
	d, err := f.provider.discover(ctx)
	if err != nil {
		return "", "", err
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return "", "", fmt.Errorf("logout token is not a compact signed JWT: %v", err)
	}
	if typ, ok := jws.Signatures[0].Header.ExtraHeaders["typ"].(string); ok && !strings.EqualFold(typ, "logout+jwt") && !strings.EqualFold(typ, "JWT") {
		return "", "", fmt.Errorf("logout token has typ %q", typ)
	}
	verifier := d.provider.Verifier(&oidc.Config{ClientID: f.provider.cfg.ClientID, Now: f.now, SkipExpiryCheck: true})
	token, err := verifier.Verify(f.provider.ctx(ctx), raw)
	if err != nil {
		return "", "", fmt.Errorf("logout token: %w", err)
	}
	now := f.now()
	if !token.Expiry.IsZero() && !now.Before(token.Expiry) {
		return "", "", fmt.Errorf("logout token expired at %v", token.Expiry)
	}
	var claims struct {
		Events map[string]json.RawMessage `json:"events"`
		Nonce  *json.RawMessage           `json:"nonce"`
		SID    string                     `json:"sid"`
		JTI    string                     `json:"jti"`
	}
	if err := token.Claims(&claims); err != nil {
		return "", "", fmt.Errorf("logout token claims: %w", err)
	}
	event, ok := claims.Events[backchannelEvent]
	if !ok || !json.Valid(event) || !strings.HasPrefix(strings.TrimSpace(string(event)), "{") {
		return "", "", errors.New("logout token lacks the back-channel logout event")
	}
	if claims.Nonce != nil {
		return "", "", errors.New("logout token carries a nonce")
	}
	if token.Subject == "" && claims.SID == "" {
		return "", "", errors.New("logout token names neither sub nor sid")
	}
	if token.IssuedAt.IsZero() || now.Sub(token.IssuedAt) > logoutTokenMaxAge || token.IssuedAt.Sub(now) > time.Minute {
		return "", "", fmt.Errorf("logout token issued at %v is not fresh", token.IssuedAt)
	}
	if claims.JTI == "" {
		return "", "", errors.New("logout token has no jti")
	}
	if !f.replays.firstUse(token.Issuer+" "+claims.JTI, token.IssuedAt.Add(logoutTokenMaxAge)) {
		return "", "", errors.New("logout token replayed")
	}
	return token.Subject, claims.SID, nil
}

// replayCache remembers token ids until they could no longer be accepted
// anyway. It is bounded: when full it forgets the oldest, which the
// freshness check covers for all but a flood of valid tokens.
type replayCache struct {
	now func() time.Time
	mu  sync.Mutex
	lru *simplelru.LRU[string, time.Time]
}

func newReplayCache(size int, now func() time.Time) *replayCache {
	lru, _ := simplelru.NewLRU[string, time.Time](size, nil) // fails only for size <= 0
	return &replayCache{now: now, lru: lru}
}

// firstUse records id until expires and reports whether it was new.
func (c *replayCache) firstUse(id string, expires time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.lru.Get(id); ok && c.now().Before(until) {
		return false
	}
	c.lru.Add(id, expires)
	return true
}
