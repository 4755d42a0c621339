package session

import (
	"encoding/base64"
	"net/http"

	"github.com/custodian-bff/custodian/internal/cookieheader"
)

// idBytes is the entropy of a session id: 256 bits from crypto/rand.
const idBytes = 32

// idLength is the length of an encoded session id.
var idLength = base64.RawURLEncoding.EncodedLen(idBytes)

// Cookie describes the session cookie. The gateway always sets it HttpOnly,
// Secure, Path=/ and without Domain, which is what the __Host- prefix needs.
type Cookie struct {
	// Name defaults to DefaultCookieName.
	Name string
	// SameSite defaults to http.SameSiteStrictMode; Lax is the alternative.
	SameSite http.SameSite
}

func (c Cookie) withDefaults() Cookie {
	if c.Name == "" {
		c.Name = DefaultCookieName
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode || c.SameSite == http.SameSiteNoneMode {
		c.SameSite = http.SameSiteStrictMode
	}
	return c
}

// cookie returns the session cookie carrying id. It has no Max-Age: the
// session's life is kept in the store, so the cookie never needs renewing.
func (c Cookie) cookie(id string) *http.Cookie {
	return &http.Cookie{Name: c.Name, Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: c.SameSite}
}

// clear returns a cookie that deletes the session cookie.
func (c Cookie) clear() *http.Cookie {
	ck := c.cookie("")
	ck.MaxAge = -1
	return ck
}

// idFrom returns the first well-formed session id among the cookies named
// c.Name on the request's Cookie lines, or "".
func (c Cookie) idFrom(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	// http.Request's parser is lenient: a malformed cookie of another
	// application on the same site does not hide ours.
	id, _ := cookieheader.First(lines, c.Name, wellFormedID)
	return id
}

// wellFormedID reports whether v looks like an id we issued, so that junk is
// refused before it reaches the store.
func wellFormedID(v string) bool {
	if len(v) != idLength {
		return false
	}
	for _, c := range []byte(v) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
