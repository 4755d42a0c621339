package backends

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/coreos/go-oidc/v3/oidc"
	lru "github.com/hashicorp/golang-lru/v2"
)

// authenticator verifies the bearer JWT of every request: its signature
// against the issuer's JWKS, its issuer, its expiry and that its audience
// includes the service's own.
type authenticator struct {
	verifier *oidc.IDTokenVerifier
	logger   *slog.Logger
	// verified remembers tokens whose signature was checked, until they
	// expire, as real services do to spare an RSA verification per call.
	verified *lru.Cache[string, verifiedToken]
}

type verifiedToken struct {
	subject string
	expiry  time.Time
}

func newAuthenticator(issuer, jwksURL, audience string, client *http.Client, logger *slog.Logger) *authenticator {
	// The key set lives as long as the backend, so it gets a background
	// context that carries only the HTTP client.
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), client), jwksURL)
	verified, _ := lru.New[string, verifiedToken](1024) // fails only for a size <= 0
	return &authenticator{
		verifier: oidc.NewVerifier(issuer, keys, &oidc.Config{ClientID: audience}),
		logger:   logger,
		verified: verified,
	}
}

// interceptor rejects requests without a valid token with
// CodeUnauthenticated and passes the token's subject on in the context.
func (a *authenticator) interceptor() connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			var header string
			if info, ok := connect.CallInfoForServerContext(ctx); ok {
				header = info.RequestHeader().Get("Authorization")
			}
			subject, err := a.authenticate(ctx, header)
			if err != nil {
				// The reason is logged, never told: a caller learns only that
				// its token was not good enough.
				a.logger.DebugContext(ctx, "rejected bearer token", "procedure", spec.Procedure, "reason", err)
				return errInvalidToken()
			}
			return next(withSubject(ctx, subject), spec, stream)
		}
	}
}

func (a *authenticator) authenticate(ctx context.Context, header string) (string, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if header == "" {
		return "", errors.New("no Authorization header")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errors.New("authorization scheme is not Bearer")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", errors.New("empty bearer token")
	}
	if v, ok := a.verified.Get(token); ok && time.Now().Before(v.expiry) {
		return v.subject, nil
	}
	idToken, err := a.verifier.Verify(ctx, token)
	if err != nil {
		return "", err
	}
	if idToken.Subject == "" {
		return "", errors.New("token has no subject")
	}
	a.verified.Add(token, verifiedToken{subject: idToken.Subject, expiry: idToken.Expiry})
	return idToken.Subject, nil
}

// subjectKey is the context key of the authenticated subject.
type subjectKey struct{}

func withSubject(ctx context.Context, subject string) context.Context {
	return context.WithValue(ctx, subjectKey{}, subject)
}

// subjectFromContext returns the subject that the authenticator verified.
func subjectFromContext(ctx context.Context) (string, bool) {
	subject, ok := ctx.Value(subjectKey{}).(string)
	return subject, ok && subject != ""
}

// requireSubject is subjectFromContext for handlers: a missing subject means
// the handler was mounted without the authenticator, which must fail closed.
func requireSubject(ctx context.Context) (string, error) {
	subject, ok := subjectFromContext(ctx)
	if !ok {
		return "", errInvalidToken()
	}
	return subject, nil
}

// errInvalidToken is the only answer a caller gets for a token the backend
// does not accept.
func errInvalidToken() error {
	return connect.NewError(connect.CodeUnauthenticated, "invalid bearer token")
}
