package login

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/custodian-bff/custodian/server/security"
	"github.com/custodian-bff/custodian/server/session"
)

// CSRFHeader must be sent, with value "1", on POST /auth/logout. A page on
// another site cannot send a custom header without a CORS preflight, which
// the gateway does not grant it.
const CSRFHeader = security.CSRFHeader

// logout ends s here, revokes its refresh token at the provider and returns
// where the browser goes next: the provider's end-session endpoint, or the
// post-logout page when the provider has none.
//
// The end-session URL passes through the browser (its address bar, its
// history, the provider's access log), so it carries no token: client_id
// and post_logout_redirect_uri (OpenID Connect RP-Initiated Logout 1.0
// §2), and as logout_hint the provider's session id (sid) when the
// provider says it names sessions so (its discovery document supports
// back- or front-channel logout with sessions) and the session has one.
// The sid is neither a credential nor the user's profile: it names the
// provider session this logout ends, and nothing live once it has. The
// ID token, with the user's name, e-mail and that sid, is sent as
// id_token_hint only with Config.LogoutIDTokenHint.
func (f *Flow) logout(ctx context.Context, s *session.Session) string {
	tokens := s.Tokens()
	if err := f.sessions.End(ctx, s, session.ReasonSignedOut); err != nil {
		f.logger.ErrorContext(ctx, "ending the session failed", "error", err)
	}
	after := f.cfg.PublicURL + f.cfg.PostLogoutRedirectPath
	d, err := f.provider.discover(ctx)
	if err != nil {
		f.logger.WarnContext(ctx, "provider unavailable at logout: refresh token not revoked", "error", err)
		return after
	}
	revokeCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := f.provider.revoke(revokeCtx, d, tokens.RefreshToken); err != nil {
		f.logger.WarnContext(ctx, "refresh token revocation failed", "error", err)
	}
	f.logger.InfoContext(ctx, "signed out", "subject", s.User.Subject)
	if d.endSessionURL == "" {
		return after
	}
	q := url.Values{"post_logout_redirect_uri": {after}, "client_id": {f.provider.cfg.ClientID}}
	if d.sessionIDs && s.SID != "" {
		q.Set("logout_hint", s.SID)
	}
	if f.cfg.LogoutIDTokenHint && tokens.IDToken != "" {
		q.Set("id_token_hint", tokens.IDToken)
	}
	u, err := url.Parse(d.endSessionURL)
	if err != nil {
		return after
	}
	existing := u.Query()
	for k, v := range q {
		existing[k] = v
	}
	u.RawQuery = existing.Encode()
	return u.String()
}

// serveLogoutPost is logout for scripts: POST with the CSRF header, from the
// gateway's own origin when the browser says where it comes from.
func (f *Flow) serveLogoutPost(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(CSRFHeader) != "1" || !f.cfg.Guard.OriginAllowed(r.Header) {
		f.page(w, r, http.StatusForbidden, pageForbidden, "")
		return
	}
	f.serveLogout(w, r, nil)
}

// serveLogoutGet is logout by link, allowed only with the session's own
// logout id (from GetSession's logout_url), so a link on another site
// cannot sign anyone out.
func (f *Flow) serveLogoutGet(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	f.serveLogout(w, r, func(s *session.Session) bool {
		return id != "" && subtle.ConstantTimeCompare([]byte(id), []byte(s.LogoutID)) == 1
	})
}

func (f *Flow) serveLogout(w http.ResponseWriter, r *http.Request, allowed func(*session.Session) bool) {
	s, err := f.sessions.FromHeader(r.Context(), r.Header)
	if _, verdict := errors.AsType[*session.Error](err); err != nil && !verdict {
		// The store cannot answer: the session may be live. Keep the
		// cookie, so that the user can sign out once it answers again.
		f.page(w, r, http.StatusServiceUnavailable, pageLogoutUnavailable, "")
		return
	}
	if err != nil {
		// No live session: nothing to end, but clear a stale cookie.
		http.SetCookie(w, f.sessions.ClearCookie())
		noStore(w)
		http.Redirect(w, r, f.cfg.PublicURL+f.cfg.PostLogoutRedirectPath, http.StatusSeeOther)
		return
	}
	if allowed != nil && !allowed(s) {
		f.page(w, r, http.StatusBadRequest, pageBadLogoutLink, "")
		return
	}
	next := f.logout(r.Context(), s)
	http.SetCookie(w, f.sessions.ClearCookie())
	noStore(w)
	http.Redirect(w, r, next, http.StatusSeeOther)
}
