package idp

import (
	"net/http"
	"net/url"
	"testing"
)

func TestTokenExchange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// form returns the request; subjectToken is alice's access token.
		form      func(subjectToken string) url.Values
		prepare   func(t *testing.T, e *testEnv)
		wantError string
	}{
		{
			name: "allowed audience",
			form: func(subjectToken string) url.Values {
				return exchangeForm(subjectToken, "acme-orders")
			},
		},
		{
			name: "disallowed audience",
			form: func(subjectToken string) url.Values {
				return exchangeForm(subjectToken, "acme-billing")
			},
			wantError: "invalid_target",
		},
		{
			name: "missing audience",
			form: func(subjectToken string) url.Values {
				return exchangeForm(subjectToken, "")
			},
			wantError: "invalid_request",
		},
		{
			name: "garbage subject token",
			form: func(string) url.Values {
				return exchangeForm("eyJhbGciOiJub25lIn0.e30.", "acme-orders")
			},
			wantError: "invalid_grant",
		},
		{
			name: "revoked subject token",
			form: func(subjectToken string) url.Values {
				return exchangeForm(subjectToken, "acme-orders")
			},
			prepare: func(t *testing.T, e *testEnv) {
				e.p.RevokeSubject(t.Context(), "alice")
			},
			wantError: "invalid_grant",
		},
		{
			name: "wrong subject token type",
			form: func(subjectToken string) url.Values {
				f := exchangeForm(subjectToken, "acme-orders")
				f.Set("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")
				return f
			},
			wantError: "invalid_request",
		},
		{
			name: "missing subject token",
			form: func(string) url.Values {
				return exchangeForm("", "acme-orders")
			},
			wantError: "invalid_request",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			tok, _ := e.loginAndExchange(t)
			if tt.prepare != nil {
				tt.prepare(t, e)
			}
			status, body := e.tokenRequest(t, tt.form(tok.AccessToken))
			if tt.wantError != "" {
				if status != http.StatusBadRequest || errorCode(body) != tt.wantError {
					t.Errorf("status %d, body %v; want 400 %s", status, body, tt.wantError)
				}
				if _, ok := body["access_token"]; ok {
					t.Error("access token issued despite the error")
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("status %d, body %v", status, body)
			}
			if body["issued_token_type"] != tokenTypeAccessToken || body["token_type"] != "Bearer" || body["expires_in"] == nil {
				t.Errorf("response = %v, want issued_token_type, token_type Bearer and expires_in", body)
			}
			if _, ok := body["refresh_token"]; ok {
				t.Error("token exchange issued a refresh token")
			}
			exchanged, _ := body["access_token"].(string)
			at, err := e.verifier(t, "acme-orders").Verify(e.ctx(t), exchanged)
			if err != nil {
				t.Fatalf("verify exchanged token: %v", err)
			}
			if at.Subject != "alice" {
				t.Errorf("sub = %q, want alice", at.Subject)
			}
			if len(at.Audience) != 1 || at.Audience[0] != "acme-orders" {
				t.Errorf("aud = %v, want [acme-orders]", at.Audience)
			}
			if !e.introspect(t, exchanged) {
				t.Error("exchanged token inactive")
			}
		})
	}
}

func TestTokenExchangeRefusesRefreshToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	tok, _ := e.loginAndExchange(t)
	status, body := e.tokenRequest(t, exchangeForm(tok.RefreshToken, "acme-orders"))
	if status != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
		t.Errorf("status %d, body %v; want invalid_grant", status, body)
	}
}

func exchangeForm(subjectToken, audience string) url.Values {
	f := url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token_type": {tokenTypeAccessToken},
	}
	if subjectToken != "" {
		f.Set("subject_token", subjectToken)
	}
	if audience != "" {
		f.Set("audience", audience)
	}
	return f
}
