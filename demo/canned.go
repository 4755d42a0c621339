package demo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
)

// Bounds of a canned backend.
const (
	// cannedMaxBody caps request and recorded response bodies: the demo's
	// messages are tiny.
	cannedMaxBody = 1 << 20
	// cannedMaxAnswers caps the answers one canned backend keeps. The
	// bearer token is part of the key, so every new token (another user,
	// a refresh) adds answers; past the cap, requests are still answered,
	// by forwarding, but nothing more is stored.
	cannedMaxAnswers = 4096
	// cannedForwardTimeout bounds one forwarded request when its caller set
	// no deadline.
	cannedForwardTimeout = 10 * time.Second
)

// cannedKeyHeaders are the request headers that can change a backend's
// answer, in canonical form: with the method, the request URI (a Connect GET
// carries its message in the query) and the body bytes they make an answer's
// key. Others (request ids, trace context, timeouts) are ignored. The bearer
// token is in because the demo backends answer per user: alice's order is
// not bob's. It is compared as bytes, never verified: the demo backend
// verified it when the answer was recorded.
var cannedKeyHeaders = []string{
	"Content-Type",
	"Connect-Protocol-Version",
	"Authorization",
	"Content-Encoding",
	"Connect-Content-Encoding",
	"Grpc-Encoding",
	"Accept-Encoding",
	"Connect-Accept-Encoding",
	"Grpc-Accept-Encoding",
}

// hopHeaders are the headers of one connection, never copied from one HTTP
// message to another.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer", "Content-Length", "Date"}

// CannedBackend stands in for one demo backend in load tests, so that what a
// benchmark measures is the gateway's own cost and not the backend's. It
// answers from memory with the bytes the demo backend once answered to the
// same request, without a Connect handler, without decoding the request and
// without checking the token: a plain net/http handler that reads the body,
// looks the answer up and writes status, headers, body and trailers.
//
// Answers are recorded, not written by hand: a request it has no answer for
// (by method, request URI, body bytes and cannedKeyHeaders) is forwarded
// once to the demo backend at upstream, over the same HTTP version, with the
// caller's headers (so the backend checks the gateway's token as usual), and
// the answer is passed back. A successful unary answer (HTTP 200 and, for
// gRPC and gRPC-Web, grpc-status 0) is kept and answers every later identical
// request; errors are passed on and never kept, so a request the backend
// refuses is refused every time, and a backend that is down gets an
// unavailable error in the caller's protocol (Connect, gRPC or gRPC-Web).
// Only unary calls are meant: a streaming answer is passed on, not kept.
//
// It serves HTTP/1.1 and unencrypted HTTP/2 (prior knowledge) on loopback,
// as the demo backends do, since the gateway calls some backends over each.
// Not for production: it trusts every caller.
type CannedBackend struct {
	name     string
	upstream string
	url      string
	logger   *slog.Logger
	server   *http.Server
	served   chan struct{}
	http1    *http.Client // to upstream, for HTTP/1.x callers
	h2c      *http.Client // to upstream, for HTTP/2 callers
	errors   *connecthttp.ErrorWriter
	bufs     sync.Pool // *[]byte: a request's key

	mu        sync.Mutex                               // serializes stores
	answers   atomic.Pointer[map[string]*cannedAnswer] // copied on store, read without a lock
	forwarded atomic.Int64
	full      atomic.Bool // cannedMaxAnswers reached, logged once

	closeOnce sync.Once
	closeErr  error
}

// CannedStats are a canned backend's counters, for a load test to check
// that its measured run was answered from memory.
type CannedStats struct {
	// Answers is how many answers it keeps.
	Answers int `json:"answers"`
	// Forwarded is how many requests it has forwarded to the demo backend
	// so far: each request it had no answer for.
	Forwarded int64 `json:"forwarded"`
}

