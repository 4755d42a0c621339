// Package cookieheader finds a named cookie on a request's Cookie lines
// without allocating: every layer of a call (cache headers, rate limits,
// CSRF guard, session) looks for the session cookie, and net/http's parser
// builds every cookie of every line each time it is asked.
package cookieheader

import "strings"

// maxCookies is net/http's default limit (GODEBUG httpcookiemaxnum): a
// request with more cookies than this has none, as for net/http.
const maxCookies = 3000

// First returns the value of the first cookie named name on lines, the
// values of a request's Cookie header, that accept takes (any, when accept
// is nil). It parses as net/http's Request.CookiesNamed does: parts split
// on ';' and trimmed, a value in double quotes unquoted, a value with a
// byte a cookie value may not hold skipped.
func First(lines []string, name string, accept func(string) bool) (string, bool) {
	if len(lines) == 0 || name == "" {
		return "", false
	}
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxCookies {
		return "", false
	}
	for _, line := range lines {
		line = trim(line)
		var part string
		for len(line) > 0 {
			part, line, _ = strings.Cut(line, ";")
			part = trim(part)
			if part == "" {
				continue
			}
			n, v, _ := strings.Cut(part, "=")
			if trim(n) != name {
				continue
			}
			v, ok := value(v)
			if !ok || (accept != nil && !accept(v)) {
				continue
			}
			return v, true
		}
	}
	return "", false
}

// Has reports whether lines hold a cookie named name, whatever its value.
func Has(lines []string, name string) bool {
	_, ok := First(lines, name, nil)
	return ok
}

// value unquotes raw and checks its bytes, as net/http's parseCookieValue.
func value(raw string) (string, bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	for i := 0; i < len(raw); i++ {
		if b := raw[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", false
		}
	}
	return raw, true
}

// trim removes leading and trailing ASCII spaces, as textproto.TrimString.
func trim(s string) string {
	for len(s) > 0 && space(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && space(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func space(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
