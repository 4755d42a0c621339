// Package clients builds the gateway's clients for its backends: one Connect
// client per backend, speaking the backend's protocol over a shared HTTP/2
// transport, carrying the token its policy calls for and nothing from the
// browser.
package clients

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns the client every backend shares: HTTP/2 only (TLS
// with ALPN for https, prior-knowledge h2c for http, so gRPC works on both),
// pooled and multiplexed so a burst of calls does not open a connection each.
// It never follows redirects and ignores proxy environment variables: the
// gateway talks to the configured backends and nowhere else.
func NewHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		Protocols:           new(http.Protocols),
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     10 * time.Second,
		},
	}
	transport.Protocols.SetHTTP2(true)
	transport.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errRedirect
		},
	}
}

var errRedirect = errors.New("backend redirects are not followed")
