package idp

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// tokenTypeAccessToken is RFC 8693's token type of access tokens.
const tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"

// tokenExchangeHandler implements OAuth 2.0 Token Exchange (RFC 8693) as a
// fosite token endpoint handler: an authenticated client trades a user's
// access token for one with an audience the client may request, so that a
// gateway can call a backend with a narrowly scoped token.
type tokenExchangeHandler struct {
	store    *store
	key      *signingKey
	issuer   string
	strategy oauth2.AccessTokenStrategy
	lifetime time.Duration
}

var _ fosite.TokenEndpointHandler = (*tokenExchangeHandler)(nil)

// tokenExchangeFactory is a compose.Factory for tokenExchangeHandler.
func (p *Provider) tokenExchangeFactory(_ fosite.Configurator, _ any, strategy any) any {
	return &tokenExchangeHandler{
		store:    p.store,
		key:      p.key,
		issuer:   p.issuer,
		strategy: strategy.(oauth2.AccessTokenStrategy),
		lifetime: p.accessTokenLifetime,
	}
}

// CanHandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (h *tokenExchangeHandler) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne(grantTokenExchange)
}

// CanSkipClientAuth implements fosite.TokenEndpointHandler: only
// authenticated clients may exchange tokens.
func (h *tokenExchangeHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

// HandleTokenEndpointRequest validates the exchange and prepares the new
// token's grant: the subject token's user and scopes, the requested audience.
func (h *tokenExchangeHandler) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	client := req.GetClient()
	if !client.GetGrantTypes().Has(grantTokenExchange) {
		return fosite.ErrUnauthorizedClient.WithHint("The client may not use token exchange.")
	}
	form := req.GetRequestForm()
	switch {
	case form.Get("subject_token") == "":
		return fosite.ErrInvalidRequest.WithHint("The 'subject_token' parameter is missing.")
	case form.Get("subject_token_type") != tokenTypeAccessToken:
		return fosite.ErrInvalidRequest.WithHintf("The 'subject_token_type' must be %q.", tokenTypeAccessToken)
	case form.Get("actor_token") != "" || form.Get("actor_token_type") != "":
		return fosite.ErrInvalidRequest.WithHint("Delegation with 'actor_token' is not supported.")
	case form.Get("requested_token_type") != "" && form.Get("requested_token_type") != tokenTypeAccessToken:
		return fosite.ErrInvalidRequest.WithHintf("Only %q can be requested.", tokenTypeAccessToken)
	}
	audiences := req.GetRequestedAudience()
	if len(audiences) == 0 {
		return fosite.ErrInvalidRequest.WithHint("The 'audience' parameter is missing.")
	}
	for _, aud := range audiences {
		if !client.GetAudience().Has(aud) {
			return errInvalidTarget().WithHintf("The client may not request audience %q.", aud)
		}
	}

	original, err := h.subjectTokenGrant(ctx, form.Get("subject_token"))
	if err != nil {
		return err
	}
	granted := original.GetGrantedScopes()
	scopes := req.GetRequestedScopes()
	if len(scopes) == 0 {
		scopes = granted
	}
	for _, scope := range scopes {
		if !granted.Has(scope) {
			return fosite.ErrInvalidScope.WithHintf("The subject token was not granted scope %q.", scope)
		}
		if scope != "offline_access" {
			req.GrantScope(scope)
		}
	}
	for _, aud := range audiences {
		req.GrantAudience(aud)
	}
	req.SetSession(original.GetSession().Clone())
	return nil
}

// subjectTokenGrant returns the grant of an unexpired, unrevoked access token
// issued by this provider.
func (h *tokenExchangeHandler) subjectTokenGrant(ctx context.Context, token string) (fosite.Requester, error) {
	v, err := h.key.verify(token, h.issuer, false)
	if err != nil {
		return nil, fosite.ErrInvalidGrant.WithHint("The subject token is invalid or expired.").WithWrap(err)
	}
	if v.typ != typAccessToken {
		return nil, fosite.ErrInvalidGrant.WithHint("The subject token is not an access token.")
	}
	original, err := h.store.GetAccessTokenSession(ctx, h.strategy.AccessTokenSignature(ctx, token), nil)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, fosite.ErrInvalidGrant.WithHint("The subject token was revoked.")
	}
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	return original, nil
}

// PopulateTokenEndpointResponse issues the exchanged access token. No
// refresh token is issued: the client exchanges again when it needs to.
func (h *tokenExchangeHandler) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	token, signature, err := h.strategy.GenerateAccessToken(ctx, req)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if err := h.store.CreateAccessTokenSession(ctx, signature, req.Sanitize(nil)); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	resp.SetAccessToken(token)
	resp.SetTokenType("Bearer")
	resp.SetExpiresIn(h.lifetime)
	resp.SetScopes(req.GetGrantedScopes())
	resp.SetExtra("issued_token_type", tokenTypeAccessToken)
	return nil
}

// errInvalidTarget is RFC 8693's error for an audience the client may not
// request.
func errInvalidTarget() *fosite.RFC6749Error {
	return &fosite.RFC6749Error{
		ErrorField:       "invalid_target",
		DescriptionField: "The requested audience is invalid, unknown or not allowed.",
		CodeField:        http.StatusBadRequest,
	}
}