// StartCanned starts a canned stand-in named name (for the log) for the
// demo backend at upstream (such as backends.Backend.URL) on an ephemeral
// loopback port. The context bounds only startup; stop it with Close. A nil
// logger discards.
func StartCanned(ctx context.Context, name, upstream string, logger *slog.Logger) (*CannedBackend, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	newClient := func(set func(*http.Protocols)) *http.Client {
		var p http.Protocols
		set(&p)
		return &http.Client{
			Transport: &http.Transport{
				Protocols:           &p,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     90 * time.Second,
				// Accept-Encoding is the caller's to send, and the answer
				// is kept as it came, compressed or not.
				DisableCompression: true,
			},
			// A redirect is an answer to pass on, not to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	c := &CannedBackend{
		name:     name,
		upstream: strings.TrimRight(upstream, "/"),
		logger:   logger.With("canned", name),
		served:   make(chan struct{}),
		http1:    newClient(func(p *http.Protocols) { p.SetHTTP1(true) }),
		h2c:      newClient(func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }),
		errors:   connecthttp.NewErrorWriter(),
		bufs:     sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }},
	}
	c.answers.Store(&map[string]*cannedAnswer{})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	c.server = &http.Server{
		Handler:           c,
		Protocols:         &protocols,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.logger.Handler(), slog.LevelWarn),
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen for canned %s: %w", name, err)
	}
	c.url = "http://" + ln.Addr().String()
	go func() {
		defer close(c.served)
		if err := c.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.logger.Error("serve failed", "error", err)
		}
	}()
	return c, nil
}

// URL returns the stand-in's base URL, such as "http://127.0.0.1:40123".
func (c *CannedBackend) URL() string { return c.url }

// Stats returns its counters.
func (c *CannedBackend) Stats() CannedStats {
	return CannedStats{Answers: len(*c.answers.Load()), Forwarded: c.forwarded.Load()}
}

// Close stops it, waiting for requests in flight until ctx ends. Calling it
// more than once is harmless.
func (c *CannedBackend) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		if err := c.server.Shutdown(ctx); err != nil {
			c.closeErr = fmt.Errorf("demo: shut down canned %s: %w", c.name, err)
			_ = c.server.Close() // Shutdown gave up; drop what is left.
		}
		<-c.served
		c.http1.CloseIdleConnections()
		c.h2c.CloseIdleConnections()
	})
	return c.closeErr
}

// ServeHTTP answers from memory, or forwards a request it has no answer for.
func (c *CannedBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(buf)
	key := appendKeyHead((*buf)[:0], r)
	head := len(key)
	key, err := appendBody(key, r.Body, cannedMaxBody)
	*buf = key[:0]
	if err != nil {
		c.writeError(w, r, connect.NewError(connect.CodeResourceExhausted, "canned backend: request body too large or unreadable"))
		return
	}
	// The conversion in the index expression does not allocate.
	if a := (*c.answers.Load())[string(key)]; a != nil {
		a.write(w)
		return
	}
	c.forward(w, r, string(key), bytes.Clone(key[head:]))
}

// appendKeyHead appends to b everything of r but the body that the answer's
// key holds, each part ended by a NUL (which no header or URI contains).
func appendKeyHead(b []byte, r *http.Request) []byte {
	b = append(b, r.Method...)
	b = append(b, 0)
	b = append(b, r.RequestURI...)
	b = append(b, 0)
	for _, name := range cannedKeyHeaders {
		for _, v := range r.Header[name] {
			b = append(b, v...)
			b = append(b, ',')
		}
		b = append(b, 0)
	}
	return b
}

// appendBody appends what body holds to b, refusing more than limit bytes.
func appendBody(b []byte, body io.Reader, limit int) ([]byte, error) {
	start := len(b)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b)-start > limit {
			return b, fmt.Errorf("request body over %d bytes", limit)
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// forward sends a request it has no answer for to the demo backend, passes
// the answer on, and keeps it if it is a success.
func (c *CannedBackend) forward(w http.ResponseWriter, r *http.Request, key string, body []byte) {
	c.forwarded.Add(1)
	ctx := r.Context()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cannedForwardTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		c.writeError(w, r, connect.NewError(connect.CodeInternal, "canned backend: cannot forward the request"))
		return
	}
	req.Header = withoutHopHeaders(r.Header)
	client := c.http1
	if r.ProtoMajor == 2 {
		client = c.h2c
	}
	a, err := record(client, req)
	if err != nil {
		c.logger.WarnContext(ctx, "the demo backend did not answer", "path", r.URL.Path, "error", err)
		c.writeError(w, r, connect.NewError(connect.CodeUnavailable, "canned backend: the demo backend did not answer"))
		return
	}
	if a.ok() {
		c.store(ctx, key, a, r.URL.Path)
	}
	a.write(w)
}

