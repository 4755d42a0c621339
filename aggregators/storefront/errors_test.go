package storefront

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/session"
)

// secret is in every backend error text; it must reach the log only.
const secret = "db-internal-7.acme.corp said"

func TestBackendError(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name     string
		ctx      context.Context
		err      error
		wantCode connect.Code
		wantMsg  string
	}{
		{"not found", nil, connect.NewError(connect.CodeNotFound, errors.New(secret)), connect.CodeNotFound, "not found"},
		{"canceled", nil, connect.NewError(connect.CodeCanceled, errors.New(secret)), connect.CodeCanceled, "call canceled"},
		{"unauthenticated", nil, connect.NewError(connect.CodeUnauthenticated, errors.New(secret)), connect.CodeUnavailable, "profiles is unavailable"},
		{"unauthenticated, caller gone", cancelled, connect.NewError(connect.CodeUnauthenticated, errors.New(secret)), connect.CodeCanceled, "call canceled"},
		{"unavailable", nil, connect.NewError(connect.CodeUnavailable, errors.New(secret)), connect.CodeUnavailable, "profiles is unavailable"},
		{"deadline exceeded", nil, connect.NewError(connect.CodeDeadlineExceeded, errors.New(secret)), connect.CodeUnavailable, "profiles is unavailable"},
		{"resource exhausted", nil, connect.NewError(connect.CodeResourceExhausted, errors.New(secret)), connect.CodeUnavailable, "profiles is unavailable"},
		{"aborted", nil, connect.NewError(connect.CodeAborted, errors.New(secret)), connect.CodeUnavailable, "profiles is unavailable"},
		{"invalid argument", nil, connect.NewError(connect.CodeInvalidArgument, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"permission denied", nil, connect.NewError(connect.CodePermissionDenied, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"failed precondition", nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"already exists", nil, connect.NewError(connect.CodeAlreadyExists, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"out of range", nil, connect.NewError(connect.CodeOutOfRange, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"unimplemented", nil, connect.NewError(connect.CodeUnimplemented, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"internal", nil, connect.NewError(connect.CodeInternal, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"unknown", nil, connect.NewError(connect.CodeUnknown, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"data loss", nil, connect.NewError(connect.CodeDataLoss, errors.New(secret)), connect.CodeInternal, "internal error"},
		{"not a connect error", nil, errors.New(secret), connect.CodeInternal, "internal error"},
		{"wrapped", nil, fmt.Errorf("fanout: %w", connect.NewError(connect.CodeNotFound, errors.New(secret))), connect.CodeNotFound, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			ctx = requestid.NewContext(ctx, "req-42")
			// The backend's error also carries details of its own.
			var backendErr *connect.Error
			if errors.As(c.err, &backendErr) {
				if d, err := connect.NewErrorDetail(&custodianv1.BadRequest{FieldViolations: []*custodianv1.BadRequest_FieldViolation{{Field: "internal_account_id", Description: secret}}}); err == nil {
					backendErr.AddDetail(d)
				}
				backendErr.Meta().Set("X-Backend-Host", secret)
			}
			var log bytes.Buffer
			got := backendError(ctx, slog.New(slog.NewTextHandler(&log, nil)), "profiles", c.err)
			var connectErr *connect.Error
			if !errors.As(got, &connectErr) {
				t.Fatalf("backendError = %T %v, want a *connect.Error", got, got)
			}
			if connectErr.Code() != c.wantCode || connectErr.Message() != c.wantMsg {
				t.Errorf("backendError = %v %q, want %v %q", connectErr.Code(), connectErr.Message(), c.wantCode, c.wantMsg)
			}
			if strings.Contains(got.Error(), "db-internal") || len(connectErr.Details()) != 0 || len(connectErr.Meta()) != 0 {
				t.Errorf("the backend's text, details or metadata reached the caller: %v, %v, %v", got, connectErr.Details(), connectErr.Meta())
			}
			if !strings.Contains(log.String(), secret) || !strings.Contains(log.String(), "req-42") {
				t.Errorf("log %q lacks the backend's error or the request id", log.String())
			}
		})
	}
}

func TestBackendErrorPassesSessionErrors(t *testing.T) {
	t.Parallel()
	reasons := []session.Reason{
		session.ReasonNoSession, session.ReasonExpired, session.ReasonSignedOut,
		session.ReasonRefreshFailed, session.ReasonTokenRejected,
	}
	for _, reason := range reasons {
		t.Run(reason.String(), func(t *testing.T) {
			t.Parallel()
			sessionErr := session.Unauthenticated(reason, "https://shop.example/auth/login")
			for _, err := range []error{sessionErr, fmt.Errorf("fanout: part profile: %w", sessionErr)} {
				got := backendError(context.Background(), slog.New(slog.DiscardHandler), "profiles", err)
				if connect.CodeOf(got) != connect.CodeUnauthenticated || session.ReasonOf(got) != reason {
					t.Errorf("backendError(%v) = %v (reason %v), want unauthenticated, %v", err, got, session.ReasonOf(got), reason)
				}
				var connectErr *connect.Error
				if !errors.As(got, &connectErr) || len(connectErr.Details()) != 1 {
					t.Fatalf("backendError = %v, want the session error with its detail", got)
				}
				v, derr := connectErr.Details()[0].Value()
				se, ok := v.(*custodianv1.SessionError)
				if derr != nil || !ok || se.GetReason() != reason || se.GetLoginUrl() != "https://shop.example/auth/login" {
					t.Errorf("detail %v, %v", v, derr)
				}
			}
		})
	}
}
