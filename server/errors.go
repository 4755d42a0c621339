package server

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect/v2"
)

// safeMessage is all a client learns of an error the handlers did not turn
// into a Connect error on purpose.
const safeMessage = "internal error"

// connectErrorer is an error that knows its browser-facing form, such as the
// session layer's verdict: the edge sends that form and nothing else.
type connectErrorer interface {
	error
	ConnectError() *connect.Error
}

// edgeInterceptor is the outermost interceptor of every service: it logs
// failed calls and makes sure only deliberate Connect errors reach the
// client. Any other error (a wrapped backend error, a bug, a panic) becomes
// CodeInternal with a fixed message, so its text stays in the log; a
// backend's Connect error passed on as it came keeps only its code. A
// request over its read limit ends with errTooLarge, whatever the
// interceptors and the handler made of it, and the HTTP edge (limitBodies)
// answers it 413 where the protocol has a status of its own.
func edgeInterceptor(logger *slog.Logger) connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) (err error) {
			defer func() {
				if p := recover(); p != nil {
					logger.LogAttrs(ctx, slog.LevelError, "handler panicked",
						slog.String("procedure", spec.Procedure), slog.Any("panic", p))
					err = connect.NewError(connect.CodeInternal, safeMessage)
				}
			}()
			limited := &limitedStream{ServerStream: stream}
			if err := next(ctx, spec, limited); err != nil {
				if limited.tooLarge != nil {
					markTooLarge(ctx)
					err = limited.tooLarge
				}
				return sanitize(ctx, logger, spec.Procedure, err)
			}
			return nil
		}
	}
}

// sanitize returns the error the client may see and logs the full one.
func sanitize(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	var verdict connectErrorer
	if errors.As(err, &verdict) {
		connectErr := verdict.ConnectError()
		logger.LogAttrs(ctx, levelFor(connectErr.Code()), "call failed",
			slog.String("procedure", procedure), slog.String("code", connectErr.Code().String()),
			slog.String("error", err.Error()))
		return connectErr
	}
	var connectErr *connect.Error
	switch {
	case errors.As(err, &connectErr) && connectErr.IsRemote():
		// A backend's own error that a handler passed on: its code may
		// stay, its message, details and metadata may not.
		logger.LogAttrs(ctx, slog.LevelError, "a backend's error reached the edge unsanitized",
			slog.String("procedure", procedure), slog.String("code", connectErr.Code().String()),
			slog.String("error", err.Error()))
		code := connectErr.Code()
		if code == connect.CodeUnauthenticated {
			// The backend refused the gateway's token: the browser's
			// session is not what failed, so it must not look as if it had.
			code = connect.CodeUnavailable
		}
		return connect.NewError(code, code.String())
	case errors.As(err, &connectErr):
		attrs := []slog.Attr{
			slog.String("procedure", procedure), slog.String("code", connectErr.Code().String()),
			slog.String("error", err.Error()),
		}
		// A connect error's text leaves out its cause, the real error a
		// handler attached with WithCause: log it too.
		if cause := connectErr.Unwrap(); cause != nil {
			attrs = append(attrs, slog.String("cause", cause.Error()))
		}
		logger.LogAttrs(ctx, levelFor(connectErr.Code()), "call failed", attrs...)
		return connectErr
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, "call canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, "deadline exceeded")
	default:
		logger.LogAttrs(ctx, slog.LevelError, "call failed with an unclassified error",
			slog.String("procedure", procedure), slog.String("error", err.Error()))
		return connect.NewError(connect.CodeInternal, safeMessage)
	}
}

// levelFor logs server faults as errors and client mistakes quietly.
func levelFor(code connect.Code) slog.Level {
	switch code {
	case connect.CodeInternal, connect.CodeUnknown, connect.CodeDataLoss, connect.CodeUnimplemented:
		return slog.LevelError
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeResourceExhausted:
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}
