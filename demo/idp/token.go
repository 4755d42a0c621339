package idp

import (
	"net/http"
)

// handleToken is the token endpoint: authorization_code, refresh_token,
// client_credentials and token exchange, all with client authentication.
func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	limitBody(w, r)
	sess := newSession()
	ar, err := p.oauth2.NewAccessRequest(ctx, r, sess)
	if err != nil {
		p.logRequestError(ctx, "token request refused", err, "grant_type", r.PostForm.Get("grant_type"))
		p.oauth2.WriteAccessError(ctx, w, ar, err)
		return
	}
	grantType := ar.GetGrantTypes()[0]
	if grantType == grantClientCredentials {
		// fosite checked the requested scopes and audiences against the
		// client's; granting them is the provider's decision. The client
		// acts on its own behalf, so it is the subject.
		for _, scope := range ar.GetRequestedScopes() {
			ar.GrantScope(scope)
		}
		for _, aud := range ar.GetRequestedAudience() {
			ar.GrantAudience(aud)
		}
		sess.SetSubject(ar.GetClient().GetID())
		sess.IDTokenClaims().Subject = ar.GetClient().GetID()
	}
	resp, err := p.oauth2.NewAccessResponse(ctx, ar)
	if err != nil {
		p.logRequestError(ctx, "token request refused", err, "grant_type", grantType, "client_id", ar.GetClient().GetID())
		p.oauth2.WriteAccessError(ctx, w, ar, err)
		return
	}
	p.oauth2.WriteAccessResponse(ctx, w, ar, resp)
	p.countGrant(grantType)
	p.logger.InfoContext(ctx, "token issued",
		"grant_type", grantType,
		"client_id", ar.GetClient().GetID(),
		"subject", ar.GetSession().GetSubject(),
		"audience", []string(ar.GetGrantedAudience()))
}
