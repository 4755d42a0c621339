package server

import "time"

// Limits bound what one client can make the listener hold. A zero field takes
// the default stated next to it.
type Limits struct {
	// ReadHeaderTimeout bounds reading request headers, against slow-loris
	// clients. Default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Default 30s.
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers (HTTP/1 and HTTP/2). Default 16 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request message or body. Default 1 MiB.
	MaxBodyBytes int64
	// MaxConcurrentStreams bounds HTTP/2 streams per connection. Default 100.
	MaxConcurrentStreams int
	// ShutdownTimeout bounds how long a graceful shutdown waits for in-flight
	// calls before closing connections. Default 20s.
	ShutdownTimeout time.Duration
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = 5 * time.Second
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = 30 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 120 * time.Second
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 16 << 10
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 1 << 20
	}
	if l.MaxConcurrentStreams <= 0 {
		l.MaxConcurrentStreams = 100
	}
	if l.ShutdownTimeout <= 0 {
		l.ShutdownTimeout = 20 * time.Second
	}
	return l
}
