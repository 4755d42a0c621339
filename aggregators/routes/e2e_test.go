package routes_test

// End-to-end tests of config-only routes: a whole gateway (custodian.New on
// the demo world, through gatewaytest) whose configuration routes the
// public routese2e.web.v1.TicketService to the canary backend
// (e2e_canary_test.go), called by browsers over Connect (JSON, binary and
// GET), gRPC and gRPC-Web; and the configurations custodian.New refuses.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpcreflect/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/custodian-bff/custodian"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/security"
	"github.com/custodian-bff/custodian/server/session"
)

// user is the demo user the tests sign in as; the demo provider makes the
// user name the subject.
const user = "alice"

// canaryRoutes routes routese2e.web.v1.TicketService to the canary
// backend: an anonymous route on a token-less backend client, a session
// route, a route binding account_id to the session's subject, and a
// server-streaming route over a gRPC backend.
func canaryRoutes() []config.Route {
	return []config.Route{
		{Public: webService + "/ListTickets", Backend: "canary", Method: backendService + "/ListTickets", Token: config.TokenNone, Anonymous: true},
		{Public: webService + "/GetTicket", Backend: "canary", Method: backendService + "/GetTicket"},
		{Public: webService + "/ListMyTickets", Backend: "canary", Method: backendService + "/ListMyTickets", Bind: map[string]string{"account_id": config.ClaimSubject}},
		{Public: webService + "/WatchTickets", Backend: "canary-grpc", Method: backendService + "/WatchTickets"},
	}
}

// routeEnv is a gateway on the demo world with canaryRoutes to a canary
// backend.
type routeEnv struct {
	env     *gt.Env
	fake    *canaryBackend
	files   *protoregistry.Files
	needles [][]byte
}

func startRouteEnv(t *testing.T, opts ...gt.Option) *routeEnv {
	t.Helper()
	path, files := e2eSchemas(t)
	fake := startCanary(t, files)
	env := gt.NewDemoEnv(t, append([]gt.Option{gt.WithConfig(func(c *config.Config) {
		c.Backends = append(c.Backends,
			config.Backend{Name: "canary", URL: fake.URL, Protocol: config.ProtocolConnect, Token: config.TokenUser, Timeout: 10 * time.Second},
			config.Backend{Name: "canary-grpc", URL: fake.URL, Protocol: config.ProtocolGRPC, Token: config.TokenUser, Timeout: 10 * time.Second},
		)
		c.Routes = config.Routes{Descriptors: path, Methods: canaryRoutes()}
	})}, opts...)...)
	return &routeEnv{env: env, fake: fake, files: files, needles: needles(files)}
}

// pair returns the public method and its backend method.
func (r *routeEnv) pair(t testing.TB, name string) (public, backend protoreflect.MethodDescriptor) {
	t.Helper()
	return method(t, r.files, webService+"/"+name), method(t, r.files, backendService+"/"+name)
}

// connectGet is Connect GET, for NO_SIDE_EFFECTS methods.
var connectGet = gt.RPC{Name: "connect get", Opts: []connecthttp.Option{connecthttp.WithHTTPGet()}}

// protocolsFor returns the protocols a browser may call public with:
// gatewaytest's, and Connect GET for a NO_SIDE_EFFECTS method.
func protocolsFor(public protoreflect.MethodDescriptor) []gt.RPC {
	ps := gt.RPCProtocols()
	if specOf(public).IdempotencyLevel == connect.IdempotencyNoSideEffects {
		ps = append(ps, connectGet)
	}
	return ps
}

// client returns b's client for p. Over Connect GET it sends X-CSRF, as a
// browser app's client does: the gateway refuses a GET that carries the
// session cookie without it (a link on another site could send one).
func client(b *gt.Browser, p gt.RPC) *connect.Client {
	if p.Name != connectGet.Name {
		return b.Client(p)
	}
	return b.Client(p, func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set(security.CSRFHeader, "1")
			}
			return next(ctx, spec)
		}
	})
}

// publicRequest returns the request a browser sends to public for key,
// carrying as unknown fields every backend-only field of the backend's
// request (attackFields); WatchTickets asks for a status the public enum
// does not declare.
func publicRequest(public, backend protoreflect.MethodDescriptor, key string) *dynamicpb.Message {
	m := dynamicpb.NewMessage(public.Input())
	fields := m.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"filter", "ticket_id"} {
		if fd := fields.ByName(name); fd != nil {
			m.Set(fd, protoreflect.ValueOfString(key))
		}
	}
	if fd := fields.ByName("page_size"); fd != nil {
		m.Set(fd, protoreflect.ValueOfInt32(10))
	}
	if fd := fields.ByName("statuses"); fd != nil {
		l := m.Mutable(fd).List()
		for _, n := range []protoreflect.EnumNumber{1, 9, 2} {
			l.Append(protoreflect.ValueOfEnum(n))
		}
	}
	m.SetUnknown(attackFields(public.Input(), backend.Input()))
	return m
}

