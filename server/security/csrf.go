package security

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
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

// Check returns nil when a request may act with the session it carries.
func (g *Guard) Check(method string, header http.Header) error {
	if !g.hasSession(header) {
		return nil
	}
	if !g.origins.Allowed(header) || header.Get("Sec-Fetch-Site") == "cross-site" && header.Get("Origin") == "" {
		return errForged
	}
	if method == http.MethodGet && header.Get(CSRFHeader) == "" && header.Get("Connect-Protocol-Version") == "" {
		return errForged
	}
	return nil
}

// OriginAllowed reports whether the request's Origin, if any, is allowed.
func (g *Guard) OriginAllowed(header http.Header) bool {
	return g.origins.Allowed(header)
}

func (g *Guard) hasSession(header http.Header) bool {
	return len((&http.Request{Header: header}).CookiesNamed(g.cookieName)) > 0
}

// Interceptor applies the guard to every RPC; a refused call gets
// CodePermissionDenied and never reaches its handler.
func (g *Guard) Interceptor() connect.Interceptor {
	return &guardInterceptor{g: g}
}

type guardInterceptor struct{ g *Guard }

func (i *guardInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		if err := i.g.Check(req.HTTPMethod(), req.Header()); err != nil {
			return nil, connect.NewError(connect.CodePermissionDenied, err)
		}
		return next(ctx, req)
	}
}

func (i *guardInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *guardInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := i.g.Check(http.MethodPost, conn.RequestHeader()); err != nil {
			return connect.NewError(connect.CodePermissionDenied, err)
		}
		return next(ctx, conn)
	}
}
