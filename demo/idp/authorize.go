package idp

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// handleAuthorize is the authorization endpoint. GET validates the request
// and shows the login form; the form POSTs back to the same URL, query
// included. Only the authorization code flow with PKCE S256 is offered.
func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	query := r.URL.Query()

	// Until the client and its redirect URI are known, errors are shown,
	// never redirected: an open redirector is worse than an error page.
	client, ok := p.clients[query.Get("client_id")]
	if !ok {
		setPageHeaders(w)
		p.logger.InfoContext(ctx, "authorization request from unknown client")
		p.renderMessage(ctx, w, http.StatusBadRequest, "Unknown client", "The application that sent you here is not registered with this provider.")
		return
	}
	redirectURI := query.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		setPageHeaders(w)
		p.logger.InfoContext(ctx, "authorization request with unregistered redirect_uri", "client_id", client.ID)
		p.renderMessage(ctx, w, http.StatusBadRequest, "Invalid redirect URI", "The application asked to return you to an address it has not registered.")
		return
	}
	// A login form that submits to this URL may be redirected to the client.
	setPageHeaders(w, origin(redirectURI))

	ar, err := p.oauth2.NewAuthorizeRequest(ctx, queryOnly(r))
	if err != nil {
		p.authorizeError(ctx, w, ar, err)
		return
	}
	if err := checkAuthorizeParams(query); err != nil {
		p.authorizeError(ctx, w, ar, err)
		return
	}

	if r.Method == http.MethodGet {
		p.renderLogin(ctx, w, http.StatusOK, client.ID, r, "", "")
		return
	}
	limitBody(w, r)
	if err := r.ParseForm(); err != nil {
		p.renderMessage(ctx, w, http.StatusBadRequest, "Bad request", "The sign-in form could not be read.")
		return
	}
	if r.PostForm.Has("cancel") {
		p.authorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user canceled the sign-in."))
		return
	}
	username := r.PostForm.Get("username")
	user, ok := p.authenticate(username, r.PostForm.Get("password"))
	if !ok {
		p.logger.InfoContext(ctx, "sign-in failed", "client_id", client.ID)
		p.renderLogin(ctx, w, http.StatusUnauthorized, client.ID, r, username, "Wrong username or password.")
		return
	}

	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	sid := p.sessions.start(user.Subject, client.ID)
	authTime := time.Now().UTC().Truncate(time.Second)
	resp, err := p.oauth2.NewAuthorizeResponse(ctx, ar, p.userSession(user, sid, authTime, ar.GetGrantedScopes()))
	if err != nil {
		p.sessions.end(sid)
		p.authorizeError(ctx, w, ar, err)
		return
	}
	p.logger.InfoContext(ctx, "user signed in", "client_id", client.ID, "subject", user.Subject)
	p.oauth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// authorizeError redirects an error to the client when the request's
// redirect URI is trustworthy and shows an error page otherwise.
func (p *Provider) authorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	p.logRequestError(ctx, "authorization request refused", err)
	if ar == nil || !ar.IsRedirectURIValid() {
		rfc := fosite.ErrorToRFC6749Error(err)
		p.renderMessage(ctx, w, http.StatusBadRequest, "Invalid request", "The sign-in request is invalid ("+rfc.ErrorField+").")
		return
	}
	p.oauth2.WriteAuthorizeError(ctx, w, ar, err)
}

// checkAuthorizeParams refuses, before the user signs in, what fosite would
// only refuse after: PKCE other than S256, an implausible challenge, a short
// nonce and prompt=none (there is no single sign-on to honor it).
func checkAuthorizeParams(query url.Values) error {
	challenge := query.Get("code_challenge")
	switch {
	case challenge == "":
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: the 'code_challenge' parameter is missing.")
	case query.Get("code_challenge_method") != "S256":
		return fosite.ErrInvalidRequest.WithHint("PKCE is required with code_challenge_method=S256.")
	case len(challenge) != 43 || strings.Trim(challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "":
		return fosite.ErrInvalidRequest.WithHint("The 'code_challenge' is not a base64url SHA-256 digest.")
	}
	if nonce := query.Get("nonce"); nonce != "" && len(nonce) < 8 {
		return fosite.ErrInvalidRequest.WithHint("The 'nonce' parameter must be at least 8 characters long.")
	}
	if slices.Contains(strings.Fields(query.Get("prompt")), "none") {
		return fosite.ErrLoginRequired.WithHint("The user must sign in.")
	}
	return nil
}

// queryOnly returns r reduced to its query: fosite validates the
// authorization request from it and never sees the login form's fields.
func queryOnly(r *http.Request) *http.Request {
	q := r.Clone(r.Context())
	q.Method = http.MethodGet
	q.Body = http.NoBody
	q.ContentLength = 0
	q.Header.Del("Content-Type")
	q.Form = r.URL.Query()
	q.PostForm = url.Values{}
	return q
}

// authenticate checks a username and password in constant time per user.
func (p *Provider) authenticate(username, password string) (User, bool) {
	u, ok := p.users[username]
	if !ok {
		return User{}, false
	}
	if subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		return User{}, false
	}
	return u, true
}

// renderLogin shows the login form, posting back to the same URL.
func (p *Provider) renderLogin(ctx context.Context, w http.ResponseWriter, status int, clientID string, r *http.Request, username, errMsg string) {
	page := loginPage{
		Title:    "Sign in",
		ClientID: clientID,
		Action:   p.basePath + "/authorize?" + r.URL.RawQuery,
		Username: username,
		Error:    errMsg,
	}
	if p.defaultUsers {
		page.Hint = "Demo accounts: alice and bob, password \u201cdemo\u201d."
	}
	p.render(ctx, w, status, "login", page)
}
