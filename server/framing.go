package server

// HTTP/1.x message framing: the listener refuses every request whose length
// a front proxy could read differently from this server (request smuggling).
//
// net/http resolves an ambiguous message itself and keeps the connection:
// with both Content-Length and Transfer-Encoding: chunked it drops
// Content-Length and frames by chunks; it folds obsolete line folding into
// the previous field; it takes "CHUNKED", "chunked " and "<TAB>chunked" for
// chunked; it merges repeated equal Content-Length fields; it ignores
// Transfer-Encoding in an HTTP/1.0 request and frames by Content-Length; it
// takes a bare LF for a line end. By the time a handler runs that
// information is gone, so the check lives below net/http: every HTTP/1.x
// connection is wrapped by a framingConn whose inspector reads the request
// bytes as the server reads them, one small state machine per connection
// that follows Content-Length and chunked bodies from one request head to
// the next on keep-alive and pipelined connections. It copies nothing and
// allocates nothing (BenchmarkInspector).
//
// A request is refused with 400 and "Connection: close", and the connection
// closed, before any handler runs, when its head has (RFC 9112 §2.2, §5.2,
// §6.1, §6.3; where the RFC allows a choice, the strict one):
//   - both Content-Length and Transfer-Encoding, in any order;
//   - Transfer-Encoding in an HTTP/1.0 request;
//   - Transfer-Encoding other than exactly "chunked" (lowercase, optional
//     leading spaces, nothing after it): no list, no other coding, no tab,
//     no trailing space, no upper case, not repeated. The RFC lets OWS
//     surround a value and makes codings case-insensitive, but those are
//     exactly the forms front proxies have been shown to read differently;
//   - Content-Length twice (even with equal values) or not plain digits
//     (no sign, list, tab or trailing space);
//   - Content-Length or Transfer-Encoding spelt with "_" for "-";
//   - obsolete line folding (a line starting with SP or HTAB);
//   - a bare CR or LF, a control character in a field, a space before the
//     colon, a name that is not a token, or a request line that is not
//     "method SP target SP HTTP/1.0|1.1" (a leading empty line included).
//
// Chunked bodies are held to the same standard: hex sizes of at most 16
// digits followed by CRLF or an extension (no whitespace), CRLF after each
// chunk's data, trailer lines without folding or framing fields. A body
// that breaks them is found while its handler reads it: the read fails and
// the connection closes, as net/http does for the body errors it detects.
//
// The 400 is written by the inspector itself, only while no response is in
// flight (the server's ConnState hook tells it: the connection is new or
// idle). A violation in a request pipelined behind one still being served
// is held back until that response is finished. Then the connection is
// half-closed and drained briefly, so the client reads the 400 instead of a
// reset.
//
// Inspection stops on an h2c prior-knowledge preface (HTTP/2 frames every
// message itself) and when a handler hijacks the connection (the bytes then
// belong to another protocol). Under TLS the listener completes the
// handshake itself, so that connections that negotiated h2 reach net/http as
// *tls.Conn (which it needs to serve HTTP/2) and HTTP/1.1 connections are
// inspected like plaintext ones, keeping Request.TLS.
//
// Limits: only Serve inspects; Handler() served by another http.Server gets
// net/http's framing rules alone. After a hijack nothing is inspected; bytes
// a client sends before the hijack (before its 101, against the protocol)
// are read as HTTP/1 and may get the connection refused. The rules are
// stricter than the RFC's where it lets a recipient choose: a client that
// sends "Chunked", a tab before a framing value or a bare LF is refused,
// which no browser, curl or Go client does.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP/2 limits that net/http leaves open or large; Serve sets them
// explicitly. What Go's HTTP/2 server already bounds, with the limits above:
//   - rapid reset (CVE-2023-44487): at most MaxConcurrentStreams handlers
//     run per connection and 4× as many wait; past that the connection gets
//     GOAWAY ENHANCE_YOUR_CALM. A reset stream's handler counts until it
//     returns;
//   - CONTINUATION floods (CVE-2023-45288): a header block is cut off at
//     MaxHeaderBytes (+320 bytes of HTTP/2 overhead), and any CONTINUATION
//     past that closes the connection without decoding it;
//   - HPACK: strings are bounded by the same header list size, the dynamic
//     table by h2HeaderTableSize;
//   - control-frame floods (PING, SETTINGS, RST_STREAM; CVE-2019-9512,
//     -9514, -9515): over 10000 queued control frames close the connection;
//   - streams over MaxConcurrentStreams are refused; ReadTimeout and
//     WriteTimeout apply per stream, IdleTimeout per connection.
const (
	// h2MaxReadFrameSize is the largest frame a client may send: the
	// protocol's default, instead of Go's 1 MiB, since each connection
	// keeps a read buffer as large as the largest frame it received.
	h2MaxReadFrameSize = 16 << 10
	// h2MaxReceiveBufferPerConnection and h2MaxReceiveBufferPerStream are
	// the flow-control windows: what a client can make one connection, and
	// one stream, buffer (Go's defaults, stated).
	h2MaxReceiveBufferPerConnection = 1 << 20
	h2MaxReceiveBufferPerStream     = 1 << 20
	// h2HeaderTableSize bounds the HPACK dynamic tables (Go's default,
	// stated).
	h2HeaderTableSize = 4 << 10
	// h2WriteByteTimeout closes a connection on which nothing could be
	// written for this long: a client that stops reading does not hold its
	// streams' handlers forever. Go's default: none.
	h2WriteByteTimeout = 30 * time.Second
	// h2SendPingTimeout and h2PingTimeout: after this long without a frame
	// from the client, the server pings it and closes the connection if no
	// answer comes. Go's default: no pings.
	h2SendPingTimeout = 30 * time.Second
	h2PingTimeout     = 15 * time.Second
)