// backendRequest is what the backend must receive for publicRequest: the
// public fields, the subject where a route binds it, the undeclared
// status as the backend enum's zero value, and nothing else.
func backendRequest(backend protoreflect.MethodDescriptor, key, subject string) *dynamicpb.Message {
	m := dynamicpb.NewMessage(backend.Input())
	fields := m.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"filter", "ticket_id"} {
		if fd := fields.ByName(name); fd != nil {
			m.Set(fd, protoreflect.ValueOfString(key))
		}
	}
	if fd := fields.ByName("page_size"); fd != nil {
		m.Set(fd, protoreflect.ValueOfInt32(10))
	}
	if fd := fields.ByName("account_id"); fd != nil {
		m.Set(fd, protoreflect.ValueOfString(subject))
	}
	if fd := fields.ByName("statuses"); fd != nil {
		l := m.Mutable(fd).List()
		for _, n := range []protoreflect.EnumNumber{1, 0, 2} {
			l.Append(protoreflect.ValueOfEnum(n))
		}
	}
	return m
}

// expectedAnswers returns the public answers a route must give for key.
func expectedAnswers(public, backend protoreflect.MethodDescriptor, key string, n int) []*dynamicpb.Message {
	if !public.IsStreamingServer() {
		_, p := fillAnswer(backend.Output(), public.Output(), key)
		return []*dynamicpb.Message{p}
	}
	var out []*dynamicpb.Message
	for i := range n {
		_, p := fillAnswer(backend.Output(), public.Output(), fmt.Sprintf("%s#%d", key, i))
		out = append(out, p)
	}
	return out
}

// callRoute calls public with req and returns its answers (several for a
// stream) and the call's info.
func callRoute(ctx context.Context, client *connect.Client, public protoreflect.MethodDescriptor, req proto.Message) ([]*dynamicpb.Message, *connect.CallInfo, error) {
	ctx, info := connect.NewClientContext(ctx)
	spec := specOf(public)
	if !public.IsStreamingServer() {
		res := dynamicpb.NewMessage(public.Output())
		if err := client.CallUnary(ctx, spec, req, res); err != nil {
			return nil, info, err
		}
		return []*dynamicpb.Message{res}, info, nil
	}
	stream, err := client.CallServerStream(ctx, spec, req)
	if err != nil {
		return nil, info, err
	}
	defer stream.Close()
	var out []*dynamicpb.Message
	for {
		res := dynamicpb.NewMessage(public.Output())
		if err := stream.Receive(res); err != nil {
			if errors.Is(err, io.EOF) {
				return out, info, nil
			}
			return out, info, err
		}
		out = append(out, res)
	}
}

// checkAnswers fails the test unless got are want, with no unknown fields
// and no undeclared enum numbers.
func checkAnswers(t *testing.T, got, want []*dynamicpb.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d answers, want %d", len(got), len(want))
	}
	for i := range got {
		for _, problem := range publicProblems(got[i], "answer") {
			t.Errorf("answer %d: %s", i, problem)
		}
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("answer %d:\n%s\nwant:\n%s", i, text(got[i]), text(want[i]))
		}
	}
}

// checkBackendCall fails the test unless the backend received exactly one
// request with key, equal to want, with the bearer token the route's
// policy gives (none for an anonymous route), no unknown fields and no
// cookie.
func checkBackendCall(t *testing.T, fake *canaryBackend, key string, want *dynamicpb.Message, token bool) {
	t.Helper()
	calls := fake.Calls(key)
	if len(calls) != 1 {
		t.Fatalf("backend received %d requests with key %q, want 1", len(calls), key)
	}
	c := calls[0]
	if !proto.Equal(c.Request, want) || len(c.Request.GetUnknown()) > 0 {
		t.Errorf("backend request:\n%s\nwant:\n%s", text(c.Request), text(want))
	}
	if got := c.Token != ""; got != token {
		t.Errorf("backend received token %q, want a token: %v", c.Token, token)
	}
	if v := c.Header.Get("Cookie"); v != "" {
		t.Errorf("backend received the browser's cookie %q", v)
	}
}

// testContext returns a context that ends with the test or after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// keyID makes a test's name usable in a request key.
func keyID(t *testing.T) string {
	return strings.NewReplacer("/", ".", " ", "_", ":", "_").Replace(t.Name())
}

