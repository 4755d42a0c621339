package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"

	"github.com/custodian-bff/custodian/internal/requestid"
)

// errInternal is all a client learns of an error the handlers did not turn
// into a Connect error on purpose.
var errInternal = errors.New("internal error")

// edgeInterceptor is the outermost interceptor of every service: it logs
// failed calls with their request id and makes sure only deliberate Connect
// errors reach the client. Any other error (a wrapped backend error, a bug)
// becomes CodeInternal with a fixed message, so its text stays in the log;
// a backend's Connect error passed on as it came keeps only its code.
type edgeInterceptor struct {
	logger *slog.Logger
}

func (i *edgeInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil {
			return nil, i.sanitize(ctx, req.Spec().Procedure, err)
		}
		return res, nil
	}
}

func (i *edgeInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *edgeInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := next(ctx, conn); err != nil {
			return i.sanitize(ctx, conn.Spec().Procedure, err)
		}
		return nil
	}
}

// sanitize returns the error the client may see and logs the full one.
func (i *edgeInterceptor) sanitize(ctx context.Context, procedure string, err error) error {
	id := requestid.FromContext(ctx)
	var connectErr *connect.Error
	switch {
	case errors.As(err, &connectErr) && connect.IsWireError(connectErr):
		// A backend's own error that a handler passed on: its code may
		// stay, its message, details and metadata may not.
		i.logger.LogAttrs(ctx, slog.LevelError, "a backend's error reached the edge unsanitized",
			slog.String("request_id", id), slog.String("procedure", procedure),
			slog.String("code", connectErr.Code().String()), slog.String("error", err.Error()))
		return connect.NewError(connectErr.Code(), errors.New(connectErr.Code().String()))
	case errors.As(err, &connectErr):
		i.logger.LogAttrs(ctx, levelFor(connectErr.Code()), "call failed",
			slog.String("request_id", id), slog.String("procedure", procedure),
			slog.String("code", connectErr.Code().String()), slog.String("error", err.Error()))
		return connectErr
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("call canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	default:
		i.logger.LogAttrs(ctx, slog.LevelError, "call failed with an unclassified error",
			slog.String("request_id", id), slog.String("procedure", procedure), slog.String("error", err.Error()))
		return connect.NewError(connect.CodeInternal, errInternal)
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

// recoverPanic turns a handler panic into CodeInternal and logs it; the
// listener keeps serving.
func recoverPanic(logger *slog.Logger) func(context.Context, connect.Spec, http.Header, any) error {
	return func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
		logger.LogAttrs(ctx, slog.LevelError, "handler panicked",
			slog.String("request_id", requestid.FromContext(ctx)), slog.String("procedure", spec.Procedure),
			slog.Any("panic", p))
		return connect.NewError(connect.CodeInternal, errInternal)
	}
}
