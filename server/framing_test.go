package server_test

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect/v2/connecthttp"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/server"
)

// echoRoutes serves /echo/: it records every request that reached it and
// answers with what it saw. /echo/slow answers after a moment, /echo/block
// waits until the test ends, even when its request is cancelled;
// /echo/upgrade takes the connection over and echoes it.
type echoRoutes struct {
	mu        sync.Mutex
	paths     []string
	active    int
	maxActive int
	release   chan struct{}
}

func (e *echoRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.paths = append(e.paths, r.URL.Path)
	e.active++
	e.maxActive = max(e.maxActive, e.active)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.active--
		e.mu.Unlock()
	}()
	switch r.URL.Path {
	case "/echo/slow":
		time.Sleep(200 * time.Millisecond)
	case "/echo/block":
		// As a handler waiting on a backend that does not see the
		// cancellation at once.
		<-e.release
	case "/echo/upgrade":
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, "cannot hijack", http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %q tls=%v trailer=%q", r.Method, r.URL.Path, body, r.TLS != nil, r.Trailer.Get("X-Checksum"))
}

// served returns the paths served so far.
func (e *echoRoutes) served() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.paths)
}

// startEcho runs a server with the echo routes.
func startEcho(t *testing.T, opts ...server.Option) (*harness, *echoRoutes) {
	t.Helper()
	e := &echoRoutes{release: make(chan struct{})}
	h := startServer(t, append([]server.Option{server.WithHandler("/echo/", e)}, opts...)...)
	t.Cleanup(func() { close(e.release) }) // before the server drains
	return h, e
}

// rawConn is a client connection that writes bytes as they are.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return newRawConn(t, conn)
}

func newRawConn(t *testing.T, conn net.Conn) *rawConn {
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// response reads one response and its body.
func (c *rawConn) response() (*http.Response, string) {
	c.t.Helper()
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return res, string(body)
}

// wantClosed fails unless the server closed the connection: the next read
// ends (EOF), with nothing more to read.
func (c *rawConn) wantClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c.br)
	switch {
	case len(rest) > 0:
		c.t.Errorf("more after the last response: %q", rest)
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		c.t.Error("the connection is still open")
	case err != nil && !errors.Is(err, syscall.ECONNRESET):
		c.t.Errorf("after the last response: %v", err)
	}
}

// wantOpen fails unless the connection is still open and quiet.
func (c *rawConn) wantOpen() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Errorf("the connection is not open and quiet: %v", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
}

const smuggledRequest = "GET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

