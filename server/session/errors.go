package session

import (
	"errors"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
)

// Error is the gateway's verdict that a caller has no usable session: why,
// and where to sign in. Find it with errors.As. The edge turns it into the
// browser's answer with [Error.ConnectError]; RPC callers are never
// redirected.
type Error struct {
	Reason   Reason
	LoginURL string
}

// Unauthenticated returns the verdict for reason.
func Unauthenticated(reason Reason, loginURL string) *Error {
	return &Error{Reason: reason, LoginURL: loginURL}
}

func (e *Error) Error() string { return reasonText(e.Reason) }

// ConnectError returns what every browser-facing RPC answers a caller
// without a usable session: CodeUnauthenticated with a
// custodian.v1.SessionError detail saying why and where to sign in.
func (e *Error) ConnectError() *connect.Error {
	err := connect.NewError(connect.CodeUnauthenticated, reasonText(e.Reason))
	if detail, detailErr := connectproto.NewErrorDetail(&custodianv1.SessionError{Reason: e.Reason, LoginUrl: e.LoginURL}); detailErr == nil {
		err = err.WithDetail(detail)
	}
	return err
}

// ReasonOf returns the reason of the session verdict err carries, or
// SESSION_END_REASON_UNSPECIFIED when it carries none.
func ReasonOf(err error) Reason {
	if se, ok := errors.AsType[*Error](err); ok {
		return se.Reason
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

// StoreRetryDelay is the retry hint of the answer callers get while the
// session store cannot answer: CodeUnavailable with a google.rpc.RetryInfo
// detail of this delay. The session is kept; retrying after the delay
// (with backoff) is safe, and signing in again is never needed.
const StoreRetryDelay = time.Second

// errUnavailable is what callers see when the session store cannot answer:
// CodeUnavailable with a google.rpc.RetryInfo detail, never
// CodeUnauthenticated, so clients retry instead of sending the user to
// sign in.
func errUnavailable() error {
	err := connect.NewError(connect.CodeUnavailable, "sessions are unavailable, try again")
	if detail, detailErr := connectproto.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(StoreRetryDelay)}); detailErr == nil {
		err = err.WithDetail(detail)
	}
	return err
}

// errProviderUnavailable is what callers see when the identity provider
// cannot renew or exchange a token: the session is kept. cause, if any,
// stays on this side of the wire.
func errProviderUnavailable(cause error) error {
	return connect.NewError(connect.CodeUnavailable, "the identity provider is unavailable, try again").WithCause(cause)
}
