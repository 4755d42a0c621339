package gatewaytest

import (
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/session"
)

// ConnectError returns err as a *connect.Error, nil if it is none.
func ConnectError(err error) *connect.Error {
	ce, _ := errors.AsType[*connect.Error](err)
	return ce
}

// SessionErrorOf returns the custodian.v1.SessionError detail of the
// Connect error err, nil without one: the browser's view of the gateway's
// session verdict.
func SessionErrorOf(err error) *custodianv1.SessionError {
	ce := ConnectError(err)
	if ce == nil {
		return nil
	}
	for _, d := range ce.Details() {
		if msg, derr := connectproto.UnmarshalErrorDetail(d); derr == nil {
			if se, ok := msg.(*custodianv1.SessionError); ok {
				return se
			}
		}
	}
	return nil
}

// ReasonOf returns the session verdict's reason err carries: the
// *session.Error on the gateway's side of the wire, the SessionError detail
// on the client's. It returns SESSION_END_REASON_UNSPECIFIED for any other
// error.
func ReasonOf(err error) session.Reason {
	if se, ok := errors.AsType[*session.Error](err); ok {
		return se.Reason
	}
	if se := SessionErrorOf(err); se != nil {
		return se.GetReason()
	}
	return custodianv1.SessionEndReason_SESSION_END_REASON_UNSPECIFIED
}

// WantReason fails the test unless err is the browser's form of a session
// verdict: code unauthenticated with a SessionError detail of reason.
func WantReason(t testing.TB, what string, err error, reason session.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want unauthenticated with reason %v", what, reason)
	}
	if code := connect.CodeOf(err); code != connect.CodeUnauthenticated {
		t.Fatalf("%s: %v, want code unauthenticated", what, err)
	}
	if got := ReasonOf(err); got != reason {
		t.Fatalf("%s: reason %v, want %v", what, got, reason)
	}
}

// BadRequestFields returns the fields named by err's custodian.v1.BadRequest
// detail.
func BadRequestFields(err error) []string {
	ce := ConnectError(err)
	if ce == nil {
		return nil
	}
	var fields []string
	for _, d := range ce.Details() {
		msg, derr := connectproto.UnmarshalErrorDetail(d)
		if derr != nil {
			continue
		}
		if br, ok := msg.(*custodianv1.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	return fields
}

// Flip changes the last character of s (and makes "" "x"): a tampered
// copy of a token, state or id.
func Flip(s string) string {
	if s == "" {
		return "x"
	}
	last := s[len(s)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return s[:len(s)-1] + string(repl)
}

// SignedOut turns GetSession's signed-out answer into the unauthenticated
// error with a SessionError detail that other methods give for the same
// reason; a signed-in answer and errors pass through. A signed-out answer
// that carries a user, expiry times or a logout URL, or lacks a reason or
// login URL, is an error of its own, so the tests that use it check it too.
func SignedOut(res *custodianv1.GetSessionResponse, err error) (*custodianv1.GetSessionResponse, error) {
	if err != nil || res.GetSignedIn() {
		return res, err
	}
	if res.GetUser() != nil || res.GetIdleExpireTime() != nil || res.GetAbsoluteExpireTime() != nil || res.GetLogoutUrl() != "" {
		return nil, fmt.Errorf("signed-out GetSession answer carries session data: %v", res)
	}
	if res.GetEndReason() == custodianv1.SessionEndReason_SESSION_END_REASON_UNSPECIFIED || res.GetLoginUrl() == "" {
		return nil, fmt.Errorf("signed-out GetSession answer without a reason or login URL: %v", res)
	}
	return nil, session.Unauthenticated(res.GetEndReason(), res.GetLoginUrl()).ConnectError()
}
