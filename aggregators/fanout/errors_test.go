package fanout_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/session"
)

// secret is in every backend error text; it must reach the log only.
const secret = "db-internal-7.acme.corp said"

// backendErr is a backend's answer as a client sees it: a remote Connect
// error with the backend's text and details of its own.
func backendErr(t *testing.T, code connect.Code) *connect.Error {
	t.Helper()
	d, err := connectproto.NewErrorDetail(&custodianv1.BadRequest{FieldViolations: []*custodianv1.BadRequest_FieldViolation{{Field: "internal_account_id", Description: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	return connect.NewError(code, secret).WithDetail(d).WithRemote()
}

func TestBackendError(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	loginURL := "https://shop.example/auth/login"
	cases := []struct {
		name     string
		ctx      context.Context
		err      error
		wantCode connect.Code
		wantMsg  string
	}{
		{"not found", nil, backendErr(t, connect.CodeNotFound), connect.CodeNotFound, "not found"},
		{"canceled", nil, backendErr(t, connect.CodeCanceled), connect.CodeCanceled, "call canceled"},
		{"unauthenticated", nil, backendErr(t, connect.CodeUnauthenticated), connect.CodeUnavailable, "profiles is unavailable"},
		{"unauthenticated, caller gone", cancelled, backendErr(t, connect.CodeUnauthenticated), connect.CodeCanceled, "call canceled"},
		{"unavailable", nil, backendErr(t, connect.CodeUnavailable), connect.CodeUnavailable, "profiles is unavailable"},
		{"deadline exceeded", nil, backendErr(t, connect.CodeDeadlineExceeded), connect.CodeUnavailable, "profiles is unavailable"},
		{"resource exhausted", nil, backendErr(t, connect.CodeResourceExhausted), connect.CodeUnavailable, "profiles is unavailable"},
		{"aborted", nil, backendErr(t, connect.CodeAborted), connect.CodeUnavailable, "profiles is unavailable"},
		{"invalid argument", nil, backendErr(t, connect.CodeInvalidArgument), connect.CodeInternal, "internal error"},
		{"permission denied", nil, backendErr(t, connect.CodePermissionDenied), connect.CodeInternal, "internal error"},
		{"failed precondition", nil, backendErr(t, connect.CodeFailedPrecondition), connect.CodeInternal, "internal error"},
		{"already exists", nil, backendErr(t, connect.CodeAlreadyExists), connect.CodeInternal, "internal error"},
		{"out of range", nil, backendErr(t, connect.CodeOutOfRange), connect.CodeInternal, "internal error"},
		{"unimplemented", nil, backendErr(t, connect.CodeUnimplemented), connect.CodeInternal, "internal error"},
		{"internal", nil, backendErr(t, connect.CodeInternal), connect.CodeInternal, "internal error"},
		{"unknown", nil, backendErr(t, connect.CodeUnknown), connect.CodeInternal, "internal error"},
		{"data loss", nil, backendErr(t, connect.CodeDataLoss), connect.CodeInternal, "internal error"},
		{"not a connect error", nil, errors.New(secret), connect.CodeInternal, "internal error"},
		{"local connect error", nil, connect.NewError(connect.CodeNotFound, secret), connect.CodeNotFound, "not found"},
		{"wrapped", nil, fmt.Errorf("fanout: %w", backendErr(t, connect.CodeNotFound)), connect.CodeNotFound, "not found"},
		{"joined", nil, errors.Join(backendErr(t, connect.CodeUnavailable), nil), connect.CodeUnavailable, "profiles is unavailable"},
		// A backend's answer is never the gateway's verdict, whatever it
		// carries or wraps.
		{"remote error wrapping a verdict", nil,
			backendErr(t, connect.CodeUnauthenticated).WithCause(session.Unauthenticated(session.ReasonSignedOut, loginURL)),
			connect.CodeUnavailable, "profiles is unavailable"},
		{"verdict joined with a remote error", nil,
			errors.Join(session.Unauthenticated(session.ReasonSignedOut, loginURL), backendErr(t, connect.CodeUnauthenticated)),
			connect.CodeUnavailable, "profiles is unavailable"},
		{"remote error with a session detail", nil, remoteSessionErr(t, loginURL), connect.CodeUnavailable, "profiles is unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			ctx = requestid.NewContext(ctx, "req-42")
			var log bytes.Buffer
			logger := slog.New(requestid.LogHandler(slog.NewTextHandler(&log, nil)))
			got := fanout.BackendError(ctx, logger, "profiles", c.err)
			connectErr, ok := errors.AsType[*connect.Error](got)
			if !ok {
				t.Fatalf("BackendError = %T %v, want a *connect.Error", got, got)
			}
			if connectErr.Code() != c.wantCode || connectErr.Message() != c.wantMsg {
				t.Errorf("BackendError = %v %q, want %v %q", connectErr.Code(), connectErr.Message(), c.wantCode, c.wantMsg)
			}
			if strings.Contains(got.Error(), "db-internal") || len(connectErr.Details()) != 0 || connectErr.IsRemote() || connectErr.Unwrap() != nil {
				t.Errorf("the backend's text, details or error reached the caller: %v, %v", got, connectErr.Details())
			}
			if _, ok := errors.AsType[*session.Error](got); ok {
				t.Errorf("BackendError = %v carries a session verdict", got)
			}
			if !strings.Contains(log.String(), secret) || !strings.Contains(log.String(), "req-42") {
				t.Errorf("log %q lacks the backend's error or the request id", log.String())
			}
		})
	}
}

// remoteSessionErr is a backend's answer that imitates the gateway's
// session verdict on the wire.
func remoteSessionErr(t *testing.T, loginURL string) error {
	t.Helper()
	d, err := connectproto.NewErrorDetail(&custodianv1.SessionError{Reason: session.ReasonSignedOut, LoginUrl: loginURL})
	if err != nil {
		t.Fatal(err)
	}
	return connect.NewError(connect.CodeUnauthenticated, secret).WithDetail(d).WithRemote()
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
			for _, err := range []error{
				sessionErr,
				fmt.Errorf("fanout: part profile: %w", sessionErr),
				errors.Join(fmt.Errorf("backend %q: %w", "profiles", sessionErr), nil),
				connect.NewError(connect.CodeUnauthenticated, "local").WithCause(sessionErr),
			} {
				if !fanout.IsSessionVerdict(err) {
					t.Errorf("IsSessionVerdict(%v) = false", err)
				}
				got := fanout.BackendError(context.Background(), slog.New(slog.DiscardHandler), "profiles", err)
				if got != sessionErr { //nolint:errorlint // the very verdict, unchanged
					t.Fatalf("BackendError(%v) = %v, want the session verdict %v", err, got, sessionErr)
				}
				// What the edge sends: unauthenticated with the verdict's detail.
				connectErr := got.(interface{ ConnectError() *connect.Error }).ConnectError()
				if connectErr.Code() != connect.CodeUnauthenticated || session.ReasonOf(got) != reason || len(connectErr.Details()) != 1 {
					t.Fatalf("verdict's Connect error %v (reason %v), want unauthenticated, %v, one detail", connectErr, session.ReasonOf(got), reason)
				}
				v, derr := connectproto.UnmarshalErrorDetail(connectErr.Details()[0])
				se, ok := v.(*custodianv1.SessionError)
				if derr != nil || !ok || se.GetReason() != reason || se.GetLoginUrl() != "https://shop.example/auth/login" {
					t.Errorf("detail %v, %v", v, derr)
				}
			}
		})
	}
}

