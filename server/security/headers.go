package security

import (
	"net/http"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
)

// Headers sets the headers every answer carries: no MIME sniffing, no
// referrer, HSTS when the gateway serves TLS itself, and "private, no-store"
// on answers to requests that carry the session cookie, so no shared cache
// keeps a user's data. Handlers may set stricter values.
func Headers(cookieName string, tls bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			if tls {
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			if len(r.CookiesNamed(cookieName)) > 0 {
				h.Set("Cache-Control", "private, no-store")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// CORS returns the CORS middleware for the allowed origins (rs/cors with
// connectrpc.com/cors' lists of what Connect, gRPC-Web and the generated
// TypeScript clients send and read). Credentials are allowed, so origins are
// always listed, never "*". With no origins it returns nil: same-origin
// callers need no CORS, and nothing else is let in.
func CORS(origins []string, maxAgeSeconds int) func(http.Handler) http.Handler {
	if len(origins) == 0 {
		return nil
	}
	c := cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowCredentials: true,
		AllowedMethods:   connectcors.AllowedMethods(),
		AllowedHeaders:   append(connectcors.AllowedHeaders(), CSRFHeader),
		ExposedHeaders:   append(connectcors.ExposedHeaders(), "X-Request-Id"),
		MaxAge:           maxAgeSeconds,
	})
	return c.Handler
}

// HTMLPage sets the headers of a page the gateway renders itself: a strict
// CSP (no scripts, no framing, no form targets), no caching, no sniffing,
// no referrer.
func HTMLPage(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}
