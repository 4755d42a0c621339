package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"connectrpc.com/connect/v2"
)

// tooLargeMessage is what a client whose request went over a read limit is
// told, in every protocol.
const tooLargeMessage = "request is too large"

// A request over a read limit is the client's mistake and stays one: sent
// again, it is refused again. So it is never answered with a code that
// clients and proxies treat as transient (resource_exhausted, which
// connect-go uses for its read limit, is also what a rate limit answers:
// HTTP 429, which clients retry, and which proxies such as Envoy can be told
// to retry on gRPC too). Every protocol gets invalid_argument with
// tooLargeMessage, and the Connect unary protocol and plain routes, whose
// HTTP status is theirs, get 413 Content Too Large. A rate-limit refusal
// stays resource_exhausted (HTTP 429) with Retry-After: the two never look
// alike.
const (
	tooLargeCode        = connect.CodeInvalidArgument
	tooLargeConnectJSON = `{"code":"invalid_argument","message":"` + tooLargeMessage + `"}`
)

// errTooLarge is the error a call whose request went over its read limit
// ends with; cause, connect-go's own error, is only logged.
func errTooLarge(cause error) *connect.Error {
	return connect.NewError(tooLargeCode, tooLargeMessage).WithCause(cause)
}

// isReadLimit reports whether err, returned by ServerStream.Receive, says
// the request went over a read limit: connect-go reports a message, an
// inflated message or a body (http.MaxBytesReader) over its limit as a
// local resource_exhausted, and nothing else that way.
func isReadLimit(err error) bool {
	connectErr, ok := errors.AsType[*connect.Error](err)
	return ok && !connectErr.IsRemote() && connectErr.Code() == connect.CodeResourceExhausted
}

// limitedStream is a ServerStream that turns a read limit's error into
// errTooLarge and remembers it.
type limitedStream struct {
	connect.ServerStream
	tooLarge *connect.Error
}

func (s *limitedStream) Receive(msg any) error {
	err := s.ServerStream.Receive(msg)
	if err != nil && isReadLimit(err) {
		if s.tooLarge == nil {
			s.tooLarge = errTooLarge(err)
		}
		return s.tooLarge
	}
	return err
}

// limitBodies bounds the bodies of the server's routes at maxBodyBytes and
// answers a request over a read limit (maxBodyBytes or a service's tighter
// one) as too large, in its protocol:
//
//   - a request whose Content-Length is over maxBodyBytes is answered 413
//     before any handler runs;
//   - a body that turns out larger while a handler reads it (chunked, or a
//     plain route's), or a Connect unary message over its service's limit
//     (body, inflated body or GET query), is answered 413 too, whatever the
//     handler answered;
//   - gRPC, gRPC-Web and Connect streams, whose bodies carry several
//     messages, are bounded per message by connect-go; the edge interceptor
//     turns a message over the limit into invalid_argument (their HTTP
//     status is always 200).
//
// It wraps the routes inside every middleware, so a 413 carries the
// security and CORS headers like any answer.
func limitBodies(maxBodyBytes int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isStreamProtocol(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > maxBodyBytes {
			writeTooLarge(w, r)
			return
		}
		hasBody := r.Body != nil && r.Body != http.NoBody
		if !hasBody && (r.Method != http.MethodGet || !strings.Contains(r.URL.RawQuery, "message=")) {
			// Nothing to read, and no Connect GET message to decode.
			next.ServeHTTP(w, r)
			return
		}
		g := &bodyGuard{ResponseWriter: w}
		if hasBody {
			// Only a body read over the limit makes the guard replace the
			// route's answer; a Connect GET's message over it is answered
			// by connect-go's handler, whose status the guard only sets.
			g.before = w.Header().Clone()
		}
		r = r.WithContext(context.WithValue(r.Context(), bodyGuardKey{}, g))
		g.req = r
		if hasBody {
			r.Body = &guardedBody{ReadCloser: http.MaxBytesReader(w, r.Body, maxBodyBytes), guard: g}
		}
		next.ServeHTTP(g, r)
		if !g.wroteHeader && g.tooLarge.Load() {
			g.replace()
		}
	})
}

