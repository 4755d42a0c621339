package backends

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
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

func (s *loyaltyService) mount(mux *http.ServeMux, opts ...connect.HandlerOption) {
	mux.Handle(loyaltyv1connect.NewLoyaltyServiceHandler(s, opts...))
}

func (s *loyaltyService) GetAccount(
	ctx context.Context,
	_ *connect.Request[loyaltyv1.GetAccountRequest],
) (*connect.Response[loyaltyv1.GetAccountResponse], error) {
	subject, err := requireSubject(ctx)
	if err != nil {
		return nil, err
	}
	a, ok := s.accounts[subject]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no loyalty account for this subject"))
	}
	return connect.NewResponse(&loyaltyv1.GetAccountResponse{Account: proto.CloneOf(a)}), nil
}
