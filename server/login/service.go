package login

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"connectrpc.com/connect"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/server/session"
)

var _ custodianv1connect.AuthServiceHandler = (*Flow)(nil)

// maxCallbackQuery bounds FinishLogin's input.
const maxCallbackQuery = 4096

// StartLogin begins an API-driven login: the provider will redirect back to
// the app's own callback page (Config.AppRedirectPath).
func (f *Flow) StartLogin(ctx context.Context, req *connect.Request[custodianv1.StartLoginRequest]) (*connect.Response[custodianv1.StartLoginResponse], error) {
	authURL, cookie, err := f.start(ctx, req.Header(), f.cfg.AppRedirectPath, req.Msg.GetReturnTo())
	if err != nil {
		f.logger.ErrorContext(ctx, "login could not start", "request_id", requestid.FromContext(ctx), "error", err)
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("the identity provider is unavailable, try again"))
	}
	res := connect.NewResponse(&custodianv1.StartLoginResponse{AuthorizationUrl: authURL})
	res.Header().Add("Set-Cookie", cookie.String())
	res.Header().Set("Cache-Control", "no-store")
	return res, nil
}

// FinishLogin completes an API-driven login from the app's callback query.
func (f *Flow) FinishLogin(ctx context.Context, req *connect.Request[custodianv1.FinishLoginRequest]) (*connect.Response[custodianv1.FinishLoginResponse], error) {
	raw := strings.TrimPrefix(req.Msg.GetCallbackQuery(), "?")
	if len(raw) > maxCallbackQuery {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("callback_query: too long"))
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("callback_query: not a query string"))
	}
	st, err := openState(f.keys, req.Header(), q.Get("state"), f.now())
	if err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("unknown, used or expired login attempt: start again"))
	}
	res := connect.NewResponse(&custodianv1.FinishLoginResponse{})
	res.Header().Set("Cache-Control", "no-store")
	res.Header().Add("Set-Cookie", clearState(st.State).String())
	if e := q.Get("error"); e != "" {
		return nil, withHeaders(connect.NewError(connect.CodePermissionDenied, errors.New("the identity provider did not sign the user in: "+providerError(e))), res)
	}
	cookie, s, err := f.finish(ctx, st, q.Get("code"))
	if err != nil {
		f.logger.WarnContext(ctx, "sign-in failed", "request_id", requestid.FromContext(ctx), "error", err)
		if errors.Is(err, errLoginRefused) {
			return nil, withHeaders(connect.NewError(connect.CodePermissionDenied, errors.New("sign-in failed: start again")), res)
		}
		return nil, withHeaders(connect.NewError(connect.CodeUnavailable, errors.New("the identity provider is unavailable, try again")), res)
	}
	f.endPrevious(ctx, st, req.Header())
	res.Header().Add("Set-Cookie", cookie.String())
	res.Msg.User = session.PublicUser(s.User)
	res.Msg.ReturnTo = st.ReturnTo
	return res, nil
}

// Logout ends the caller's session and returns the provider's end-session
// URL for the app to navigate to.
func (f *Flow) Logout(ctx context.Context, _ *connect.Request[custodianv1.LogoutRequest]) (*connect.Response[custodianv1.LogoutResponse], error) {
	s, err := session.Require(ctx)
	if err != nil {
		return nil, err
	}
	next := f.logout(ctx, s)
	res := connect.NewResponse(&custodianv1.LogoutResponse{EndSessionUrl: next})
	res.Header().Add("Set-Cookie", f.sessions.ClearCookie().String())
	res.Header().Set("Cache-Control", "no-store")
	return res, nil
}

// withHeaders puts res's headers (cookies to clear) on an error response.
func withHeaders(err *connect.Error, res *connect.Response[custodianv1.FinishLoginResponse]) error {
	for k, v := range res.Header() {
		for _, vv := range v {
			err.Meta().Add(k, vv)
		}
	}
	return err
}
