package custodian_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/session"
)

// tooLargeMessage is what a request over a read limit is told.
const tooLargeMessage = "request is too large"

// attackSizesAndCaching is the suite's group for oversized bodies and for
// Cache-Control, against the main target (alice signed in, max_body_bytes
// suiteMaxBody, appOrigin allowed).
//
// A request over a read limit is a mistake the client must not repeat: it
// is answered 413 (Connect unary, plain routes) or invalid_argument (gRPC,
// gRPC-Web), never 429 or resource_exhausted, which is the rate limiter's
// answer (with Retry-After) and which clients retry. Every answer to a
// request with the session cookie carries exactly one Cache-Control:
// "private, no-store".
func attackSizesAndCaching(t *testing.T, main *attackTarget, aliceCookie string) {
	t.Run("oversized bodies", func(t *testing.T) { attackOversized(t, main, aliceCookie) })
	t.Run("a Connect client does not retry", func(t *testing.T) { attackNoRetry(t, main) })
	t.Run("one Cache-Control", func(t *testing.T) { attackOneCacheControl(t, main, aliceCookie) })
}

// sizedBody returns build(k) for the k that makes it exactly n bytes long.
func sizedBody(t *testing.T, n int, build func(k int) []byte) []byte {
	t.Helper()
	for k := n; k >= 0; k-- {
		if b := build(k); len(b) == n {
			return b
		} else if len(b) < n {
			break
		}
	}
	t.Fatalf("no body of exactly %d bytes", n)
	return nil
}

// dashboardJSON is a GetDashboard request of n bytes, padded with an
// unknown field (dropped when read).
func dashboardJSON(t *testing.T, n int) []byte {
	return sizedBody(t, n, func(k int) []byte {
		return []byte(`{"recentOrderCount":1,"pad":"` + strings.Repeat("x", k) + `"}`)
	})
}

