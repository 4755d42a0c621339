package telemetry

import (
	"context"
	"sync"
	"time"
)

// Call is what the access log writes about one browser call, filled in by
// the layers it passes through.
type Call struct {
	mu       sync.Mutex
	session  string
	backends []BackendCall
	taken    bool // a browser-facing method's interceptor logs the call
}

// BackendCall is one backend call made for a browser call.
type BackendCall struct {
	Backend  string
	Method   string // the backend procedure
	Code     string // "ok" or the Connect code
	Duration time.Duration
}

type callKey struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// FromContext returns the Call of ctx, or nil outside a browser call.
func FromContext(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// SetSession records the state of the caller's session.
func (c *Call) SetSession(state string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.session = state
	c.mu.Unlock()
}

// AddBackend records one backend call.
func (c *Call) AddBackend(b BackendCall) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.backends = append(c.backends, b)
	c.mu.Unlock()
}

// Take records that a browser-facing method's interceptor writes the
// call's access-log line (or chose to write none), so that the HTTP layer
// around it writes no second one.
func (c *Call) Take() {
	c.mu.Lock()
	c.taken = true
	c.mu.Unlock()
}

// Taken reports whether Take was called.
func (c *Call) Taken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.taken
}

// Session returns the recorded session state.
func (c *Call) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Backends returns the recorded backend calls, in the order they ended.
func (c *Call) Backends() []BackendCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]BackendCall(nil), c.backends...)
}
