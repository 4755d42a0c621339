package security_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server/security"
)

// noStoreSessions is a SessionService whose handler marks its answers
// "no-store" itself, as session.Service.GetSession does, and fails when
// asked to: connect-go adds a handler's response headers to those already
// set, success or error.
type noStoreSessions struct {
	custodianv1connect.UnimplementedSessionServiceHandler
	fail bool
}

func (s noStoreSessions) GetSession(ctx context.Context, _ *custodianv1.GetSessionRequest) (*custodianv1.GetSessionResponse, error) {
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		info.ResponseHeader().Set("Cache-Control", "no-store")
	}
	if s.fail {
		return nil, connect.NewError(connect.CodeUnauthenticated, "no session")
	}
	return &custodianv1.GetSessionResponse{}, nil
}

// TestHeadersOneCacheControl serves RPCs and plain routes that set
// Cache-Control their own way behind Headers on a loopback listener, and
// checks every answer carries exactly one Cache-Control header: "private,
// no-store" whenever the request carried the session cookie, the handler's
// directives (joined) otherwise.
func TestHeadersOneCacheControl(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	for path, fail := range map[string]bool{"/ok": false, "/fail": true} {
		srv := connect.NewServer()
		custodianv1connect.RegisterSessionServiceHandler(srv, noStoreSessions{fail: fail})
		inner := http.NewServeMux()
		connecthttp.Mount(inner, srv)
		mux.Handle(path+"/", http.StripPrefix(path, inner))
	}
	mux.HandleFunc("/page", func(w http.ResponseWriter, _ *http.Request) {
		security.HTMLPage(w)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<p>hi</p>")
	})
	mux.HandleFunc("/twice", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add("Cache-Control", "no-store")
		w.Header().Add("Cache-Control", "no-cache, No-Store")
		_, _ = io.WriteString(w, "twice")
	})
	mux.HandleFunc("/public", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = io.WriteString(w, "public")
	})
	mux.HandleFunc("/silent", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/flushed", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add("Cache-Control", "no-store")
		w.Header().Add("Cache-Control", "no-store")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		// Set after the header went out: not sent.
		w.Header().Add("Cache-Control", "public")
		_, _ = io.WriteString(w, "streamed")
	})
	ts := httptest.NewServer(security.Headers(cookieName, false)(mux))
	t.Cleanup(ts.Close)

	getSession := "/custodian.v1.SessionService/GetSession"
	cases := []struct {
		name, method, path string
		connect            bool
		anonymous          string // the Cache-Control of the answer without the cookie ("" none)
	}{
		{name: "RPC answer", method: http.MethodPost, path: "/ok" + getSession, connect: true, anonymous: "no-store"},
		{name: "RPC error", method: http.MethodPost, path: "/fail" + getSession, connect: true, anonymous: "no-store"},
		{name: "HTML page", method: http.MethodGet, path: "/page", anonymous: "no-store"},
		{name: "two values from the handler", method: http.MethodGet, path: "/twice", anonymous: "no-store, no-cache"},
		{name: "public answer", method: http.MethodGet, path: "/public", anonymous: "public, max-age=300"},
		{name: "answer nobody wrote", method: http.MethodGet, path: "/silent"},
		{name: "flushed answer", method: http.MethodGet, path: "/flushed", anonymous: "no-store"},
		{name: "no route", method: http.MethodGet, path: "/nothing-here"},
	}
	for _, c := range cases {
		for _, cookie := range []bool{true, false} {
			name := c.name + "/anonymous"
			if cookie {
				name = c.name + "/with the session cookie"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var body io.Reader
				if c.connect {
					body = strings.NewReader("{}")
				}
				req, err := http.NewRequestWithContext(t.Context(), c.method, ts.URL+c.path, body)
				if err != nil {
					t.Fatal(err)
				}
				if c.connect {
					req.Header.Set("Content-Type", "application/json")
				}
				if cookie {
					req.Header.Set("Cookie", cookieName+"=abc; other=1")
				}
				res, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				want := []string{c.anonymous}
				switch {
				case cookie:
					want = []string{"private, no-store"}
				case c.anonymous == "":
					want = nil
				}
				if got := res.Header.Values("Cache-Control"); !slices.Equal(got, want) {
					t.Errorf("status %d, Cache-Control %q, want %q", res.StatusCode, got, want)
				}
			})
		}
	}
}
