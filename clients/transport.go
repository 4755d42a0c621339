// Package clients builds the gateway's clients for its backends: one Connect
// client per backend, speaking the backend's protocol over a shared pooled
// transport, carrying the token its policy calls for and nothing from the
// browser.
package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// NewHTTPClient returns the client every backend shares. gRPC calls go over
// HTTP/2 (prior-knowledge h2c for http, ALPN for https), since gRPC needs it;
// on h2c, a request's headers go out with its body (coalescingConn).
// Connect and gRPC-Web calls to an http URL go over pooled HTTP/1.1
// keep-alive connections: for small unary calls Go's HTTP/1.1 client costs
// less CPU than its HTTP/2 client, which writes headers and body in separate
// flushes; to an https URL they take what ALPN picks (HTTP/2 when the
// backend offers it). Client and bidirectional streaming need HTTP/2, so a
// Connect backend that uses them must be served over https or spoken to with
// the gRPC protocol.
//
// The client never follows redirects and ignores proxy environment
// variables: the gateway talks to the configured backends and nowhere else.
func NewHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: newProtocolTransport(dialer.DialContext),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errRedirect
		},
	}
}

// dialFunc opens a connection, as net.Dialer.DialContext does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// newProtocolTransport returns the transports of NewHTTPClient, opening
// connections with dial.
func newProtocolTransport(dial dialFunc) *protocolTransport {
	return &protocolTransport{
		h2:    newTransport(func(p *http.Protocols) { p.SetHTTP2(true); p.SetUnencryptedHTTP2(true) }, coalescing(dial)),
		http1: newTransport(func(p *http.Protocols) { p.SetHTTP1(true); p.SetHTTP2(true) }, dial),
	}
}

var errRedirect = errors.New("backend redirects are not followed")

// newTransport returns a pooled transport speaking the protocols set,
// opening connections with dial.
func newTransport(protocols func(*http.Protocols), dial dialFunc) *http.Transport {
	t := &http.Transport{
		Proxy:       nil,
		DialContext: dial,
		// HTTP/1.1 holds one call per connection: keep enough idle ones for
		// a burst of concurrent calls to one backend, and bound how many
		// are open so a stalled backend cannot take every local port.
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		MaxConnsPerHost:     1024,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		Protocols:           new(http.Protocols),
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     10 * time.Second,
		},
	}
	protocols(t.Protocols)
	return t
}

// protocolTransport sends gRPC over h2 and everything else over http1.
type protocolTransport struct {
	h2    *http.Transport
	http1 *http.Transport
}

func (t *protocolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if isGRPC(req.Header.Get("Content-Type")) {
		return t.h2.RoundTrip(req)
	}
	req, err := withBodyInMemory(req)
	if err != nil {
		return nil, err
	}
	return t.http1.RoundTrip(req)
}

// maxBodyInMemory bounds the request bodies withBodyInMemory copies: a
// unary message, far below connect-go's and the backends' limits.
const maxBodyInMemory = 64 << 10

// withBodyInMemory returns req with its body, when it has a small known
// length, copied into a bytes.Reader. net/http writes headers and body in
// one write only when it knows the body is in memory; connect-go's unary
// body is not a type it knows, so it flushed the headers first: two write
// system calls per backend call, and two wake-ups of the backend. The copy
// is made before RoundTrip returns, so connect-go may reuse its buffer, as
// the http.RoundTripper contract allows; req itself is not changed, and
// its body is closed, as RoundTrip must.
func withBodyInMemory(req *http.Request) (*http.Request, error) {
	n := req.ContentLength
	if req.Body == nil || req.Body == http.NoBody || n <= 0 || n > maxBodyInMemory {
		return req, nil
	}
	body := make([]byte, n)
	_, err := io.ReadFull(req.Body, body)
	if err == nil {
		// As net/http does: a body longer than its ContentLength is an
		// error, not cut short in silence.
		var extra [1]byte
		if m, _ := req.Body.Read(extra[:]); m > 0 {
			err = fmt.Errorf("http: ContentLength=%d with a longer body", n)
		}
	}
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	out := new(http.Request)
	*out = *req
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return out, nil
}

// CloseIdleConnections closes both transports' idle connections.
func (t *protocolTransport) CloseIdleConnections() {
	t.h2.CloseIdleConnections()
	t.http1.CloseIdleConnections()
}

// isGRPC reports whether contentType is gRPC's (application/grpc or
// application/grpc+codec), not gRPC-Web's.
func isGRPC(contentType string) bool {
	rest, ok := strings.CutPrefix(contentType, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}
