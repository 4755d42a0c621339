package main

// End-to-end test of the example gateway over real loopback listeners: the
// demo OpenID provider, the notes backend and the gateway each on their own
// 127.0.0.1 port. A browser signs in as alice through the login pages, then
// calls NotesService over Connect (JSON, binary, GET) and gRPC; every
// response is read as raw bytes and searched for the backend's internal
// field values.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custodian-bff/custodian/demo/idp"
	"github.com/custodian-bff/custodian/examples/notes/backend"
	backendv1 "github.com/custodian-bff/custodian/examples/notes/gen/notes/backend/v1"
	"github.com/custodian-bff/custodian/examples/notes/gen/notes/backend/v1/backendv1connect"
	webv1 "github.com/custodian-bff/custodian/examples/notes/gen/notes/web/v1"
	"github.com/custodian-bff/custodian/examples/notes/gen/notes/web/v1/webv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/security"
)

// clientID is the gateway's client id at the test's provider.
const clientID = "notes-gateway"

// The public view of the backend's notes, as the browser must get them.
var (
	updated = timestamppb.New(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC))
	noteN1  = &webv1.Note{Id: "n1", Title: "Groceries", Body: "Milk, eggs, flour.", UpdateTime: updated}
	noteN2  = &webv1.Note{Id: "n2", Title: "Ideas", Body: "A gateway that keeps tokens out of the browser.", UpdateTime: updated}
)

// internalMarkers are byte strings that appear in a response only if an
// internal field of the backend leaked into it: the fields' values (as
// text and, for the revision, as it is encoded on the wire) and their JSON
// names.
var internalMarkers = []struct {
	name  string
	value []byte
}{
	{"owner_id value", []byte(backend.OwnerID)},
	{"storage_shard value", []byte(backend.StorageShard)},
	{"moderation_flags value", []byte(backend.ModerationFlag)},
	{"internal_revision value as text", []byte(strconv.FormatInt(backend.InternalRevision, 10))},
	{"internal_revision field as binary", protowire.AppendVarint(protowire.AppendTag(nil, 23, protowire.VarintType), uint64(backend.InternalRevision))},
	{"owner_id JSON name", []byte("ownerId")},
	{"storage_shard JSON name", []byte("storageShard")},
	{"moderation_flags JSON name", []byte("moderationFlags")},
	{"internal_revision JSON name", []byte("internalRevision")},
}

// wantNoInternals fails if body holds any internal marker.
func wantNoInternals(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, m := range internalMarkers {
		if bytes.Contains(body, m.value) {
			t.Errorf("%s: response holds the backend's %s: %q", what, m.name, body)
		}
	}
}

// wantNoUnknownFields fails if msg, or any message in it, kept fields its
// type does not declare: what a gateway that decoded a backend's bytes into
// the public type would forward.
func wantNoUnknownFields(t *testing.T, what string, msg proto.Message) {
	t.Helper()
	var walk func(path string, m protoreflect.Message)
	walk = func(path string, m protoreflect.Message) {
		if u := m.GetUnknown(); len(u) > 0 {
			t.Errorf("%s: %s has %d bytes of unknown fields", what, path, len(u))
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(path+"."+string(fd.Name())+"["+strconv.Itoa(i)+"]", v.List().Get(i).Message())
				}
			case fd.IsMap():
			case fd.Message() != nil:
				walk(path+"."+string(fd.Name()), v.Message())
			}
			return true
		})
	}
	walk(string(msg.ProtoReflect().Descriptor().Name()), msg.ProtoReflect())
}

// errorDetail returns the first detail of type T that err carries.
func errorDetail[T proto.Message](err error) (T, bool) {
	var zero T
	cerr, ok := errors.AsType[*connect.Error](err)
	if !ok {
		return zero, false
	}
	for _, d := range cerr.Details() {
		if m, err := connectproto.UnmarshalErrorDetail(d); err == nil {
			if v, ok := m.(T); ok {
				return v, true
			}
		}
	}
	return zero, false
}

// world is a running provider, backend and gateway.
type world struct {
	public     string // http://localhost:PORT: the gateway as browsers reach it
	backendURL string
	cookieName string
	logs       *syncBuffer // the gateway's log
}

func listenLoopback(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ln, port
}

// serveHTTP serves h on ln (HTTP/1.1 and h2c) until the test ends.
func serveHTTP(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: protocols, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing the server on %s: %v", ln.Addr(), err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serving on %s: %v", ln.Addr(), err)
		}
	})
}

