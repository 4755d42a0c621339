package idp

import (
	"net/http"

	"github.com/ory/fosite"
)

// handleUserinfo returns the claims of the bearer access token's user, as
// far as its scopes release them. It needs an access token granted openid.
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	limitBody(w, r)
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "The request has no bearer access token."})
		return
	}
	use, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, newSession(), "openid")
	if err == nil && use != fosite.AccessToken {
		err = fosite.ErrRequestUnauthorized.WithHint("The token is not an access token.")
	}
	var user User
	if err == nil {
		var ok bool
		if user, ok = p.userBySubject(ar.GetSession().GetSubject()); !ok {
			err = fosite.ErrRequestUnauthorized.WithHint("The token does not belong to a user.")
		}
	}
	if err != nil {
		p.logRequestError(ctx, "userinfo request refused", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "The access token is invalid, expired, revoked or lacks the openid scope."})
		return
	}
	claims := profileClaims(user, ar.GetGrantedScopes())
	claims["sub"] = user.Subject
	writeJSON(w, http.StatusOK, claims)
}

// userBySubject finds a user by subject.
func (p *Provider) userBySubject(subject string) (User, bool) {
	for _, u := range p.users {
		if u.Subject == subject {
			return u, true
		}
	}
	return User{}, false
}
