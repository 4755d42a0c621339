package idp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// BackchannelLogoutSubject ends every live IdP session of subject with one
// logout token per client instead of one per session: each client that
// signed in with any of them and registered a BackchannelLogoutURI gets a
// token that names the subject and no sid, which OpenID Connect
// Back-Channel Logout 1.0 reads as "every session of this user". The
// sessions end even when a delivery fails; the error then names every
// failed delivery.
func (p *Provider) BackchannelLogoutSubject(ctx context.Context, subject string) error {
	live := p.sessions.ofSubject(subject)
	clients := map[string]bool{}
	for _, s := range live {
		for _, id := range s.clients {
			clients[id] = true
		}
	}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(clients)) {
		c := p.clients[id]
		if c.BackchannelLogoutURI == "" {
			continue
		}
		if err := p.deliverSubjectLogoutToken(ctx, c, subject); err != nil {
			p.logger.WarnContext(ctx, "back-channel logout failed", "client_id", c.ID, "subject", subject, "error", err)
			errs = append(errs, fmt.Errorf("idp: back-channel logout to client %q: %w", c.ID, err))
			continue
		}
		p.logger.InfoContext(ctx, "back-channel logout delivered", "client_id", c.ID, "subject", subject, "sessions", len(live))
	}
	for _, s := range live {
		p.sessions.end(s.sid)
	}
	return errors.Join(errs...)
}

// deliverSubjectLogoutToken signs a logout token for one client that names
// subject and no session, and POSTs it to the client's back-channel logout
// URI.
func (p *Provider) deliverSubjectLogoutToken(ctx context.Context, c Client, subject string) error {
	now := time.Now()
	token, _, err := p.key.sign(ctx, map[string]any{
		"iss":    p.issuer,
		"aud":    c.ID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenLifetime).Unix(),
		"jti":    rand.Text(),
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
		"sub":    subject,
	}, typLogoutToken)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("post logout token: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
