package server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// inspectAll feeds data to a fresh inspector in pieces of size step (all at
// once when step is 0) and returns the offset and reason of the first
// violation, or len(data) and "".
func inspectAll(h2c bool, data []byte, step int) (int, string) {
	in := newInspector(h2c)
	if step <= 0 {
		step = len(data)
	}
	for off := 0; off < len(data); off += step {
		end := min(off+step, len(data))
		n, reason := in.feed(data[off:end])
		if reason != "" {
			return off + n, reason
		}
	}
	return len(data), ""
}

const (
	chunkedPost = "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
	clPost      = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	plainGet    = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	smuggled    = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
)

func TestInspector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		reason string // "": accepted
		at     string // the refused bytes start with this (checked when set)
	}{
		// Accepted.
		{name: "GET", in: plainGet},
		{name: "Content-Length body", in: clPost},
		{name: "chunked body", in: chunkedPost},
		{name: "chunked body with an extension and a trailer", in: "POST /p HTTP/1.1\r\nHost: x\r\ntransfer-encoding:chunked\r\n\r\n2;name=\"v;x\"\r\n{}\r\n10\r\n0123456789abcdef\r\n0\r\nX-Checksum: 1\r\n\r\n"},
		{name: "upper-case hex and leading zeros", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n000A\r\n0123456789\r\n0\r\n\r\n"},
		{name: "pipelined", in: plainGet + clPost + chunkedPost + plainGet},
		{name: "HTTP/1.0 with Content-Length", in: "POST /p HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}" + plainGet},
		{name: "Content-Length without a space and with leading zeros", in: "POST /p HTTP/1.1\r\ncontent-length:002\r\n\r\n{}"},
		{name: "Content-Length zero", in: "POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n" + plainGet},
		{name: "tab and obs-text in another field", in: "GET / HTTP/1.1\r\nX-A: a\tb \xe9\r\n\r\n"},
		{name: "names that only start like framing fields", in: "GET / HTTP/1.1\r\nContent-Lengthy: x\r\nTransfer-Encodings: x\r\nContent: y\r\nX_Y: z\r\n\r\n"},
		{name: "absolute-form target", in: "GET http://x/a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"},

		// Refused in the head.
		{name: "CL then TE", in: "POST /p HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, reason: reasonCLAndTE, at: "\n0\r\n"},
		{name: "TE then CL", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled, reason: reasonCLAndTE, at: "\n0\r\n"},
		{name: "TE with a tab", in: "POST /p HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\n\r\n", reason: reasonTEValue, at: "\tchunked"},
		{name: "TE with a trailing space", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked \r\n\r\n", reason: reasonTEValue},
		{name: "TE in upper case", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n", reason: reasonTEValue},
		{name: "TE chunked, identity", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", reason: reasonTEValue},
		{name: "TE xchunked", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", reason: reasonTEValue},
		{name: "TE gzip", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", reason: reasonTEValue},
		{name: "TE empty", in: "POST /p HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", reason: reasonTEValue},
		{name: "TE twice", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n", reason: reasonTERepeated},
		{name: "TE in HTTP/1.0", in: "POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", reason: reasonTEInHTTP10},
		{name: "Transfer_Encoding", in: "POST /p HTTP/1.1\r\nTransfer_Encoding: chunked\r\n\r\n", reason: reasonUnderscore},
		{name: "Content_Length", in: "POST /p HTTP/1.1\r\nContent_length: 2\r\n\r\n{}", reason: reasonUnderscore},
		{name: "CL twice, equal", in: "POST /p HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", reason: reasonCLRepeated},
		{name: "CL twice, different", in: "POST /p HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}", reason: reasonCLRepeated},
		{name: "CL list", in: "POST /p HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n{}", reason: reasonCLValue},
		{name: "CL with a sign", in: "POST /p HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", reason: reasonCLValue},
		{name: "CL with a tab", in: "POST /p HTTP/1.1\r\nContent-Length:\t2\r\n\r\n{}", reason: reasonCLValue},
		{name: "CL with a trailing space", in: "POST /p HTTP/1.1\r\nContent-Length: 2 \r\n\r\n{}", reason: reasonCLValue},
		{name: "CL empty", in: "POST /p HTTP/1.1\r\nContent-Length: \r\n\r\n", reason: reasonCLValue},
		{name: "CL too long", in: "POST /p HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", reason: reasonCLValue},
		{name: "obs-fold hiding TE", in: "POST /p HTTP/1.1\r\nX-Foo: bar\r\n Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}", reason: reasonObsFold, at: " Transfer"},
		{name: "obs-fold of CL", in: "POST /p HTTP/1.1\r\nContent-Length:\r\n 2\r\n\r\n{}", reason: reasonCLValue},
		{name: "obs-fold with a tab", in: "GET / HTTP/1.1\r\nX-Foo: bar\r\n\tbaz\r\n\r\n", reason: reasonObsFold},
		{name: "space before the first field", in: "GET / HTTP/1.1\r\n Host: x\r\n\r\n", reason: reasonObsFold},
		{name: "space before the colon", in: "POST /p HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", reason: reasonHeaderLine},
		{name: "name without a colon", in: "GET / HTTP/1.1\r\nX-Bad header\r\n\r\n", reason: reasonHeaderLine},
		{name: "bare LF in the head", in: "GET / HTTP/1.1\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n", reason: reasonHeaderLine},
		{name: "bare LF line ends", in: "GET / HTTP/1.1\nHost: x\n\n", reason: reasonRequestLine},
		{name: "bare CR in a value", in: "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", reason: reasonHeaderLine},
		{name: "NUL in a value", in: "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", reason: reasonHeaderLine},
		{name: "leading empty line", in: "\r\n" + plainGet, reason: reasonRequestLine},
		{name: "HTTP/1.2", in: "GET / HTTP/1.2\r\n\r\n", reason: reasonRequestLine},
		{name: "HTTP/2.0 request line", in: "GET / HTTP/2.0\r\n\r\n", reason: reasonRequestLine},
		{name: "two spaces in the request line", in: "GET  / HTTP/1.1\r\n\r\n", reason: reasonRequestLine},
		{name: "space in the target", in: "GET /a b HTTP/1.1\r\n\r\n", reason: reasonRequestLine},
		{name: "a violation pipelined behind a valid request", in: clPost + "POST /p HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", reason: reasonCLAndTE},
		{name: "a CRLF after a CL body", in: "POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}\r\n", reason: reasonRequestLine, at: "\r\n"},

		// Refused in a chunked body.
		{name: "chunk size with a trailing space", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\n{}\r\n0\r\n\r\n", reason: reasonChunked},
		{name: "chunk size 0x", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", reason: reasonChunked},
		{name: "chunk size too long", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000002\r\n{}\r\n0\r\n\r\n", reason: reasonChunked},
		{name: "chunk lines with bare LF", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n", reason: reasonChunked},
		{name: "chunk data longer than its size", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n", reason: reasonChunked},
		{name: "empty chunk size", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", reason: reasonChunked},
		{name: "control character in an extension", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x01\r\n{}\r\n0\r\n\r\n", reason: reasonChunked},
		{name: "obs-fold in a trailer", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", reason: reasonObsFold},
		{name: "Content-Length in a trailer", in: "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", reason: reasonTrailerField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(tt.in)
			at, reason := inspectAll(false, data, 0)
			if reason != tt.reason {
				t.Fatalf("reason %q at %d (%q), want %q", reason, at, data[at:], tt.reason)
			}
			if tt.at != "" && !bytes.HasPrefix(data[at:], []byte(tt.at)) {
				t.Errorf("refused at %q, want at %q", data[at:], tt.at)
			}
			// The verdict does not depend on how the bytes arrive.
			for step := 1; step < len(data); step++ {
				if a, r := inspectAll(false, data, step); a != at || r != reason {
					t.Fatalf("in pieces of %d: %q at %d, want %q at %d", step, r, a, reason, at)
				}
			}
			if reason == "" {
				return
			}
			// The bytes handed to the server never complete the refused
			// request: net/http reads the complete requests before it, and
			// no more.
			if got, want := countRequests(data[:at]), len(messageEnds(data[:at])); got != want {
				t.Errorf("net/http reads %d requests from the bytes let through, want %d", got, want)
			}
		})
	}
}

// messageEnds feeds data to an inspector byte by byte and returns the
// offsets at which it saw a request end.
func messageEnds(data []byte) []int {
	var ends []int
	in := newInspector(false)
	for i := range data {
		before := in.state
		if _, reason := in.feed(data[i : i+1]); reason != "" {
			return ends
		}
		if in.state == stMethodStart && before != stMethodStart {
			ends = append(ends, i+1)
		}
	}
	return ends
}

// countRequests returns how many complete requests (bodies included)
// net/http reads from data.
func countRequests(data []byte) int {
	br := bufio.NewReader(bytes.NewReader(data))
	n := 0
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return n
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return n
		}
		n++
	}
}

func TestInspectorH2CPreface(t *testing.T) {
	t.Parallel()
	frames := "\x00\x00\x00\x04\x00\x00\x00\x00\x00" // an empty SETTINGS frame
	tests := []struct {
		name        string
		h2c         bool
		in          string
		reason      string
		passthrough bool
	}{
		{name: "preface, then frames", h2c: true, in: http2Preface + frames + "Transfer-Encoding: chunked\r\n", passthrough: true},
		{name: "HTTP/1.1 on an h2c listener", h2c: true, in: plainGet + clPost},
		{name: "P that is not the preface", h2c: true, in: "POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "a request line that starts like the preface", h2c: true, in: "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", reason: reasonRequestLine},
		{name: "preface without h2c", in: http2Preface, reason: reasonRequestLine},
		{name: "preface after a request", h2c: true, in: plainGet + http2Preface, reason: reasonRequestLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(tt.in)
			for step := range len(data) {
				at, reason := inspectAll(tt.h2c, data, step)
				if reason != tt.reason {
					t.Fatalf("in pieces of %d: %q at %d, want %q", step, reason, at, tt.reason)
				}
			}
			in := newInspector(tt.h2c)
			in.feed(data)
			if in.passthrough() != tt.passthrough {
				t.Errorf("passthrough %v, want %v", in.passthrough(), tt.passthrough)
			}
		})
	}
}

// FuzzInspector checks the inspector against net/http: whatever the
// inspector lets through, net/http frames the same way (the same number of
// requests, each ending where the inspector's does). It runs on its seeds
// in every test run; `go test -fuzz FuzzInspector ./server/` searches on.
func FuzzInspector(f *testing.F) {
	for _, s := range []string{
		plainGet, clPost, chunkedPost, plainGet + clPost + chunkedPost,
		"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\nA: b\r\n\r\n" + plainGet,
		"POST /p HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
		"POST /p HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		at, reason := inspectAll(false, data, 0)
		if a, r := inspectAll(false, data, 1); a != at || r != reason {
			t.Fatalf("byte by byte: %q at %d; at once: %q at %d", r, a, reason, at)
		}
		// Where the inspector saw requests end in the accepted bytes.
		ends := messageEnds(data[:at])
		// net/http on the same bytes.
		rd := bytes.NewReader(data[:at])
		br := bufio.NewReader(rd)
		for k := 0; ; k++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return // net/http refuses more than the inspector: fine
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			consumed := at - rd.Len() - br.Buffered()
			if k >= len(ends) || ends[k] != consumed {
				t.Fatalf("net/http read request %d up to %d; the inspector's requests end at %v", k, consumed, ends)
			}
		}
	})
}

// BenchmarkInspector measures the inspection of one request head (and its
// small body) as a browser sends it on a keep-alive connection.
func BenchmarkInspector(b *testing.B) {
	head := "POST /acme.storefront.v1.AccountService/GetDashboard HTTP/1.1\r\n" +
		"Host: shop.example.com\r\n" +
		"Connection: keep-alive\r\n" +
		"Content-Length: 23\r\n" +
		"sec-ch-ua-platform: \"Linux\"\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
		"sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n" +
		"Content-Type: application/json\r\n" +
		"connect-protocol-version: 1\r\n" +
		"sec-ch-ua-mobile: ?0\r\n" +
		"Accept: */*\r\n" +
		"Origin: https://shop.example.com\r\n" +
		"Sec-Fetch-Site: same-origin\r\n" +
		"Sec-Fetch-Mode: cors\r\n" +
		"Sec-Fetch-Dest: empty\r\n" +
		"Referer: https://shop.example.com/account\r\n" +
		"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Accept-Language: en-GB,en;q=0.9\r\n" +
		"Cookie: __Host-custodian=Q2hhbmdlIG1lIHRvIGEgcmVhbCBzZXNzaW9uIGlkIHBsZWFzZQ\r\n" +
		"\r\n" +
		`{"recentOrderCount":3}` + "\n"
	data := []byte(head)
	b.Run("inspector", func(b *testing.B) {
		in := newInspector(false)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, reason := in.feed(data); reason != "" {
				b.Fatal(reason)
			}
		}
	})
	// For scale: what net/http spends parsing the same request.
	b.Run("net/http ReadRequest", func(b *testing.B) {
		rd := bytes.NewReader(data)
		br := bufio.NewReader(rd)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(data)
			br.Reset(rd)
			req, err := http.ReadRequest(br)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
