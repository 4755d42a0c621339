package ratelimit

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r.
//
// It is the connection's peer (r.RemoteAddr) unless the peer is one of the
// trusted proxies. Only then are the forwarding headers believed: the
// X-Forwarded-For hops (every header line, comma-separated, left to right
// as proxies append them) are walked from the right, skipping trusted
// proxies, and the first address that is not trusted is the client. When
// there is no X-Forwarded-For, the for= parameters of RFC 7239 Forwarded
// headers are walked the same way. An entry that is not an address (junk,
// "unknown", an obfuscated node) stops the walk, and the last address
// walked over, a trusted proxy's, is the answer: what lies beyond it cannot
// be told apart from a forgery. When every hop is trusted the leftmost one
// is the answer.
//
// An untrusted peer's headers are ignored entirely: anyone can send them.
// The result is unmapped (::ffff:10.0.0.1 is 10.0.0.1) and without an IPv6
// zone; it is the zero Addr only when RemoteAddr is not an address.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, ok := parseNode(r.RemoteAddr)
	if !ok || !isTrusted(peer, trusted) {
		return peer
	}
	if lines := r.Header.Values("X-Forwarded-For"); len(lines) > 0 {
		return walk(peer, trusted, forwardedForHops(lines))
	}
	if lines := r.Header.Values("Forwarded"); len(lines) > 0 {
		return walk(peer, trusted, forwardedHops(lines))
	}
	return peer
}

// walk returns the rightmost untrusted address of hops, which are in the
// order proxies appended them; an invalid Addr among them is a malformed
// entry, where the walk stops.
func walk(peer netip.Addr, trusted []netip.Prefix, hops []netip.Addr) netip.Addr {
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		hop := hops[i]
		if !hop.IsValid() {
			return last
		}
		if !isTrusted(hop, trusted) {
			return hop
		}
		last = hop
	}
	return last
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// forwardedForHops parses X-Forwarded-For lines. Empty list elements are
// skipped, as RFC 9110 lists allow; anything else that is not an address
// becomes an invalid Addr.
func forwardedForHops(lines []string) []netip.Addr {
	var hops []netip.Addr
	for _, line := range lines {
		for entry := range strings.SplitSeq(line, ",") {
			entry = strings.Trim(entry, " \t")
			if entry == "" {
				continue
			}
			addr, _ := parseNode(entry)
			hops = append(hops, addr)
		}
	}
	return hops
}

// forwardedHops parses RFC 7239 Forwarded lines: one hop per element, its
// for= parameter the address. An element without exactly one for=, or
// whose node is not an address, becomes an invalid Addr.
func forwardedHops(lines []string) []netip.Addr {
	var hops []netip.Addr
	for _, line := range lines {
		for _, element := range splitOutsideQuotes(line, ',') {
			if strings.Trim(element, " \t") == "" {
				continue
			}
			var addr netip.Addr
			if node, ok := forParameter(element); ok {
				addr, _ = parseNode(node)
			}
			hops = append(hops, addr)
		}
	}
	return hops
}

// forParameter returns the unquoted value of the one for= parameter of a
// Forwarded element.
func forParameter(element string) (string, bool) {
	var value string
	found := 0
	for _, pair := range splitOutsideQuotes(element, ';') {
		pair = strings.Trim(pair, " \t")
		if pair == "" {
			continue
		}
		name, v, ok := strings.Cut(pair, "=")
		if !ok {
			return "", false
		}
		if strings.EqualFold(strings.Trim(name, " \t"), "for") {
			value = strings.Trim(v, " \t")
			found++
		}
	}
	if found != 1 {
		return "", false
	}
	if strings.HasPrefix(value, `"`) {
		return unquote(value)
	}
	return value, true
}

// splitOutsideQuotes splits s at sep, except inside quoted strings, whose
// backslash escapes it honours.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote decodes an RFC 9110 quoted-string that is the whole of s.
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s)-1:
			i++
			b.WriteByte(s[i])
		case c == '\\' || c == '"':
			return "", false // a dangling escape, or a quote inside
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// parseNode parses an address as proxies and listeners write it: 192.0.2.1,
// 2001:db8::1, [2001:db8::1], or any of them with a port (192.0.2.1:4711,
// [2001:db8::1]:4711, or an RFC 7239 obfuscated port such as :_p1). The
// result is unmapped and without a zone.
func parseNode(s string) (netip.Addr, bool) {
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return netip.Addr{}, false
		}
	} else if h, port, ok := strings.Cut(s, ":"); ok && !strings.Contains(port, ":") {
		// Exactly one colon: IPv4 with a port. More are a bare IPv6.
		if !validPort(port) {
			return netip.Addr{}, false
		}
		host = h
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

// validPort reports whether s is a port number or an RFC 7239 obfuscated
// port ("_" followed by ALPHA, DIGIT, ".", "_" or "-").
func validPort(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	obfuscated := s[0] == '_'
	if !obfuscated && len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		digit := c >= '0' && c <= '9'
		other := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-'
		if !digit && !(obfuscated && other) {
			return false
		}
	}
	return true
}

type contextKey struct{}

// NewContext returns a copy of ctx carrying the client address.
func NewContext(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, contextKey{}, addr)
}

// FromContext returns the client address stored by [ClientIPMiddleware] or
// [Limiter.Middleware], or the zero Addr when there is none.
func FromContext(ctx context.Context) netip.Addr {
	addr, _ := ctx.Value(contextKey{}).(netip.Addr)
	return addr
}

// ClientIPMiddleware stores [ClientIP] in each request's context, for
// [FromContext]. [Limiter.Middleware] does the same; this one is for
// handlers that want the address without rate limiting.
func ClientIPMiddleware(trusted []netip.Prefix) func(http.Handler) http.Handler {
	trusted = append([]netip.Prefix(nil), trusted...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), ClientIP(r, trusted))))
		})
	}
}
