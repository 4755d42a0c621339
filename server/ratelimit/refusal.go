package ratelimit

import (
	"encoding/binary"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// refusalMessage is what a refused client is told, in every protocol.
const refusalMessage = "too many requests, retry later"

// Refusal bodies, built once. Connect's code for an exhausted quota is
// resource_exhausted; gRPC's is 8.
const (
	connectErrorJSON            = `{"code":"resource_exhausted","message":"` + refusalMessage + `"}`
	grpcStatusResourceExhausted = "8"
)

// writeRefusal answers a refused request in the protocol it was made in, so
// that generated clients see CodeResourceExhausted rather than a transport
// failure, and says when to retry:
//
//   - gRPC and gRPC-Web (application/grpc*): HTTP 200, trailers-only, with
//     grpc-status 8 and grpc-message in the headers;
//   - Connect streams (application/connect+*): HTTP 200 with an end-of-
//     stream message carrying the error;
//   - Connect unary (application/json or application/proto, a
//     Connect-Protocol-Version header, or a GET with connect=v1 or encoding
//     in the query): HTTP 429 with the Connect error as JSON;
//   - anything else: HTTP 429 with a short text.
//
// Every answer has Retry-After in whole seconds and is not to be cached.
func writeRefusal(w http.ResponseWriter, r *http.Request, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(int64(roundUp(retryAfter)/time.Second), 10))
	h.Set("Cache-Control", "no-store")
	contentType := r.Header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch {
	case strings.HasPrefix(mediaType, "application/grpc"):
		h.Set("Content-Type", contentType)
		h.Set("Grpc-Status", grpcStatusResourceExhausted)
		h.Set("Grpc-Message", refusalMessage) // printable ASCII: no percent-encoding needed
		w.WriteHeader(http.StatusOK)
	case strings.HasPrefix(mediaType, "application/connect+"):
		h.Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(endStreamMessage())
	case isConnectUnary(r, mediaType):
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(connectErrorJSON))
	default:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(refusalMessage + "\n"))
	}
}

// isConnectUnary reports whether r is a Connect unary call.
func isConnectUnary(r *http.Request, mediaType string) bool {
	if mediaType == "application/json" || mediaType == "application/proto" || r.Header.Get("Connect-Protocol-Version") != "" {
		return true
	}
	if r.Method != http.MethodGet {
		return false
	}
	q := r.URL.Query()
	return q.Get("connect") == "v1" || q.Has("encoding")
}

// endStreamMessage is a Connect end-of-stream envelope (flag 0x02) carrying
// the refusal.
func endStreamMessage() []byte {
	const endStreamFlag = 0x02
	payload := `{"error":` + connectErrorJSON + `}`
	msg := make([]byte, 5, 5+len(payload))
	msg[0] = endStreamFlag
	binary.BigEndian.PutUint32(msg[1:], uint32(len(payload)))
	return append(msg, payload...)
}