// isStreamProtocol reports whether r is a gRPC, gRPC-Web or Connect
// streaming request, whose body is a series of enveloped messages.
func isStreamProtocol(r *http.Request) bool {
	mediaType := mediaTypeOf(r)
	return strings.HasPrefix(mediaType, "application/grpc") || strings.HasPrefix(mediaType, "application/connect+")
}

// mediaTypeOf returns r's Content-Type without parameters, lower-cased.
func mediaTypeOf(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// isConnectUnary reports whether r is a Connect unary call, which is
// answered with a Connect error (JSON) rather than text.
func isConnectUnary(r *http.Request) bool {
	if mediaType := mediaTypeOf(r); mediaType == "application/json" || mediaType == "application/proto" || r.Header.Get("Connect-Protocol-Version") != "" {
		return true
	}
	if r.Method != http.MethodGet {
		return false
	}
	q := r.URL.Query()
	return q.Get("connect") == "v1" || q.Has("encoding")
}

// writeTooLarge answers r with 413: a Connect error for a Connect unary
// call, a short text otherwise, not to be stored. An HTTP/1 connection is
// closed after it, rather than read to the end of a body nobody wants.
func writeTooLarge(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "close")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	body := tooLargeMessage + "\n"
	if isConnectUnary(r) {
		h.Set("Content-Type", "application/json")
		body = tooLargeConnectJSON
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = io.WriteString(w, body)
}

type bodyGuardKey struct{}

// markTooLarge tells the request's bodyGuard, if any, that a connect
// handler answered it with errTooLarge.
func markTooLarge(ctx context.Context) {
	if g, ok := ctx.Value(bodyGuardKey{}).(*bodyGuard); ok {
		g.tooLarge.Store(true)
		g.answered.Store(true)
	}
}

// guardedBody is a request body bounded by http.MaxBytesReader that tells
// its bodyGuard when a read went over the limit.
type guardedBody struct {
	io.ReadCloser
	guard *bodyGuard
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			b.guard.tooLarge.Store(true)
		}
	}
	return n, err
}

// bodyGuard is the ResponseWriter of a request with a bounded body. Once
// the request is known to be over a read limit, the answer is 413: a
// connect handler's Connect error (errTooLarge) keeps its body and gets
// the status; any other answer (a plain route's 400, a redirect, even a
// 200 made from a truncated body) is replaced by writeTooLarge's, with
// only the headers set before the route ran.
type bodyGuard struct {
	http.ResponseWriter
	req *http.Request
	// before holds the headers the middleware set before the route, for
	// a request with a body (nil without: nothing is replaced then).
	before http.Header

	tooLarge atomic.Bool // a read went over the limit
	answered atomic.Bool // a connect handler answered with errTooLarge

	wroteHeader bool
	discard     bool // the route's answer is replaced: drop its body
}

func (g *bodyGuard) WriteHeader(code int) {
	if g.wroteHeader {
		return
	}
	if code < http.StatusOK {
		// Informational answers (103 Early Hints) go out as they are.
		g.ResponseWriter.WriteHeader(code)
		return
	}
	g.wroteHeader = true
	switch {
	case !g.tooLarge.Load():
		g.ResponseWriter.WriteHeader(code)
	case g.answered.Load() && code != http.StatusOK:
		// connect-go writes the Connect error next.
		g.ResponseWriter.Header().Set("Cache-Control", "no-store")
		g.ResponseWriter.WriteHeader(http.StatusRequestEntityTooLarge)
	default:
		g.replace()
	}
}

// replace answers with writeTooLarge, dropping what the route set and
// will write.
func (g *bodyGuard) replace() {
	g.wroteHeader, g.discard = true, true
	if g.before != nil {
		h := g.ResponseWriter.Header()
		clear(h)
		for k, v := range g.before {
			h[k] = v
		}
	}
	writeTooLarge(g.ResponseWriter, g.req)
}

func (g *bodyGuard) Write(p []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	if g.discard {
		return len(p), nil
	}
	return g.ResponseWriter.Write(p)
}

func (g *bodyGuard) Flush() {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	if g.discard {
		return
	}
	if f, ok := g.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (g *bodyGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }
