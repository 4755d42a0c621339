package backends

import (
	"context"

	"connectrpc.com/connect/v2"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	"google.golang.org/protobuf/proto"
)

// loyaltyService is acme.loyalty.v1.LoyaltyService. Balances never change in
// the demo, so it needs no lock; the subject comes from the bearer token.
type loyaltyService struct {
	accounts map[string]*loyaltyv1.Account // by subject
}

var _ loyaltyv1connect.LoyaltyServiceHandler = (*loyaltyService)(nil)

func newLoyaltyService() *loyaltyService {
	return &loyaltyService{accounts: seedAccounts()}
}

func (s *loyaltyService) register(srv *connect.Server) {
	loyaltyv1connect.RegisterLoyaltyServiceHandler(srv, s)
}

func (s *loyaltyService) GetAccount(
	ctx context.Context,
	_ *loyaltyv1.GetAccountRequest,
) (*loyaltyv1.GetAccountResponse, error) {
	subject, err := requireSubject(ctx)
	if err != nil {
		return nil, err
	}
	a, ok := s.accounts[subject]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, "no loyalty account for this subject")
	}
	return &loyaltyv1.GetAccountResponse{Account: proto.CloneOf(a)}, nil
}
