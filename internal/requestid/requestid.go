// Package requestid gives every request a random id that ties a client's
// error to the gateway's log lines and to the backend calls made for it.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http"
)

// Header is the response (and backend request) header that carries the id.
const Header = "X-Request-Id"

type contextKey struct{}

// encoding is lower-case base32 without padding: URL- and log-safe.
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns a fresh random id of 80 bits (16 characters).
func New() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return encoding.EncodeToString(b[:])
}

// NewContext returns a copy of ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the id carried by ctx, or "" when there is none.
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(contextKey{}).(string)
	return id
}

// Middleware gives each request a new id, sets it on the response header and
// in the request context. An id sent by the client is ignored: clients must
// not be able to choose what lands in the gateway's logs.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := New()
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}
