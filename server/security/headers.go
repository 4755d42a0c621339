package security

import (
	"net/http"
	"slices"
	"strings"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"

	"github.com/custodian-bff/custodian/internal/cookieheader"
)

// Headers sets the headers every answer carries: no MIME sniffing, no
// referrer, HSTS when the gateway serves TLS itself, and exactly one
// Cache-Control header.
//
// It owns Cache-Control on answers to requests that carry the session
// cookie: whatever the handlers set (connect-go adds a handler's response
// headers to the ones already set, so a handler's "no-store" would have
// made a second header), such an answer carries "private, no-store" and
// nothing else, so no shared cache keeps a user's data. On other answers
// the handlers' Cache-Control values, if several, are joined into one
// header. Both happen when the answer's header is written.
func Headers(cookieName string, tls bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			if tls {
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			cw := &cacheControlWriter{ResponseWriter: w, private: cookieheader.Has(r.Header["Cookie"], cookieName)}
			next.ServeHTTP(cw, r)
			// An answer nobody wrote is sent after this returns, with the
			// headers as they are now.
			cw.settle()
		})
	}
}

// privateNoStore is the Cache-Control of every answer to a request with the
// session cookie.
const privateNoStore = "private, no-store"

// cacheControlWriter settles the Cache-Control header when the answer's
// header is written.
type cacheControlWriter struct {
	http.ResponseWriter
	private bool // the request carried the session cookie
	settled bool
}

// settle leaves one Cache-Control header: privateNoStore on a private
// answer, the handlers' directives joined otherwise.
func (w *cacheControlWriter) settle() {
	if w.settled {
		return
	}
	w.settled = true
	h := w.ResponseWriter.Header()
	switch values := h.Values("Cache-Control"); {
	case w.private:
		h.Set("Cache-Control", privateNoStore)
	case len(values) > 1:
		h.Set("Cache-Control", joinDirectives(values))
	}
}

func (w *cacheControlWriter) WriteHeader(code int) {
	if code >= http.StatusOK {
		w.settle()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *cacheControlWriter) Write(p []byte) (int, error) {
	w.settle()
	return w.ResponseWriter.Write(p)
}

func (w *cacheControlWriter) Flush() {
	w.settle()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *cacheControlWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// joinDirectives joins Cache-Control values into one, each directive once
// (compared without case), in the order first given.
func joinDirectives(values []string) string {
	var directives []string
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			if d != "" && !slices.ContainsFunc(directives, func(seen string) bool { return strings.EqualFold(seen, d) }) {
				directives = append(directives, d)
			}
		}
	}
	return strings.Join(directives, ", ")
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
