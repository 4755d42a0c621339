package clients

import (
	"context"
	"net"
	"sync"
	"time"
)

// coalesceDelay is how long request headers wait for the body that follows
// them before they are sent alone: a unary call's body follows within
// microseconds; only a stream whose first message is not ready waits, once.
const coalesceDelay = time.Millisecond

// maxHeldCap bounds the buffer a connection keeps between calls.
const maxHeldCap = 16 << 10

// HTTP/2 frame types and flags that coalescingConn reads (RFC 9113, 4.1
// and 6.2).
const (
	frameHeaderLen    = 9
	frameHeaders      = 0x1
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagEndHeaders    = 0x4
)

// coalescingConn is a connection of the HTTP/2 transport that sends a
// request's headers together with the body that follows them. Go's HTTP/2
// client flushes a request's HEADERS, then its DATA: two writes (two system
// calls, and two wake-ups of the backend) for every unary gRPC call. A
// write that is whole frames ending with the headers of a stream whose body
// is still to come (HEADERS without END_STREAM, the last frame with
// END_HEADERS) is held, and goes out with the next write in one write, or
// alone after coalesceDelay. Writes keep their order. Anything else, such
// as TLS records (never whole frames), is written as it comes.
type coalescingConn struct {
	net.Conn

	mu    sync.Mutex
	held  []byte
	timer *time.Timer
	err   error // of a write the timer made, returned by the next Write
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.held) > 0 {
		c.timer.Stop()
		// One write of both: copying p costs less than a system call.
		c.held = append(c.held, p...)
		_, err := c.Conn.Write(c.held)
		c.held = c.held[:0]
		if cap(c.held) > maxHeldCap {
			c.held = nil // a large body's buffer is not kept for the connection's life
		}
		if err != nil {
			c.err = err
			return 0, err
		}
		return len(p), nil
	}
	if !headersBeforeBody(p) {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, p...)
	if c.timer == nil {
		c.timer = time.AfterFunc(coalesceDelay, c.flushHeld)
	} else {
		c.timer.Reset(coalesceDelay)
	}
	return len(p), nil
}

// coalescing returns dial with its connections wrapped in coalescingConn.
func coalescing(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &coalescingConn{Conn: conn}, nil
	}
}

// flushHeld sends what is held, when no write came to take it along.
func (c *coalescingConn) flushHeld() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) == 0 || c.err != nil {
		return
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	if err != nil {
		c.err = err
	}
}

func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.held = nil
	c.mu.Unlock()
	return c.Conn.Close()
}

// headersBeforeBody reports whether p is whole HTTP/2 frames ending with a
// request's complete headers, and its HEADERS frame leaves the stream open
// for a body.
func headersBeforeBody(p []byte) bool {
	var typ, flags byte
	endStream := true
	for len(p) > 0 {
		if len(p) < frameHeaderLen {
			return false
		}
		n := int(p[0])<<16 | int(p[1])<<8 | int(p[2])
		if len(p) < frameHeaderLen+n {
			return false
		}
		typ, flags = p[3], p[4]
		if typ == frameHeaders {
			endStream = flags&flagEndStream != 0
		}
		p = p[frameHeaderLen+n:]
	}
	return (typ == frameHeaders || typ == frameContinuation) && flags&flagEndHeaders != 0 && !endStream
}