// dashboardProto is a binary GetDashboard request of n bytes, padded with
// an unknown field (kept as unknown bytes, accepted).
func dashboardProto(t *testing.T, n int) []byte {
	return sizedBody(t, n, func(k int) []byte {
		b := protowire.AppendTag(nil, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
		b = protowire.AppendTag(b, 99, protowire.BytesType)
		return protowire.AppendBytes(b, bytes.Repeat([]byte("x"), k))
	})
}

func attackOversized(t *testing.T, main *attackTarget, aliceCookie string) {
	type kind int
	const (
		connectUnary kind = iota
		grpcLike
		plain
	)
	cookie := []string{"Cookie", aliceCookie, "Origin", appOrigin}
	protocols := []struct {
		name    string
		client  *http.Client
		path    string
		headers []string
		kind    kind
		body    func(t *testing.T, n int) []byte
		// atLimit is the answer a request exactly at the limit gets: it is
		// read and served.
		atLimit expect
	}{
		{
			name: "Connect JSON GetDashboard", client: main.web, path: getDashboard, kind: connectUnary, body: dashboardJSON,
			headers: append([]string{"Content-Type", "application/json", "Connect-Protocol-Version", "1"}, cookie...),
			atLimit: expect{status: []int{http.StatusOK}, code: "ok", backendCalls: true},
		},
		{
			name: "Connect binary GetDashboard over h2c", client: main.h2c, path: getDashboard, kind: connectUnary, body: dashboardProto,
			headers: append([]string{"Content-Type", "application/proto", "Connect-Protocol-Version", "1"}, cookie...),
			atLimit: expect{status: []int{http.StatusOK}, code: "ok", backendCalls: true},
		},
		{
			name: "gRPC GetDashboard", client: main.h2c, path: getDashboard, kind: grpcLike,
			body:    func(t *testing.T, n int) []byte { return envelope(0, dashboardProto(t, n)) },
			headers: append([]string{"Content-Type", "application/grpc", "Te", "trailers"}, cookie...),
			atLimit: expect{code: "ok", backendCalls: true},
		},
		{
			name: "gRPC-Web GetDashboard", client: main.web, path: getDashboard, kind: grpcLike,
			body:    func(t *testing.T, n int) []byte { return envelope(0, dashboardProto(t, n)) },
			headers: append([]string{"Content-Type", "application/grpc-web+proto", "X-Grpc-Web", "1"}, cookie...),
			atLimit: expect{code: "ok", backendCalls: true},
		},
		{
			// The provider's back-channel logout: a plain route, no cookie.
			name: "POST /auth/backchannel-logout", client: main.web, path: "/auth/backchannel-logout", kind: plain,
			body: func(t *testing.T, n int) []byte {
				return sizedBody(t, n, func(k int) []byte { return []byte("logout_token=" + strings.Repeat("a", k)) })
			},
			headers: []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", appOrigin},
			atLimit: expect{status: []int{http.StatusBadRequest}, noBackendCalls: true},
		},
	}
	sizes := []struct {
		name          string
		size          int
		contentLength bool
	}{
		{"one byte over, with Content-Length", suiteMaxBody + 1, true},
		{"8 times over, with Content-Length", 8 * suiteMaxBody, true},
		{"one byte over, chunked", suiteMaxBody + 1, false},
		{"8 times over, chunked", 8 * suiteMaxBody, false},
		{"at the limit, with Content-Length", suiteMaxBody, true},
		{"at the limit, chunked", suiteMaxBody, false},
	}
	for _, p := range protocols {
		for _, sz := range sizes {
			t.Run(p.name+"/"+sz.name, func(t *testing.T) {
				var rd io.Reader = bytes.NewReader(p.body(t, sz.size))
				if !sz.contentLength {
					rd = io.MultiReader(rd) // unknown length: chunked on HTTP/1.1
				}
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, main.base+p.path, rd)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i+1 < len(p.headers); i += 2 {
					req.Header.Add(p.headers[i], p.headers[i+1])
				}
				if !sz.contentLength {
					req.ContentLength = -1
				}
				before := main.calls()
				r := main.do(p.client, req)
				want := p.atLimit
				if sz.size > suiteMaxBody {
					want = expect{noBackendCalls: true, absent: []string{"Retry-After"}}
					switch p.kind {
					case connectUnary:
						want.status, want.code = []int{http.StatusRequestEntityTooLarge}, "invalid_argument"
						want.header = map[string]string{"Content-Type": "application/json"}
					case grpcLike:
						want.code = "invalid_argument"
					case plain:
						want.status = []int{http.StatusRequestEntityTooLarge}
						want.header = map[string]string{"Content-Type": "text/plain; charset=utf-8"}
					}
				}
				want.verify(t, r)
				if sz.size > suiteMaxBody {
					if rateLimited(r) {
						t.Errorf("%v looks like a rate-limit refusal", r)
					}
					if msg := errorMessage(r); msg != tooLargeMessage {
						t.Errorf("message %q, want %q", msg, tooLargeMessage)
					}
				}
				// The browser app can read the answer (CORS), and no cache
				// keeps it.
				if got := r.header.Get("Access-Control-Allow-Origin"); got != appOrigin {
					t.Errorf("Access-Control-Allow-Origin %q, want %q", got, appOrigin)
				}
				wantCache := "private, no-store"
				if p.kind == plain {
					wantCache = "no-store"
				}
				if got := r.header.Values("Cache-Control"); !slices.Equal(got, []string{wantCache}) {
					t.Errorf("Cache-Control %q, want [%s]", got, wantCache)
				}
				after := main.calls()
				if want.noBackendCalls && after != before {
					t.Errorf("the backends received %d calls", after-before)
				}
				if want.backendCalls && after == before {
					t.Error("the backends received nothing: the request did not work")
				}
				main.healthy(t)
				main.alive(t)
			})
		}
	}
}

// errorMessage returns the message of a Connect error body, a gRPC status
// (trailers, headers or the gRPC-Web trailer frame) or a plain text body.
func errorMessage(r attackResult) string {
	ct := r.header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/grpc-web"):
		if m := r.header.Get("Grpc-Message"); m != "" {
			return m
		}
		if i := bytes.Index(r.body, []byte("grpc-message:")); i >= 0 {
			m, _, _ := strings.Cut(string(r.body[i+len("grpc-message:"):]), "\r\n")
			return strings.TrimSpace(m)
		}
	case strings.HasPrefix(ct, "application/grpc"):
		if m := r.trailer.Get("Grpc-Message"); m != "" {
			return m
		}
		return r.header.Get("Grpc-Message")
	case strings.HasPrefix(ct, "application/json"):
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(r.body, &e) == nil {
			return e.Message
		}
	}
	return strings.TrimSpace(string(r.body))
}

// attackNoRetry: generated clients, in every protocol, send an oversized
// UpdateProfile once and learn invalid_argument, "request is too large".
func attackNoRetry(t *testing.T, main *attackTarget) {
	var log gt.ResponseLog
	b := main.e.BrowserRecording(t, &log)
	b.Login(t, "alice", "")
	for _, p := range gt.RPCProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			count := func() int {
				n := 0
				for _, r := range log.All() {
					if strings.Contains(r.What, updateProfile) {
						n++
					}
				}
				return n
			}
			before, calls := count(), main.calls()
			_, err := b.Account(p).UpdateProfile(context.Background(), &storefrontv1.UpdateProfileRequest{DisplayName: strings.Repeat("a", 8*suiteMaxBody)})
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tooLargeMessage) {
				t.Errorf("UpdateProfile: %v, want invalid_argument: %s", err, tooLargeMessage)
			}
			if n := count() - before; n != 1 {
				t.Errorf("the client sent UpdateProfile %d times, want once", n)
			}
			if main.calls() != calls {
				t.Error("a backend was called")
			}
		})
	}
}

