package server

import (
	"testing"
	"time"
)

func TestLimitsWithDefaults(t *testing.T) {
	t.Parallel()
	defaults := Limits{
		ReadHeaderTimeout:    5 * time.Second,
		ReadTimeout:          30 * time.Second,
		IdleTimeout:          120 * time.Second,
		MaxHeaderBytes:       16 << 10,
		MaxBodyBytes:         1 << 20,
		MaxConcurrentStreams: 100,
		ShutdownTimeout:      20 * time.Second,
	}
	custom := Limits{
		ReadHeaderTimeout:    time.Second,
		ReadTimeout:          2 * time.Second,
		WriteTimeout:         5 * time.Second,
		IdleTimeout:          3 * time.Second,
		MaxHeaderBytes:       4 << 10,
		MaxBodyBytes:         8 << 10,
		MaxConcurrentStreams: 7,
		ShutdownTimeout:      4 * time.Second,
	}
	tests := []struct {
		name string
		in   Limits
		want Limits
	}{
		{name: "zero value takes every default", in: Limits{}, want: defaults},
		{name: "negative values take defaults", in: Limits{
			ReadHeaderTimeout: -1, ReadTimeout: -1, IdleTimeout: -1, MaxHeaderBytes: -1,
			MaxBodyBytes: -1, MaxConcurrentStreams: -1, ShutdownTimeout: -1,
		}, want: defaults},
		{name: "set values are kept", in: custom, want: custom},
		{name: "partly set", in: Limits{MaxBodyBytes: 4 << 10, ShutdownTimeout: time.Second}, want: func() Limits {
			l := defaults
			l.MaxBodyBytes, l.ShutdownTimeout = 4<<10, time.Second
			return l
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.in.withDefaults(); got != tt.want {
				t.Errorf("withDefaults(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func mustNew(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewAppliesLimits(t *testing.T) {
	t.Parallel()
	s, err := New(WithLimits(Limits{MaxHeaderBytes: 4 << 10, MaxConcurrentStreams: 3}))
	if err != nil {
		t.Fatal(err)
	}
	hs := s.httpServer()
	if hs.MaxHeaderBytes != 4<<10 {
		t.Errorf("MaxHeaderBytes = %d, want %d", hs.MaxHeaderBytes, 4<<10)
	}
	if hs.HTTP2 == nil || hs.HTTP2.MaxConcurrentStreams != 3 {
		t.Errorf("HTTP2 = %+v, want MaxConcurrentStreams 3", hs.HTTP2)
	}
	if hs.ReadHeaderTimeout != 5*time.Second || hs.ReadTimeout != 30*time.Second || hs.IdleTimeout != 120*time.Second {
		t.Errorf("timeouts = %v/%v/%v, want the defaults 5s/30s/120s", hs.ReadHeaderTimeout, hs.ReadTimeout, hs.IdleTimeout)
	}
	// No write timeout by default: it would cut off server streams.
	if hs.WriteTimeout != 0 {
		t.Errorf("WriteTimeout = %v, want none by default", hs.WriteTimeout)
	}
	if got := mustNew(t, WithLimits(Limits{WriteTimeout: time.Minute})).httpServer().WriteTimeout; got != time.Minute {
		t.Errorf("WriteTimeout = %v, want the configured 1m", got)
	}
	if !hs.Protocols.UnencryptedHTTP2() || !hs.Protocols.HTTP1() {
		t.Errorf("plaintext server protocols = %v, want HTTP/1 and h2c", hs.Protocols)
	}

	tlsServer, err := New(WithTLS("cert.pem", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if p := tlsServer.httpServer().Protocols; p.UnencryptedHTTP2() || !p.HTTP2() || !p.HTTP1() {
		t.Errorf("TLS server protocols = %v, want HTTP/1 and HTTP/2 without h2c", p)
	}
}
