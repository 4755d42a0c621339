package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"connectrpc.com/connect/v2"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/server/session"
)

var _ custodianv1connect.AuthServiceHandler = (*Flow)(nil)

// maxCallbackQuery bounds FinishLogin's input.
const maxCallbackQuery = 4096

// StartLogin begins an API-driven login: the provider will redirect back to
// the app's own callback page (Config.AppRedirectPath). Like /auth/login,
// it bounds the attempts a browser keeps at once, dropping the oldest.
func (f *Flow) StartLogin(ctx context.Context, req *custodianv1.StartLoginRequest) (*custodianv1.StartLoginResponse, error) {
	request, response := callHeaders(ctx)
	authURL, cookies, err := f.start(ctx, request, f.cfg.AppRedirectPath, req.GetReturnTo())
	if err != nil {
		f.logger.ErrorContext(ctx, "login could not start", "error", err)
		return nil, errProviderUnavailable(err)
	}
	for _, c := range cookies {
		response.Add("Set-Cookie", c.String())
	}
	response.Set("Cache-Control", "no-store")
	return &custodianv1.StartLoginResponse{AuthorizationUrl: authURL}, nil
}

// FinishLogin completes an API-driven login from the app's callback query.
// Once the attempt is known, its cookie is cleared whatever the outcome.
func (f *Flow) FinishLogin(ctx context.Context, req *custodianv1.FinishLoginRequest) (*custodianv1.FinishLoginResponse, error) {
	raw := strings.TrimPrefix(req.GetCallbackQuery(), "?")
	if len(raw) > maxCallbackQuery {
		return nil, connect.NewError(connect.CodeInvalidArgument, "callback_query: too long")
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, "callback_query: not a query string").WithCause(err)
	}
	request, response := callHeaders(ctx)
	st, err := openState(f.keys, request, q.Get("state"), f.now())
	if err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, "unknown, used or expired login attempt: start again").WithCause(err)
	}
	// Response headers go out with an error too.
	response.Set("Cache-Control", "no-store")
	response.Add("Set-Cookie", clearState(st.State).String())
	if e := q.Get("error"); e != "" {
		return nil, connect.NewError(connect.CodePermissionDenied, "the identity provider did not sign the user in: "+providerError(e))
	}
	cookie, s, err := f.finish(ctx, st, q.Get("code"))
	if err != nil {
		f.logger.WarnContext(ctx, "sign-in failed", "error", err)
		if errors.Is(err, errLoginRefused) {
			return nil, connect.NewError(connect.CodePermissionDenied, "sign-in failed: start again").WithCause(err)
		}
		return nil, errProviderUnavailable(err)
	}
	f.endPrevious(ctx, st, request)
	response.Add("Set-Cookie", cookie.String())
	return &custodianv1.FinishLoginResponse{User: session.PublicUser(s.User), ReturnTo: st.ReturnTo}, nil
}

// Logout ends the caller's session and returns the provider's end-session
// URL for the app to navigate to.
func (f *Flow) Logout(ctx context.Context, _ *custodianv1.LogoutRequest) (*custodianv1.LogoutResponse, error) {
	s, err := session.Require(ctx)
	if err != nil {
		return nil, err
	}
	next := f.logout(ctx, s)
	_, response := callHeaders(ctx)
	response.Add("Set-Cookie", f.sessions.ClearCookie().String())
	response.Set("Cache-Control", "no-store")
	return &custodianv1.LogoutResponse{EndSessionUrl: next}, nil
}

// errProviderUnavailable is what RPC callers see when the provider cannot
// be reached; err stays on this side of the wire.
func errProviderUnavailable(err error) *connect.Error {
	return connect.NewError(connect.CodeUnavailable, "the identity provider is unavailable, try again").WithCause(err)
}

// callHeaders returns the call's request cookies, as the login state and
// the session manager read them, and its response headers. Outside
// Server.Call both are empty, and the response headers go nowhere.
func callHeaders(ctx context.Context) (request http.Header, response *connect.Header) {
	info, ok := connect.CallInfoForServerContext(ctx)
	if !ok {
		return http.Header{}, new(connect.Header)
	}
	request = http.Header{}
	if cookies := info.RequestHeader().Values("Cookie"); len(cookies) > 0 {
		request["Cookie"] = cookies
	}
	return request, info.ResponseHeader()
}