// TestRouteCanary calls every route over every protocol, with answers
// and with failures of the canary backend, and checks that the browser
// gets exactly the public answer (no unknown fields, undeclared enum
// numbers as zero, optional presence kept), or the backend's code without
// its message or details, and that no response a browser receives holds a
// canary in its status line, headers, body or trailers. It also checks
// what the backend received: the public fields only (the browser's
// unknown fields at the numbers of backend-only fields dropped), the
// session's subject where the route binds it, and the token the route's
// policy gives.
func TestRouteCanary(t *testing.T) {
	t.Parallel()
	canaryMatrix(t, startRouteEnv(t))
}

// canaryMatrix runs TestRouteCanary's checks on r.
func canaryMatrix(t *testing.T, r *routeEnv) {
	// Codes that do not count against the backend's circuit breaker, so
	// that parallel subtests cannot open it.
	failures := []connect.Code{connect.CodeNotFound, connect.CodeInvalidArgument, connect.CodePermissionDenied,
		connect.CodeFailedPrecondition, connect.CodeAlreadyExists, connect.CodeAborted, connect.CodeOutOfRange}
	routes := []struct {
		method    string
		anonymous bool
	}{
		{method: "ListTickets", anonymous: true},
		{method: "GetTicket"},
		{method: "ListMyTickets"},
		{method: "WatchTickets"},
	}
	for _, rc := range routes {
		public, backend := r.pair(t, rc.method)
		for _, p := range protocolsFor(public) {
			t.Run(rc.method+"/"+p.Name, func(t *testing.T) {
				t.Parallel()
				seen := &gt.ResponseLog{}
				b := r.env.BrowserRecording(t, seen)
				subject := ""
				if !rc.anonymous {
					b.Login(t, user, "")
					subject = user
				}
				client := client(b, p)
				ctx := testContext(t, 30*time.Second)
				id := keyID(t)

				t.Run("answer", func(t *testing.T) {
					key := "ok-" + id
					answers, _, err := callRoute(ctx, client, public, publicRequest(public, backend, key))
					if err != nil {
						t.Fatalf("call: %v", err)
					}
					checkAnswers(t, answers, expectedAnswers(public, backend, key, 3))
					checkBackendCall(t, r.fake, key, backendRequest(backend, key, subject), !rc.anonymous)
				})
				for _, code := range failures {
					t.Run("fail "+code.String(), func(t *testing.T) {
						key := "fail:" + code.String() + ":" + id
						answers, info, err := callRoute(ctx, client, public, publicRequest(public, backend, key))
						checkFailure(t, r, key, answers, info, err, code)
					})
				}
				if public.IsStreamingServer() {
					t.Run("fail mid-stream", func(t *testing.T) {
						key := "midstream:" + connect.CodeAborted.String() + ":" + id
						answers, info, err := callRoute(ctx, client, public, publicRequest(public, backend, key))
						checkFailure(t, r, key, nil, info, err, connect.CodeAborted)
						checkAnswers(t, answers, expectedAnswers(public, backend, key, 1))
					})
				}

				rpcs := 0
				for _, rec := range seen.All() {
					if leak := findLeak(r.needles, rec.Text); leak != "" {
						t.Errorf("%s: response holds %s", rec.What, leak)
					}
					if strings.Contains(rec.What, "/"+webService+"/") {
						rpcs++
						if p.Name == "connect get" && !strings.HasPrefix(rec.What, http.MethodGet+" ") {
							t.Errorf("%s: want a GET", rec.What)
						}
					}
				}
				if want := 1 + len(failures); rpcs < want {
					t.Errorf("recorded %d responses of the route, want at least %d", rpcs, want)
				}
			})
		}
	}
}

// checkFailure fails the test unless err has code and nothing of the
// backend's error: no details, no canary in its message, headers or
// trailers; the gateway logged the backend's message with the request's
// id; and the backend was called once.
func checkFailure(t *testing.T, r *routeEnv, key string, answers []*dynamicpb.Message, info *connect.CallInfo, err error, code connect.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded with %d answers, want code %v", len(answers), code)
	}
	if got := connect.CodeOf(err); got != code {
		t.Errorf("code %v (%v), want %v", got, err, code)
	}
	if ce := gt.ConnectError(err); ce != nil && len(ce.Details()) > 0 {
		t.Errorf("error carries %d details", len(ce.Details()))
	}
	if leak := findLeak(r.needles, gt.ErrorText(err, info)); leak != "" {
		t.Errorf("error holds %s", leak)
	}
	if n := len(r.fake.Calls(key)); n != 1 {
		t.Errorf("backend received %d requests with key %q, want 1", n, key)
	}
	id := info.ResponseHeader().Get("X-Request-Id")
	if id == "" {
		t.Error("no X-Request-Id")
	}
	logged := false
	for line := range strings.Lines(r.env.Logs()) {
		if strings.Contains(line, key+" at db-7") && strings.Contains(line, id) {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no log line holds the backend's error for %q and request id %q", key, id)
	}
}