const (
	// refuseDrainTimeout and refuseDrainBytes bound how long, and how much,
	// a refused connection is read after its 400, so that the client gets
	// the answer rather than a reset.
	refuseDrainTimeout = 500 * time.Millisecond
	refuseDrainBytes   = 64 << 10
	// http2Preface is what an h2c prior-knowledge client sends first.
	http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

// errFraming fails a read of a request body whose framing was refused.
var errFraming = errors.New("server: malformed HTTP/1 message framing")

// chunkBreaker ends a refused chunk line, or chunk data, for net/http: a CR
// before the line's last two bytes makes its chunked reader fail ("invalid
// CR in chunked line"), as do two bytes other than CRLF after chunk data.
const chunkBreaker = "\r\r\n"

// Reasons an inspector refuses a request. They go to the log and into the
// 400's body; none repeats anything the client sent.
const (
	reasonRequestLine  = "malformed request line"
	reasonHeaderLine   = "malformed header field"
	reasonObsFold      = "obsolete line folding"
	reasonCLAndTE      = "both Content-Length and Transfer-Encoding"
	reasonTEInHTTP10   = "Transfer-Encoding in an HTTP/1.0 request"
	reasonTEValue      = "Transfer-Encoding other than chunked"
	reasonTERepeated   = "repeated Transfer-Encoding"
	reasonCLValue      = "invalid Content-Length"
	reasonCLRepeated   = "repeated Content-Length"
	reasonUnderscore   = "framing field name with an underscore"
	reasonChunked      = "malformed chunked body"
	reasonTrailerField = "framing field in a trailer"
)

// Inspector states.
const (
	stMethodStart   uint8 = iota // the first byte of a request
	stMethod                     // method token
	stTargetStart                // the first byte of the request target
	stTarget                     // request target
	stVersion                    // "HTTP/1." and the minor version
	stRequestLineCR              // CR after the version
	stRequestLineLF              // LF after it
	stLineStart                  // a field line, or the empty line that ends the head (or trailer)
	stHeadLF                     // LF of that empty line
	stName                       // field name
	stValue                      // field value of any field but the two below
	stCLValue                    // Content-Length value
	stTEValue                    // Transfer-Encoding value
	stValueLF                    // LF after a field value
	stBody                       // Content-Length body
	stChunkSize                  // chunk size, hex
	stChunkExt                   // chunk extension
	stChunkSizeLF                // LF after the chunk size line
	stChunkData                  // chunk data
	stChunkDataCR                // CR after chunk data
	stChunkDataLF                // LF after it
	stPreface                    // perhaps the h2c preface: only at the start of a connection
	stPassthrough                // not HTTP/1 (h2c): no more inspection
)

// Candidate framing fields while a name is read.
const (
	matchCL uint8 = 1 << iota
	matchTE
)

// Framing field of the current line.
const (
	fieldOther uint8 = iota
	fieldCL
	fieldTE
)

const (
	nameContentLength    = "content-length"
	nameTransferEncoding = "transfer-encoding"
	httpVersionPrefix    = "HTTP/1."
	codingChunked        = "chunked"
)

// Byte classes.
const (
	classToken  uint8 = 1 << iota // tchar (RFC 9110 §5.6.2)
	classValue                    // field-vchar, SP or HTAB (obs-text included)
	classTarget                   // a request-target byte: VCHAR or obs-text
	classHex                      // HEXDIG
)

var byteClass = func() (t [256]uint8) {
	for c := 0x21; c < 0x100; c++ {
		if c != 0x7f {
			t[c] |= classValue | classTarget
		}
	}
	t[' '] |= classValue
	t['\t'] |= classValue
	for _, c := range []byte("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t[c] |= classToken
	}
	for _, c := range []byte("0123456789abcdefABCDEF") {
		t[c] |= classHex
	}
	return t
}()

// inspector follows the requests of one HTTP/1.x connection, byte by byte,
// and finds the first one whose framing is malformed or ambiguous. Its
// zero value expects a request; newInspector may start it on the h2c
// preface instead.
type inspector struct {
	state   uint8
	idx     uint8  // position in a fixed string: the version, "chunked", the preface
	match   uint8  // matchCL | matchTE still possible for the current name
	field   uint8  // framing field of the current line
	nameLen uint8  // length of the current name, saturating
	digits  uint8  // digits of the Content-Length or chunk size so far
	http10  bool   // the request line said HTTP/1.0
	under   bool   // the current name has an underscore
	sawCL   bool   // the head has Content-Length
	sawTE   bool   // the head has Transfer-Encoding
	trailer bool   // the field lines are a chunked body's trailer
	cl      uint64 // the Content-Length value
	n       uint64 // chunk size, then body or chunk bytes left
}

func newInspector(h2c bool) inspector {
	if h2c {
		return inspector{state: stPreface}
	}
	return inspector{}
}

// passthrough reports whether the connection turned out not to be HTTP/1.
func (in *inspector) passthrough() bool { return in.state == stPassthrough }

// inBody reports whether the inspector is inside a request body (or its
// trailer): a violation there is found while a handler reads it.
func (in *inspector) inBody() bool {
	return in.trailer || (in.state >= stBody && in.state <= stChunkDataLF)
}

// feed inspects p, the next bytes the client sent. It returns how many of
// them may reach the server, all of them unless reason says why the
// request they belong to is refused: then n is the offset of the byte that
// broke the rules, and the bytes before it never complete that request's
// head (or body) for the server.
func (in *inspector) feed(p []byte) (n int, reason string) {
	i := 0
	for i < len(p) {
		b := p[i]
		switch in.state {
		case stPassthrough:
			return len(p), ""

		case stBody, stChunkData:
			k := uint64(len(p) - i)
			if k > in.n {
				k = in.n
			}
			i += int(k)
			in.n -= k
			if in.n == 0 {
				if in.state == stBody {
					in.state = stMethodStart
				} else {
					in.state = stChunkDataCR
				}
			}
			continue

		case stValue:
			for i < len(p) && byteClass[p[i]]&classValue != 0 {
				i++
			}
			if i == len(p) {
				return len(p), ""
			}
			if p[i] != '\r' {
				return i, reasonHeaderLine
			}
			in.state = stValueLF

		case stPreface:
			if b == http2Preface[in.idx] {
				in.idx++
				if int(in.idx) == len(http2Preface) {
					in.state = stPassthrough
				}
				break
			}
			// Not the preface: inspect what was taken for it as HTTP/1,
			// then this byte.
			seen := in.idx
			in.state, in.idx = stMethodStart, 0
			if _, reason := in.feed([]byte(http2Preface[:seen])); reason != "" {
				return i, reason
			}
			continue

		case stMethodStart:
			if byteClass[b]&classToken == 0 {
				return i, reasonRequestLine
			}
			in.state = stMethod
		case stMethod:
			switch {
			case byteClass[b]&classToken != 0:
			case b == ' ':
				in.state = stTargetStart
			default:
				return i, reasonRequestLine
			}
		case stTargetStart:
			if byteClass[b]&classTarget == 0 {
				return i, reasonRequestLine
			}
			in.state = stTarget
		case stTarget:
			for i < len(p) && byteClass[p[i]]&classTarget != 0 {
				i++
			}
			if i == len(p) {
				return len(p), ""
			}
			if p[i] != ' ' {
				return i, reasonRequestLine
			}
			in.state, in.idx = stVersion, 0
		case stVersion:
			switch {
			case int(in.idx) < len(httpVersionPrefix):
				if b != httpVersionPrefix[in.idx] {
					return i, reasonRequestLine
				}
				in.idx++
			case b == '0' || b == '1':
				in.http10 = b == '0'
				in.state = stRequestLineCR
			default:
				return i, reasonRequestLine
			}
		case stRequestLineCR:
			if b != '\r' {
				return i, reasonRequestLine
			}
			in.state = stRequestLineLF
		case stRequestLineLF:
			if b != '\n' {
				return i, reasonRequestLine
			}
			in.state = stLineStart

		case stLineStart:
			switch {
			case b == '\r':
				in.state = stHeadLF
			case byteClass[b]&classToken != 0:
				in.state, in.match, in.nameLen, in.under = stName, matchCL|matchTE, 0, false
				continue // the name's first byte
			case b == ' ' || b == '\t':
				return i, reasonObsFold
			default:
				return i, reasonHeaderLine
			}
		case stName:
			if in.match == 0 {
				// Not a framing field: skip the rest of the name.
				for i < len(p) && byteClass[p[i]]&classToken != 0 {
					i++
				}
				if i == len(p) {
					return len(p), ""
				}
				b = p[i]
			} else if byteClass[b]&classToken != 0 {
				in.matchName(b)
				break
			}
			if b != ':' {
				return i, reasonHeaderLine
			}
			if reason := in.startValue(); reason != "" {
				return i, reason
			}
		case stCLValue:
			switch {
			case b == ' ' && in.digits == 0:
			case b >= '0' && b <= '9':
				in.digits++
				if in.digits > 18 {
					return i, reasonCLValue
				}
				in.cl = in.cl*10 + uint64(b-'0')
			case b == '\r' && in.digits > 0:
				in.state = stValueLF
			default:
				return i, reasonCLValue
			}
		case stTEValue:
			switch {
			case b == ' ' && in.idx == 0:
			case int(in.idx) < len(codingChunked) && b == codingChunked[in.idx]:
				in.idx++
			case int(in.idx) == len(codingChunked) && b == '\r':
				in.state = stValueLF
			default:
				return i, reasonTEValue
			}
		case stValueLF:
			if b != '\n' {
				return i, reasonHeaderLine
			}
			in.state = stLineStart
		case stHeadLF:
			if b != '\n' {
				return i, reasonHeaderLine
			}
			if reason := in.endHead(); reason != "" {
				return i, reason
			}

		case stChunkSize:
			switch {
			case byteClass[b]&classHex != 0:
				in.digits++
				if in.digits > 16 {
					return i, reasonChunked
				}
				in.n = in.n<<4 | uint64(hexValue(b))
			case b == ';' && in.digits > 0:
				in.state = stChunkExt
			case b == '\r' && in.digits > 0:
				in.state = stChunkSizeLF
			default:
				return i, reasonChunked
			}
		case stChunkExt:
			for i < len(p) && byteClass[p[i]]&classValue != 0 {
				i++
			}
			if i == len(p) {
				return len(p), ""
			}
			if p[i] != '\r' {
				return i, reasonChunked
			}
			in.state = stChunkSizeLF
		case stChunkSizeLF:
			if b != '\n' {
				return i, reasonChunked
			}
			in.digits = 0
			if in.n == 0 {
				in.state, in.trailer = stLineStart, true
			} else {
				in.state = stChunkData
			}
		case stChunkDataCR:
			if b != '\r' {
				return i, reasonChunked
			}
			in.state = stChunkDataLF
		case stChunkDataLF:
			if b != '\n' {
				return i, reasonChunked
			}
			in.state, in.n, in.digits = stChunkSize, 0, 0
		}
		i++
	}
	return len(p), ""
}

// matchName takes the next byte of a field name and narrows the framing
// fields it may still be. "_" stands in for "-", to be refused at the colon.
func (in *inspector) matchName(b byte) {
	if in.match != 0 {
		c := b | 0x20 // lower case for letters; the other bytes never match
		if b == '_' {
			c, in.under = '-', true
		}
		if int(in.nameLen) >= len(nameContentLength) || nameContentLength[in.nameLen] != c {
			in.match &^= matchCL
		}
		if int(in.nameLen) >= len(nameTransferEncoding) || nameTransferEncoding[in.nameLen] != c {
			in.match &^= matchTE
		}
	}
	if in.nameLen < 255 {
		in.nameLen++
	}
}

// startValue is called at a name's colon.
func (in *inspector) startValue() string {
	in.field = fieldOther
	switch {
	case in.match&matchCL != 0 && int(in.nameLen) == len(nameContentLength):
		in.field = fieldCL
	case in.match&matchTE != 0 && int(in.nameLen) == len(nameTransferEncoding):
		in.field = fieldTE
	}
	switch {
	case in.field == fieldOther:
		in.state = stValue
		return ""
	case in.under:
		return reasonUnderscore
	case in.trailer:
		return reasonTrailerField
	case in.field == fieldCL:
		if in.sawCL {
			return reasonCLRepeated
		}
		in.sawCL, in.cl, in.digits, in.state = true, 0, 0, stCLValue
	default:
		if in.sawTE {
			return reasonTERepeated
		}
		in.sawTE, in.idx, in.state = true, 0, stTEValue
	}
	return ""
}

// endHead is called at the end of a head or trailer and picks how the
// message's body is framed.
func (in *inspector) endHead() string {
	if in.trailer {
		in.trailer, in.state = false, stMethodStart
		return ""
	}
	sawCL, sawTE, http10, cl := in.sawCL, in.sawTE, in.http10, in.cl
	in.sawCL, in.sawTE, in.http10, in.cl = false, false, false, 0
	switch {
	case sawCL && sawTE:
		return reasonCLAndTE
	case sawTE && http10:
		return reasonTEInHTTP10
	case sawTE:
		in.state, in.n, in.digits = stChunkSize, 0, 0
	case cl > 0:
		in.state, in.n = stBody, cl
	default:
		in.state = stMethodStart
	}
	return ""
}

func hexValue(b byte) byte {
	switch {
	case b <= '9':
		return b - '0'
	case b >= 'a':
		return b - 'a' + 10
	default:
		return b - 'A' + 10
	}
}

// framing is what the inspected connections of one server share.
type framing struct {
	logger *slog.Logger
	h2c    bool // plaintext HTTP/2 is served: a connection may start with its preface
}

// framingConn is an HTTP/1.x connection whose requests an inspector reads
// as the server reads them.
type framingConn struct {
	net.Conn
	f *framing
	// state is the http.ConnState the server last reported: a 400 is
	// written only while no response is in flight.
	state atomic.Int32

	// Reads are never concurrent: net/http's connection goroutine and its
	// background read take turns. Those below are theirs.
	insp   inspector
	reason string // why the connection's next request is refused
	inBody bool   // the refused bytes are in the body of a request being served
	inject string // what the server reads instead of a refused chunk line
	drain  []byte // buffer for discarded bytes
	once   sync.Once
}

func newFramingConn(c net.Conn, f *framing) *framingConn {
	return &framingConn{Conn: c, f: f, insp: newInspector(f.h2c)}
}

func (c *framingConn) inspected() *framingConn { return c }

// Read reads what the client sent and hands the server only what the
// inspector lets through.
func (c *framingConn) Read(p []byte) (int, error) {
	if c.reason != "" {
		return c.refuse(p)
	}
	n, err := c.Conn.Read(p)
	if n == 0 || c.insp.passthrough() || http.ConnState(c.state.Load()) == http.StateHijacked {
		return n, err
	}
	k, reason := c.insp.feed(p[:n])
	if reason == "" {
		return n, err
	}
	c.reason, c.inBody = reason, c.insp.inBody()
	if c.inBody && !c.insp.trailer {
		c.inject = chunkBreaker
	}
	if k > 0 {
		return k, nil
	}
	return c.refuse(p)
}

// refuse answers a read that reached refused bytes.
func (c *framingConn) refuse(p []byte) (int, error) {
	switch http.ConnState(c.state.Load()) {
	case http.StateNew, http.StateIdle:
		// The server is reading the next request and writes nothing: the
		// 400 is ours to write. io.EOF keeps the server from answering too.
		c.once.Do(c.writeRefusal)
		return 0, io.EOF
	case http.StateActive:
		if c.inBody {
			// The handler reads the body. In a chunk line or after chunk
			// data, net/http's chunked reader gets bytes it refuses too, so
			// the handler sees the error net/http gives for a malformed
			// chunk (a failed connection read would cancel the request's
			// context instead). In a trailer, or after those bytes, the read
			// fails. Either way the server closes the connection after the
			// answer.
			if c.inject != "" {
				n := copy(p, c.inject)
				c.inject = c.inject[n:]
				return n, nil
			}
			return 0, errFraming
		}
		// The server's background read, while the previous request's
		// handler runs: it may not end the connection under that response.
		// Hold it until the server cancels it (a past read deadline) or
		// the client goes; what the client sends meanwhile is dropped.
		return c.discard()
	default:
		return 0, errFraming
	}
}

// discard reads and drops bytes until a read fails, and returns that error.
func (c *framingConn) discard() (int, error) {
	if c.drain == nil {
		c.drain = make([]byte, 512)
	}
	for {
		if _, err := c.Conn.Read(c.drain); err != nil {
			return 0, err
		}
	}
}

// writeRefusal logs the refusal, writes the 400, half-closes the
// connection and drains it for a moment, so the client reads the answer
// instead of a reset. The server then closes it.
func (c *framingConn) writeRefusal() {
	c.f.logger.LogAttrs(context.Background(), slog.LevelInfo, "refused an HTTP/1 request: ambiguous or malformed framing",
		slog.String("reason", c.reason), slog.String("remote_addr", c.RemoteAddr().String()))
	body := "400 Bad Request: " + c.reason + "\n"
	answer := "HTTP/1.1 400 Bad Request\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"X-Content-Type-Options: nosniff\r\n" +
		"Cache-Control: no-store\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	deadline := time.Now().Add(refuseDrainTimeout)
	_ = c.Conn.SetDeadline(deadline)
	if _, err := io.WriteString(c.Conn, answer); err != nil {
		return
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	buf := make([]byte, 4<<10)
	for drained := 0; drained < refuseDrainBytes; {
		n, err := c.Conn.Read(buf)
		drained += n
		if err != nil {
			return
		}
	}
}

// CloseWrite half-closes the connection when the underlying one can, as
// net/http does before closing a connection it refused a request on.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// tlsFramingConn is an inspected HTTP/1.1 connection over TLS. net/http
// takes Request.TLS from its ConnectionState.
type tlsFramingConn struct {
	*framingConn
	tls *tls.Conn
}

func (c *tlsFramingConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// framingConnState is the server's ConnState hook: it tells inspected
// connections whether a response may be in flight, and when a handler
// took the connection over.
func framingConnState(c net.Conn, state http.ConnState) {
	if fc, ok := c.(interface{ inspected() *framingConn }); ok {
		fc.inspected().state.Store(int32(state))
	}
}

// framingListener inspects every connection it accepts.
type framingListener struct {
	net.Listener
	f *framing
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFramingConn(c, l.f), nil
}

// tlsListener accepts TLS connections and completes their handshakes
// itself, each in its own goroutine so that no client delays another's
// accept. A connection that negotiated h2 is returned as the *tls.Conn
// net/http needs to serve HTTP/2; any other is inspected.
type tlsListener struct {
	inner   net.Listener
	config  *tls.Config
	timeout time.Duration // for the handshake; 0: none
	f       *framing

	conns  chan net.Conn
	errs   chan error    // temporary accept errors, one at a time
	failed chan struct{} // closed when the inner listener failed for good
	err    error         // why, set before failed closes
	done   chan struct{} // closed by Close

	closeOnce sync.Once
	closeErr  error
	mu        sync.Mutex
	pending   map[net.Conn]struct{} // handshakes under way
}

func newTLSListener(inner net.Listener, config *tls.Config, timeout time.Duration, f *framing) *tlsListener {
	l := &tlsListener{
		inner:   inner,
		config:  config,
		timeout: timeout,
		f:       f,
		conns:   make(chan net.Conn),
		errs:    make(chan error),
		failed:  make(chan struct{}),
		done:    make(chan struct{}),
		pending: make(map[net.Conn]struct{}),
	}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err == nil {
			go l.handshake(c)
			continue
		}
		if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
			// The server backs off before it accepts again.
			select {
			case l.errs <- err:
				continue
			case <-l.done:
				return
			}
		}
		l.err = err
		close(l.failed)
		return
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	l.mu.Lock()
	select {
	case <-l.done:
		l.mu.Unlock()
		_ = raw.Close()
		return
	default:
	}
	l.pending[raw] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pending, raw)
		l.mu.Unlock()
	}()

	if l.timeout > 0 {
		_ = raw.SetDeadline(time.Now().Add(l.timeout))
	}
	tc := tls.Server(raw, l.config)
	if err := tc.Handshake(); err != nil {
		// As net/http does: a client speaking plain HTTP gets told.
		if re, ok := errors.AsType[tls.RecordHeaderError](err); ok && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		l.f.logger.LogAttrs(context.Background(), slog.LevelDebug, "TLS handshake failed",
			slog.String("remote_addr", raw.RemoteAddr().String()), slog.Any("error", err))
		_ = raw.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	var c net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		c = &tlsFramingConn{framingConn: newFramingConn(tc, l.f), tls: tc}
	}
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.failed:
		return nil, l.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the inner listener and every connection still in its
// handshake.
func (l *tlsListener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		close(l.done)
		for c := range l.pending {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.closeErr = l.inner.Close()
	})
	return l.closeErr
}

func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }

// listener wraps ln so that every HTTP/1.x request is inspected before
// srv reads it, and, with TLS, terminates TLS.
func (s *Server) listener(ln net.Listener, srv *http.Server) (net.Listener, error) {
	f := &framing{logger: s.logger}
	if s.certFile == "" {
		f.h2c = srv.Protocols != nil && srv.Protocols.UnencryptedHTTP2()
		return &framingListener{Listener: ln, f: f}, nil
	}
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, err
	}
	config := srv.TLSConfig.Clone()
	config.Certificates = []tls.Certificate{cert}
	config.NextProtos = []string{"h2", "http/1.1"}
	// As net/http bounds its own handshakes: the shortest of the read and
	// write timeouts.
	var timeout time.Duration
	for _, d := range []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout} {
		if d > 0 && (timeout == 0 || d < timeout) {
			timeout = d
		}
	}
	return newTLSListener(ln, config, timeout, f), nil
}
