//go:build !race

package session_test

import (
	"context"
	"testing"
	"time"
)

// TestUserTokensAllocatesNothing checks that handing a request's tokens to
// backend clients, behind their interface, costs no allocation, nor does
// asking for a fresh access token.
func TestUserTokensAllocatesNothing(t *testing.T) {
	e := newEnv(t)
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	for name, ctx := range map[string]context.Context{
		"with a session": e.m.Attach(t.Context(), h),
		"never attached": context.Background(),
	} {
		var ut accessTokener
		if allocs := testing.AllocsPerRun(100, func() { ut = e.m.UserTokens(ctx) }); allocs != 0 {
			t.Errorf("%s: UserTokens allocates %v times", name, allocs)
		}
		_ = ut
	}
	ctx := e.m.Attach(t.Context(), h)
	ut := e.m.UserTokens(ctx)
	if allocs := testing.AllocsPerRun(100, func() {
		if tok, err := ut.AccessToken(ctx); err != nil || tok == "" {
			t.Fatalf("AccessToken = %q, %v", tok, err)
		}
	}); allocs != 0 {
		t.Errorf("AccessToken of a fresh token allocates %v times", allocs)
	}
}