// TestRouteDefences: routes are behind the gateway's session check, CSRF
// guard and token policies like every other service, a browser cannot set
// backend-only request fields in JSON either, and a backend's 401 renews
// the user's token and retries an idempotent call once.
func TestRouteDefences(t *testing.T) {
	t.Parallel()
	r := startRouteEnv(t)

	t.Run("session routes without a session", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"GetTicket", "ListMyTickets", "WatchTickets"} {
			public, backend := r.pair(t, name)
			for _, p := range protocolsFor(public) {
				t.Run(name+"/"+p.Name, func(t *testing.T) {
					t.Parallel()
					seen := &gt.ResponseLog{}
					key := "anon-" + keyID(t)
					answers, _, err := callRoute(testContext(t, 30*time.Second), client(r.env.BrowserRecording(t, seen), p), public, publicRequest(public, backend, key))
					if len(answers) > 0 {
						t.Errorf("%d answers without a session", len(answers))
					}
					gt.WantReason(t, name, err, session.ReasonNoSession)
					if n := len(r.fake.Calls(key)); n != 0 {
						t.Errorf("backend received %d requests", n)
					}
					for _, rec := range seen.All() {
						if leak := findLeak(r.needles, rec.Text); leak != "" {
							t.Errorf("%s: response holds %s", rec.What, leak)
						}
					}
				})
			}
		}
	})

	t.Run("anonymous route with a session sends no token", func(t *testing.T) {
		t.Parallel()
		public, backend := r.pair(t, "ListTickets")
		b := r.env.SignedIn(t, user)
		key := "signed-in-" + keyID(t)
		answers, _, err := callRoute(testContext(t, 30*time.Second), b.Client(gt.Connect), public, publicRequest(public, backend, key))
		if err != nil {
			t.Fatal(err)
		}
		checkAnswers(t, answers, expectedAnswers(public, backend, key, 0))
		checkBackendCall(t, r.fake, key, backendRequest(backend, key, ""), false)
	})

	t.Run("cross-site", func(t *testing.T) {
		t.Parallel()
		b := r.env.SignedIn(t, user)
		cases := []struct {
			name    string
			method  string
			get     bool // Connect GET, else Connect JSON POST
			csrf    bool // send X-CSRF
			origin  string
			fetch   string
			allowed bool
		}{
			{name: "GetTicket over GET without X-CSRF", method: "GetTicket", get: true},
			{name: "GetTicket over GET from a foreign Origin", method: "GetTicket", get: true, csrf: true, origin: "https://evil.example"},
			{name: "GetTicket over GET with X-CSRF", method: "GetTicket", get: true, csrf: true, allowed: true},
			{name: "GetTicket from a foreign Origin", method: "GetTicket", origin: "https://evil.example"},
			{name: "ListMyTickets from a foreign Origin", method: "ListMyTickets", origin: "https://evil.example"},
			{name: "ListMyTickets with Origin null", method: "ListMyTickets", origin: "null"},
			{name: "GetTicket with Sec-Fetch-Site cross-site", method: "GetTicket", fetch: "cross-site"},
			{name: "GetTicket from the gateway's Origin", method: "GetTicket", origin: r.env.Public, allowed: true},
			{name: "ListMyTickets without Origin", method: "ListMyTickets", allowed: true},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				key := "csrf-" + keyID(t)
				field := "filter"
				if c.method == "GetTicket" {
					field = "ticketId"
				}
				message := fmt.Sprintf(`{%q:%q}`, field, key)
				target := r.env.Public + "/" + webService + "/" + c.method
				var req *http.Request
				var err error
				if c.get {
					query := url.Values{"connect": {"v1"}, "encoding": {"json"}, "message": {message}}
					req, err = http.NewRequest(http.MethodGet, target+"?"+query.Encode(), nil)
				} else {
					req, err = http.NewRequest(http.MethodPost, target, strings.NewReader(message))
					req.Header.Set("Content-Type", "application/json")
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.csrf {
					req.Header.Set(security.CSRFHeader, "1")
				}
				req.Header.Set("Cookie", b.CookieHeader())
				if c.origin != "" {
					req.Header.Set("Origin", c.origin)
				}
				if c.fetch != "" {
					req.Header.Set("Sec-Fetch-Site", c.fetch)
				}
				status, body := send(t, r.env.Plain, req)
				calls := len(r.fake.Calls(key))
				if c.allowed {
					if status != http.StatusOK || calls != 1 {
						t.Fatalf("status %d, %d backend calls, want 200 and 1; body %.300s", status, calls, body)
					}
					return
				}
				if status != http.StatusForbidden || !strings.Contains(body, `"permission_denied"`) {
					t.Errorf("status %d, body %.300s; want 403 permission_denied", status, body)
				}
				if calls != 0 {
					t.Errorf("backend received %d requests", calls)
				}
			})
		}
	})

	t.Run("backend-only request fields in JSON", func(t *testing.T) {
		t.Parallel()
		b := r.env.SignedIn(t, user)
		for _, name := range []string{"ListTickets", "GetTicket", "ListMyTickets"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				public, backend := r.pair(t, name)
				key := "json-" + keyID(t)
				body := fmt.Sprintf(`{"filter":%q,"ticketId":%q,"pageSize":10,`+
					`"accountId":"victim","account_id":"victim","includeInternal":true,"includeHidden":true,"tenant":"victim","tenantId":"7"}`, key, key)
				req, err := http.NewRequest(http.MethodPost, r.env.Public+"/"+webService+"/"+name, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Cookie", b.CookieHeader())
				status, res := send(t, r.env.Plain, req)
				switch status {
				case http.StatusOK:
					// The anonymous ListTickets has no bound field and no token.
					subject := user
					if public.Input().FullName() == "routese2e.web.v1.ListTicketsRequest" {
						subject = ""
					}
					checkBackendCall(t, r.fake, key, backendRequest(backend, key, subject), subject != "")
				case http.StatusBadRequest:
					if n := len(r.fake.Calls(key)); n != 0 {
						t.Errorf("refused, yet the backend received %d requests", n)
					}
				default:
					t.Errorf("status %d, body %.300s", status, res)
				}
			})
		}
	})

	t.Run("backend refuses the token", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			method string
			// retried: the backend method is idempotent, so the call is
			// sent again with a renewed token.
			retried bool
		}{
			{method: "GetTicket", retried: true},
			{method: "ListMyTickets"},
		}
		for _, c := range cases {
			t.Run(c.method, func(t *testing.T) {
				t.Parallel()
				public, backend := r.pair(t, c.method)
				b := r.env.SignedIn(t, user)
				key := "refuse-once:" + keyID(t)
				ctx, info := connect.NewClientContext(testContext(t, 30*time.Second))
				answers, _, err := callRoute(ctx, b.Client(gt.Connect), public, publicRequest(public, backend, key))
				calls := r.fake.Calls(key)
				if !c.retried {
					if code := connect.CodeOf(err); code != connect.CodeUnavailable {
						t.Errorf("call: %v, want code unavailable", err)
					}
					if leak := findLeak(r.needles, gt.ErrorText(err, info)); leak != "" {
						t.Errorf("error holds %s", leak)
					}
					if len(calls) != 1 {
						t.Errorf("backend received %d requests, want 1 (no retry)", len(calls))
					}
					return
				}
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				checkAnswers(t, answers, expectedAnswers(public, backend, key, 0))
				if len(calls) != 2 || calls[0].Token == "" || calls[1].Token == "" || calls[0].Token == calls[1].Token {
					var tokens []string
					for _, c := range calls {
						tokens = append(tokens, c.Token)
					}
					t.Errorf("backend received tokens %q, want 2 calls with 2 different tokens", tokens)
				}
				b.MustSession(t, user)
			})
		}
	})
}

