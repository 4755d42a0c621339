package session

import (
	"context"
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

// GetSession returns the signed-in user and the session's expiry; anonymous
// callers get the [*Error] saying why. It never returns a token. No answer
// of it is stored, the refusals included (the gateway's headers middleware
// makes it "private, no-store" when the request carried the session cookie).
func (s *Service) GetSession(ctx context.Context, _ *custodianv1.GetSessionRequest) (*custodianv1.GetSessionResponse, error) {
	if info, ok := connect.CallInfoForServerContext(ctx); ok {
		info.ResponseHeader().Set("Cache-Control", "no-store")
	}
	sess, err := Require(ctx)
	if err != nil {
		return nil, err
	}
	return &custodianv1.GetSessionResponse{
		User:               PublicUser(sess.User),
		IdleExpireTime:     timestamppb.New(sess.IdleExpiry),
		AbsoluteExpireTime: timestamppb.New(sess.AbsoluteExpiry),
		LogoutUrl:          s.logoutURL + "?id=" + url.QueryEscape(sess.LogoutID),
	}, nil
}

// PublicUser is the browser's view of a user.
func PublicUser(u User) *custodianv1.User {
	return &custodianv1.User{Subject: u.Subject, Name: u.Name, Email: u.Email, Picture: u.Picture}
}
