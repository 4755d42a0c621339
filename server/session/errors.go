package session

import (
	"errors"

	"connectrpc.com/connect"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
)

// Unauthenticated returns the error every browser-facing RPC gives a caller
// without a usable session: CodeUnauthenticated with a SessionError detail
// saying why and where to sign in. RPC callers are never redirected.
func Unauthenticated(reason Reason, loginURL string) *connect.Error {
	err := connect.NewError(connect.CodeUnauthenticated, errors.New(reasonText(reason)))
	if detail, detailErr := connect.NewErrorDetail(&custodianv1.SessionError{Reason: reason, LoginUrl: loginURL}); detailErr == nil {
		err.AddDetail(detail)
	}
	return err
}

// ReasonOf returns the SessionEndReason carried by err, or
// SESSION_END_REASON_UNSPECIFIED.
func ReasonOf(err error) Reason {
	var connectErr *connect.Error
	if !errors.As(err, &connectErr) {
		return custodianv1.SessionEndReason_SESSION_END_REASON_UNSPECIFIED
	}
	for _, d := range connectErr.Details() {
		if v, err := d.Value(); err == nil {
			if se, ok := v.(*custodianv1.SessionError); ok {
				return se.GetReason()
			}
		}
	}
	return custodianv1.SessionEndReason_SESSION_END_REASON_UNSPECIFIED
}

func reasonText(reason Reason) string {
	switch reason {
	case ReasonExpired:
		return "session expired"
	case ReasonSignedOut:
		return "signed out"
	case ReasonRefreshFailed:
		return "session ended: the identity provider refused to renew it"
	case ReasonTokenRejected:
		return "session ended: a service refused the user's token"
	default:
		return "sign-in required"
	}
}

// errUnavailable is what callers see when the session store cannot answer.
func errUnavailable() error {
	return connect.NewError(connect.CodeUnavailable, errors.New("sessions are unavailable, try again"))
}