// send sends req and returns the status and the body.
func send(t *testing.T, client *http.Client, req *http.Request) (int, string) {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// TestRouteReflection: server reflection describes the public schema of
// the routes and nothing of the backend's: its services, messages and
// files are not found, nor are the public schemas no route serves.
func TestRouteReflection(t *testing.T) {
	t.Parallel()
	r := startRouteEnv(t)
	grpc := gt.RPC{Name: "grpc", Opts: []connecthttp.Option{connecthttp.WithGRPC()}, H2C: true}
	client := grpcreflect.NewClient(connect.NewClient(connecthttp.NewTransport(r.env.Browser(t).HTTPClient(grpc), r.env.Public, connecthttp.WithGRPC())))
	stream := client.NewStream(testContext(t, 30*time.Second))
	t.Cleanup(func() { _ = stream.Close() })

	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	if !slices.Contains(names, webService) {
		t.Errorf("ListServices = %v, missing %s", names, webService)
	}
	for _, n := range names {
		if strings.HasPrefix(string(n), "routese2e.") && n != webService {
			t.Errorf("ListServices lists %s", n)
		}
	}
	files, err := stream.FileContainingSymbol(webService)
	if err != nil {
		t.Fatalf("FileContainingSymbol(%s): %v", webService, err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.GetName())
		if pkg := f.GetPackage(); pkg != "routese2e.web.v1" && pkg != "google.protobuf" {
			t.Errorf("FileContainingSymbol(%s) describes %s (package %s)", webService, f.GetName(), pkg)
		}
	}
	if !slices.Contains(paths, "routese2e/web/v1/tickets.proto") {
		t.Errorf("FileContainingSymbol(%s) = %v, missing routese2e/web/v1/tickets.proto", webService, paths)
	}

	for _, symbol := range []protoreflect.FullName{
		backendService,
		backendService + ".GetTicket",
		"routese2e.backend.v1.Ticket",
		"routese2e.backend.v1.SharedNote",
		"routese2e.bad.v1.BadService",
		"routese2e.leaky.v1.LeakyService",
	} {
		t.Run(string(symbol), func(t *testing.T) {
			_, err := stream.FileContainingSymbol(symbol)
			wantNotFound(t, err)
		})
	}
	for _, file := range []string{"routese2e/backend/v1/tickets.proto", "routese2e/backend/v1/shared.proto", "routese2e/bad/v1/bad.proto"} {
		t.Run(file, func(t *testing.T) {
			_, err := stream.FileByFilename(file)
			wantNotFound(t, err)
		})
	}
}

// wantNotFound fails unless err is reflection's not_found.
func wantNotFound(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("found, want not_found")
	}
	if grpcreflect.IsReflectionStreamBroken(err) {
		t.Fatalf("stream broken: %v", err)
	}
	if code := connect.CodeOf(err); code != connect.CodeNotFound {
		t.Errorf("%v (%v), want not_found", code, err)
	}
}

