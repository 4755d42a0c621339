package idp

import (
	"context"
	"net/http"
)

// handleRevoke is the RFC 7009 revocation endpoint. Revoking either token of
// a grant revokes the grant's refresh and access tokens.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	limitBody(w, r)
	err := p.oauth2.NewRevocationRequest(ctx, r)
	if err != nil {
		p.logRequestError(ctx, "revocation refused", err)
	}
	p.oauth2.WriteRevocationResponse(ctx, w, err)
}

// handleIntrospect is the RFC 7662 introspection endpoint, for authenticated
// clients.
func (p *Provider) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	limitBody(w, r)
	resp, err := p.oauth2.NewIntrospectionRequest(ctx, r, newSession())
	if err != nil {
		p.logRequestError(ctx, "introspection refused", err)
		p.oauth2.WriteIntrospectionError(ctx, w, err)
		return
	}
	p.oauth2.WriteIntrospectionResponse(ctx, w, resp)
}

// RevokeSubject revokes every refresh and access token of subject, as an
// administrator would after a compromise: the next refresh fails with
// invalid_grant and introspection reports the tokens inactive. Backends that
// only verify JWT signatures accept an access token until it expires.
func (p *Provider) RevokeSubject(ctx context.Context, subject string) {
	n := p.store.revokeSubject(subject)
	p.logger.InfoContext(ctx, "tokens revoked", "subject", subject, "tokens", n)
}