// TestFramingRefused sends requests whose framing is ambiguous or
// malformed, each hiding a second request where a front proxy could see
// one. Each gets 400 with Connection: close, before any handler runs, the
// connection closes, and the hidden request is never served.
func TestFramingRefused(t *testing.T) {
	t.Parallel()
	const post = "POST /echo/attack HTTP/1.1\r\nHost: x\r\n"
	tests := []struct {
		name   string
		before string // valid requests sent first, each answered before the attack is sent
		attack string // sent in one write
		ok     int    // answers of valid requests pipelined at the start of attack
		reason string // in the 400's body
		served []string
	}{
		{name: "Content-Length then Transfer-Encoding", attack: post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "both Content-Length and Transfer-Encoding"},
		{name: "Transfer-Encoding then Content-Length", attack: post + "Transfer-Encoding: chunked\r\nContent-Length: 44\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "both Content-Length and Transfer-Encoding"},
		{name: "Transfer-Encoding:<TAB>chunked", attack: post + "Transfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "Transfer-Encoding other than chunked"},
		{name: "Transfer-Encoding:<TAB>chunked beside Content-Length", attack: post + "Content-Length: 5\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "Transfer-Encoding other than chunked"},
		{name: "Transfer-Encoding: chunked, identity", attack: post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "Transfer-Encoding other than chunked"},
		{name: "Transfer-Encoding: xchunked", attack: post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "Transfer-Encoding other than chunked"},
		{name: "Transfer-Encoding: CHUNKED", attack: post + "Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "Transfer-Encoding other than chunked"},
		{name: "Transfer-Encoding with a trailing space", attack: post + "Transfer-Encoding: chunked \r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "Transfer-Encoding other than chunked"},
		{name: "Transfer-Encoding twice", attack: post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "repeated Transfer-Encoding"},
		{name: "Transfer_Encoding", attack: post + "Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "underscore"},
		{name: "Transfer-Encoding in HTTP/1.0", attack: "POST /echo/attack HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n" + smuggledRequest + "\r\n0\r\n\r\n", reason: "HTTP/1.0"},
		{name: "Transfer-Encoding in HTTP/1.0, beside Content-Length", attack: "POST /echo/attack HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "both Content-Length and Transfer-Encoding"},
		{name: "Content-Length twice, equal", attack: post + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + smuggledRequest, reason: "repeated Content-Length"},
		{name: "Content-Length twice, different", attack: post + "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}" + smuggledRequest, reason: "repeated Content-Length"},
		{name: "Content-Length list", attack: post + "Content-Length: 2, 2\r\n\r\n{}" + smuggledRequest, reason: "invalid Content-Length"},
		{name: "obs-fold hiding Transfer-Encoding", attack: post + "X-Foo: bar\r\n Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}" + smuggledRequest, reason: "obsolete line folding"},
		{name: "obs-fold of Content-Length", attack: post + "Content-Length:\r\n 2\r\n\r\n{}" + smuggledRequest, reason: "invalid Content-Length"},
		{name: "obs-fold with a tab", attack: post + "Content-Length: 2\r\nX-Foo: bar\r\n\tbaz\r\n\r\n{}" + smuggledRequest, reason: "obsolete line folding"},
		{name: "bare LF hiding Transfer-Encoding", attack: post + "X: y\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}" + smuggledRequest, reason: "malformed header field"},
		{name: "space before the colon", attack: post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggledRequest, reason: "malformed header field"},
		{
			name:   "pipelined behind a request still being served",
			attack: "POST /echo/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" + post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggledRequest,
			ok:     1, reason: "both Content-Length and Transfer-Encoding", served: []string{"/echo/slow"},
		},
		{
			name:   "on a keep-alive connection after a valid request",
			before: "POST /echo/first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			attack: post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggledRequest,
			reason: "both Content-Length and Transfer-Encoding", served: []string{"/echo/first"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, echo := startEcho(t)
			c := dialRaw(t, h.Addr)
			if tt.before != "" {
				c.send(tt.before)
				if res, body := c.response(); res.StatusCode != http.StatusOK {
					t.Fatalf("valid request before the attack: %d %q", res.StatusCode, body)
				}
			}
			c.send(tt.attack)
			for range tt.ok {
				if res, body := c.response(); res.StatusCode != http.StatusOK || res.Close {
					t.Fatalf("valid request in front of the attack: %d %q (close %v)", res.StatusCode, body, res.Close)
				}
			}
			res, body := c.response()
			if res.StatusCode != http.StatusBadRequest || !res.Close {
				t.Errorf("status %d (close %v), want 400 and Connection: close", res.StatusCode, res.Close)
			}
			if !strings.Contains(body, tt.reason) {
				t.Errorf("body %q, want it to name %q", body, tt.reason)
			}
			c.wantClosed()
			if got := echo.served(); !slices.Equal(got, tt.served) {
				t.Errorf("served %q, want %q", got, tt.served)
			}
			if !strings.Contains(h.Logs.String(), "refused an HTTP/1 request") {
				t.Errorf("the refusal is not logged:\n%s", h.Logs.String())
			}
		})
	}
}

// TestFramingBadChunkedBody: a chunked body that breaks the rules is found
// while its handler reads it; the read fails, the connection closes, and
// the request hidden behind it is never served.
func TestFramingBadChunkedBody(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"whitespace after the chunk size", "2 \r\n{}\r\n0\r\n\r\n"},
		{"chunk data longer than its size", "2\r\n{}}\r\n0\r\n\r\n"},
		{"obs-fold in the trailer", "2\r\n{}\r\n0\r\nX-Checksum: 1\r\n Transfer-Encoding: chunked\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, echo := startEcho(t)
			c := dialRaw(t, h.Addr)
			c.send("POST /echo/body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + tt.body + smuggledRequest)
			if res, body := c.response(); res.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d %q, want the handler's 400", res.StatusCode, body)
			}
			c.wantClosed()
			if got := echo.served(); !slices.Equal(got, []string{"/echo/body"}) {
				t.Errorf("served %q, want only /echo/body", got)
			}
		})
	}
}

// TestFramingAccepted: well-framed requests work as before, one after the
// other and pipelined on one keep-alive connection.
func TestFramingAccepted(t *testing.T) {
	t.Parallel()
	t.Run("keep-alive", func(t *testing.T) {
		t.Parallel()
		h, echo := startEcho(t)
		c := dialRaw(t, h.Addr)
		for _, step := range []struct{ req, want string }{
			{"POST /echo/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", `POST /echo/chunked "{}"`},
			{"POST /echo/length HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", `POST /echo/length "hello"`},
			{"GET /echo/get HTTP/1.1\r\nHost: x\r\n\r\n", `GET /echo/get ""`},
			{"POST /echo/old HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", `POST /echo/old "ok"`},
		} {
			c.send(step.req)
			res, body := c.response()
			if res.StatusCode != http.StatusOK || res.Close || !strings.HasPrefix(body, step.want) {
				t.Fatalf("%d %q (close %v), want 200 %q on an open connection", res.StatusCode, body, res.Close, step.want)
			}
		}
		c.wantOpen()
		if got := echo.served(); len(got) != 4 {
			t.Errorf("served %q", got)
		}
	})
	t.Run("pipelined", func(t *testing.T) {
		t.Parallel()
		h, _ := startEcho(t)
		c := dialRaw(t, h.Addr)
		c.send("GET /echo/1 HTTP/1.1\r\nHost: x\r\n\r\n" +
			"POST /echo/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
			"POST /echo/3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n3;ext=\"a;b\"\r\ndef\r\n0\r\nX-Checksum: 42\r\n\r\n" +
			"POST /echo/4 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		for _, want := range []string{`GET /echo/1 ""`, `POST /echo/2 "abc"`, `POST /echo/3 "def" tls=false trailer="42"`, `POST /echo/4 ""`} {
			res, body := c.response()
			if res.StatusCode != http.StatusOK || !strings.HasPrefix(body, want) {
				t.Fatalf("%d %q, want 200 %q", res.StatusCode, body, want)
			}
		}
		c.wantOpen()
	})
	t.Run("upgraded connection is not inspected", func(t *testing.T) {
		t.Parallel()
		h, _ := startEcho(t)
		c := dialRaw(t, h.Addr)
		c.send("GET /echo/upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		res, err := http.ReadResponse(c.br, nil)
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", res, err)
		}
		// Bytes of the new protocol that an inspector would refuse.
		payload := "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
		c.send(payload)
		got := make([]byte, len(payload))
		if _, err := io.ReadFull(c.br, got); err != nil || string(got) != payload {
			t.Fatalf("echoed %q, %v; want %q", got, err, payload)
		}
	})
}

// TestFramingH2C: HTTP/2 with prior knowledge is not inspected as HTTP/1.
func TestFramingH2C(t *testing.T) {
	t.Parallel()
	h, echo := startEcho(t)
	httpClient, rec := h2cClient(t)
	for _, opts := range [][]connecthttp.Option{nil, {connecthttp.WithGRPC()}} {
		res, err := productClient(httpClient, h.URL(), opts...).ListProducts(t.Context(), &storefrontv1.ListProductsRequest{})
		if err != nil || len(res.GetProducts()) != len(fixedProducts) {
			t.Fatalf("ListProducts over h2c: %v %v", res, err)
		}
		if rec.lastMajor.Load() != 2 {
			t.Fatalf("answered over HTTP/%d", rec.lastMajor.Load())
		}
	}
	res, err := httpClient.Post(h.URL()+"/echo/h2c", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || !strings.HasPrefix(string(body), `POST /echo/h2c "hi"`) {
		t.Errorf("HTTP/%d %q", res.ProtoMajor, body)
	}
	if got := echo.served(); !slices.Equal(got, []string{"/echo/h2c"}) {
		t.Errorf("served %q", got)
	}
}

// TestFramingTLS: HTTP/1.1 over TLS is inspected (and handlers still see
// Request.TLS); HTTP/2 negotiated by ALPN still works.
func TestFramingTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := writeSelfSignedCert(t)
	h, echo := startEcho(t, server.WithTLS(certFile, keyFile))
	dialTLS := func(t *testing.T, protos ...string) *rawConn {
		conn, err := tls.Dial("tcp", h.Addr, &tls.Config{RootCAs: roots, NextProtos: protos, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		return newRawConn(t, conn)
	}

	t.Run("HTTP/1.1: valid requests served with Request.TLS", func(t *testing.T) {
		for _, protos := range [][]string{{"http/1.1"}, nil} {
			c := dialTLS(t, protos...)
			c.send("POST /echo/tls HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
			if res, body := c.response(); res.StatusCode != http.StatusOK || !strings.HasPrefix(body, `POST /echo/tls "{}" tls=true`) {
				t.Fatalf("ALPN %q: %d %q", protos, res.StatusCode, body)
			}
			c.wantOpen()
		}
	})
	t.Run("HTTP/1.1: Content-Length and Transfer-Encoding refused", func(t *testing.T) {
		c := dialTLS(t, "http/1.1")
		c.send("POST /echo/attack HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggledRequest)
		if res, body := c.response(); res.StatusCode != http.StatusBadRequest || !res.Close {
			t.Errorf("%d %q (close %v), want 400 and close", res.StatusCode, body, res.Close)
		}
		c.wantClosed()
	})
	t.Run("HTTP/2 by ALPN", func(t *testing.T) {
		client, rec := newClient(t, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true})
		res, err := client.Post("https://"+h.Addr+"/echo/h2", "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if rec.lastMajor.Load() != 2 || !strings.HasPrefix(string(body), `POST /echo/h2 "hi" tls=true`) {
			t.Errorf("HTTP/%d %q", rec.lastMajor.Load(), body)
		}
	})
	t.Run("plain HTTP to the TLS port", func(t *testing.T) {
		c := dialRaw(t, h.Addr)
		c.send("GET /echo/plain HTTP/1.1\r\nHost: x\r\n\r\n")
		if res, _ := c.response(); res.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", res.StatusCode)
		}
	})
	for _, p := range echo.served() {
		if p == "/echo/attack" || p == "/echo/smuggled" || p == "/echo/plain" {
			t.Errorf("served %s", p)
		}
	}
}

// HTTP/2 frames, written by hand.
const (
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	frameGoAway       = 0x7
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4

	errCodeEnhanceYourCalm = 0xb
	errCodeCancel          = 0x8
)

func appendFrame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	b = append(b, byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, payload...)
}

type h2Frame struct {
	typ, flags byte
	stream     uint32
	payload    []byte
}

func readFrame(r io.Reader) (h2Frame, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return h2Frame{}, err
	}
	f := h2Frame{typ: hdr[3], flags: hdr[4], stream: binary.BigEndian.Uint32(hdr[5:]) &^ (1 << 31)}
	f.payload = make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
	_, err := io.ReadFull(r, f.payload)
	return f, err
}

// hpackInt appends v as an HPACK integer with an n-bit prefix under first.
func hpackInt(b []byte, first byte, n uint, v int) []byte {
	limit := 1<<n - 1
	if v < limit {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(limit))
	for v -= limit; v >= 128; v >>= 7 {
		b = append(b, byte(v%128+128))
	}
	return append(b, byte(v))
}

// hpackLiteral appends a field without indexing, with a new name.
func hpackLiteral(b []byte, name, value string) []byte {
	b = append(hpackInt(append(b, 0), 0, 7, len(name)), name...)
	return append(hpackInt(b, 0, 7, len(value)), value...)
}

// requestBlock is the header block of a GET for path: :method GET,
// :scheme http, :authority x (indexed names) and :path.
func requestBlock(path string) []byte {
	b := []byte{0x82, 0x86}
	b = append(hpackInt(b, 0, 4, 1), 1, 'x')
	b = hpackInt(b, 0, 4, 4)
	return append(hpackInt(b, 0, 7, len(path)), path...)
}

// dialH2C opens an h2c connection with prior knowledge and returns it
// after the server's first SETTINGS, which it returns too.
func dialH2C(t *testing.T, addr string) (net.Conn, map[uint16]uint32) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write(appendFrame([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frameSettings, 0, 0, nil)); err != nil {
		t.Fatal(err)
	}
	f, err := readFrame(conn)
	if err != nil || f.typ != frameSettings || f.flags&flagAck != 0 {
		t.Fatalf("server's first frame: %+v %v", f, err)
	}
	settings := map[uint16]uint32{}
	for p := f.payload; len(p) >= 6; p = p[6:] {
		settings[binary.BigEndian.Uint16(p)] = binary.BigEndian.Uint32(p[2:])
	}
	if _, err := conn.Write(appendFrame(nil, frameSettings, flagAck, 0, nil)); err != nil {
		t.Fatal(err)
	}
	return conn, settings
}

// goAway reads frames until a GOAWAY, and returns its error code; ok is
// false when the connection ended without one.
func goAway(conn net.Conn) (code uint32, ok bool) {
	for {
		f, err := readFrame(conn)
		if err != nil {
			return 0, false
		}
		if f.typ == frameGoAway && len(f.payload) >= 8 {
			return binary.BigEndian.Uint32(f.payload[4:]), true
		}
	}
}

// TestHTTP2Limits: the HTTP/2 limits are stated explicitly, and the
// attacks Go's HTTP/2 server bounds are bounded through this listener too.
func TestHTTP2Limits(t *testing.T) {
	t.Parallel()
	const maxStreams = 4
	t.Run("settings", func(t *testing.T) {
		t.Parallel()
		h, _ := startEcho(t, server.WithLimits(server.Limits{MaxConcurrentStreams: maxStreams, MaxHeaderBytes: 8 << 10}))
		_, settings := dialH2C(t, h.Addr)
		want := map[uint16]uint32{
			0x1: 4 << 10,       // HEADER_TABLE_SIZE
			0x3: maxStreams,    // MAX_CONCURRENT_STREAMS
			0x4: 1 << 20,       // INITIAL_WINDOW_SIZE
			0x5: 16 << 10,      // MAX_FRAME_SIZE
			0x6: 8<<10 + 10*32, // MAX_HEADER_LIST_SIZE: MaxHeaderBytes and HTTP/2's per-field overhead
		}
		for id, v := range want {
			if settings[id] != v {
				t.Errorf("setting %#x = %d, want %d (all: %v)", id, settings[id], v, settings)
			}
		}
	})
	t.Run("CONTINUATION flood", func(t *testing.T) {
		t.Parallel()
		h, echo := startEcho(t, server.WithLimits(server.Limits{MaxHeaderBytes: 8 << 10}))
		conn, _ := dialH2C(t, h.Addr)
		// A HEADERS frame that never ends, then 1 MiB of CONTINUATION.
		go func() {
			w := bufio.NewWriter(conn)
			_, _ = w.Write(appendFrame(nil, frameHeaders, flagEndStream, 1, requestBlock("/echo/flood")))
			pad := strings.Repeat("a", 4000)
			for i := range 256 {
				if _, err := w.Write(appendFrame(nil, frameContinuation, 0, 1, hpackLiteral(nil, fmt.Sprintf("x-flood-%d", i), pad))); err != nil {
					return
				}
			}
			_ = w.Flush()
		}()
		if _, ok := goAway(conn); !ok {
			t.Log("connection closed without GOAWAY")
		}
		if got := echo.served(); len(got) != 0 {
			t.Errorf("served %q", got)
		}
	})
	t.Run("rapid reset", func(t *testing.T) {
		t.Parallel()
		h, echo := startEcho(t, server.WithLimits(server.Limits{MaxConcurrentStreams: maxStreams}))
		conn, _ := dialH2C(t, h.Addr)
		// Streams opened and cancelled at once, faster than their
		// handlers (which block) can finish.
		go func() {
			var b []byte
			for id := uint32(1); id < 2*500; id += 2 {
				b = appendFrame(b, frameHeaders, flagEndStream|flagEndHeaders, id, requestBlock("/echo/block"))
				b = appendFrame(b, frameRSTStream, 0, id, binary.BigEndian.AppendUint32(nil, errCodeCancel))
			}
			_, _ = conn.Write(b)
		}()
		code, ok := goAway(conn)
		if !ok || code != errCodeEnhanceYourCalm {
			t.Errorf("GOAWAY %#x (%v), want ENHANCE_YOUR_CALM", code, ok)
		}
		echo.mu.Lock()
		defer echo.mu.Unlock()
		if echo.maxActive > maxStreams {
			t.Errorf("%d handlers ran at once, more than MaxConcurrentStreams %d", echo.maxActive, maxStreams)
		}
		if len(echo.paths) > 5*maxStreams {
			t.Errorf("%d handlers started", len(echo.paths))
		}
	})
}