// TestCanaryBackend checks the canary itself, called directly: decoded as
// the public type, as a proxy that filters by schema would, its answers
// show unknown fields and canaries, so TestRouteCanary's checks would
// catch such a proxy; and every field of every backend message that an
// answer can hold is set in some answer.
func TestCanaryBackend(t *testing.T) {
	t.Parallel()
	_, files := e2eSchemas(t)
	fake := startCanary(t, files)
	n := needles(files)
	client := connect.NewClient(connecthttp.NewTransport(http.DefaultClient, fake.URL))
	set := map[protoreflect.FullName]bool{}
	reachable := map[protoreflect.FullName]bool{}
	for _, name := range []string{"ListTickets", "GetTicket", "ListMyTickets", "WatchTickets"} {
		t.Run(name, func(t *testing.T) {
			public := method(t, files, webService+"/"+name)
			backend := method(t, files, backendService+"/"+name)
			// Call the backend method, decoding its answers with the public
			// output type: what a naive proxy would send on.
			answers, _, err := callRoute(testContext(t, 30*time.Second), client, publicAs(backend, public), publicRequest(public, backend, "naive-"+name))
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if len(answers) == 0 {
				t.Fatal("no answers")
			}
			for _, a := range answers {
				problems := strings.Join(publicProblems(a, "answer"), "\n")
				if !strings.Contains(problems, "unknown fields") {
					t.Error("the answer decoded as the public type has no unknown fields")
				}
				if !strings.Contains(problems, "does not declare") {
					t.Error("the answer decoded as the public type has no enum number the public enum does not declare")
				}
				raw, err := proto.Marshal(a)
				if err != nil {
					t.Fatal(err)
				}
				if findLeak(n, string(raw)) == "" {
					t.Error("the answer decoded as the public type and encoded again holds no canary")
				}
			}
			for i := range 12 {
				b, _ := fillAnswer(backend.Output(), public.Output(), fmt.Sprint(i))
				markSet(b, set)
			}
			markReachable(backend.Output(), reachable)
		})
	}
	for name := range reachable {
		d, _ := files.FindDescriptorByName(name)
		if _, field := d.(protoreflect.FieldDescriptor); !field || !strings.HasPrefix(string(name), "routese2e.") {
			continue // a message, or a field of a well-known type
		}
		if !set[name] {
			t.Errorf("no answer sets %s", name)
		}
	}
}

// publicAs returns a method descriptor that calls backend's procedure with
// public's message types.
func publicAs(backend, public protoreflect.MethodDescriptor) protoreflect.MethodDescriptor {
	return renamedMethod{MethodDescriptor: public, parent: backend.Parent(), name: backend.Name()}
}

// renamedMethod is a public method under a backend method's name.
type renamedMethod struct {
	protoreflect.MethodDescriptor
	parent protoreflect.Descriptor
	name   protoreflect.Name
}

func (m renamedMethod) Parent() protoreflect.Descriptor { return m.parent }
func (m renamedMethod) Name() protoreflect.Name         { return m.name }

// markSet records the full name of every field set in m, at any depth.
func markSet(m protoreflect.Message, set map[protoreflect.FullName]bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		set[fd.FullName()] = true
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					markSet(mv.Message(), set)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := range v.List().Len() {
					markSet(v.List().Get(i).Message(), set)
				}
			}
		case fd.Message() != nil:
			markSet(v.Message(), set)
		}
		return true
	})
}