func TestIsSessionVerdictRefusesBackendAnswers(t *testing.T) {
	t.Parallel()
	loginURL := "https://shop.example/auth/login"
	for name, err := range map[string]error{
		"nil":                          nil,
		"plain":                        errors.New(secret),
		"remote unauthenticated":       backendErr(t, connect.CodeUnauthenticated),
		"remote with a session detail": remoteSessionErr(t, loginURL),
		"remote wrapping a verdict":    backendErr(t, connect.CodeUnauthenticated).WithCause(session.Unauthenticated(session.ReasonExpired, loginURL)),
	} {
		if fanout.IsSessionVerdict(err) {
			t.Errorf("%s: IsSessionVerdict(%v) = true", name, err)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		add     [][2]string // field, description
		wantMsg string      // "" for no error
	}{
		{"none", nil, ""},
		{"one", [][2]string{{"page_size", "must be between 0 and 50"}}, "page_size: must be between 0 and 50"},
		{"several", [][2]string{{"lines[0].quantity", "must be between 1 and 99"}, {"locale", "must be a language tag"}},
			"lines[0].quantity: must be between 1 and 99 (and more, see details)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var f fanout.FieldErrors
			for _, a := range c.add {
				f.Add(a[0], a[1])
			}
			err := f.Err()
			if c.wantMsg == "" {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			connectErr, ok := errors.AsType[*connect.Error](err)
			if !ok || connectErr.Code() != connect.CodeInvalidArgument || connectErr.Message() != c.wantMsg {
				t.Fatalf("Err() = %v, want invalid_argument %q", err, c.wantMsg)
			}
			if connectErr.IsRemote() || len(connectErr.Details()) != 1 {
				t.Fatalf("Err() = %v with %d details, want a local error with one detail", err, len(connectErr.Details()))
			}
			v, derr := connectproto.UnmarshalErrorDetail(connectErr.Details()[0])
			br, ok := v.(*custodianv1.BadRequest)
			if derr != nil || !ok || len(br.GetFieldViolations()) != len(c.add) {
				t.Fatalf("detail %v, %v; want a BadRequest with %d violations", v, derr, len(c.add))
			}
			for i, fv := range br.GetFieldViolations() {
				if fv.GetField() != c.add[i][0] || fv.GetDescription() != c.add[i][1] {
					t.Errorf("violation %d = %s %q, want %s %q", i, fv.GetField(), fv.GetDescription(), c.add[i][0], c.add[i][1])
				}
			}
		})
	}
}
