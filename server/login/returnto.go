package login

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds the return_to a login keeps in its cookie.
const maxReturnTo = 1024

// SafeReturnTo returns returnTo when it is a path on the gateway's own
// origin, and "/" otherwise: absolute URLs, scheme-relative "//host",
// backslash tricks ("/\host", "/\\host"), encoded variants of those,
// control characters and overlong values all fall back. This is what
// keeps login from being an open redirect.
func SafeReturnTo(returnTo string) string {
	if returnTo == "" || len(returnTo) > maxReturnTo || returnTo[0] != '/' {
		return "/"
	}
	for _, c := range []byte(returnTo) {
		// Browsers treat "\" as "/", drop tabs and newlines, and stop at
		// other controls; none belongs in a path we hand back.
		if c < 0x21 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	// "/%2F/host" and "/%5Chost" decode to the same tricks.
	decoded, err := url.PathUnescape(returnTo)
	if err != nil {
		return "/"
	}
	for _, s := range []string{returnTo, decoded} {
		if strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") || strings.ContainsAny(s, "\\\x00\r\n\t") {
			return "/"
		}
	}
	u, err := url.Parse(returnTo)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return returnTo
}
