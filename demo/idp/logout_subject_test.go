package idp

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

func TestBackchannelLogoutSubject(t *testing.T) {
	t.Parallel()
	lr := newLogoutReceiver(t, http.StatusOK)
	e := newLogoutEnv(t, lr)
	e.loginSID(t, "alice")
	e.loginSID(t, "alice")
	e.loginSID(t, "bob")

	if err := e.p.BackchannelLogoutSubject(t.Context(), "alice"); err != nil {
		t.Fatalf("BackchannelLogoutSubject: %v", err)
	}
	tokens := lr.received()
	if len(tokens) != 1 {
		t.Fatalf("received %d logout tokens, want 1 for both of alice's sessions", len(tokens))
	}
	keys := oidc.NewRemoteKeySet(e.ctx(t), e.p.JWKSURL())
	payload, err := keys.VerifySignature(e.ctx(t), tokens[0])
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	if header, _ := jwtParts(t, tokens[0]); header["typ"] != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", header["typ"])
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != e.issuer || claims["aud"] != testClientID || claims["sub"] != "alice" {
		t.Errorf("iss/aud/sub = %v/%v/%v", claims["iss"], claims["aud"], claims["sub"])
	}
	if _, ok := claims["sid"]; ok {
		t.Errorf("logout token names a session (sid %v), want the subject alone", claims["sid"])
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok || len(events) != 1 {
		t.Errorf("events = %v, want the back-channel logout event", claims["events"])
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("no jti")
	}
	if _, ok := claims["exp"]; !ok {
		t.Error("no exp")
	}

	if n := e.p.LiveSessions("alice"); n != 0 {
		t.Errorf("alice has %d live sessions, want 0", n)
	}
	if n := e.p.LiveSessions("bob"); n != 1 {
		t.Errorf("bob has %d live sessions, want 1 (untouched)", n)
	}
	// Nothing left to end: no second delivery.
	if err := e.p.BackchannelLogoutSubject(t.Context(), "alice"); err != nil {
		t.Fatalf("second BackchannelLogoutSubject: %v", err)
	}
	if n := len(lr.received()); n != 1 {
		t.Errorf("received %d tokens after the sessions ended, want still 1", n)
	}
}

func TestBackchannelLogoutSubjectDeliveryFails(t *testing.T) {
	t.Parallel()
	lr := newLogoutReceiver(t, http.StatusInternalServerError)
	e := newLogoutEnv(t, lr)
	e.loginSID(t, "alice")
	err := e.p.BackchannelLogoutSubject(t.Context(), "alice")
	if err == nil {
		t.Fatal("BackchannelLogoutSubject: no error for a failed delivery")
	}
	if n := e.p.LiveSessions("alice"); n != 0 {
		t.Errorf("alice has %d live sessions after a failed delivery, want 0", n)
	}
}
