package login

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/custodian-bff/custodian/server/keyring"
)

// loginCookiePrefix names login cookies. Each attempt has its own cookie,
// named after its state, so logins in parallel tabs do not clobber each
// other.
const loginCookiePrefix = "__Host-custodian-login-"

// loginLifetime bounds the time from starting a login to finishing it.
const loginLifetime = 10 * time.Minute

// loginState is what a login attempt remembers between the redirect to the
// provider and the callback. It lives sealed in the attempt's cookie.
type loginState struct {
	State       string    `json:"s"`
	Nonce       string    `json:"n"`
	Verifier    string    `json:"v"`
	RedirectURI string    `json:"r"`
	ReturnTo    string    `json:"t"`
	Created     time.Time `json:"c"`
	// Previous refers to the session the browser had when the login
	// started; it ends once the new one exists.
	Previous string `json:"p,omitempty"`
}

var errBadState = errors.New("login: unknown, tampered or expired login attempt")

func newLoginState(redirectURI, returnTo, previous string, now time.Time) loginState {
	return loginState{
		Previous:    previous,
		State:       random(32),
		Nonce:       random(32),
		Verifier:    random(48), // 64 characters, within RFC 7636's 43..128
		RedirectURI: redirectURI,
		ReturnTo:    SafeReturnTo(returnTo),
		Created:     now,
	}
}

// loginCookieName derives the attempt's cookie name from its state.
func loginCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return loginCookiePrefix + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// sealState returns the attempt's cookie. It is SameSite=Lax, not Strict:
// the callback arrives as a top-level navigation from the provider's site,
// and a Strict cookie would not come with it.
func sealState(keys *keyring.Ring, st loginState) (*http.Cookie, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("login: state: %w", err)
	}
	name := loginCookieName(st.State)
	return &http.Cookie{
		Name:     name,
		Value:    base64.RawURLEncoding.EncodeToString(keys.Seal(b, []byte(name))),
		Path:     "/",
		MaxAge:   int(loginLifetime / time.Second),
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}, nil
}

// openState finds and opens the cookie of the attempt named by state.
func openState(keys *keyring.Ring, header http.Header, state string, now time.Time) (loginState, error) {
	var st loginState
	if state == "" || len(state) > 128 {
		return st, errBadState
	}
	name := loginCookieName(state)
	cookies := (&http.Request{Header: header}).CookiesNamed(name)
	if len(cookies) == 0 {
		return st, errBadState
	}
	box, err := base64.RawURLEncoding.DecodeString(cookies[0].Value)
	if err != nil {
		return st, errBadState
	}
	b, err := keys.Open(box, []byte(name))
	if err != nil {
		return st, errBadState
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, errBadState
	}
	// The cookie name already commits to the state; compare anyway so a
	// state collision in the name's hash cannot pair the wrong attempt.
	if st.State != state || now.Sub(st.Created) > loginLifetime || now.Before(st.Created.Add(-time.Minute)) {
		return st, errBadState
	}
	return st, nil
}

// clearState returns a cookie that deletes the attempt's cookie.
func clearState(state string) *http.Cookie {
	return &http.Cookie{Name: loginCookieName(state), Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return base64.RawURLEncoding.EncodeToString(b)
}
