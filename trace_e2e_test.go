package custodian_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/demo"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/login"
)

// headerLog records the request headers of the provider endpoints the
// gateway calls itself.
type headerLog struct {
	mu      sync.Mutex
	entries []loggedRequest
}

type loggedRequest struct {
	path   string
	header http.Header
}

// wrap returns a handler that records each request and passes it to the
// handler next returns (known only once the environment is built).
func (l *headerLog) wrap(next func() http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.entries = append(l.entries, loggedRequest{path: r.URL.Path, header: r.Header.Clone()})
		l.mu.Unlock()
		next().ServeHTTP(w, r)
	})
}

func (l *headerLog) all() []loggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedRequest(nil), l.entries...)
}

// browserTrace is the trace context a browser (or a script on the page)
// sends: a traceparent of its choosing and a tracestate with a marker.
type browserTrace struct {
	traceID, spanID, marker string
}

func newBrowserTrace() browserTrace {
	return browserTrace{traceID: randHex(16), spanID: randHex(8), marker: "marker" + randHex(8)}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (bt browserTrace) traceparent() string { return "00-" + bt.traceID + "-" + bt.spanID + "-01" }

func (bt browserTrace) tracestate() string { return "browser=" + bt.marker + ",other=1" }

func (bt browserTrace) set(h interface{ Set(string, string) }) {
	h.Set("Traceparent", bt.traceparent())
	h.Set("Tracestate", bt.tracestate())
}

// leaks returns the first header of h that carries the browser's trace id
// or tracestate marker, "" if none does.
func (bt browserTrace) leaks(h http.Header) string {
	for name, values := range h {
		for _, v := range values {
			if strings.Contains(v, bt.traceID) || strings.Contains(v, bt.marker) {
				return name + ": " + v
			}
		}
	}
	return ""
}

// traceparentParts splits a version-00 traceparent into its trace id and
// span id, failing the test if h has not exactly one well-formed one.
func traceparentParts(t *testing.T, what string, h http.Header) (traceID, spanID string) {
	t.Helper()
	values := h.Values("Traceparent")
	if len(values) != 1 {
		t.Errorf("%s: traceparent %q, want one", what, values)
		return "", ""
	}
	parts := strings.Split(values[0], "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		t.Errorf("%s: traceparent %q is not a version-00 traceparent", what, values[0])
		return "", ""
	}
	return parts[1], parts[2]
}

// TestTraceContextFromBrowser: the trace context a browser sends decides
// nothing behind the gateway. By default every call starts a new trace:
// the backends get a traceparent with a trace id of the gateway's and no
// tracestate of the browser's, on every protocol; the login routes (whose
// calls to the provider go out from the gateway) pass nothing on either.
// With server.trust_trace_context, the caller's trace is continued.
func TestTraceContextFromBrowser(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{false, true} {
		name := "untrusted"
		if trust {
			name = "trusted"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The provider lives on the gateway's own listener; these
			// routes, more specific than its prefix, record what the
			// gateway sends it.
			var env atomic.Pointer[gt.Env]
			idp := func() http.Handler { return env.Load().World.IdP }
			providerLog := &headerLog{}
			var opts []gt.Option
			for _, endpoint := range []string{"token", "revoke", "introspect", "userinfo"} {
				opts = append(opts, gt.WithHandler(demo.IdPPath+endpoint, providerLog.wrap(idp)))
			}
			opts = append(opts, gt.WithConfig(func(c *config.Config) { c.Server.TrustTraceContext = trust }))
			e, fakes := gt.NewFakeBackendEnv(t, opts...)
			env.Store(e)
			bt := newBrowserTrace()

			// Sign in through the login routes, each request with the
			// browser's trace context.
			b := e.Browser(t)
			req, err := http.NewRequest(http.MethodGet, e.Public+"/auth/login", nil)
			if err != nil {
				t.Fatal(err)
			}
			bt.set(req.Header)
			start := b.Do(t, req)
			if start.Status != http.StatusSeeOther {
				t.Fatalf("GET /auth/login: status %d", start.Status)
			}
			callback := b.SignIn(t, start.Location(t).String(), "alice")
			req, err = http.NewRequest(http.MethodGet, callback.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			bt.set(req.Header)
			if h := b.Do(t, req); h.Status != http.StatusOK {
				t.Fatalf("callback: status %d; body %.300q", h.Status, h.Body)
			}
			b.MustSession(t, "alice")
			// Warm up: the first call opens the connections to the backends
			// and fetches the gateway's own token.
			if _, err := b.Account(gt.Connect).GetDashboard(context.Background(), &storefrontv1.GetDashboardRequest{}); err != nil {
				t.Fatalf("warm-up GetDashboard: %v", err)
			}

			for _, p := range gt.RPCProtocols() {
				fakes.Reset()
				ctx, info := connect.NewClientContext(context.Background())
				bt.set(info.RequestHeader())
				// A section that misses its deadline on a loaded machine is
				// left out of the answer; what reached a backend is checked.
				if _, err := b.Account(p).GetDashboard(ctx, &storefrontv1.GetDashboardRequest{}); err != nil {
					t.Fatalf("%s: GetDashboard: %v", p.Name, err)
				}
				if fakes.TotalCalls() == 0 {
					t.Fatalf("%s: no backend was called", p.Name)
				}
				gatewayTraces := map[string]bool{}
				for _, f := range fakes.All() {
					for _, r := range f.Requests() {
						what := p.Name + ": " + f.Name + " " + r.Procedure
						traceID, spanID := traceparentParts(t, what, r.Header)
						if spanID == bt.spanID {
							t.Errorf("%s: the backend's parent is the browser's span %s", what, spanID)
						}
						if !trust {
							if leak := bt.leaks(r.Header); leak != "" {
								t.Errorf("%s: the browser's trace context reached the backend: %s", what, leak)
							}
							if ts := r.Header.Values("Tracestate"); len(ts) != 0 {
								t.Errorf("%s: tracestate %q reached the backend", what, ts)
							}
							gatewayTraces[traceID] = true
							continue
						}
						if traceID != bt.traceID {
							t.Errorf("%s: trace id %s, want the trusted caller's %s", what, traceID, bt.traceID)
						}
						if got := r.Header.Get("Tracestate"); got != bt.tracestate() {
							t.Errorf("%s: tracestate %q, want the trusted caller's %q", what, got, bt.tracestate())
						}
					}
				}
				// One browser call, one trace of the gateway's.
				if !trust && len(gatewayTraces) != 1 {
					t.Errorf("%s: the backend calls of one browser call carry %d trace ids %v, want one", p.Name, len(gatewayTraces), gatewayTraces)
				}
			}

			// Sign out through the login routes: the refresh token is
			// revoked at the provider.
			fakes.Reset()
			req, err = http.NewRequest(http.MethodPost, e.Public+login.LogoutPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(login.CSRFHeader, "1")
			req.Header.Set("Origin", e.Public)
			bt.set(req.Header)
			if h := b.Do(t, req); h.Status != http.StatusSeeOther {
				t.Fatalf("POST %s: status %d", login.LogoutPath, h.Status)
			}
			if n := fakes.TotalCalls(); n != 0 {
				t.Errorf("logout called the backends %d times", n)
			}

			paths := map[string]int{}
			for _, r := range providerLog.all() {
				paths[r.path]++
				if trust {
					continue
				}
				if leak := bt.leaks(r.header); leak != "" {
					t.Errorf("provider %s: the browser's trace context reached the provider: %s", r.path, leak)
				}
				if ts := r.header.Values("Tracestate"); len(ts) != 0 {
					t.Errorf("provider %s: tracestate %q", r.path, ts)
				}
			}
			if paths[demo.IdPPath+"token"] == 0 || paths[demo.IdPPath+"revoke"] == 0 {
				t.Errorf("provider requests %v, want the code exchange and the revocation", paths)
			}
		})
	}
}
