// Package security holds the gateway's browser-facing defences: the
// cross-site request forgery guard, CORS for allowed origins, and the
// response headers every answer carries.
package security

import (
	"net/http"
	"strings"
)

// Origins is the set of origins whose pages may act with the session: the
// gateway's own, plus the configured allowlist.
type Origins struct {
	allowed map[string]bool
}

// NewOrigins returns the gateway's own origin (from publicURL) and others.
func NewOrigins(publicURL string, others []string) Origins {
	o := Origins{allowed: make(map[string]bool, len(others)+1)}
	o.allowed[origin(publicURL)] = true
	for _, other := range others {
		o.allowed[origin(other)] = true
	}
	return o
}

// Allowed reports whether a request may act with the session as far as its
// origin goes: requests without an Origin header (server-side renderers,
// grpcurl, same-origin GETs) are allowed; "null" and unknown origins are not.
func (o Origins) Allowed(header http.Header) bool {
	return o.allows(header)
}

func (o Origins) allows(h header) bool {
	values := h.Values("Origin")
	if len(values) == 0 {
		return true
	}
	return len(values) == 1 && o.allowed[values[0]]
}

// origin normalises a URL's scheme://host[:port] the way browsers send it.
func origin(u string) string {
	u = strings.TrimRight(u, "/")
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			u = u[:i+3+j]
		}
	}
	return strings.ToLower(u)
}