// attackOneCacheControl calls every method of every browser-facing service
// in every protocol, and the pages, with alice's cookie, and checks each
// answer (success or refusal) has exactly one Cache-Control, "private,
// no-store"; anonymous answers have at most one.
func attackOneCacheControl(t *testing.T, main *attackTarget, aliceCookie string) {
	// Logout ends the session it is called with: it gets its own.
	victim := main.e.SignedIn(t, "alice")
	victimCookie := gt.SessionCookie + "=" + victim.Cookie(gt.SessionCookie)
	// SignOutEverywhere ends every session of its caller's user: it gets a
	// user of its own.
	everywhere, _, err := main.e.Gateway.Sessions().Create(context.Background(), session.User{Subject: "sign-out-everywhere"}, "", session.Tokens{AccessToken: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	everywhereCookie := everywhere.Name + "=" + everywhere.Value

	var procedures []string
	for _, name := range append(main.e.Gateway.Services(), "grpc.health.v1.Health") {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			if m := methods.Get(i); !m.IsStreamingClient() && !m.IsStreamingServer() {
				procedures = append(procedures, "/"+name+"/"+string(m.Name()))
			}
		}
	}
	if len(procedures) < 10 {
		t.Fatalf("only %d procedures found: %v", len(procedures), procedures)
	}
	check := func(t *testing.T, what string, r attackResult, cookie bool) {
		t.Helper()
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		got := r.header.Values("Cache-Control")
		switch {
		case cookie && !slices.Equal(got, []string{"private, no-store"}):
			t.Errorf("%s: %v: Cache-Control %q, want exactly [private, no-store]", what, r, got)
		case len(got) > 1:
			t.Errorf("%s: %v: Cache-Control %q, want at most one", what, r, got)
		}
	}
	for _, procedure := range procedures {
		for _, cookie := range []bool{true, false} {
			who := "anonymous"
			if cookie {
				who = "alice"
			}
			t.Run(procedure+"/"+who, func(t *testing.T) {
				var headers []string
				if cookie {
					c := aliceCookie
					if strings.HasSuffix(procedure, "/Logout") {
						c = victimCookie
					}
					if strings.HasSuffix(procedure, "/SignOutEverywhere") {
						c = everywhereCookie
					}
					headers = []string{"Cookie", c}
				}
				check(t, "Connect JSON", main.connectJSON(procedure, `{}`, headers...), cookie)
				check(t, "gRPC-Web", main.grpcWeb(procedure, envelope(0, nil), headers...), cookie)
				check(t, "gRPC", main.grpc(procedure, envelope(0, nil), headers...), cookie)
				if procedure == getSession && !cookie {
					r := main.connectJSON(procedure, `{}`)
					if got := r.header.Values("Cache-Control"); !slices.Equal(got, []string{"no-store"}) {
						t.Errorf("anonymous GetSession: Cache-Control %q, want [no-store]", got)
					}
				}
			})
		}
	}
	pages := []struct {
		method, path string
	}{
		{http.MethodGet, "/"},
		{http.MethodGet, "/auth/login?return_to=%2Forders"},
		{http.MethodGet, "/auth/callback?state=forged&code=forged"},
		{http.MethodGet, "/auth/logout?id=x"},
		{http.MethodPost, "/auth/logout"},
		{http.MethodGet, "/auth/admin"},
		{http.MethodGet, "/healthz"},
		{http.MethodGet, "/readyz"},
		{http.MethodGet, "/nothing-here"},
		{http.MethodGet, dashboardGETPath},
	}
	for _, p := range pages {
		for _, cookie := range []bool{true, false} {
			who := "anonymous"
			if cookie {
				who = "alice"
			}
			t.Run(p.method+" "+p.path+"/"+who, func(t *testing.T) {
				var headers []string
				if cookie {
					c := aliceCookie
					if p.path == "/auth/logout" {
						c = victimCookie // it would end alice's session
					}
					headers = []string{"Cookie", c, "X-CSRF", "1"}
				}
				r := main.send(p.method, p.path, nil, headers...)
				check(t, p.method+" "+p.path, r, cookie)
				if strings.HasPrefix(p.path, "/auth/") && len(r.header.Values("Cache-Control")) != 1 {
					t.Errorf("%s %s: Cache-Control %q, want one", p.method, p.path, r.header.Values("Cache-Control"))
				}
			})
		}
	}
	main.alive(t)
}

// dashboardGETPath is a Connect GET of GetDashboard.
const dashboardGETPath = getDashboard + "?encoding=json&message=%7B%7D"