// markReachable records the full name of every field of md and of the
// messages its fields hold.
func markReachable(md protoreflect.MessageDescriptor, fields map[protoreflect.FullName]bool) {
	if fields[md.FullName()] {
		return
	}
	fields[md.FullName()] = true // marks md as visited; deleted by the caller
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		fields[fd.FullName()] = true
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		if fd.Message() != nil {
			markReachable(fd.Message(), fields)
		}
	}
}

// Refusals.

// refusalConfig returns a valid configuration (ApplyDefaults done) with
// the descriptor set at descriptors and routes; nothing listens at its
// URLs, which custodian.New does not call.
func refusalConfig(descriptors string, routes []config.Route) *config.Config {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := &config.Config{
		PublicURL: "http://localhost:1",
		OIDC:      config.OIDC{Issuer: "http://127.0.0.1:1", ClientID: "custodian-test", ClientSecret: "secret"},
		Session:   config.Session{Keys: [][]byte{key}},
		Backends: []config.Backend{
			{Name: "canary", URL: "http://127.0.0.1:1", Token: config.TokenUser},
			{Name: "canary-grpc", URL: "http://127.0.0.1:1", Protocol: config.ProtocolGRPC, Token: config.TokenUser},
		},
		Routes: config.Routes{Descriptors: descriptors, Methods: routes},
	}
	cfg.ApplyDefaults()
	return cfg
}

