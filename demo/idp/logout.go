package idp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// backchannelLogoutEvent is the event claim's member of a logout token.
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenLifetime is how long a logout token is valid.
const logoutTokenLifetime = 2 * time.Minute

// handleEndSession is RP-initiated logout (OpenID Connect RP-Initiated Logout
// 1.0): it ends the IdP session the request names and returns the user to a
// registered post-logout redirect URI, or shows a page.
//
// The session is named by the sid of an id_token_hint, or, without one, by
// logout_hint, which this provider reads as a sid: the one it put in the ID
// tokens of client_id's sign-in. A logout_hint counts only with a known
// client_id, and only for a live session that client signed in with; any
// other hint ends nothing. The spec asks a provider to confirm with the
// user a logout that comes without an id_token_hint; this provider keeps
// no sign-in cookie in the browser, so the only session a request can end
// is the one it names, and a sid (130 random bits, given only to the
// client in its ID tokens) proves as much as an ID token would: a page
// that does not know it can end nothing. A request that names no session
// ends nothing and needs no confirmation either.
//
// The post_logout_redirect_uri must be one the client registered, matched
// exactly, with a known client_id (given, or the hint's audience): no
// request makes this endpoint redirect anywhere else.
func (p *Provider) handleEndSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	setPageHeaders(w)
	limitBody(w, r)
	if err := r.ParseForm(); err != nil {
		p.renderMessage(ctx, w, http.StatusBadRequest, "Bad request", "The sign-out request could not be read.")
		return
	}
	hint := r.Form.Get("id_token_hint")
	logoutHint := r.Form.Get("logout_hint")
	clientID := r.Form.Get("client_id")
	redirectURI := r.Form.Get("post_logout_redirect_uri")

	var sid, subject string
	if hint != "" {
		// An expired ID token is a fine hint: users sign out long after
		// signing in.
		v, err := p.key.verify(hint, p.issuer, true)
		if err == nil && v.typ != "" && v.typ != "JWT" {
			err = errors.New("token is not an ID token")
		}
		if err == nil && len(v.claims.Audience) == 0 {
			err = errors.New("token has no audience")
		}
		if err == nil && clientID != "" && !v.claims.Audience.Contains(clientID) {
			err = errors.New("client_id is not the token's audience")
		}
		if err == nil {
			sid, _ = v.raw["sid"].(string)
			if logoutHint != "" && logoutHint != sid {
				err = errors.New("logout_hint is not the token's sid")
			}
		}
		if err != nil {
			p.logger.InfoContext(ctx, "end-session refused", "reason", err)
			p.renderMessage(ctx, w, http.StatusBadRequest, "Invalid sign-out request", "The sign-out request carries an invalid ID token hint.")
			return
		}
		if clientID == "" {
			clientID = v.claims.Audience[0]
		}
		subject = v.claims.Subject
	}

	client, known := p.clients[clientID]
	if clientID != "" && !known {
		p.logger.InfoContext(ctx, "end-session refused", "reason", "unknown client")
		p.renderMessage(ctx, w, http.StatusBadRequest, "Unknown client", "The application that sent you here is not registered with this provider.")
		return
	}
	if redirectURI != "" && (!known || !slices.Contains(client.PostLogoutRedirectURIs, redirectURI)) {
		p.logger.InfoContext(ctx, "end-session refused", "reason", "unregistered post_logout_redirect_uri", "client_id", clientID)
		p.renderMessage(ctx, w, http.StatusBadRequest, "Invalid redirect URI", "The application asked to return you to an address it has not registered.")
		return
	}

	switch {
	case sid != "":
		if p.sessions.end(sid) {
			p.logger.InfoContext(ctx, "IdP session ended", "client_id", clientID, "subject", subject)
		}
	case logoutHint != "" && known:
		if who, ok := p.sessions.endFor(logoutHint, clientID); ok {
			p.logger.InfoContext(ctx, "IdP session ended", "client_id", clientID, "subject", who, "by", "logout_hint")
		} else {
			p.logger.InfoContext(ctx, "end-session: logout_hint names no live session of the client", "client_id", clientID)
		}
	}
	if redirectURI == "" {
		p.renderMessage(ctx, w, http.StatusOK, "Signed out", "You have been signed out. You can close this window.")
		return
	}
	target, err := url.Parse(redirectURI)
	if err != nil { // registered URIs were validated by New
		p.renderMessage(ctx, w, http.StatusInternalServerError, "Error", "The redirect URI is invalid.")
		return
	}
	if state := r.Form.Get("state"); state != "" {
		q := target.Query()
		q.Set("state", state)
		target.RawQuery = q.Encode()
	}
	http.Redirect(w, r, target.String(), http.StatusSeeOther)
}

// BackchannelLogout ends every live IdP session of subject. For each one it
// first POSTs a logout token (OpenID Connect Back-Channel Logout 1.0) to each
// client that signed in with the session and registered a
// BackchannelLogoutURI. The sessions end even when a delivery fails; the
// error then names every failed delivery.
func (p *Provider) BackchannelLogout(ctx context.Context, subject string) error {
	var errs []error
	for _, s := range p.sessions.ofSubject(subject) {
		for _, clientID := range s.clients {
			c := p.clients[clientID]
			if c.BackchannelLogoutURI == "" {
				continue
			}
			if err := p.deliverLogoutToken(ctx, c, subject, s.sid); err != nil {
				p.logger.WarnContext(ctx, "back-channel logout failed", "client_id", c.ID, "subject", subject, "error", err)
				errs = append(errs, fmt.Errorf("idp: back-channel logout to client %q: %w", c.ID, err))
				continue
			}
			p.logger.InfoContext(ctx, "back-channel logout delivered", "client_id", c.ID, "subject", subject)
		}
		p.sessions.end(s.sid)
	}
	return errors.Join(errs...)
}

// deliverLogoutToken signs a logout token for one client and POSTs it to
// the client's back-channel logout URI. It names one session when sid is
// set, and every session of subject when sid is empty.
func (p *Provider) deliverLogoutToken(ctx context.Context, c Client, subject, sid string) error {
	now := time.Now()
	claims := map[string]any{
		"iss":    p.issuer,
		"aud":    c.ID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenLifetime).Unix(),
		"jti":    rand.Text(),
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
		"sub":    subject,
	}
	if sid != "" {
		claims["sid"] = sid
	}
	token, _, err := p.key.sign(ctx, claims, typLogoutToken)
	if err != nil {
		return err
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
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
