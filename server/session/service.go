package session

import (
	"context"
	"errors"
	"math"
	"net/url"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
)

// Service implements custodian.v1.SessionService.
type Service struct {
	logoutURL string
}

var _ custodianv1connect.SessionServiceHandler = (*Service)(nil)

// NewService returns the session service; logoutURL is the gateway's GET
// logout route, to which each session's logout id is added.
func NewService(logoutURL string) *Service {
	return &Service{logoutURL: logoutURL}
}

// GetSession returns the signed-in user and the session's expiry. A caller
// without a live session gets a signed-out answer saying why and where to
// sign in, not an error: anonymous page renders are the common case. A store
// that cannot answer is still an error. It never returns a token. No answer
// of it is stored, the refusals included (the gateway's headers middleware
// makes it "private, no-store" when the request carried the session cookie).
func (s *Service) GetSession(ctx context.Context, _ *custodianv1.GetSessionRequest) (*custodianv1.GetSessionResponse, error) {
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		info.ResponseHeader().Set("Cache-Control", "no-store")
	}
	sess, err := Require(ctx)
	if verdict, ok := errors.AsType[*Error](err); ok {
		return &custodianv1.GetSessionResponse{EndReason: verdict.Reason, LoginUrl: verdict.LoginURL}, nil
	}
	if err != nil {
		return nil, err
	}
	return &custodianv1.GetSessionResponse{
		SignedIn:           true,
		User:               PublicUser(sess.User),
		IdleExpireTime:     timestamppb.New(sess.IdleExpiry),
		AbsoluteExpireTime: timestamppb.New(sess.AbsoluteExpiry),
		LogoutUrl:          s.logoutURL + "?id=" + url.QueryEscape(sess.LogoutID),
	}, nil
}

// SignOutEverywhere ends every session of the signed-in user (see
// [Manager.EndUser]) and clears the caller's cookie. Anonymous callers get
// the [*Error] saying why; when the store fails, CodeUnavailable with a
// retry hint, and the caller keeps its session.
func (s *Service) SignOutEverywhere(ctx context.Context, _ *custodianv1.SignOutEverywhereRequest) (*custodianv1.SignOutEverywhereResponse, error) {
	st := stateFrom(ctx)
	sess, err := st.require()
	if err != nil {
		return nil, err
	}
	n, err := st.m.EndUser(ctx, sess)
	if err != nil {
		return nil, err
	}
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		info.ResponseHeader().Add("Set-Cookie", st.m.ClearCookie().String())
		info.ResponseHeader().Set("Cache-Control", "no-store")
	}
	return &custodianv1.SignOutEverywhereResponse{EndedSessions: int32(min(n, math.MaxInt32))}, nil
}

// PublicUser is the browser's view of a user.
func PublicUser(u User) *custodianv1.User {
	return &custodianv1.User{Subject: u.Subject, Name: u.Name, Email: u.Email, Picture: u.Picture}
}
