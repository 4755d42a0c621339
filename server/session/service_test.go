package session_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/session"
)

// TestGetSessionIsNotStored: every answer of GetSession, the refusals of
// anonymous callers included, carries one Cache-Control: no-store. (Behind
// the gateway, the headers middleware makes it "private, no-store" when the
// request carried the session cookie.)
func TestGetSessionIsNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, h, _ := e.create(t, alice, "sid-1", e.tokens(time.Hour))
	client := serve(t, e.m, session.NewService("/auth/logout"))
	for _, tt := range []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{name: "signed in", header: h, ok: true},
		{name: "no cookie", header: http.Header{}},
		{name: "junk cookie", header: cookieHeader(e.m.CookieName(), "junk")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, info := withHeader(t.Context(), tt.header)
			res, err := client.GetSession(ctx, &custodianv1.GetSessionRequest{})
			if err != nil || res.GetSignedIn() != tt.ok {
				t.Fatalf("GetSession: %v, %v; want signed_in=%v", res, err, tt.ok)
			}
			if got := info.ResponseHeader().Values("Cache-Control"); !slices.Equal(got, []string{"no-store"}) {
				t.Errorf("Cache-Control %q, want [no-store]", got)
			}
		})
	}
}
