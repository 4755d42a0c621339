package fanout

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/session"
)

// The two helpers below are for aggregator authors: every error a
// browser-facing handler returns should come from one of them (or be built
// deliberately with connect.NewError), so that a browser never sees a
// backend's text, details or internal field names.
//
//	res, err := s.profiles.GetProfile(ctx, &profilesv1.GetProfileRequest{})
//	if err != nil {
//		return nil, fanout.BackendError(ctx, s.logger, "profiles", err)
//	}

// BackendError turns the failure of a call to backend into what a browser
// may see: a code that tells the client what to do and a fixed message.
// The backend's own error, which may name hosts or internals, goes to
// logger only, at warning level with ctx (so a request-id log handler adds
// the request id).
//
// The gateway's own verdict on the session (a *session.Error anywhere in
// err: signed out, refresh refused, token rejected) is returned unchanged,
// since it is safe and what the client must act on. A backend's answer (a
// remote Connect error) is never taken for such a verdict, whatever it
// carries.
//
// The codes: not_found stays not_found; canceled stays canceled;
// unauthenticated (the backend refused the gateway's token) becomes
// unavailable, or canceled when ctx was canceled; unavailable,
// deadline_exceeded, resource_exhausted and aborted become unavailable;
// everything else becomes internal.
func BackendError(ctx context.Context, logger *slog.Logger, backend string, err error) error {
	if verdict, ok := sessionVerdict(err); ok {
		return verdict
	}
	code := connect.CodeOf(err)
	logger.LogAttrs(ctx, slog.LevelWarn, "backend call failed",
		slog.String("backend", backend), slog.String("code", code.String()), slog.String("error", err.Error()))
	switch code {
	case connect.CodeNotFound:
		return connect.NewError(connect.CodeNotFound, "not found")
	case connect.CodeCanceled:
		return connect.NewError(connect.CodeCanceled, "call canceled")
	case connect.CodeUnauthenticated:
		if errors.Is(ctx.Err(), context.Canceled) {
			return connect.NewError(connect.CodeCanceled, "call canceled")
		}
		return connect.NewError(connect.CodeUnavailable, backend+" is unavailable")
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeResourceExhausted, connect.CodeAborted:
		return connect.NewError(connect.CodeUnavailable, backend+" is unavailable")
	default:
		return connect.NewError(connect.CodeInternal, "internal error")
	}
}

// IsSessionVerdict reports whether err carries the gateway's own verdict on
// the session, which [BackendError] passes through: a *session.Error, and
// no backend's answer on the way to it.
func IsSessionVerdict(err error) bool {
	_, ok := sessionVerdict(err)
	return ok
}

// sessionVerdict returns the *session.Error that err carries, unless err
// also holds a backend's answer (a remote Connect error).
func sessionVerdict(err error) (*session.Error, bool) {
	verdict, ok := errors.AsType[*session.Error](err)
	if !ok || verdict == nil || hasRemote(err) {
		return nil, false
	}
	return verdict, true
}

// hasRemote reports whether the tree of err holds a remote Connect error.
func hasRemote(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case *connect.Error:
		if e.IsRemote() {
			return true
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return hasRemote(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if hasRemote(e) {
				return true
			}
		}
	}
	return false
}

// FieldErrors collects the refused fields of a request and becomes one
// CodeInvalidArgument error with a custodian.v1.BadRequest detail that
// names each field and says what it must be. The zero value is empty and
// ready to use.
//
//	var invalid fanout.FieldErrors
//	if req.GetPageSize() < 0 {
//		invalid.Add("page_size", "must not be negative")
//	}
//	if err := invalid.Err(); err != nil {
//		return nil, err
//	}
type FieldErrors struct {
	violations []*custodianv1.BadRequest_FieldViolation
}

// Add records that field was refused; description says what it must be and
// is sent to the browser.
func (f *FieldErrors) Add(field, description string) {
	f.violations = append(f.violations, &custodianv1.BadRequest_FieldViolation{Field: field, Description: description})
}

// Err returns nil when no field was refused, and otherwise the
// CodeInvalidArgument error whose message names the first field and whose
// detail lists them all.
func (f *FieldErrors) Err() error {
	if len(f.violations) == 0 {
		return nil
	}
	msg := f.violations[0].GetField() + ": " + f.violations[0].GetDescription()
	if len(f.violations) > 1 {
		msg += " (and more, see details)"
	}
	err := connect.NewError(connect.CodeInvalidArgument, msg)
	if detail, detailErr := connectproto.NewErrorDetail(&custodianv1.BadRequest{FieldViolations: f.violations}); detailErr == nil {
		err = err.WithDetail(detail)
	}
	return err
}
