package security

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/custodian-bff/custodian/internal/cookieheader"
)

// CSRFHeader is the custom header that proves a request comes from a
// script of an allowed origin: a page on another site cannot send it without
// a CORS preflight, which the gateway does not grant.
const CSRFHeader = "X-CSRF"

// Guard refuses requests that a page on another site could make with the
// user's session cookie: a request carrying the cookie must come from an
// allowed origin (or say none) and must be one no page can send without a
// preflight. Connect POSTs (JSON or binary), gRPC and gRPC-Web already are;
// a Connect GET must carry X-CSRF or Connect-Protocol-Version.
type Guard struct {
	cookieName string
	origins    Origins
}

// NewGuard returns the guard for the session cookie cookieName.
func NewGuard(cookieName string, origins Origins) *Guard {
	return &Guard{cookieName: cookieName, origins: origins}
}

var errForged = errors.New("cross-site request refused")

// header is what the guard reads of a request's headers: an http.Header
// or a *connect.Header.
type header interface {
	Get(key string) string
	Values(key string) []string
}

// Check returns nil when a request may act with the session it carries.
func (g *Guard) Check(method string, header http.Header) error {
	return g.check(method, header)
}

func (g *Guard) check(method string, h header) error {
	if !g.hasSession(h) {
		return nil
	}
	if !g.origins.allows(h) || h.Get("Sec-Fetch-Site") == "cross-site" && h.Get("Origin") == "" {
		return errForged
	}
	if method == http.MethodGet && h.Get(CSRFHeader) == "" && h.Get("Connect-Protocol-Version") == "" {
		return errForged
	}
	return nil
}

// OriginAllowed reports whether the request's Origin, if any, is allowed.
func (g *Guard) OriginAllowed(header http.Header) bool {
	return g.origins.Allowed(header)
}

func (g *Guard) hasSession(h header) bool {
	return cookieheader.Has(h.Values("Cookie"), g.cookieName)
}

// Interceptor applies the guard to every RPC; a refused call gets
// CodePermissionDenied and never reaches its handler. The HTTP method
// comes from connecthttp (POST for other transports, which no browser
// reaches), the headers from the call's connect.CallInfo.
func (g *Guard) Interceptor() connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			method := http.MethodPost
			if info, ok := connecthttp.ServerInfoForContext(ctx); ok {
				method = info.HTTPMethod()
			}
			// Without call info there are no headers, so no session
			// cookie: nothing a forged request could act with.
			var h header = http.Header(nil)
			if info, ok := connect.CallInfoForServerContext(ctx); ok {
				h = info.RequestHeader()
			}
			if err := g.check(method, h); err != nil {
				return connect.NewError(connect.CodePermissionDenied, err.Error()).WithCause(err)
			}
			return next(ctx, spec, stream)
		}
	}
}