// TestRouteRefusals: custodian.New refuses to start with a route that
// cannot be served safely, and says which route and which field.
func TestRouteRefusals(t *testing.T) {
	t.Parallel()
	path, _ := e2eSchemas(t)
	garbage := filepath.Join(t.TempDir(), "garbage.binpb")
	if err := os.WriteFile(garbage, []byte("not a descriptor set"), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		web  = webService + "/"
		back = backendService + "/"
		bad  = "routese2e.bad.v1.BadService/"
	)
	route := func(public, backendMethod string) config.Route {
		return config.Route{Public: public, Backend: "canary", Method: backendMethod}
	}
	bound := func(field string) config.Route {
		r := route(web+"GetTicket", back+"GetTicket")
		r.Bind = map[string]string{field: config.ClaimSubject}
		return r
	}
	allowAny := route(bad+"GetAny", back+"GetTicket")
	allowAny.AllowDynamicTypes = true
	cases := []struct {
		name        string
		descriptors string // default: the e2e set
		routes      []config.Route
		want        string // "" starts
	}{
		{name: "the canary routes start", routes: canaryRoutes()},
		{name: "Any with allow_dynamic_types starts", routes: []config.Route{allowAny}},
		{
			name:   "missing public method",
			routes: []config.Route{route(web+"DeleteTicket", back+"GetTicket")},
			want:   "custodian: routes.methods[0] (routese2e.web.v1.TicketService/DeleteTicket): public: method DeleteTicket not found in service routese2e.web.v1.TicketService",
		},
		{
			name:   "missing public service",
			routes: []config.Route{route("routese2e.web.v2.TicketService/GetTicket", back+"GetTicket")},
			want:   "custodian: routes.methods[0] (routese2e.web.v2.TicketService/GetTicket): public: service routese2e.web.v2.TicketService not found in the descriptor set",
		},
		{
			name:   "missing backend method",
			routes: []config.Route{route(web+"GetTicket", back+"FetchTicket")},
			want:   "custodian: routes.methods[0] (routese2e.web.v1.TicketService/GetTicket): method: method FetchTicket not found in service routese2e.backend.v1.TicketService",
		},
		{
			name:   "public field without a backend field",
			routes: []config.Route{route(bad+"GetExtra", back+"GetTicket")},
			want:   `custodian: routes.methods[0] (routese2e.bad.v1.BadService/GetExtra): routese2e.bad.v1.ExtraResponse field ticket.secret_sauce: backend message routese2e.backend.v1.Ticket has no field "secret_sauce"`,
		},
		{
			name:   "public field of another kind",
			routes: []config.Route{route(bad+"GetWrongKind", back+"GetTicket")},
			want:   "custodian: routes.methods[0] (routese2e.bad.v1.BadService/GetWrongKind): routese2e.bad.v1.WrongKindResponse field ticket.view_count: is string but the backend field is int64",
		},
		{
			name:   "public enum value the backend lacks",
			routes: []config.Route{route(bad+"GetEnum", back+"GetTicket")},
			want:   "custodian: routes.methods[0] (routese2e.bad.v1.BadService/GetEnum): routese2e.bad.v1.EnumResponse field ticket.status: enum routese2e.bad.v1.Status value STATUS_ARCHIVED = 5: backend enum routese2e.backend.v1.Status has no value named STATUS_ARCHIVED",
		},
		{
			name:   "public type from the backend's package",
			routes: []config.Route{route(bad+"GetShared", back+"GetTicket")},
			want:   "custodian: routes.methods[0] (routese2e.bad.v1.BadService/GetShared): field SharedResponse.note: type routese2e.backend.v1.SharedNote is declared in the backend's package routese2e.backend.v1; declare the public type in the public schema",
		},
		{
			name:   "public file imports the backend's file",
			routes: []config.Route{route("routese2e.leaky.v1.LeakyService/GetTicket", back+"GetTicket")},
			want:   "custodian: routes.methods[0] (routese2e.leaky.v1.LeakyService/GetTicket): the public schema imports the backend's file routese2e/backend/v1/tickets.proto, which reflection would then describe",
		},
		{
			name:   "Any without allow_dynamic_types",
			routes: []config.Route{route(bad+"GetAny", back+"GetTicket")},
			want:   "custodian: routes.methods[0] (routese2e.bad.v1.BadService/GetAny): routese2e.bad.v1.AnyResponse field payload: is google.protobuf.Any, which carries arbitrary, possibly internal types; refused unless dynamic types are allowed",
		},
		{
			name:   "client-streaming method",
			routes: []config.Route{route(bad+"ImportTickets", back+"ImportTickets")},
			want:   "custodian: routes.methods[0] (routese2e.bad.v1.BadService/ImportTickets): routese2e.bad.v1.BadService.ImportTickets: is client-streaming; only unary and server-streaming routes are supported",
		},
		{
			name:   "unary public method, streaming backend method",
			routes: []config.Route{route(bad+"WatchOnce", back+"WatchTickets")},
			want:   "custodian: routes.methods[0] (routese2e.bad.v1.BadService/WatchOnce): routese2e.bad.v1.BadService.WatchOnce: is unary but backend method routese2e.backend.v1.TicketService.WatchTickets is server-streaming",
		},
		{
			name:   "binding a field of the public request",
			routes: []config.Route{bound("ticket_id")},
			want:   "custodian: routes.methods[0] (routese2e.web.v1.TicketService/GetTicket): cannot bind routese2e.backend.v1.GetTicketRequest.ticket_id: public request routese2e.web.v1.GetTicketRequest has a field of that name, so a browser could set it",
		},
		{
			name:   "binding a bool field",
			routes: []config.Route{bound("include_internal")},
			want:   "custodian: routes.methods[0] (routese2e.web.v1.TicketService/GetTicket): cannot bind routese2e.backend.v1.GetTicketRequest.include_internal: is bool; a bound field must be a singular string or integer",
		},
		{
			name:   "binding a missing field",
			routes: []config.Route{bound("account_id")},
			want:   "custodian: routes.methods[0] (routese2e.web.v1.TicketService/GetTicket): cannot bind routese2e.backend.v1.GetTicketRequest.account_id: backend request has no such field",
		},
		{
			name: "anonymous route that binds a claim",
			routes: []config.Route{{Public: web + "ListMyTickets", Backend: "canary", Method: back + "ListMyTickets", Token: config.TokenNone, Anonymous: true,
				Bind: map[string]string{"account_id": config.ClaimSubject}}},
			want: "custodian: routes.methods[0].bind: binds claims of the session, so the route cannot be anonymous",
		},
		{
			name:   "the second route",
			routes: []config.Route{route(web+"GetTicket", back+"GetTicket"), route(bad+"GetExtra", back+"GetTicket")},
			want:   `custodian: routes.methods[1] (routese2e.bad.v1.BadService/GetExtra): routese2e.bad.v1.ExtraResponse field ticket.secret_sauce: backend message routese2e.backend.v1.Ticket has no field "secret_sauce"`,
		},
		{
			name:        "missing descriptor set",
			descriptors: path + ".missing",
			routes:      []config.Route{route(web+"GetTicket", back+"GetTicket")},
			want:        "custodian: routes.descriptors: descriptor set: open " + path + ".missing: no such file or directory",
		},
		{
			name:        "not a descriptor set",
			descriptors: garbage,
			routes:      []config.Route{route(web+"GetTicket", back+"GetTicket")},
			want:        "custodian: routes.descriptors: descriptor set " + garbage + " is not a binary FileDescriptorSet (buf build -o FILE.binpb): ",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			descriptors := c.descriptors
			if descriptors == "" {
				descriptors = path
			}
			_, err := custodian.New(refusalConfig(descriptors, c.routes))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case c.want == "":
			case err == nil:
				t.Fatalf("New succeeded, want %q", c.want)
			case strings.HasSuffix(c.want, ": ") && strings.HasPrefix(err.Error(), c.want):
				// The decoder's own words follow.
			case err.Error() != c.want:
				t.Errorf("New:\n got %s\nwant %s", err, c.want)
			}
		})
	}
}
