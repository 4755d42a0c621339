package backends_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"github.com/custodian-bff/custodian/demo/backends"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1/loyaltyv1connect"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	"github.com/go-jose/go-jose/v4/jwt"
)

// probe calls one read-only procedure of one backend with the given
// Authorization header (none when set is false).
type probe struct {
	name      string
	backend   func(*backends.Set) *backends.Backend
	procedure string
	call      func(ctx context.Context, c clients, header string, set bool) error
}

func probes() []probe {
	return []probe{
		{
			name:      "profiles",
			backend:   func(s *backends.Set) *backends.Backend { return s.Profiles },
			procedure: profilesv1connect.ProfileServiceGetProfileProcedure,
			call: func(ctx context.Context, c clients, header string, set bool) error {
				_, err := c.profiles.GetProfile(withAuthorization(ctx, header, set), &profilesv1.GetProfileRequest{})
				return err
			},
		},
		{
			name:      "orders",
			backend:   func(s *backends.Set) *backends.Backend { return s.Orders },
			procedure: ordersv1connect.OrderServiceListOrdersProcedure,
			call: func(ctx context.Context, c clients, header string, set bool) error {
				_, err := c.orders.ListOrders(withAuthorization(ctx, header, set), &ordersv1.ListOrdersRequest{})
				return err
			},
		},
		{
			name:      "catalog",
			backend:   func(s *backends.Set) *backends.Backend { return s.Catalog },
			procedure: catalogv1connect.CatalogServiceListProductsProcedure,
			call: func(ctx context.Context, c clients, header string, set bool) error {
				_, err := c.catalog.ListProducts(withAuthorization(ctx, header, set), &catalogv1.ListProductsRequest{})
				return err
			},
		},
		{
			name:      "loyalty",
			backend:   func(s *backends.Set) *backends.Backend { return s.Loyalty },
			procedure: loyaltyv1connect.LoyaltyServiceGetAccountProcedure,
			call: func(ctx context.Context, c clients, header string, set bool) error {
				_, err := c.loyalty.GetAccount(withAuthorization(ctx, header, set), &loyaltyv1.GetAccountRequest{})
				return err
			},
		},
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	otherKey := rsaKey(t, 1)

	claims := func(audience string) jwt.Claims {
		now := time.Now()
		return jwt.Claims{
			Issuer:   idp.issuer,
			Subject:  "alice",
			Audience: jwt.Audience{audience},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(now.Add(5 * time.Minute)),
		}
	}
	// otherAudience is a neighbouring backend's audience: a token for one
	// backend must not be replayable against another.
	otherAudience := func(audience string) string {
		all := set.All()
		for i, b := range all {
			if b.Audience() == audience {
				return all[(i+1)%len(all)].Audience()
			}
		}
		t.Fatalf("unknown audience %q", audience)
		return ""
	}
	cases := []struct {
		name   string
		header func(t *testing.T, audience string) (string, bool)
		want   connect.Code
	}{
		{
			name:   "missing token",
			header: func(*testing.T, string) (string, bool) { return "", false },
			want:   connect.CodeUnauthenticated,
		},
		{
			name:   "empty bearer",
			header: func(*testing.T, string) (string, bool) { return "Bearer ", true },
			want:   connect.CodeUnauthenticated,
		},
		{
			name: "basic scheme",
			header: func(*testing.T, string) (string, bool) {
				return "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret")), true
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name:   "malformed",
			header: func(*testing.T, string) (string, bool) { return "Bearer not.a.jwt", true },
			want:   connect.CodeUnauthenticated,
		},
		{
			name: "unsigned alg none",
			header: func(t *testing.T, audience string) (string, bool) {
				good := idp.token(t, "alice", audience)
				parts := strings.Split(good, ".")
				head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
				return "Bearer " + head + "." + parts[1] + ".", true
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "expired",
			header: func(t *testing.T, audience string) (string, bool) {
				c := claims(audience)
				c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
				c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute))
				return "Bearer " + idp.sign(t, idp.key, idp.kid, c), true
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "signed by another key with the same kid",
			header: func(t *testing.T, audience string) (string, bool) {
				return "Bearer " + idp.sign(t, otherKey, idp.kid, claims(audience)), true
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "signed by an unknown key",
			header: func(t *testing.T, audience string) (string, bool) {
				return "Bearer " + idp.sign(t, otherKey, "attacker-key", claims(audience)), true
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "wrong issuer",
			header: func(t *testing.T, audience string) (string, bool) {
				c := claims(audience)
				c.Issuer = "https://idp.attacker.example"
				return "Bearer " + idp.sign(t, idp.key, idp.kid, c), true
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "wrong audience",
			header: func(t *testing.T, audience string) (string, bool) {
				return "Bearer " + idp.token(t, "alice", otherAudience(audience)), true
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "no subject",
			header: func(t *testing.T, audience string) (string, bool) {
				return "Bearer " + idp.token(t, "", audience), true
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "good token",
			header: func(t *testing.T, audience string) (string, bool) {
				return "Bearer " + idp.token(t, "alice", audience), true
			},
		},
		{
			name: "good token lowercase scheme",
			header: func(t *testing.T, audience string) (string, bool) {
				return "bearer " + idp.token(t, "alice", audience), true
			},
		},
		{
			name: "good token among several audiences",
			header: func(t *testing.T, audience string) (string, bool) {
				return "Bearer " + idp.token(t, "alice", otherAudience(audience), audience), true
			},
		},
	}
	for _, p := range protocols(t) {
		for _, pr := range probes() {
			c := newClients(set, p)
			audience := pr.backend(set).Audience()
			for _, tc := range cases {
				t.Run(p.name+"/"+pr.name+"/"+tc.name, func(t *testing.T) {
					t.Parallel()
					header, ok := tc.header(t, audience)
					err := pr.call(t.Context(), c, header, ok)
					wantCode(t, err, tc.want)
					if tc.want == connect.CodeUnauthenticated {
						if msg := errorMessage(err); msg != "invalid bearer token" {
							t.Errorf("message = %q, want %q", msg, "invalid bearer token")
						}
					}
				})
			}
		}
	}
}

// TestAuthenticationBeforeFault shows that a fault never answers an
// unauthenticated caller: authentication runs first.
func TestAuthenticationBeforeFault(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	c := newClients(set, protocols(t)[0])
	for _, b := range set.All() {
		b.SetFault(backends.Fault{Code: connect.CodeInternal})
	}
	for _, pr := range probes() {
		t.Run(pr.name, func(t *testing.T) {
			t.Parallel()
			err := pr.call(t.Context(), c, "", false)
			wantCode(t, err, connect.CodeUnauthenticated)
			if strings.Contains(err.Error(), "acme.internal") {
				t.Errorf("unauthenticated caller saw the fault's message: %v", err)
			}
			if n := pr.backend(set).Calls(""); n != 0 {
				t.Errorf("Calls(\"\") = %d, want 0", n)
			}
		})
	}
}
