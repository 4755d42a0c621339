// Package session holds the browser's sessions with the gateway and serves
// custodian.v1.SessionService.
package session

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
)

// Service implements custodian.v1.SessionService.
type Service struct {
	loginURL string
}

var _ custodianv1connect.SessionServiceHandler = (*Service)(nil)

// NewService returns the session service; loginURL is where clients send
// users who must sign in.
func NewService(loginURL string) *Service {
	return &Service{loginURL: loginURL}
}

// GetSession answers who is signed in. Until sign-in is available every caller
// is anonymous and gets CodeUnauthenticated with reason NO_SESSION.
func (s *Service) GetSession(ctx context.Context, _ *connect.Request[custodianv1.GetSessionRequest]) (*connect.Response[custodianv1.GetSessionResponse], error) {
	return nil, Unauthenticated(custodianv1.SessionEndReason_SESSION_END_REASON_NO_SESSION, s.loginURL)
}

// Unauthenticated returns the error every browser-facing RPC gives a caller
// without a usable session: CodeUnauthenticated with a SessionError detail
// saying why and where to sign in. RPC callers are never redirected.
func Unauthenticated(reason custodianv1.SessionEndReason, loginURL string) *connect.Error {
	err := connect.NewError(connect.CodeUnauthenticated, errors.New(reasonText(reason)))
	if detail, detailErr := connect.NewErrorDetail(&custodianv1.SessionError{Reason: reason, LoginUrl: loginURL}); detailErr == nil {
		err.AddDetail(detail)
	}
	return err
}

func reasonText(reason custodianv1.SessionEndReason) string {
	switch reason {
	case custodianv1.SessionEndReason_SESSION_END_REASON_SESSION_EXPIRED:
		return "session expired"
	case custodianv1.SessionEndReason_SESSION_END_REASON_SIGNED_OUT:
		return "signed out"
	case custodianv1.SessionEndReason_SESSION_END_REASON_REFRESH_FAILED:
		return "session ended: the identity provider refused to renew it"
	case custodianv1.SessionEndReason_SESSION_END_REASON_TOKEN_REJECTED:
		return "session ended: a service refused the user's token"
	default:
		return "sign-in required"
	}
}
