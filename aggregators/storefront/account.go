package storefront

import "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"

// AccountService is the signed-in customer's account. Until the aggregation
// work lands every method answers CodeUnimplemented.
type AccountService struct {
	storefrontv1connect.UnimplementedAccountServiceHandler
}

var _ storefrontv1connect.AccountServiceHandler = (*AccountService)(nil)
