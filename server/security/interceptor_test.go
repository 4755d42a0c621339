package security_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server/security"
)

const cookieName = "__Host-custodian"

// sessions is a SessionService that counts the calls that reach it.
type sessions struct {
	custodianv1connect.UnimplementedSessionServiceHandler
	calls *atomic.Int32
}

func (s sessions) GetSession(context.Context, *custodianv1.GetSessionRequest) (*custodianv1.GetSessionResponse, error) {
	s.calls.Add(1)
	return &custodianv1.GetSessionResponse{}, nil
}

// serveGuarded serves a SessionService behind the guard on a loopback
// listener, and counts the calls its handler sees.
func serveGuarded(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	guard := security.NewGuard(cookieName, security.NewOrigins("https://shop.example", []string{"https://app.example.test"}))
	srv := connect.NewServer(guard.Interceptor())
	calls := new(atomic.Int32)
	custodianv1connect.RegisterSessionServiceHandler(srv, sessions{calls: calls})
	mux := http.NewServeMux()
	connecthttp.Mount(mux, srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts, calls
}

// TestGuardInterceptorOnTheWire checks the guard as browsers meet it: the
// HTTP method and the headers of the real request decide.
func TestGuardInterceptorOnTheWire(t *testing.T) {
	t.Parallel()
	const (
		procedure = "/custodian.v1.SessionService/GetSession"
		get       = procedure + "?connect=v1&encoding=json&message=%7B%7D"
		session   = cookieName + "=abc"
	)
	cases := []struct {
		name   string
		method string
		target string
		header map[string]string
		ok     bool
	}{
		{"POST without a session", http.MethodPost, procedure, map[string]string{"Origin": "https://evil.example"}, true},
		{"POST from the own origin", http.MethodPost, procedure, map[string]string{"Cookie": session, "Origin": "https://shop.example"}, true},
		{"POST from an allowed origin", http.MethodPost, procedure, map[string]string{"Cookie": session, "Origin": "https://app.example.test"}, true},
		{"POST from a foreign origin", http.MethodPost, procedure, map[string]string{"Cookie": session, "Origin": "https://evil.example"}, false},
		{"POST cross-site without origin", http.MethodPost, procedure, map[string]string{"Cookie": session, "Sec-Fetch-Site": "cross-site"}, false},
		{"session among other cookies, foreign origin", http.MethodPost, procedure, map[string]string{"Cookie": "theme=dark; " + session, "Origin": "https://evil.example"}, false},
		{"GET without a session", http.MethodGet, get, nil, true},
		{"GET with a session, no custom header", http.MethodGet, get, map[string]string{"Cookie": session}, false},
		{"GET with a session and X-CSRF", http.MethodGet, get, map[string]string{"Cookie": session, "X-CSRF": "1"}, true},
		{"GET with a session and Connect-Protocol-Version", http.MethodGet, get, map[string]string{"Cookie": session, "Connect-Protocol-Version": "1"}, true},
		{"GET with X-CSRF from a foreign origin", http.MethodGet, get, map[string]string{"Cookie": session, "X-CSRF": "1", "Origin": "https://evil.example"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ts, calls := serveGuarded(t)
			var body io.Reader
			if c.method == http.MethodPost {
				body = strings.NewReader("{}")
			}
			req, err := http.NewRequestWithContext(t.Context(), c.method, ts.URL+c.target, body)
			if err != nil {
				t.Fatal(err)
			}
			if c.method == http.MethodPost {
				req.Header.Set("Content-Type", "application/json")
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if c.ok {
				if res.StatusCode != http.StatusOK || calls.Load() != 1 {
					t.Errorf("status %d, %d handler calls; want 200, 1; body %s", res.StatusCode, calls.Load(), got)
				}
				return
			}
			var wire struct{ Code, Message string }
			if err := json.Unmarshal(got, &wire); err != nil || res.StatusCode != http.StatusForbidden || wire.Code != "permission_denied" {
				t.Errorf("status %d, body %s (%v); want 403 permission_denied", res.StatusCode, got, err)
			}
			if wire.Message != "cross-site request refused" {
				t.Errorf("message %q", wire.Message)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("a refused call reached the handler %d times", n)
			}
		})
	}
}

// TestGuardInterceptorProtocols checks that generated clients of every
// protocol are guarded alike.
func TestGuardInterceptorProtocols(t *testing.T) {
	t.Parallel()
	protocols := map[string][]connecthttp.Option{
		"connect":     nil,
		"grpc-web":    {connecthttp.WithGRPCWeb()},
		"connect GET": {connecthttp.WithHTTPGet()},
	}
	for name, opts := range protocols {
		for origin, ok := range map[string]bool{"https://shop.example": true, "https://evil.example": false} {
			t.Run(name+" from "+origin, func(t *testing.T) {
				t.Parallel()
				ts, calls := serveGuarded(t)
				client := custodianv1connect.NewSessionServiceClient(connect.NewClient(connecthttp.NewTransport(ts.Client(), ts.URL, opts...)))
				ctx, info := connect.NewClientContext(t.Context())
				info.RequestHeader().Set("Cookie", cookieName+"=abc")
				info.RequestHeader().Set("Origin", origin)
				info.RequestHeader().Set(security.CSRFHeader, "1")
				_, err := client.GetSession(ctx, &custodianv1.GetSessionRequest{})
				if ok {
					if err != nil || calls.Load() != 1 {
						t.Errorf("GetSession = %v, %d handler calls; want success", err, calls.Load())
					}
					return
				}
				ce, isConnect := errors.AsType[*connect.Error](err)
				if !isConnect || ce.Code() != connect.CodePermissionDenied || ce.Message() != "cross-site request refused" {
					t.Errorf("GetSession = %v, want permission_denied", err)
				}
				if calls.Load() != 0 {
					t.Errorf("a refused call reached the handler")
				}
			})
		}
	}
}

// TestGuardInterceptorWithoutCallInfo checks a ServerFunc run outside
// Server.Call: without headers there is no session to protect.
func TestGuardInterceptorWithoutCallInfo(t *testing.T) {
	t.Parallel()
	guard := security.NewGuard(cookieName, security.NewOrigins("https://shop.example", nil))
	reached := false
	next := func(context.Context, connect.Spec, connect.ServerStream) error {
		reached = true
		return nil
	}
	if err := guard.Interceptor()(next)(t.Context(), connect.Spec{}, nil); err != nil || !reached {
		t.Errorf("interceptor = %v, handler reached %v", err, reached)
	}
}
