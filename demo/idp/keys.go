package idp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	fositejwt "github.com/ory/fosite/token/jwt"
)

// JWT header types of the tokens the provider issues besides ID tokens.
const (
	typAccessToken = "at+jwt"     // RFC 9068
	typLogoutToken = "logout+jwt" // OpenID Connect Back-Channel Logout 1.0
)

// signingKey is the provider's RSA key. Tokens are issued through fosite's
// signer and verified with go-jose, accepting RS256 only.
type signingKey struct {
	private *rsa.PrivateKey
	kid     string
	signer  *fositejwt.DefaultSigner
}

func newSigningKey() (*signingKey, error) {
	private, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate RSA key: %w", err)
	}
	thumbprint, err := (&jose.JSONWebKey{Key: &private.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("key thumbprint: %w", err)
	}
	k := &signingKey{
		private: private,
		kid:     base64.RawURLEncoding.EncodeToString(thumbprint),
	}
	k.signer = &fositejwt.DefaultSigner{
		GetPrivateKey: func(context.Context) (any, error) { return k.private, nil },
	}
	return k, nil
}

// jwks returns the public key set served at /jwks.
func (k *signingKey) jwks() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &k.private.PublicKey,
		KeyID:     k.kid,
		Algorithm: string(jose.RS256),
		Use:       "sig",
	}}}
}

// headers returns JWT headers naming the key and, when set, the token type.
func (k *signingKey) headers(typ string) *fositejwt.Headers {
	extra := map[string]any{"kid": k.kid}
	if typ != "" {
		extra["typ"] = typ
	}
	return &fositejwt.Headers{Extra: extra}
}

// sign issues a JWT with the given claims and header type.
func (k *signingKey) sign(ctx context.Context, claims map[string]any, typ string) (token, signature string, err error) {
	token, signature, err = k.signer.Generate(ctx, fositejwt.MapClaims(claims), k.headers(typ))
	if err != nil {
		return "", "", fmt.Errorf("sign JWT: %w", err)
	}
	return token, signature, nil
}

// Errors of signingKey.verify.
var (
	errTokenInvalid = errors.New("token is malformed or its signature is invalid")
	errTokenExpired = errors.New("token is expired")
)

// verifiedToken is a JWT whose signature and issuer were checked.
type verifiedToken struct {
	typ    string
	claims josejwt.Claims
	raw    map[string]any
}

// verify checks the token's RS256 signature with this key and its issuer.
// Expiry is checked unless allowExpired; errTokenExpired is returned
// otherwise.
func (k *signingKey) verify(raw, issuer string, allowExpired bool) (*verifiedToken, error) {
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errTokenInvalid, err)
	}
	if len(tok.Headers) != 1 || (tok.Headers[0].KeyID != "" && tok.Headers[0].KeyID != k.kid) {
		return nil, fmt.Errorf("%w: unknown key", errTokenInvalid)
	}
	v := &verifiedToken{}
	if err := tok.Claims(&k.private.PublicKey, &v.claims, &v.raw); err != nil {
		return nil, fmt.Errorf("%w: %w", errTokenInvalid, err)
	}
	if typ, ok := tok.Headers[0].ExtraHeaders[jose.HeaderType].(string); ok {
		v.typ = typ
	}
	if v.claims.Issuer != issuer {
		return nil, fmt.Errorf("%w: wrong issuer", errTokenInvalid)
	}
	if !allowExpired {
		if v.claims.Expiry == nil {
			return nil, fmt.Errorf("%w: no expiry", errTokenInvalid)
		}
		if err := v.claims.ValidateWithLeeway(josejwt.Expected{Time: time.Now()}, 0); err != nil {
			return nil, fmt.Errorf("%w: %w", errTokenExpired, err)
		}
	}
	return v, nil
}
