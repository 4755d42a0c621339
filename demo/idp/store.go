package idp

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
)

// store is fosite's storage, in memory. One mutex guards everything: the
// provider is for demos and tests, where simplicity beats throughput.
type store struct {
	mu            sync.Mutex
	clients       map[string]*fosite.DefaultClient
	codes         map[string]codeEntry
	oidcRequests  map[string]fosite.Requester
	pkceRequests  map[string]fosite.Requester
	accessTokens  map[string]fosite.Requester
	refreshTokens map[string]refreshEntry
	assertionJTIs map[string]time.Time
}

type codeEntry struct {
	req    fosite.Requester
	active bool
}

type refreshEntry struct {
	req    fosite.Requester
	active bool
}

var (
	_ fosite.Storage                     = (*store)(nil)
	_ oauth2.CoreStorage                 = (*store)(nil)
	_ oauth2.TokenRevocationStorage      = (*store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*store)(nil)
	_ pkce.PKCERequestStorage            = (*store)(nil)
)

func newStore(clients map[string]Client) *store {
	s := &store{
		clients:       make(map[string]*fosite.DefaultClient, len(clients)),
		codes:         make(map[string]codeEntry),
		oidcRequests:  make(map[string]fosite.Requester),
		pkceRequests:  make(map[string]fosite.Requester),
		accessTokens:  make(map[string]fosite.Requester),
		refreshTokens: make(map[string]refreshEntry),
		assertionJTIs: make(map[string]time.Time),
	}
	for id, c := range clients {
		s.clients[id] = fositeClient(c)
	}
	return s
}

// GetClient implements fosite.ClientManager.
func (s *store) GetClient(_ context.Context, id string) (fosite.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return c, nil
}

// ClientAssertionJWTValid implements fosite.ClientManager.
func (s *store) ClientAssertionJWTValid(_ context.Context, jti string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.assertionJTIs[jti]; ok && exp.After(time.Now()) {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT implements fosite.ClientManager.
func (s *store) SetClientAssertionJWT(_ context.Context, jti string, exp time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	maps.DeleteFunc(s.assertionJTIs, func(_ string, e time.Time) bool { return e.Before(now) })
	if _, ok := s.assertionJTIs[jti]; ok {
		return fosite.ErrJTIKnown
	}
	s.assertionJTIs[jti] = exp
	return nil
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *store) CreateAuthorizeCodeSession(_ context.Context, code string, req fosite.Requester) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = codeEntry{req: req, active: true}
	return nil
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *store) GetAuthorizeCodeSession(_ context.Context, code string, _ fosite.Session) (fosite.Requester, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.codes[code]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	if !e.active {
		// fosite needs the request to revoke what the code was exchanged for.
		return e.req, fosite.ErrInvalidatedAuthorizeCode
	}
	return e.req, nil
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *store) InvalidateAuthorizeCodeSession(_ context.Context, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.codes[code]
	if !ok {
		return fosite.ErrNotFound
	}
	e.active = false
	s.codes[code] = e
	return nil
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *store) CreateOpenIDConnectSession(_ context.Context, code string, req fosite.Requester) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oidcRequests[code] = req
	return nil
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *store) GetOpenIDConnectSession(_ context.Context, code string, _ fosite.Requester) (fosite.Requester, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.oidcRequests[code]
	if !ok {
		return nil, openid.ErrNoSessionFound
	}
	return req, nil
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *store) DeleteOpenIDConnectSession(_ context.Context, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.oidcRequests, code)
	return nil
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *store) CreatePKCERequestSession(_ context.Context, signature string, req fosite.Requester) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pkceRequests[signature] = req
	return nil
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (s *store) GetPKCERequestSession(_ context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.pkceRequests[signature]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return req, nil
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage.
func (s *store) DeletePKCERequestSession(_ context.Context, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pkceRequests, signature)
	return nil
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *store) CreateAccessTokenSession(_ context.Context, signature string, req fosite.Requester) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessTokens[signature] = req
	return nil
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *store) GetAccessTokenSession(_ context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.accessTokens[signature]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return req, nil
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *store) DeleteAccessTokenSession(_ context.Context, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.accessTokens, signature)
	return nil
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *store) CreateRefreshTokenSession(_ context.Context, signature, _ string, req fosite.Requester) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshTokens[signature] = refreshEntry{req: req, active: true}
	return nil
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A rotated or
// revoked token yields fosite.ErrInactiveToken, which fosite treats as
// reuse and answers with invalid_grant.
func (s *store) GetRefreshTokenSession(_ context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.refreshTokens[signature]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	if !e.active {
		return e.req, fosite.ErrInactiveToken
	}
	return e.req, nil
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *store) DeleteRefreshTokenSession(_ context.Context, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refreshTokens, signature)
	return nil
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage: the used refresh
// token and the access tokens of its grant stop working. Of two concurrent
// refreshes with one token, only the first to get here succeeds.
func (s *store) RotateRefreshToken(_ context.Context, requestID, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.refreshTokens[signature]
	if !ok || !e.active {
		return fosite.ErrInactiveToken
	}
	e.active = false
	s.refreshTokens[signature] = e
	s.revokeAccessLocked(requestID)
	return nil
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage.
func (s *store) RevokeRefreshToken(_ context.Context, requestID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sig, e := range s.refreshTokens {
		if e.req.GetID() == requestID {
			e.active = false
			s.refreshTokens[sig] = e
		}
	}
	return nil
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage.
func (s *store) RevokeAccessToken(_ context.Context, requestID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeAccessLocked(requestID)
	return nil
}

func (s *store) revokeAccessLocked(requestID string) {
	maps.DeleteFunc(s.accessTokens, func(_ string, req fosite.Requester) bool {
		return req.GetID() == requestID
	})
}

// revokeSubject deletes every access and refresh token of subject and
// returns how many there were.
func (s *store) revokeSubject(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.accessTokens) + len(s.refreshTokens)
	maps.DeleteFunc(s.accessTokens, func(_ string, req fosite.Requester) bool {
		return subjectOf(req) == subject
	})
	maps.DeleteFunc(s.refreshTokens, func(_ string, e refreshEntry) bool {
		return subjectOf(e.req) == subject
	})
	return n - len(s.accessTokens) - len(s.refreshTokens)
}

func subjectOf(req fosite.Requester) string {
	if req == nil || req.GetSession() == nil {
		return ""
	}
	return req.GetSession().GetSubject()
}
