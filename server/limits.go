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
	// WriteTimeout bounds writing a response. Default 0 (none), so that
	// server streams are not cut off.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers (HTTP/1 and HTTP/2). Default 16 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request message or body. Default 1 MiB. A
	// request over it is a mistake no client should retry, never answered
	// as rate-limited: HTTP 413 for Connect unary calls (with the Connect
	// error invalid_argument) and plain routes (a short text), before any
	// handler runs when Content-Length says so; invalid_argument with HTTP
	// 200 for gRPC, gRPC-Web and Connect streams, bounded per message.
	MaxBodyBytes int64
	// MaxConcurrentStreams bounds HTTP/2 streams per connection. Default 100.
	MaxConcurrentStreams int
	// ShutdownTimeout bounds how long a graceful shutdown waits for in-flight
	// calls before closing connections. Default 20s.
	ShutdownTimeout time.Duration
}

// DefaultLimits returns the limits a zero field of Limits takes.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout:    5 * time.Second,
		ReadTimeout:          30 * time.Second,
		IdleTimeout:          120 * time.Second,
		MaxHeaderBytes:       16 << 10,
		MaxBodyBytes:         1 << 20,
		MaxConcurrentStreams: 100,
		ShutdownTimeout:      20 * time.Second,
	}
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	setDefault(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setDefault(&l.ReadTimeout, d.ReadTimeout)
	setDefault(&l.WriteTimeout, d.WriteTimeout)
	setDefault(&l.IdleTimeout, d.IdleTimeout)
	setDefault(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	setDefault(&l.MaxBodyBytes, d.MaxBodyBytes)
	setDefault(&l.MaxConcurrentStreams, d.MaxConcurrentStreams)
	setDefault(&l.ShutdownTimeout, d.ShutdownTimeout)
	return l
}

// setDefault sets a zero or negative field to value.
func setDefault[T int | int64 | time.Duration](field *T, value T) {
	if *field <= 0 {
		*field = value
	}
}