// store keeps a for key, unless an answer is kept for it already or the
// cap is reached.
func (c *CannedBackend) store(ctx context.Context, key string, a *cannedAnswer, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.answers.Load()
	if _, ok := old[key]; ok {
		return
	}
	if len(old) >= cannedMaxAnswers {
		if !c.full.Swap(true) {
			c.logger.WarnContext(ctx, "canned backend full: further new requests are forwarded every time", "answers", len(old))
		}
		return
	}
	answers := maps.Clone(old)
	answers[key] = a
	c.answers.Store(&answers)
	c.logger.InfoContext(ctx, "canned answer recorded", "path", path, "answers", len(answers))
}

// writeError answers with err in the caller's protocol.
func (c *CannedBackend) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if werr := c.errors.Write(w, r, err); werr != nil {
		c.logger.DebugContext(r.Context(), "error answer not written", "error", werr)
	}
}

// withoutHopHeaders returns a copy of h without the connection's own
// headers.
func withoutHopHeaders(h http.Header) http.Header {
	h = h.Clone()
	for _, name := range hopHeaders {
		delete(h, name)
	}
	return h
}

// cannedAnswer is an answer as it goes on the wire.
type cannedAnswer struct {
	status int
	// header is written as it is: it declares the trailers (Trailer), or
	// holds Content-Length when there are none.
	header  http.Header
	body    []byte
	trailer http.Header
}

// record sends req and reads the whole answer, trailers included.
func record(client *http.Client, req *http.Request) (*cannedAnswer, error) {
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, cannedMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(body) > cannedMaxBody {
		return nil, fmt.Errorf("answer over %d bytes", cannedMaxBody)
	}
	a := &cannedAnswer{status: res.StatusCode, header: withoutHopHeaders(res.Header), body: body}
	// Trailers are known once the body is read.
	for name, values := range res.Trailer {
		if len(values) > 0 {
			if a.trailer == nil {
				a.trailer = make(http.Header)
			}
			a.trailer[name] = values
		}
	}
	if a.trailer != nil {
		// Declared up front, as connect-go does, so that net/http sends
		// them reliably (golang/go#54723).
		a.header["Trailer"] = []string{strings.Join(slices.Sorted(maps.Keys(a.trailer)), ",")}
	} else {
		a.header["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	return a, nil
}

// write answers with a. The header's values are shared by every answer;
// net/http copies them before it changes any.
func (a *cannedAnswer) write(w http.ResponseWriter) {
	h := w.Header()
	maps.Copy(h, a.header)
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body) // a caller gone away is not ours to report
	maps.Copy(h, a.trailer)
}

// ok reports whether a is a successful unary answer, one to keep.
func (a *cannedAnswer) ok() bool {
	if a.status != http.StatusOK {
		return false
	}
	contentType := a.header.Get("Content-Type")
	switch {
	case strings.HasPrefix(contentType, "application/grpc-web"):
		if s := a.header.Get("Grpc-Status"); s != "" { // trailers-only
			return s == "0"
		}
		return grpcWebStatus(a.body, a.header.Get("Grpc-Encoding")) == "0"
	case strings.HasPrefix(contentType, "application/grpc"):
		if s := a.header.Get("Grpc-Status"); s != "" { // trailers-only
			return s == "0"
		}
		return a.trailer.Get("Grpc-Status") == "0"
	case strings.HasPrefix(contentType, "application/connect+"):
		return false // a stream: its status is in its last message
	}
	return true // Connect unary: the HTTP status says it all
}

// grpcWebStatus returns the grpc-status of a gRPC-Web body's trailers
// frame, "" if it has none or it cannot be read. encoding is the answer's
// Grpc-Encoding: a frame flagged compressed is in it.
func grpcWebStatus(body []byte, encoding string) string {
	for len(body) >= 5 {
		flags, n := body[0], int(binary.BigEndian.Uint32(body[1:5]))
		if n > len(body)-5 {
			return ""
		}
		frame := body[5 : 5+n]
		body = body[5+n:]
		if flags&0x80 == 0 { // a message, not the trailers
			continue
		}
		if flags&0x01 != 0 { // compressed
			if encoding != "gzip" {
				return ""
			}
			zr, err := gzip.NewReader(bytes.NewReader(frame))
			if err != nil {
				return ""
			}
			if frame, err = io.ReadAll(io.LimitReader(zr, 64<<10)); err != nil {
				return ""
			}
		}
		for line := range strings.Lines(string(frame)) {
			name, value, ok := strings.Cut(line, ":")
			if ok && strings.EqualFold(strings.TrimSpace(name), "grpc-status") {
				return strings.TrimSpace(value)
			}
		}
	}
	return ""
}
