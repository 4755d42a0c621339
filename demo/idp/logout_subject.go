package idp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
		if err := p.deliverLogoutToken(ctx, c, subject, ""); err != nil {
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
