package login

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/custodian-bff/custodian/server/keyring"
)

// loginCookiePrefix names login cookies. Each attempt has its own cookie,
// named after its state, so logins in parallel tabs do not clobber each
// other.
const loginCookiePrefix = "__Host-custodian-login-"

// loginLifetime bounds the time from starting a login to finishing it.
const loginLifetime = 10 * time.Minute

// maxLoginAttempts is how many login attempts one browser keeps at once: a
// new attempt is kept with the three most recent before it, and older ones
// are dropped (their cookies deleted). Each attempt's cookie is about 530
// bytes and lives for loginLifetime, so without a bound a user clicking
// "sign in" again and again, or a page embedding the login URL, grows the
// Cookie header until the server refuses every request of that browser
// (431). Four covers two or three tabs signing in at once plus a retry,
// and keeps the login cookies near 2 KiB, far below the 16 KiB default of
// server.max_header_bytes and the 8 KiB a header line gets at common
// proxies.
const maxLoginAttempts = 4

// maxLoginCookiesCleared bounds the deletions one answer carries: a
// request holding more login cookies than that (only the browser's own
// user can put them there) is cleared over several starts.
const maxLoginCookiesCleared = 32

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
	if state == "" || len(state) > 128 {
		return loginState{}, errBadState
	}
	name := loginCookieName(state)
	cookies := (&http.Request{Header: header}).CookiesNamed(name)
	if len(cookies) == 0 {
		return loginState{}, errBadState
	}
	st, err := openCookie(keys, name, cookies[0].Value)
	if err != nil {
		return st, err
	}
	// The cookie name already commits to the state; compare anyway so a
	// state collision in the name's hash cannot pair the wrong attempt.
	if st.State != state || !current(st, now) {
		return st, errBadState
	}
	return st, nil
}

// openCookie opens the login cookie name=value, whatever attempt it holds.
func openCookie(keys *keyring.Ring, name, value string) (loginState, error) {
	var st loginState
	box, err := base64.RawURLEncoding.DecodeString(value)
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
	return st, nil
}

// current reports whether the attempt may still finish at now.
func current(st loginState, now time.Time) bool {
	return now.Sub(st.Created) <= loginLifetime && !now.Before(st.Created.Add(-time.Minute))
}

// pruneStates returns the cookies that delete the browser's login attempts
// a new one replaces: every attempt that can no longer finish, and the
// oldest beyond the maxLoginAttempts-1 most recent, so that with the new
// one the browser keeps at most maxLoginAttempts. A cookie this gateway
// cannot open (sealed under a key it lacks, or not its own) counts as the
// oldest: it is kept while there is room, since another instance with
// another key ring may still finish it.
func pruneStates(keys *keyring.Ring, header http.Header, now time.Time) []*http.Cookie {
	type attempt struct {
		name    string
		created time.Time // zero for a cookie that does not open
	}
	var (
		kept []attempt
		drop []string
		seen = map[string]bool{}
	)
	for _, c := range (&http.Request{Header: header}).Cookies() {
		if !strings.HasPrefix(c.Name, loginCookiePrefix) || seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		st, err := openCookie(keys, c.Name, c.Value)
		switch {
		case err != nil || loginCookieName(st.State) != c.Name:
			kept = append(kept, attempt{name: c.Name})
		case !current(st, now):
			drop = append(drop, c.Name)
		default:
			kept = append(kept, attempt{name: c.Name, created: st.Created})
		}
	}
	// Newest first; ties (a clock that does not move) in name order.
	slices.SortFunc(kept, func(a, b attempt) int {
		return cmp.Or(b.created.Compare(a.created), strings.Compare(a.name, b.name))
	})
	for i := len(kept) - 1; i >= maxLoginAttempts-1; i-- {
		drop = append(drop, kept[i].name) // oldest first
	}
	var out []*http.Cookie
	for _, name := range drop[:min(len(drop), maxLoginCookiesCleared)] {
		out = append(out, clearCookie(name))
	}
	return out
}

// clearState returns a cookie that deletes the attempt's cookie.
func clearState(state string) *http.Cookie {
	return clearCookie(loginCookieName(state))
}

// clearCookie returns a cookie that deletes the login cookie name, with
// the attributes it was set with.
func clearCookie(name string) *http.Cookie {
	return &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return base64.RawURLEncoding.EncodeToString(b)
}
