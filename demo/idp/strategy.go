package idp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// accessTokenStrategy issues access tokens as RS256 JWTs (RFC 9068) that
// backends verify against the JWKS; authorization codes and refresh tokens
// stay opaque HMAC tokens. Every access token is also stored, so revocation
// and introspection work as for opaque tokens.
type accessTokenStrategy struct {
	*oauth2.HMACSHAStrategy
	key      *signingKey
	issuer   string
	lifetime time.Duration
}

var _ oauth2.CoreStrategy = (*accessTokenStrategy)(nil)

// AccessTokenSignature returns the JWT's signature, the token's storage key.
func (s *accessTokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	return parts[2]
}

// GenerateAccessToken signs a new access token for the request. Its expiry
// is written back to the session so that expires_in, introspection and the
// exp claim agree.
func (s *accessTokenStrategy) GenerateAccessToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	sess := req.GetSession()
	if sess == nil {
		return "", "", errors.New("access token request has no session")
	}
	now := time.Now()
	exp := now.Add(s.lifetime)
	sess.SetExpiresAt(fosite.AccessToken, exp)
	claims := map[string]any{
		"iss":       s.issuer,
		"sub":       sess.GetSubject(),
		"exp":       exp.Unix(),
		"iat":       now.Unix(),
		"jti":       rand.Text(),
		"scope":     strings.Join(req.GetGrantedScopes(), " "),
		"client_id": req.GetClient().GetID(),
	}
	if aud := req.GetGrantedAudience(); len(aud) > 0 {
		claims["aud"] = []string(aud)
	}
	return s.key.sign(ctx, claims, typAccessToken)
}

// ValidateAccessToken checks the token's signature, issuer, type and expiry.
func (s *accessTokenStrategy) ValidateAccessToken(_ context.Context, _ fosite.Requester, token string) error {
	v, err := s.key.verify(token, s.issuer, false)
	switch {
	case errors.Is(err, errTokenExpired):
		return fosite.ErrTokenExpired.WithWrap(err)
	case err != nil:
		return fosite.ErrTokenSignatureMismatch.WithWrap(err)
	case v.typ != typAccessToken:
		return fosite.ErrTokenSignatureMismatch.WithHint("The token is not an access token.")
	}
	return nil
}

// secretHasher stores client secrets as SHA-256 digests. Demo secrets are
// random or fixed strings, so a slow password hash would only slow the tests.
type secretHasher struct{}

var _ fosite.Hasher = secretHasher{}

// Compare implements fosite.Hasher in constant time.
func (secretHasher) Compare(_ context.Context, hash, data []byte) error {
	sum := sha256.Sum256(data)
	if subtle.ConstantTimeCompare(hash, sum[:]) != 1 {
		return errSecretMismatch
	}
	return nil
}

// Hash implements fosite.Hasher.
func (secretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	return sum[:], nil
}

// errSecretMismatch is returned by secretHasher.Compare.
var errSecretMismatch = errors.New("client secret does not match")

// randomSecret returns n random bytes, for fosite's HMAC key.
func randomSecret(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random secret: %w", err)
	}
	return b, nil
}
