package clients

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingConn records each write it is given, or fails them with err.
type recordingConn struct {
	net.Conn // nil: only Write and Close are called
	mu       sync.Mutex
	writes   [][]byte
	err      error
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordingConn) Close() error { return nil }

func (c *recordingConn) recorded() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// frame returns an HTTP/2 frame of typ with flags and a payload of n bytes.
func frame(typ, flags byte, n int) []byte {
	f := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, 0, 0, 0, 1}
	return append(f, bytes.Repeat([]byte{'x'}, n)...)
}

const frameData, frameSettings = 0x0, 0x4

func TestCoalescingConn(t *testing.T) {
	t.Parallel()
	headers := frame(frameHeaders, flagEndHeaders, 40)
	data := frame(frameData, flagEndStream, 8)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name   string
		writes [][]byte
		want   [][]byte // what the connection is given, at once
	}{
		{
			name:   "headers then body go out together",
			writes: [][]byte{headers, data},
			want:   [][]byte{cat(headers, data)},
		},
		{
			name:   "headers in a CONTINUATION wait too",
			writes: [][]byte{cat(frame(frameHeaders, 0, 20), frame(frameContinuation, flagEndHeaders, 10)), data},
			want:   [][]byte{cat(frame(frameHeaders, 0, 20), frame(frameContinuation, flagEndHeaders, 10), data)},
		},
		{
			name:   "headers after other frames wait with them",
			writes: [][]byte{cat(frame(frameSettings, 1, 0), headers), data},
			want:   [][]byte{cat(frame(frameSettings, 1, 0), headers, data)},
		},
		{
			name:   "headers that end the stream go out at once",
			writes: [][]byte{frame(frameHeaders, flagEndHeaders|flagEndStream, 40)},
			want:   [][]byte{frame(frameHeaders, flagEndHeaders|flagEndStream, 40)},
		},
		{
			name:   "headers not yet ended go out at once",
			writes: [][]byte{frame(frameHeaders, 0, 40)},
			want:   [][]byte{frame(frameHeaders, 0, 40)},
		},
		{
			name:   "a part of a frame goes out at once",
			writes: [][]byte{headers[:30], headers[30:]},
			want:   [][]byte{headers[:30], headers[30:]},
		},
		{
			name:   "the connection preface goes out at once",
			writes: [][]byte{cat([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(frameSettings, 0, 12))},
			want:   [][]byte{cat([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(frameSettings, 0, 12))},
		},
		{
			name:   "a TLS record goes out at once",
			writes: [][]byte{cat([]byte{0x17, 0x03, 0x03, 0x00, 0x40}, bytes.Repeat([]byte{1}, 64))},
			want:   [][]byte{cat([]byte{0x17, 0x03, 0x03, 0x00, 0x40}, bytes.Repeat([]byte{1}, 64))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := &recordingConn{}
			c := &coalescingConn{Conn: raw}
			for _, w := range tc.writes {
				if n, err := c.Write(w); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(w))
				}
			}
			got := raw.recorded()
			if len(got) != len(tc.want) {
				t.Fatalf("%d writes, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("write %d is %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestCoalescingConnSendsHeldHeaders: headers whose body does not follow
// go out alone after coalesceDelay, and a later write after them.
func TestCoalescingConnSendsHeldHeaders(t *testing.T) {
	t.Parallel()
	raw := &recordingConn{}
	c := &coalescingConn{Conn: raw}
	headers := frame(frameHeaders, flagEndHeaders, 40)
	if _, err := c.Write(headers); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(raw.recorded()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the held headers were never sent")
		}
		time.Sleep(coalesceDelay)
	}
	data := frame(frameData, flagEndStream, 8)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if got := raw.recorded(); len(got) != 2 || !bytes.Equal(got[0], headers) || !bytes.Equal(got[1], data) {
		t.Errorf("writes %q, want the headers, then the body", got)
	}
}

// TestCoalescingConnErrors: a failed write of held headers, made by the
// timer, is returned by the next Write; one made with a body, at once.
func TestCoalescingConnErrors(t *testing.T) {
	t.Parallel()
	broken := errors.New("connection reset")
	headers := frame(frameHeaders, flagEndHeaders, 40)
	data := frame(frameData, flagEndStream, 8)

	raw := &recordingConn{err: broken}
	c := &coalescingConn{Conn: raw}
	if _, err := c.Write(headers); err != nil {
		t.Fatalf("holding the headers failed: %v", err)
	}
	if _, err := c.Write(data); !errors.Is(err, broken) {
		t.Fatalf("Write with the held headers = %v, want %v", err, broken)
	}
	if _, err := c.Write(data); !errors.Is(err, broken) {
		t.Fatalf("a later Write = %v, want %v", err, broken)
	}

	raw = &recordingConn{err: broken}
	c = &coalescingConn{Conn: raw}
	if _, err := c.Write(headers); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		failed := c.err != nil
		c.mu.Unlock()
		if failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the timer never sent the held headers")
		}
		time.Sleep(coalesceDelay)
	}
	if _, err := c.Write(data); !errors.Is(err, broken) {
		t.Fatalf("Write after the timer's failed write = %v, want %v", err, broken)
	}
}