// startWorld starts the provider and the backend on their own loopback
// ports, then the example gateway, configured in code, on a third.
func startWorld(t *testing.T) *world {
	t.Helper()
	gwLn, gwPort := listenLoopback(t)
	w := &world{public: "http://localhost:" + gwPort, logs: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", w.logs.String())
		}
	})

	backendLn, backendPort := listenLoopback(t)
	w.backendURL = "http://127.0.0.1:" + backendPort
	serveHTTP(t, backendLn, backend.New().Handler())

	// The provider lives at 127.0.0.1, another site than the gateway's
	// public localhost origin, as a real provider would.
	idpLn, idpPort := listenLoopback(t)
	issuer := "http://127.0.0.1:" + idpPort + "/idp"
	secret := rand.Text()
	provider, err := idp.New(issuer, idp.WithClient(idp.Client{
		ID:                     clientID,
		Secret:                 secret,
		RedirectURIs:           []string{w.public + "/auth/callback", w.public + "/login/callback"},
		PostLogoutRedirectURIs: []string{w.public + "/"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	idpMux := http.NewServeMux()
	idpMux.Handle("/idp/", provider)
	serveHTTP(t, idpLn, idpMux)

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		PublicURL: w.public,
		OIDC:      config.OIDC{Issuer: issuer, ClientID: clientID, ClientSecret: secret},
		Session:   config.Session{Keys: [][]byte{key}},
		Backends:  []config.Backend{{Name: "notes", URL: w.backendURL}},
	}
	cfg.ApplyDefaults()
	w.cookieName = cfg.Session.CookieName

	gw, err := newGateway(cfg, slog.New(slog.NewTextHandler(w.logs, nil)))
	if err != nil {
		gwLn.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, gwLn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return w
}

// browser is a browser: a cookie jar (none when anonymous) shared by page
// loads over HTTP/1.1 and RPCs over HTTP/1.1 or h2c. It connects
// "localhost" to 127.0.0.1, so no resolver or IPv6 is involved.
type browser struct {
	w   *world
	jar *cookiejar.Jar
	h1  *http.Transport
	h2c *http.Transport
}

func (w *world) newBrowser(t *testing.T, anonymous bool) *browser {
	t.Helper()
	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	b := &browser{
		w:   w,
		h1:  &http.Transport{DialContext: dial},
		h2c: &http.Transport{DialContext: dial, Protocols: h2},
	}
	t.Cleanup(b.h1.CloseIdleConnections)
	t.Cleanup(b.h2c.CloseIdleConnections)
	if !anonymous {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		b.jar = jar
	}
	return b
}

// httpClient returns a client with the browser's cookies that does not
// follow redirects and records every response body in rec, when set.
func (b *browser) httpClient(h2c bool, rec *recorder) *http.Client {
	var rt http.RoundTripper = b.h1
	if h2c {
		rt = b.h2c
	}
	if rec != nil {
		rec.next = rt
		rt = rec
	}
	c := &http.Client{
		Transport:     rt,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if b.jar != nil {
		c.Jar = b.jar
	}
	return c
}

// page is a response, its body read.
type page struct {
	res  *http.Response
	body []byte
}

func (b *browser) do(t *testing.T, req *http.Request) page {
	t.Helper()
	res, err := b.httpClient(false, nil).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return page{res: res, body: body}
}

func (b *browser) get(t *testing.T, rawURL string) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// location returns where p redirects to, failing the test if it does not.
func (p page) location(t *testing.T) string {
	t.Helper()
	if p.res.StatusCode != http.StatusSeeOther && p.res.StatusCode != http.StatusFound {
		t.Fatalf("%s: status %d, want a redirect; body %.300q", p.res.Request.URL, p.res.StatusCode, p.body)
	}
	loc, err := p.res.Location()
	if err != nil {
		t.Fatalf("%s: %v", p.res.Request.URL, err)
	}
	return loc.String()
}

// signIn goes through the gateway's login pages and the provider's form as
// user, as a browser does: GET /auth/login, the provider's form, POST the
// credentials, follow the provider back to /auth/callback.
func (b *browser) signIn(t *testing.T, user string) {
	t.Helper()
	authURL := b.get(t, b.w.public+"/auth/login").location(t)
	if p := b.get(t, authURL); p.res.StatusCode != http.StatusOK {
		t.Fatalf("provider's sign-in form: status %d; body %.300q", p.res.StatusCode, p.body)
	}
	form := url.Values{"username": {user}, "password": {"demo"}}
	req, err := http.NewRequest(http.MethodPost, authURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	callback := b.do(t, req).location(t)
	if p := b.get(t, callback); p.res.StatusCode != http.StatusOK {
		t.Fatalf("callback: status %d, want 200; body %.300q", p.res.StatusCode, p.body)
	}
	if b.cookie(b.w.cookieName) == "" {
		t.Fatalf("no %s cookie after signing in", b.w.cookieName)
	}
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.w.public + "/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// protocol is how a browser's RPCs travel.
type protocol struct {
	name string
	opts []connecthttp.Option
	h2c  bool
	// wantRequest is the HTTP method and version every call must use.
	wantRequest string
}

func protocols() []protocol {
	return []protocol{
		{name: "connect json", opts: []connecthttp.Option{connecthttp.WithProtoJSON()}, wantRequest: "POST HTTP/1.1"},
		{name: "connect binary", wantRequest: "POST HTTP/1.1"},
		{name: "connect get", opts: []connecthttp.Option{connecthttp.WithHTTPGet()}, wantRequest: "GET HTTP/1.1"},
		{name: "grpc", opts: []connecthttp.Option{connecthttp.WithGRPC()}, h2c: true, wantRequest: "POST HTTP/2.0"},
	}
}

// notes returns a NotesService client of the browser over p whose response
// bodies rec records. It accepts no compressed messages, so that rec holds
// them in the clear, and sends the X-CSRF header on every call, as the
// gateway requires of GETs that carry the session cookie.
func (b *browser) notes(p protocol, rec *recorder) webv1connect.NotesServiceClient {
	opts := append([]connecthttp.Option{connecthttp.WithCompressors()}, p.opts...)
	transport := connecthttp.NewTransport(b.httpClient(p.h2c, rec), b.w.public, opts...)
	return webv1connect.NewNotesServiceClient(connect.NewClient(transport, withCSRFHeader))
}

func withCSRFHeader(next connect.ClientFunc) connect.ClientFunc {
	return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
		if info, ok := connect.CallInfoForClientContext(ctx); ok {
			info.RequestHeader().Set(security.CSRFHeader, "1")
		}
		return next(ctx, spec)
	}
}

// recorder is an http.RoundTripper that keeps a copy of every response body
// read through it.
type recorder struct {
	next     http.RoundTripper
	mu       sync.Mutex
	requests []string // method and protocol of each response's request
	body     bytes.Buffer
	// encodings are the Content-Encoding and Grpc-Encoding of responses:
	// a compressed body would hide any leak from the search.
	encodings []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.requests = append(r.requests, req.Method+" "+res.Proto)
	for _, h := range []string{"Content-Encoding", "Grpc-Encoding"} {
		if v := res.Header.Get(h); v != "" && v != "identity" {
			r.encodings = append(r.encodings, h+": "+v)
		}
	}
	r.mu.Unlock()
	res.Body = &recordedBody{ReadCloser: res.Body, r: r}
	return res, nil
}

func (r *recorder) bytes() ([]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.body.Bytes()), r.encodings
}

func (r *recorder) requestsMade() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

type recordedBody struct {
	io.ReadCloser
	r *recorder
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.r.mu.Lock()
	b.r.body.Write(p[:n])
	b.r.mu.Unlock()
	return n, err
}

// syncBuffer is a bytes.Buffer safe for the gateway's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// rpcCase is one call to NotesService.
type rpcCase struct {
	name string
	call func(context.Context, webv1connect.NotesServiceClient) (proto.Message, error)
	want proto.Message
}

func rpcCases() []rpcCase {
	return []rpcCase{
		{
			name: "GetNote",
			call: func(ctx context.Context, c webv1connect.NotesServiceClient) (proto.Message, error) {
				return c.GetNote(ctx, &webv1.GetNoteRequest{Id: "n1"})
			},
			want: &webv1.GetNoteResponse{Note: noteN1},
		},
		{
			name: "ListNotes",
			call: func(ctx context.Context, c webv1connect.NotesServiceClient) (proto.Message, error) {
				return c.ListNotes(ctx, &webv1.ListNotesRequest{})
			},
			want: &webv1.ListNotesResponse{Notes: []*webv1.Note{noteN1, noteN2}},
		},
	}
}

func TestNotesGateway(t *testing.T) {
	w := startWorld(t)
	alice := w.newBrowser(t, false)
	alice.signIn(t, "alice")
	anonymous := w.newBrowser(t, true)
	ctx := t.Context()

	t.Run("signed in gets public notes only", func(t *testing.T) {
		for _, p := range protocols() {
			for _, c := range rpcCases() {
				t.Run(p.name+"/"+c.name, func(t *testing.T) {
					rec := &recorder{}
					got, err := c.call(ctx, alice.notes(p, rec))
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					if !proto.Equal(got, c.want) {
						t.Errorf("%s = %v, want %v", c.name, got, c.want)
					}
					wantNoUnknownFields(t, c.name, got)
					if got := rec.requestsMade(); len(got) != 1 || got[0] != p.wantRequest {
						t.Errorf("requests %q, want [%q]", got, p.wantRequest)
					}
					// The search below is blind if the body is compressed
					// or was not recorded: it must hold the public data.
					body, encodings := rec.bytes()
					if len(encodings) > 0 {
						t.Fatalf("compressed response (%v)", encodings)
					}
					if !bytes.Contains(body, []byte(noteN1.GetTitle())) {
						t.Fatalf("the recorded body %q lacks the note's title", body)
					}
					wantNoInternals(t, c.name, body)
				})
			}
		}
	})

	t.Run("anonymous is unauthenticated", func(t *testing.T) {
		for _, p := range protocols() {
			for _, c := range rpcCases() {
				t.Run(p.name+"/"+c.name, func(t *testing.T) {
					got, err := c.call(ctx, anonymous.notes(p, nil))
					if code := connect.CodeOf(err); code != connect.CodeUnauthenticated {
						t.Fatalf("%s = %v, %v; want code unauthenticated", c.name, got, err)
					}
					// The browser learns why and where to sign in.
					verdict, ok := errorDetail[*custodianv1.SessionError](err)
					if !ok {
						t.Fatalf("%s: %v, want a custodian.v1.SessionError detail", c.name, err)
					}
					wantReason := custodianv1.SessionEndReason_SESSION_END_REASON_NO_SESSION
					if verdict.GetReason() != wantReason || verdict.GetLoginUrl() != w.public+"/auth/login" {
						t.Errorf("%s: session error %v, want reason %v and login URL %s/auth/login", c.name, verdict, wantReason, w.public)
					}
				})
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name     string
			id       string
			wantCode connect.Code
			wantMsg  string
			// wantField, when set, is the field the BadRequest detail names.
			wantField string
			// wantLogged, when set, must be in the gateway's log: the
			// backend's own words go there, not to the browser.
			wantLogged string
		}{
			{name: "unknown note is not found, without the backend's text", id: "n404", wantCode: connect.CodeNotFound, wantMsg: "not found", wantLogged: backend.StorageShard},
			{name: "empty id is refused before the backend", id: "", wantCode: connect.CodeInvalidArgument, wantMsg: "id: must not be empty", wantField: "id"},
		}
		for _, p := range protocols() {
			for _, tt := range tests {
				t.Run(p.name+"/"+tt.name, func(t *testing.T) {
					rec := &recorder{}
					_, err := alice.notes(p, rec).GetNote(ctx, &webv1.GetNoteRequest{Id: tt.id})
					cerr, ok := errors.AsType[*connect.Error](err)
					if !ok {
						t.Fatalf("GetNote(%q) = %v, want a connect error", tt.id, err)
					}
					if cerr.Code() != tt.wantCode || cerr.Message() != tt.wantMsg {
						t.Errorf("GetNote(%q): %v %q, want %v %q", tt.id, cerr.Code(), cerr.Message(), tt.wantCode, tt.wantMsg)
					}
					if tt.wantField != "" {
						var fields []string
						if br, ok := errorDetail[*custodianv1.BadRequest](err); ok {
							for _, v := range br.GetFieldViolations() {
								fields = append(fields, v.GetField())
							}
						}
						if len(fields) != 1 || fields[0] != tt.wantField {
							t.Errorf("BadRequest detail names %q, want [%q]", fields, tt.wantField)
						}
					}
					if tt.wantLogged != "" && !strings.Contains(w.logs.String(), tt.wantLogged) {
						t.Errorf("the gateway's log lacks the backend's error (%q)", tt.wantLogged)
					}
					// Connect puts the error in the body, gRPC in trailers:
					// search both the raw body and the decoded message.
					body, _ := rec.bytes()
					wantNoInternals(t, "error body", body)
					wantNoInternals(t, "error message", []byte(cerr.Message()))
				})
			}
		}
	})
}

// TestNotesGatewayRawHTTP calls the gateway as a page's fetch() would, with
// hand-made HTTP requests, and reads the raw response bodies.
func TestNotesGatewayRawHTTP(t *testing.T) {
	w := startWorld(t)
	alice := w.newBrowser(t, false)
	alice.signIn(t, "alice")

	const service = "/" + webv1connect.NotesServiceName
	jsonGet := url.Values{"connect": {"v1"}, "encoding": {"json"}, "message": {`{"id":"n1"}`}}.Encode()
	binaryList, err := proto.Marshal(&webv1.ListNotesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	strictJSON := func(data []byte, m proto.Message) error { return protojson.Unmarshal(data, m) }
	tests := []struct {
		name        string
		method      string
		target      string // path and query on the gateway
		contentType string
		body        []byte
		header      http.Header
		wantStatus  int
		// decode, when set, must read the body into want's type.
		decode func([]byte, proto.Message) error
		want   proto.Message
	}{
		{
			name:   "connect json POST GetNote",
			method: http.MethodPost, target: service + "/GetNote",
			contentType: "application/json", body: []byte(`{"id":"n1"}`),
			wantStatus: http.StatusOK, decode: strictJSON,
			want: &webv1.GetNoteResponse{Note: noteN1},
		},
		{
			name:   "connect binary POST ListNotes",
			method: http.MethodPost, target: service + "/ListNotes",
			contentType: "application/proto", body: binaryList,
			wantStatus: http.StatusOK, decode: proto.Unmarshal,
			want: &webv1.ListNotesResponse{Notes: []*webv1.Note{noteN1, noteN2}},
		},
		{
			name:   "connect GET with the CSRF header",
			method: http.MethodGet, target: service + "/GetNote?" + jsonGet,
			header:     http.Header{security.CSRFHeader: {"1"}},
			wantStatus: http.StatusOK, decode: strictJSON,
			want: &webv1.GetNoteResponse{Note: noteN1},
		},
		{
			name:   "connect GET without the CSRF header is refused",
			method: http.MethodGet, target: service + "/GetNote?" + jsonGet,
			wantStatus: http.StatusForbidden,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, w.public+tt.target, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
				req.Header.Set("Connect-Protocol-Version", "1")
			}
			req.Header.Set("Origin", w.public)
			// Ask for the body as it is: a compressed one would hide a leak.
			req.Header.Set("Accept-Encoding", "identity")
			p := alice.do(t, req)
			res, body := p.res, p.body
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %.300q", res.StatusCode, tt.wantStatus, body)
			}
			if enc := res.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
				t.Fatalf("Content-Encoding %q: the search for internal fields would be blind", enc)
			}
			wantNoInternals(t, tt.name, body)
			if tt.decode == nil {
				return
			}
			got := tt.want.ProtoReflect().New().Interface()
			if err := tt.decode(body, got); err != nil {
				t.Fatalf("decoding %q: %v", body, err)
			}
			wantNoUnknownFields(t, tt.name, got)
			if !proto.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBackendRequiresToken shows that the gateway's successful calls carried
// a bearer token: the backend refuses calls without one.
func TestBackendRequiresToken(t *testing.T) {
	ln, port := listenLoopback(t)
	serveHTTP(t, ln, backend.New().Handler())
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	tests := []struct {
		name   string
		auth   string
		wantOK bool
	}{
		{name: "no Authorization header"},
		{name: "empty bearer token", auth: "Bearer "},
		{name: "basic credentials", auth: "Basic YWxpY2U6ZGVtbw=="},
		{name: "a bearer token", auth: "Bearer some-token", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := backendv1connect.NewNoteServiceClient(connect.NewClient(
				connecthttp.NewTransport(&http.Client{Transport: transport}, "http://127.0.0.1:"+port)))
			ctx, info := connect.NewClientContext(t.Context())
			if tt.auth != "" {
				info.RequestHeader().Set("Authorization", tt.auth)
			}
			res, err := client.GetNote(ctx, &backendv1.GetNoteRequest{Id: "n1"})
			if !tt.wantOK {
				if code := connect.CodeOf(err); code != connect.CodeUnauthenticated {
					t.Fatalf("GetNote = %v, %v; want code unauthenticated", res, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetNote: %v", err)
			}
			if res.GetNote().GetOwnerId() != backend.OwnerID {
				t.Errorf("the backend's note lacks its internal fields: %v", res.GetNote())
			}
		})
	}
}

// TestConfigFile checks that notes.yaml, the configuration main loads by
// default, is valid and gives newGateway what it needs.
func TestConfigFile(t *testing.T) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		config.EnvOIDCClientSecret: "example-secret",
		config.EnvSessionKeys:      base64.StdEncoding.EncodeToString(key),
	}
	cfg, err := config.Load("notes.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	gw, err := newGateway(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := webv1connect.NotesServiceName
	found := false
	for _, s := range gw.Services() {
		found = found || s == want
	}
	if !found {
		t.Errorf("Services() = %v, want %s among them", gw.Services(), want)
	}
}
