package storefront

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/session"
)

// backendError turns a backend failure into what a browser may see: a code
// that tells the client what to do and a fixed message. The backend's own
// text, which may name hosts or internals, goes to the log only.
func backendError(ctx context.Context, logger *slog.Logger, backend string, err error) error {
	if isSessionVerdict(err) {
		// The gateway's own verdict on the session (signed out, refresh
		// refused, token rejected): safe, and what the client must act on.
		var connectErr *connect.Error
		errors.As(err, &connectErr)
		return connectErr
	}
	code := connect.CodeOf(err)
	logger.LogAttrs(ctx, slog.LevelWarn, "backend call failed",
		slog.String("request_id", requestid.FromContext(ctx)), slog.String("backend", backend),
		slog.String("code", code.String()), slog.String("error", err.Error()))
	switch code {
	case connect.CodeNotFound:
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case connect.CodeCanceled:
		return connect.NewError(connect.CodeCanceled, errors.New("call canceled"))
	case connect.CodeUnauthenticated:
		if errors.Is(ctx.Err(), context.Canceled) {
			return connect.NewError(connect.CodeCanceled, errors.New("call canceled"))
		}
		return connect.NewError(connect.CodeUnavailable, errors.New(backend+" is unavailable"))
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeResourceExhausted, connect.CodeAborted:
		return connect.NewError(connect.CodeUnavailable, errors.New(backend+" is unavailable"))
	default:
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}

// isSessionVerdict reports whether err is the gateway's own verdict on the
// session. A backend's answer never is, whatever details it carries: its
// message, details and metadata must not reach the browser.
func isSessionVerdict(err error) bool {
	return !connect.IsWireError(err) && session.ReasonOf(err) != custodianv1.SessionEndReason_SESSION_END_REASON_UNSPECIFIED
}

// fieldErrors collects refused request fields and becomes one
// CodeInvalidArgument error with a custodian.v1.BadRequest detail.
type fieldErrors struct {
	violations []*custodianv1.BadRequest_FieldViolation
}

func (f *fieldErrors) add(field, description string) {
	f.violations = append(f.violations, &custodianv1.BadRequest_FieldViolation{Field: field, Description: description})
}

// err returns nil when no field was refused.
func (f *fieldErrors) err() error {
	if len(f.violations) == 0 {
		return nil
	}
	msg := f.violations[0].GetField() + ": " + f.violations[0].GetDescription()
	if len(f.violations) > 1 {
		msg += " (and more, see details)"
	}
	connectErr := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
	if detail, err := connect.NewErrorDetail(&custodianv1.BadRequest{FieldViolations: f.violations}); err == nil {
		connectErr.AddDetail(detail)
	}
	return connectErr
}
