package backends_test

import (
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
)

func TestGetAccount(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	cases := []struct {
		subject    string
		want       connect.Code
		tier       loyaltyv1.Tier
		points     int64
		toNextTier int64
	}{
		{subject: "alice", tier: loyaltyv1.Tier_TIER_GOLD, points: 12340, toNextTier: 0},
		{subject: "bob", tier: loyaltyv1.Tier_TIER_BRONZE, points: 120, toNextTier: 880},
		{subject: "carol", want: connect.CodeNotFound},
	}
	for _, p := range protocols(t) {
		c := newClients(set, p)
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.subject, func(t *testing.T) {
				t.Parallel()
				res, err := c.loyalty.GetAccount(bearer(t.Context(), idp.token(t, tc.subject, set.Loyalty.Audience())), &loyaltyv1.GetAccountRequest{})
				wantCode(t, err, tc.want)
				if err != nil {
					return
				}
				got := res.GetAccount()
				if got.GetSubject() != tc.subject || got.GetTier() != tc.tier || got.GetPoints() != tc.points ||
					got.GetPointsToNextTier() != tc.toNextTier {
					t.Errorf("got %v, want %s %v %d points, %d to next tier", got, tc.subject, tc.tier, tc.points, tc.toNextTier)
				}
				if got.GetFraudRiskScore() == 0 || got.GetTierOverrideReason() == "" ||
					!strings.HasSuffix(got.GetLedgerHost(), ".acme.internal") {
					t.Errorf("account lacks internal fields: %v", got)
				}
				// The ledger and the profile agree on the customer's account.
				profile := getProfile(t, c, idp.token(t, tc.subject, set.Profiles.Audience()))
				if got.GetInternalAccountId() == "" || got.GetInternalAccountId() != profile.GetInternalAccountId() {
					t.Errorf("internal_account_id = %q, profile has %q", got.GetInternalAccountId(), profile.GetInternalAccountId())
				}
			})
		}
	}
}
