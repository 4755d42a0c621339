package custodian_test

// End-to-end tests of what the gateway tells its operators (issue 14):
// the spans it exports, the metrics of its admin listener, its access log,
// and that none of them ever holds a secret. Every gateway here is the
// real one, on the demo world, on loopback listeners.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/custodian-bff/custodian"
	"github.com/custodian-bff/custodian/demo/backends"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/login"
)

const (
	dashboardMethod   = "acme.storefront.v1.AccountService/GetDashboard"
	getSessionMethod  = "custodian.v1.SessionService/GetSession"
	listProductsRoute = "acme.storefront.v1.ProductService/ListProducts"
)

// grpcRPC is how a server-side client calls the gateway over gRPC (h2c).
var grpcRPC = gt.RPC{Name: "grpc", Opts: []connecthttp.Option{connecthttp.WithGRPC()}, H2C: true}

// telemetryRig is where a gateway's spans and logs go in a test: every span,
// sampled, to an in-memory recorder; every log record, down to debug, as
// JSON into a buffer.
type telemetryRig struct {
	spans *tracetest.SpanRecorder
	tp    *sdktrace.TracerProvider
	logs  *lockedBuffer
}

func newTelemetryRig(t *testing.T) *telemetryRig {
	t.Helper()
	r := &telemetryRig{spans: tracetest.NewSpanRecorder(), logs: &lockedBuffer{}}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(r.spans))
	// Registered before the gateway's, so it runs after the gateway stops.
	t.Cleanup(func() {
		_ = r.tp.Shutdown(context.Background())
		if t.Failed() {
			logs := r.logs.String()
			if len(logs) > 16<<10 {
				logs = logs[len(logs)-16<<10:]
			}
			t.Logf("gateway log (JSON, debug; last 16 KiB):\n%s", logs)
		}
	})
	return r
}

// options give the gateway the rig's tracer provider and logger.
func (r *telemetryRig) options() []gt.Option {
	logger := slogJSON(r.logs)
	return []gt.Option{
		gt.WithGatewayOption(custodian.WithTracerProvider(r.tp)),
		gt.WithGatewayOption(custodian.WithLogger(logger)),
	}
}

// linesOf returns the access-log lines ("call" or "request") of request
// rid written so far.
func (r *telemetryRig) linesOf(t *testing.T, rid string) []map[string]any {
	t.Helper()
	var found []map[string]any
	for _, rec := range r.logRecords(t) {
		if (rec["msg"] == "call" || rec["msg"] == "request") && rec["request_id"] == rid {
			found = append(found, rec)
		}
	}
	return found
}

// serverSpan waits for the server span of the call with request id rid and
// returns it, failing the test unless exactly one has that id.
func (r *telemetryRig) serverSpan(t *testing.T, rid string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	waitFor(t, "the server span of request "+rid, func() bool {
		found = found[:0]
		for _, s := range r.spans.Ended() {
			if s.SpanKind() == trace.SpanKindServer && attr(s, "custodian.request_id") == rid {
				found = append(found, s)
			}
		}
		return len(found) > 0
	})
	if len(found) != 1 {
		t.Fatalf("%d server spans with request id %s, want 1", len(found), rid)
	}
	return found[0]
}

// trace returns the ended spans of trace id.
func (r *telemetryRig) trace(id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// logRecords returns every log record, parsed.
func (r *telemetryRig) logRecords(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, line)
		}
		out = append(out, rec)
	}
	return out
}

// accessLines waits for the access log line of the call with request id
// rid and returns every such line.
func (r *telemetryRig) accessLines(t *testing.T, rid string) []map[string]any {
	t.Helper()
	var found []map[string]any
	waitFor(t, "the access log line of request "+rid, func() bool {
		found = found[:0]
		for _, rec := range r.logRecords(t) {
			if rec["msg"] == "call" && rec["request_id"] == rid {
				found = append(found, rec)
			}
		}
		return len(found) > 0
	})
	return found
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond for up to 5 seconds: a span or log line of a call is
// written just after its answer has left.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// attr returns the value of span attribute key as a string, "" without one.
func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// spanText is everything an exporter would send of s, as text.
func spanText(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "span %q kind=%s trace=%s span=%s parent=%s state=%s status=%s:%q scope=%s@%s dropped=%d/%d/%d\n",
		s.Name(), s.SpanKind(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID(),
		s.SpanContext().TraceState(), s.Status().Code, s.Status().Description,
		s.InstrumentationScope().Name, s.InstrumentationScope().Version,
		s.DroppedAttributes(), s.DroppedEvents(), s.DroppedLinks())
	for _, kv := range s.Attributes() {
		fmt.Fprintf(&b, "  attribute %s=%s\n", kv.Key, kv.Value.Emit())
	}
	for _, ev := range s.Events() {
		fmt.Fprintf(&b, "  event %q\n", ev.Name)
		for _, kv := range ev.Attributes {
			fmt.Fprintf(&b, "    %s=%s\n", kv.Key, kv.Value.Emit())
		}
	}
	for _, l := range s.Links() {
		fmt.Fprintf(&b, "  link trace=%s span=%s state=%s\n", l.SpanContext.TraceID(), l.SpanContext.SpanID(), l.SpanContext.TraceState())
		for _, kv := range l.Attributes {
			fmt.Fprintf(&b, "    %s=%s\n", kv.Key, kv.Value.Emit())
		}
	}
	if res := s.Resource(); res != nil {
		for _, kv := range res.Attributes() {
			fmt.Fprintf(&b, "  resource %s=%s\n", kv.Key, kv.Value.Emit())
		}
	}
	return b.String()
}

// tracker makes the test's RPCs to the gateway and keeps the request id
// of each, so that the test can wait for all their spans and log lines.
type tracker struct {
	mu   sync.Mutex
	rids []string
}

// call runs f with a client context carrying header and returns the
// call's request id (X-Request-Id), failing the test without one.
func (c *tracker) call(t *testing.T, header map[string]string, f func(ctx context.Context) error) (string, error) {
	t.Helper()
	ctx, info := connect.NewClientContext(context.Background())
	for k, v := range header {
		info.RequestHeader().Set(k, v)
	}
	err := f(ctx)
	rid := info.ResponseHeader().Get("X-Request-Id")
	if rid == "" {
		t.Fatalf("no X-Request-Id on the answer (error %v)", err)
	}
	c.mu.Lock()
	c.rids = append(c.rids, rid)
	c.mu.Unlock()
	return rid, err
}

func (c *tracker) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rids)
}

// dashboard calls GetDashboard as b over p.
func (c *tracker) dashboard(t *testing.T, b *gt.Browser, p gt.RPC, header map[string]string) (*storefrontv1.GetDashboardResponse, string, error) {
	t.Helper()
	var res *storefrontv1.GetDashboardResponse
	rid, err := c.call(t, header, func(ctx context.Context) error {
		var err error
		res, err = storefrontv1connect.NewAccountServiceClient(b.Client(p)).GetDashboard(ctx, &storefrontv1.GetDashboardRequest{})
		return err
	})
	return res, rid, err
}

// session calls GetSession as b over p.
func (c *tracker) session(t *testing.T, b *gt.Browser, p gt.RPC, header map[string]string) (*custodianv1.GetSessionResponse, string, error) {
	t.Helper()
	var res *custodianv1.GetSessionResponse
	rid, err := c.call(t, header, func(ctx context.Context) error {
		var err error
		res, err = custodianv1connect.NewSessionServiceClient(b.Client(p)).GetSession(ctx, &custodianv1.GetSessionRequest{})
		return err
	})
	return res, rid, err
}

// products lists products as b.
func (c *tracker) products(t *testing.T, b *gt.Browser) string {
	t.Helper()
	rid, err := c.call(t, nil, func(ctx context.Context) error {
		_, err := storefrontv1connect.NewProductServiceClient(b.Client(gt.Connect)).ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 5})
		return err
	})
	if err != nil {
		t.Fatalf("ListProducts: %v", err)
	}
	return rid
}

// secret is one value that must never reach telemetry.
type secret struct{ what, value string }

// secrets collects the secrets of a test run.
type secrets struct {
	mu   sync.Mutex
	list []secret
}

// add adds value, failing the test if it is empty: a needle that is empty
// would find nothing and prove nothing.
func (s *secrets) add(t *testing.T, what, value string) {
	t.Helper()
	if value == "" {
		t.Fatalf("secret %q is empty", what)
	}
	s.mu.Lock()
	s.list = append(s.list, secret{what, value})
	s.mu.Unlock()
}

func (s *secrets) all() []secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

// haystack is one place telemetry went: a log line, a span, the metrics.
type haystack struct{ kind, where, text string }

// leak is a secret found in a haystack.
type leak struct {
	kind, where, what, piece string
}

// findSecrets returns every secret, or piece of one gt.TokenWindow long,
// that a haystack holds as it is or query-unescaped (as gt.TokenLog.Find
// looks for tokens).
func findSecrets(hay []haystack, needles []secret) []leak {
	const w = gt.TokenWindow
	// A piece may belong to several secrets (the header of the provider's
	// JWTs, say): it names them all.
	pieces := map[string]string{}
	var short []secret
	for _, n := range needles {
		if len(n.value) < w {
			short = append(short, n)
			continue
		}
		for i := 0; i+w <= len(n.value); i++ {
			p := n.value[i : i+w]
			switch have := pieces[p]; {
			case have == "":
				pieces[p] = n.what
			case !slices.Contains(strings.Split(have, " | "), n.what):
				pieces[p] = have + " | " + n.what
			}
		}
	}
	var leaks []leak
	for _, h := range hay {
		texts := []string{h.text}
		if u, err := url.QueryUnescape(h.text); err == nil && u != h.text {
			texts = append(texts, u)
		}
		found := map[string]bool{}
		for _, text := range texts {
			for i := 0; i+w <= len(text); i++ {
				if what, ok := pieces[text[i:i+w]]; ok && !found[what] {
					found[what] = true
					leaks = append(leaks, leak{h.kind, h.where, what, text[i : i+w]})
				}
			}
			for _, n := range short {
				if strings.Contains(text, n.value) && !found[n.what] {
					found[n.what] = true
					leaks = append(leaks, leak{h.kind, h.where, n.what, n.value})
				}
			}
		}
	}
	return leaks
}

// loginCapturing signs user in as b through the login pages, adding to sec
// every secret of the login a test can reach: the attempt's cookie, state
// and nonce, the authorization code, the session cookie.
func loginCapturing(t *testing.T, b *gt.Browser, user string, sec *secrets) {
	t.Helper()
	authURL, start := b.StartLogin(t, "/")
	q := authURL.Query()
	sec.add(t, user+": state", q.Get("state"))
	sec.add(t, user+": nonce", q.Get("nonce"))
	n := 0
	for _, c := range start.SetCookies(t) {
		if c.Value != "" {
			sec.add(t, user+": login attempt cookie "+c.Name, c.Value)
			n++
		}
	}
	if n == 0 {
		t.Fatal("GET /auth/login set no cookie")
	}
	callback := b.SignIn(t, authURL.String(), user)
	sec.add(t, user+": authorization code", callback.Query().Get("code"))
	if h := b.Get(t, callback.String()); h.Status != http.StatusOK {
		t.Fatalf("callback: status %d; body %.300q", h.Status, h.Body)
	}
	sec.add(t, user+": session cookie", b.Cookie(gt.SessionCookie))
}

// logoutToken relays the provider's back-channel logout requests to the
// gateway, keeping the logout tokens they carry. The provider posts to
// http://localhost:PORT/auth/backchannel-logout; this route is more specific
// (it names the host) than the gateway's /auth/ routes, and hands the
// request on to them with the other host name of the same listener.
type logoutTokens struct {
	env    atomic.Pointer[gt.Env]
	mu     sync.Mutex
	tokens []string
}

func (l *logoutTokens) option() gt.Option {
	return gt.WithHandler("POST localhost"+login.BackchannelPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form, _ := url.ParseQuery(string(body))
		l.mu.Lock()
		l.tokens = append(l.tokens, form.Get("logout_token"))
		l.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.Host = strings.Replace(r.Host, "localhost", "127.0.0.1", 1)
		l.env.Load().Gateway.Handler().ServeHTTP(w, r)
	}))
}

func (l *logoutTokens) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tokens)
}

// postLogout signs b out through POST /auth/logout.
func postLogout(t *testing.T, e *gt.Env, b *gt.Browser) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.Public+login.LogoutPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(login.CSRFHeader, "1")
	req.Header.Set("Origin", e.Public)
	if h := b.Do(t, req); h.Status != http.StatusSeeOther {
		t.Fatalf("POST %s: status %d; body %.300q", login.LogoutPath, h.Status, h.Body)
	}
}

// scrapeAdmin returns the text of the admin listener's /metrics.
func scrapeAdmin(t *testing.T, e *gt.Env) string {
	t.Helper()
	addr := e.Gateway.AdminAddr()
	if addr == "" {
		t.Fatal("the gateway has no admin listener")
	}
	res, err := e.Plain.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", res.StatusCode)
	}
	return string(body)
}

// adminOn opens the admin listener on an ephemeral loopback port.
func adminOn(pprof bool) gt.Option {
	return gt.WithConfig(func(c *config.Config) {
		c.Telemetry.Admin = config.Admin{Listen: "127.0.0.1:0", Pprof: pprof}
	})
}

// TestTelemetryHoldsNoSecret runs whole sessions with every span recorded,
// logs at debug level and the admin listener's metrics, then scans every
// log line, span and metric for the secrets the test saw: the session and
// login cookies, every token the provider issued (access, refresh, ID,
// exchanged and client-credentials tokens), the authorization codes, the
// state and nonce, the logout id and logout token, and the client secret.
// The planted cases leak one of them on purpose, through the public API, to
// prove the scan finds what it looks for where it looks.
func TestTelemetryHoldsNoSecret(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		full  bool
		plant string // where the case leaks a secret: "" (nowhere), "span", "log", "metric"
		what  string // the secret it leaks
	}{
		{name: "full session", full: true},
		{name: "planted access token in a span attribute", plant: "span", what: "authorization_code access_token"},
		{name: "planted session cookie in a log line", plant: "log", what: "alice: session cookie"},
		{name: "planted refresh token in a metric label", plant: "metric", what: "authorization_code refresh_token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rig := newTelemetryRig(t)
			relay := &logoutTokens{}
			var env atomic.Pointer[gt.Env]
			opts := append(rig.options(),
				adminOn(false),
				relay.option(),
				// The first access token seems to expire after 60 s; a
				// refreshed one lives 10 minutes (see TestRefresh).
				gt.WithAccessLifetime(10*time.Minute),
				gt.WithCodeExpiresIn(60),
				gt.WithConfig(func(c *config.Config) { c.Session.RefreshSkew = time.Second }),
			)
			if c.plant != "" {
				opts = append(opts, gt.WithInterceptors(planter(&env, c.plant)))
			}
			e := gt.NewDemoEnv(t, opts...)
			env.Store(e)
			relay.env.Store(e)
			sec := &secrets{}
			calls := &tracker{}
			sec.add(t, "client secret", e.Config.OIDC.ClientSecret)

			alice := e.Browser(t)
			loginCapturing(t, alice, "alice", sec)
			s, _, err := calls.session(t, alice, gt.Connect, nil)
			if err != nil || !s.GetSignedIn() {
				t.Fatalf("GetSession: %v, %v", s, err)
			}
			logoutURL, err := url.Parse(s.GetLogoutUrl())
			if err != nil {
				t.Fatal(err)
			}
			sec.add(t, "alice: logout id", logoutURL.Query().Get("id"))
			// Fan-out over the user's token (profiles, orders), an
			// exchanged one (loyalty) and the gateway's own (catalog).
			d, _, err := calls.dashboard(t, alice, gt.Connect, nil)
			if err != nil || d.GetLoyalty() == nil || len(d.GetMissingSections()) != 0 {
				t.Fatalf("GetDashboard: %v (missing %v), %v", d.GetLoyalty(), d.GetMissingSections(), err)
			}
			if c.full {
				fullSession(t, e, alice, calls, sec)
			}

			// Every call has ended, its span and log line written.
			for _, rid := range calls.all() {
				rig.serverSpan(t, rid)
				rig.accessLines(t, rid)
			}
			for _, tk := range e.Tokens.All() {
				sec.add(t, tk.Grant+" "+tk.Kind, tk.Value)
			}
			for _, tok := range relay.all() {
				sec.add(t, "logout token", tok)
			}
			metrics := scrapeAdmin(t, e)

			var hay []haystack
			logs := rig.logs.String()
			for i, line := range strings.Split(logs, "\n") {
				hay = append(hay, haystack{"log", fmt.Sprintf("log line %d", i+1), line})
			}
			var spans strings.Builder
			ended := rig.spans.Ended()
			for _, s := range ended {
				text := spanText(s)
				spans.WriteString(text)
				hay = append(hay, haystack{"span", "span " + s.Name(), text})
			}
			hay = append(hay, haystack{"metric", "/metrics", metrics})

			// The scan looked where the telemetry is: every call's request
			// id is in the log and the spans, and what it measured in the
			// metrics.
			for _, rid := range calls.all() {
				if !strings.Contains(logs, rid) || !strings.Contains(spans.String(), rid) {
					t.Errorf("request id %s is missing from the log or the spans", rid)
				}
			}
			for _, want := range []string{dashboardMethod, getSessionMethod} {
				if !strings.Contains(logs, want) || !strings.Contains(spans.String(), want) || !strings.Contains(metrics, want) {
					t.Errorf("%s is missing from the log, the spans or the metrics", want)
				}
			}
			// And the access log's lines of the callbacks, whose query held
			// the codes and states.
			if want := `"msg":"request","http_method":"GET","route":"GET ` + login.CallbackPath + `","status":200`; !strings.Contains(logs, want) {
				t.Errorf("the log has no line %s", want)
			}
			needles := sec.all()
			if c.full {
				if len(logs) < 3<<10 || len(ended) < 40 || len(metrics) < 8<<10 {
					t.Errorf("the scan covers %d bytes of log, %d spans, %d bytes of metrics: too little for a whole session", len(logs), len(ended), len(metrics))
				}
				for _, want := range []string{"custodian.refresh", "custodian.token_exchange", "custodian.client_credentials", "custodian.cache"} {
					if !strings.Contains(spans.String(), want) {
						t.Errorf("no span %s", want)
					}
				}
				for _, want := range []string{`custodian_reason="signed_out"`, "custodian_cache_lookups_total", "custodian_token_refresh_duration_seconds_count"} {
					if !strings.Contains(metrics, want) {
						t.Errorf("the metrics have no %s", want)
					}
				}
				grants := map[string]bool{}
				for _, tk := range e.Tokens.All() {
					grants[tk.Grant+" "+tk.Kind] = true
				}
				for _, want := range []string{
					"authorization_code access_token", "authorization_code refresh_token", "authorization_code id_token",
					"refresh_token access_token", "client_credentials access_token",
					"urn:ietf:params:oauth:grant-type:token-exchange access_token",
				} {
					if !grants[want] {
						t.Errorf("the provider issued no %s: the session did not cover it (issued %v)", want, grants)
					}
				}
				if len(relay.all()) == 0 {
					t.Error("no back-channel logout token was delivered")
				}
			}
			// The scanner finds each needle, on its own, in a text.
			for _, n := range needles {
				if got := findSecrets([]haystack{{"self", "check", "x=" + n.value + ";"}}, []secret{n}); len(got) == 0 {
					t.Fatalf("the scanner does not find %s in a text holding it", n.what)
				}
			}

			leaks := findSecrets(hay, needles)
			if c.plant == "" {
				for _, l := range leaks {
					t.Errorf("%s found in %s (%s): %q", l.what, l.where, l.kind, l.piece)
				}
				if len(leaks) > 0 {
					return
				}
				t.Logf("scanned %d log lines (%d bytes), %d spans (%d bytes), %d bytes of metrics for %d secrets: no hit",
					strings.Count(logs, "\n"), len(logs), len(ended), spans.Len(), len(metrics), len(needles))
				return
			}
			for _, l := range leaks {
				if l.kind == c.plant && slices.Contains(strings.Split(l.what, " | "), c.what) {
					return
				}
			}
			t.Errorf("the %s planted in a %s was not found; found %v", c.what, c.plant, leaks)
		})
	}
}

// planter returns an interceptor that leaks a secret on purpose into the
// call's span, the log or a metric, as a careless layer of the gateway
// would.
func planter(env *atomic.Pointer[gt.Env], where string) connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			e := env.Load()
			switch where {
			case "span":
				if tok := e.Tokens.Last("authorization_code", "access_token"); tok != "" {
					trace.SpanFromContext(ctx).SetAttributes(attribute.String("debug.token", tok))
				}
			case "log":
				if info, ok := connect.CallInfoForServerContext(ctx); ok {
					e.Gateway.Logger().InfoContext(ctx, "request cookies", "cookie", info.RequestHeader().Get("Cookie"))
				}
			case "metric":
				if tok := e.Tokens.Last("authorization_code", "refresh_token"); tok != "" {
					counter, _ := e.Gateway.MeterProvider().Meter("planted").Int64Counter("planted.calls")
					counter.Add(ctx, 1, metricAttr("holder", tok))
				}
			}
			return next(ctx, spec, stream)
		}
	}
}

// fullSession goes on with alice's session: anonymous calls that hit the
// catalog cache, gRPC, bob's session ended by a back-channel logout, a
// refresh, a failing backend, a CSRF refusal, an unauthenticated call, a
// logout, and the cookie of the ended session sent again.
func fullSession(t *testing.T, e *gt.Env, alice *gt.Browser, calls *tracker, sec *secrets) {
	t.Helper()
	anon := e.Browser(t)
	calls.products(t, anon)
	calls.products(t, anon) // from the cache
	if _, _, err := calls.dashboard(t, alice, grpcRPC, nil); err != nil {
		t.Fatalf("GetDashboard over gRPC: %v", err)
	}

	// Before the clock moves: the logout token is valid for two minutes.
	bob := e.Browser(t)
	loginCapturing(t, bob, "bob", sec)
	if _, _, err := calls.dashboard(t, bob, grpcRPC, nil); err != nil {
		t.Fatalf("bob's GetDashboard: %v", err)
	}
	if err := e.World.IdP.BackchannelLogout(context.Background(), "bob"); err != nil {
		t.Fatalf("BackchannelLogout: %v", err)
	}
	if s, _, err := calls.session(t, bob, gt.Connect, nil); err != nil || s.GetSignedIn() {
		t.Fatalf("bob's GetSession after the back-channel logout: %v, %v", s, err)
	}

	refreshes := e.World.IdP.GrantCount("refresh_token")
	e.Clock.Advance(2 * time.Minute)
	if _, _, err := calls.dashboard(t, alice, gt.Connect, nil); err != nil {
		t.Fatalf("GetDashboard after the access token expired: %v", err)
	}
	if e.World.IdP.GrantCount("refresh_token") == refreshes {
		t.Fatal("no refresh")
	}

	e.World.Backends.Orders.SetFault(backends.Fault{Code: connect.CodeUnavailable})
	d, _, err := calls.dashboard(t, alice, gt.Connect, nil)
	e.World.Backends.Orders.SetFault(backends.Fault{})
	if err != nil || !slices.Contains(d.GetMissingSections(), storefrontv1.Section_SECTION_ORDERS) {
		t.Fatalf("GetDashboard with orders failing: missing %v, %v", d.GetMissingSections(), err)
	}

	if _, _, err := calls.session(t, alice, gt.Connect, map[string]string{"Origin": evilOrigin}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("GetSession from another origin: %v, want permission_denied", err)
	}
	if _, _, err := calls.dashboard(t, anon, gt.Connect, nil); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("anonymous GetDashboard: %v, want unauthenticated", err)
	}

	cookie := alice.Cookie(gt.SessionCookie)
	postLogout(t, e, alice)
	// The ended session's cookie, sent again: refused with its reason.
	stale := e.Browser(t)
	stale.SetCookie(gt.SessionCookie, cookie)
	if s, _, err := calls.session(t, stale, gt.Connect, nil); err != nil || s.GetSignedIn() {
		t.Fatalf("GetSession with the cookie of an ended session: %v, %v", s, err)
	}

}

// TestTelemetryTraceOfACall: a signed-in GetDashboard is one trace, over
// every protocol. Its server span is a root (a caller's valid traceparent is
// only a link) named after the method and carrying the request id of the
// answer; under it the session span, a span per fan-out part, a client span
// per backend call with the backend's name, and the token exchange, client
// credentials, refresh and cache spans when they happen. A failing optional
// backend marks its client span, not the server's.
func TestTelemetryTraceOfACall(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		p    gt.RPC
	}{
		{"connect", gt.Connect},
		{"grpc", grpcRPC},
		{"grpc-web", gt.RPC{Name: "grpc-web", Opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rig := newTelemetryRig(t)
			e := gt.NewDemoEnv(t, append(rig.options(),
				gt.WithAccessLifetime(10*time.Minute),
				gt.WithCodeExpiresIn(60),
				gt.WithConfig(func(c *config.Config) { c.Session.RefreshSkew = time.Second }),
			)...)
			b := e.Browser(t)
			b.Login(t, "alice", "")
			calls := &tracker{}

			// 0. The catalog's caches: a miss calls the catalog under the
			// cache span, a hit does not call it. The first catalog call fetches the gateway's
			// own token, under its client span.
			products := storefrontv1connect.NewProductServiceClient(b.Client(c.p))
			for _, step := range []struct {
				name, method, cache string
				call                func(ctx context.Context) error
				wantClient          bool
			}{
				{"first page", listProductsRoute, "catalog_pages=miss", func(ctx context.Context) error {
					_, err := products.ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 3})
					return err
				}, true},
				{"first page again", listProductsRoute, "catalog_pages=hit", func(ctx context.Context) error {
					_, err := products.ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 3})
					return err
				}, false},
				{"a product", "acme.storefront.v1.ProductService/GetProduct", "catalog_products=miss", func(ctx context.Context) error {
					_, err := products.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: "p-0001"})
					return err
				}, true},
				{"the product again", "acme.storefront.v1.ProductService/GetProduct", "catalog_products=hit", func(ctx context.Context) error {
					_, err := products.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: "p-0001"})
					return err
				}, false},
			} {
				rid, err := calls.call(t, nil, step.call)
				if err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				srv := rig.serverSpan(t, rid)
				spans := rig.trace(srv.SpanContext().TraceID())
				if srv.Name() != step.method {
					t.Errorf("%s: server span %q, want %s", step.name, srv.Name(), step.method)
				}
				if got := cacheResults(spans); !slices.Equal(got, []string{step.cache}) {
					t.Errorf("%s: cache spans %v, want %s", step.name, got, step.cache)
				}
				clients := 0
				for _, s := range spans {
					if s.SpanKind() == trace.SpanKindClient {
						clients++
						if p := s.Parent().SpanID(); attr(s, "custodian.backend") != "catalog" || !slices.ContainsFunc(spans, func(c sdktrace.ReadOnlySpan) bool {
							return c.SpanContext().SpanID() == p && c.Name() == "custodian.cache"
						}) {
							t.Errorf("%s: client span %s of %q is not under the cache span", step.name, s.Name(), attr(s, "custodian.backend"))
						}
					}
				}
				if (clients == 1) != step.wantClient {
					t.Errorf("%s: %d catalog calls, want a call: %v", step.name, clients, step.wantClient)
				}
				if step.name == "first page" {
					if n := countNames(spans)["custodian.client_credentials"]; n != 1 {
						t.Errorf("%s: %d client credentials spans, want 1", step.name, n)
					}
					wantOutcome(t, spans, "custodian.client_credentials", "catalog")
				}
			}

			// 1. The session's first call: with a caller's traceparent.
			bt := newBrowserTrace()
			d, rid, err := calls.dashboard(t, b, c.p, map[string]string{"Traceparent": bt.traceparent(), "Tracestate": bt.tracestate()})
			if err != nil || len(d.GetMissingSections()) != 0 {
				t.Fatalf("GetDashboard: missing %v, %v", d.GetMissingSections(), err)
			}
			srv, spans := checkTrace(t, rig, rid)
			if srv.SpanContext().TraceID().String() == bt.traceID {
				t.Errorf("the server span continues the caller's trace %s", bt.traceID)
			}
			if links := srv.Links(); len(links) != 1 || links[0].SpanContext.TraceID().String() != bt.traceID ||
				links[0].SpanContext.SpanID().String() != bt.spanID || links[0].SpanContext.TraceState().Len() != 0 {
				t.Errorf("server span links %+v, want one to the caller's span %s/%s without its tracestate", links, bt.traceID, bt.spanID)
			}
			byName := countNames(spans)
			for name, want := range map[string]int{
				"custodian.session": 1, "fanout.part": 4, "custodian.token_exchange": 1,
			} {
				if byName[name] != want {
					t.Errorf("%d spans %s, want %d (spans %v)", byName[name], name, want, byName)
				}
			}
			wantClients(t, spans, map[string]codes.Code{"profiles": codes.Unset, "orders": codes.Unset, "loyalty": codes.Unset, "catalog": codes.Unset})
			wantOutcome(t, spans, "custodian.token_exchange", "loyalty")
			parts := map[string]string{}
			for _, s := range spans {
				if s.Name() == "fanout.part" {
					parts[attr(s, "custodian.part")] = attr(s, "custodian.part.required")
					if s.Status().Code != codes.Unset {
						t.Errorf("part %s: status %v", attr(s, "custodian.part"), s.Status())
					}
				}
			}
			wantParts := map[string]string{"SECTION_PROFILE": "true", "SECTION_LOYALTY": "false", "SECTION_ORDERS": "false", "SECTION_PRODUCT_DETAILS": "false"}
			if fmt.Sprint(parts) != fmt.Sprint(wantParts) {
				t.Errorf("fan-out parts %v, want %v", parts, wantParts)
			}

			// 2. An optional backend fails: its client span and part say
			// so, the call succeeds; no span carries the backend's error
			// text.
			e.World.Backends.Loyalty.SetFault(backends.Fault{Code: connect.CodeUnavailable})
			d, rid, err = calls.dashboard(t, b, c.p, nil)
			e.World.Backends.Loyalty.SetFault(backends.Fault{})
			if err != nil || !slices.Equal(d.GetMissingSections(), []storefrontv1.Section{storefrontv1.Section_SECTION_LOYALTY}) {
				t.Fatalf("GetDashboard with loyalty failing: missing %v, %v", d.GetMissingSections(), err)
			}
			srv, spans = checkTrace(t, rig, rid)
			if len(srv.Links()) != 0 {
				t.Errorf("server span links %v without a caller's traceparent", srv.Links())
			}
			// The products of the orders are cached now: no catalog call.
			wantClients(t, spans, map[string]codes.Code{"profiles": codes.Unset, "orders": codes.Unset, "loyalty": codes.Error})
			for _, s := range spans {
				if s.Name() == "fanout.part" && attr(s, "custodian.part") == "SECTION_LOYALTY" && s.Status().Code != codes.Error {
					t.Errorf("the failed loyalty part: status %v, want Error", s.Status())
				}
				if strings.Contains(s.Status().Description, "acme.internal") {
					t.Errorf("span %s: status description %q carries the backend's error text", s.Name(), s.Status().Description)
				}
			}

			// 3. The access token has expired: one refresh, in the trace;
			// the parts that needed the token while it ran waited for it,
			// each with a span of its own marked joined.
			e.Clock.Advance(2 * time.Minute)
			if _, rid, err = calls.dashboard(t, b, c.p, nil); err != nil {
				t.Fatalf("GetDashboard after the token expired: %v", err)
			}
			_, spans = checkTrace(t, rig, rid)
			grants := 0
			for _, s := range spans {
				if s.Name() != "custodian.refresh" {
					continue
				}
				switch {
				case attr(s, "custodian.flight") == "joined":
					if attr(s, "custodian.outcome") != "" || s.Status().Code == codes.Error {
						t.Errorf("a joined refresh's span: outcome %q, status %v", attr(s, "custodian.outcome"), s.Status())
					}
				case attr(s, "custodian.outcome") == "ok":
					grants++
				default:
					t.Errorf("refresh outcome %q, want ok", attr(s, "custodian.outcome"))
				}
			}
			if grants != 1 {
				t.Errorf("%d refresh grants in the trace, want 1", grants)
			}
		})
	}
}

// checkTrace waits for the server span of request rid and returns it and
// every span of its trace, checking the trace's shape: the server span is
// the one root, named after the method, with the request id; every other
// span descends from it, the session span right under it.
func checkTrace(t *testing.T, rig *telemetryRig, rid string) (sdktrace.ReadOnlySpan, []sdktrace.ReadOnlySpan) {
	t.Helper()
	srv := rig.serverSpan(t, rid)
	if srv.Name() != dashboardMethod || attr(srv, "rpc.method") != dashboardMethod {
		t.Errorf("server span %q, rpc.method %q; want %s", srv.Name(), attr(srv, "rpc.method"), dashboardMethod)
	}
	if srv.Parent().IsValid() {
		t.Errorf("the server span has a parent %v", srv.Parent())
	}
	if srv.Status().Code != codes.Unset {
		t.Errorf("server span status %v, want unset", srv.Status())
	}
	spans := rig.trace(srv.SpanContext().TraceID())
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	for _, s := range spans {
		if s == srv {
			continue
		}
		if s.SpanKind() == trace.SpanKindServer {
			t.Errorf("a second server span %s in the trace", s.Name())
		}
		p := s
		for p != srv {
			next, ok := byID[p.Parent().SpanID()]
			if !ok {
				t.Errorf("span %s does not descend from the server span (parent %s)", s.Name(), p.Parent().SpanID())
				break
			}
			p = next
		}
		if s.Name() == "custodian.session" {
			if s.Parent().SpanID() != srv.SpanContext().SpanID() || attr(s, "custodian.session.state") != "active" {
				t.Errorf("session span: parent %s, state %q; want the server span, active", s.Parent().SpanID(), attr(s, "custodian.session.state"))
			}
		}
	}
	return srv, spans
}

func countNames(spans []sdktrace.ReadOnlySpan) map[string]int {
	n := map[string]int{}
	for _, s := range spans {
		n[s.Name()]++
	}
	return n
}

// wantClients checks the trace's client spans: one or more per backend of
// want, each named after an Acme procedure of that backend, with want's
// status code, and no client span of another backend.
func wantClients(t *testing.T, spans []sdktrace.ReadOnlySpan, want map[string]codes.Code) {
	t.Helper()
	got := map[string]codes.Code{}
	for _, s := range spans {
		if s.SpanKind() != trace.SpanKindClient {
			continue
		}
		backend := attr(s, "custodian.backend")
		if !strings.HasPrefix(s.Name(), "acme."+backend+".v1.") || attr(s, "rpc.method") != s.Name() {
			t.Errorf("client span %q of backend %q, rpc.method %q", s.Name(), backend, attr(s, "rpc.method"))
		}
		if code, seen := got[backend]; !seen || code == codes.Unset {
			got[backend] = s.Status().Code
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("client spans by backend (status) %v, want %v", got, want)
	}
}

// wantOutcome checks that the spans named name are children of a client
// span of backend, with outcome ok.
func wantOutcome(t *testing.T, spans []sdktrace.ReadOnlySpan, name, backend string) {
	t.Helper()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	for _, s := range spans {
		if s.Name() != name {
			continue
		}
		parent := byID[s.Parent().SpanID()]
		if parent == nil || parent.SpanKind() != trace.SpanKindClient || attr(parent, "custodian.backend") != backend {
			t.Errorf("span %s is not a child of a %s client span", name, backend)
		}
		if s.Status().Code != codes.Unset || (name != "custodian.client_credentials" && attr(s, "custodian.outcome") != "ok") {
			t.Errorf("span %s: status %v, outcome %q", name, s.Status(), attr(s, "custodian.outcome"))
		}
	}
}

// cacheResults lists the trace's cache spans as name=result.
func cacheResults(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		if s.Name() == "custodian.cache" {
			out = append(out, attr(s, "custodian.cache.name")+"="+attr(s, "custodian.cache"))
		}
	}
	return out
}

// TestTelemetryAccessLog: one line per browser call, whatever its fate,
// with the method, protocol, code, duration, request id, the trace id of
// the exported server span, the backends called with their codes, and the
// state of the caller's session; never a cookie or token.
func TestTelemetryAccessLog(t *testing.T) {
	t.Parallel()
	const getProduct = "/acme.storefront.v1.ProductService/GetProduct"
	rig := newTelemetryRig(t)
	e := gt.NewDemoEnv(t, append(rig.options(), gt.WithConfig(func(c *config.Config) {
		c.RateLimits.Methods = map[string]config.RateLimit{getProduct: {Rate: 0.001, Burst: 1}}
	}))...)
	calls := &tracker{}
	sec := &secrets{}
	alice := e.Browser(t)
	loginCapturing(t, alice, "alice", sec)
	aliceCookie := alice.Cookie(gt.SessionCookie)
	anon := e.Browser(t)
	stale := e.Browser(t)

	okBackend := func(name string) string { return `(^| )` + regexp.QuoteMeta(name) + `=ok/[0-9.]+ms( |$)` }
	cases := []struct {
		name     string
		call     func(t *testing.T) (string, error)
		method   string
		protocol string
		code     string
		session  string
		backends []string // patterns the backends field matches; none: no field
	}{
		{
			name:   "anonymous ListProducts",
			call:   func(t *testing.T) (string, error) { return calls.products(t, anon), nil },
			method: listProductsRoute, protocol: "connect", code: "ok", session: "none",
			backends: []string{okBackend("catalog.ListProducts")},
		},
		{
			name: "signed-in GetDashboard over gRPC",
			call: func(t *testing.T) (string, error) {
				_, rid, err := calls.dashboard(t, alice, grpcRPC, nil)
				return rid, err
			},
			method: dashboardMethod, protocol: "grpc", code: "ok", session: "active",
			backends: []string{okBackend("profiles.GetProfile"), okBackend("orders.ListOrders"), okBackend("loyalty.GetAccount")},
		},
		{
			name: "an optional backend failing",
			call: func(t *testing.T) (string, error) {
				e.World.Backends.Orders.SetFault(backends.Fault{Code: connect.CodeUnavailable})
				defer e.World.Backends.Orders.SetFault(backends.Fault{})
				_, rid, err := calls.dashboard(t, alice, gt.Connect, nil)
				return rid, err
			},
			method: dashboardMethod, protocol: "connect", code: "ok", session: "active",
			backends: []string{okBackend("profiles.GetProfile"), `(^| )orders\.ListOrders=unavailable/[0-9.]+ms( |$)`},
		},
		{
			name: "unauthenticated",
			call: func(t *testing.T) (string, error) {
				_, rid, err := calls.dashboard(t, anon, gt.Connect, nil)
				return rid, wantCode(err, connect.CodeUnauthenticated)
			},
			method: dashboardMethod, protocol: "connect", code: "unauthenticated", session: "none",
		},
		{
			name: "refused by the CSRF guard",
			call: func(t *testing.T) (string, error) {
				_, rid, err := calls.dashboard(t, alice, gt.Connect, map[string]string{"Origin": evilOrigin})
				return rid, wantCode(err, connect.CodePermissionDenied)
			},
			method: dashboardMethod, protocol: "connect", code: "permission_denied", session: "",
		},
		{
			name: "the cookie of a session signed out",
			call: func(t *testing.T) (string, error) {
				postLogout(t, e, alice)
				stale.SetCookie(gt.SessionCookie, aliceCookie)
				_, rid, err := calls.dashboard(t, stale, gt.Connect, nil)
				return rid, wantCode(err, connect.CodeUnauthenticated)
			},
			method: dashboardMethod, protocol: "connect", code: "unauthenticated", session: "ended:signed_out",
		},
	}
	// The cases share the gateway, its backends' faults and alice's
	// session, so they run in order.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rid, err := c.call(t)
			if err != nil {
				t.Fatal(err)
			}
			lines := rig.accessLines(t, rid)
			if len(lines) != 1 {
				t.Fatalf("%d access log lines for request %s, want 1: %v", len(lines), rid, lines)
			}
			line := lines[0]
			for field, want := range map[string]string{"level": "INFO", "method": c.method, "protocol": c.protocol, "code": c.code, "session": c.session} {
				if got, _ := line[field].(string); got != want {
					t.Errorf("%s = %q, want %q (line %v)", field, got, want, line)
				}
			}
			if d, ok := line["duration_ms"].(float64); !ok || d <= 0 || d > 30000 {
				t.Errorf("duration_ms = %v", line["duration_ms"])
			}
			if got, want := line["trace_id"], rig.serverSpan(t, rid).SpanContext().TraceID().String(); got != want {
				t.Errorf("trace_id = %v, want the server span's %s", got, want)
			}
			got, hasBackends := line["backends"].(string)
			if len(c.backends) == 0 && hasBackends {
				t.Errorf("backends = %q, want none", got)
			}
			for _, pattern := range c.backends {
				if !regexp.MustCompile(pattern).MatchString(got) {
					t.Errorf("backends = %q, want a match of %s", got, pattern)
				}
			}
		})
	}

	// A request that no method serves, or that is refused before its method
	// runs, gets the HTTP layer's line instead: the route that serves it
	// (never its path or query), and its status.
	if _, err := calls.call(t, nil, func(ctx context.Context) error {
		_, err := storefrontv1connect.NewProductServiceClient(anon.Client(gt.Connect)).GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: "p-0001"})
		return err
	}); err != nil {
		t.Fatal(err) // the rate limit's one token
	}
	request := func(method, path, contentType string, body []byte) func(t *testing.T) gt.Hop {
		return func(t *testing.T) gt.Hop {
			req, err := http.NewRequest(method, e.Public+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			return anon.Do(t, req)
		}
	}
	const query = "?code=c0de-in-the-query&state=st4te-in-the-query"
	requests := []struct {
		name   string
		do     func(t *testing.T) gt.Hop
		method string
		route  string
		status int
		line   bool
	}{
		{
			name: "over a method's rate limit", do: request(http.MethodPost, getProduct, "application/json", []byte(`{"productId":"p-0001"}`)),
			method: http.MethodPost, route: getProduct, status: http.StatusTooManyRequests, line: true,
		},
		{
			name: "a body over the size limit", do: request(http.MethodPost, "/"+dashboardMethod, "application/json", bytes.Repeat([]byte(" "), 1<<20+1)),
			method: http.MethodPost, route: "/" + dashboardMethod, status: http.StatusRequestEntityTooLarge, line: true,
		},
		{
			name: "a content type no protocol has", do: request(http.MethodPost, "/"+dashboardMethod, "text/plain", []byte("{}")),
			method: http.MethodPost, route: "/" + dashboardMethod, status: http.StatusUnsupportedMediaType, line: true,
		},
		{
			name: "the login route", do: request(http.MethodGet, login.LoginPath+"?return_to=/", "", nil),
			method: http.MethodGet, route: "GET " + login.LoginPath, status: http.StatusSeeOther, line: true,
		},
		{
			name: "the callback with a code and state it never issued", do: request(http.MethodGet, login.CallbackPath+query, "", nil),
			method: http.MethodGet, route: "GET " + login.CallbackPath, status: http.StatusBadRequest, line: true,
		},
		{
			name: "an unknown path", do: request(http.MethodGet, "/no/such/page"+query, "", nil),
			method: http.MethodGet, route: "", status: http.StatusNotFound, line: true,
		},
		{
			name: "the readiness probe", do: request(http.MethodGet, "/readyz", "", nil),
			status: http.StatusOK,
		},
	}
	for _, c := range requests {
		t.Run(c.name, func(t *testing.T) {
			hop := c.do(t)
			if hop.Status != c.status {
				t.Fatalf("status %d, want %d; body %.300q", hop.Status, c.status, hop.Body)
			}
			rid := hop.Header.Get("X-Request-Id")
			if rid == "" {
				t.Fatal("no X-Request-Id on the answer")
			}
			if !c.line {
				// Lines are written in order: once a later request's line
				// is there, this one's would be too.
				next := request(http.MethodGet, "/no/such/page", "", nil)(t).Header.Get("X-Request-Id")
				waitFor(t, "the line of the request after it", func() bool { return len(rig.linesOf(t, next)) == 1 })
				if lines := rig.linesOf(t, rid); len(lines) != 0 {
					t.Errorf("lines %v, want none", lines)
				}
				return
			}
			var lines []map[string]any
			waitFor(t, "the line of request "+rid, func() bool {
				lines = rig.linesOf(t, rid)
				return len(lines) > 0
			})
			if len(lines) != 1 {
				t.Fatalf("%d lines for request %s, want 1: %v", len(lines), rid, lines)
			}
			line := lines[0]
			want := map[string]any{"level": "INFO", "msg": "request", "http_method": c.method, "route": c.route, "status": float64(c.status)}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
				}
			}
		})
	}

	// One line per call, and never a secret.
	n := 0
	var hay []haystack
	for _, rec := range rig.logRecords(t) {
		if rec["msg"] == "call" || rec["msg"] == "request" {
			raw, _ := json.Marshal(rec)
			hay = append(hay, haystack{"log", "access log", string(raw)})
		}
		if rec["msg"] == "call" {
			n++
		}
	}
	sec.add(t, "a code in a query", "c0de-in-the-query")
	sec.add(t, "a state in a query", "st4te-in-the-query")
	if want := len(calls.all()); n != want {
		t.Errorf("%d access log lines for %d calls", n, want)
	}
	for _, tk := range e.Tokens.All() {
		sec.add(t, tk.Grant+" "+tk.Kind, tk.Value)
	}
	for _, l := range findSecrets(hay, sec.all()) {
		t.Errorf("%s found in the access log: %q", l.what, l.piece)
	}
}

// wantCode returns nil when err has code, else an error saying so.
func wantCode(err error, code connect.Code) error {
	if connect.CodeOf(err) != code {
		return fmt.Errorf("got %v, want code %v", err, code)
	}
	return nil
}

// promSeries is one sample of the Prometheus text format.
type promSeries struct {
	name   string
	labels map[string]string
	value  float64
}

// parseProm parses the Prometheus text exposition format.
func parseProm(t *testing.T, text string) []promSeries {
	t.Helper()
	var out []promSeries
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := promSeries{labels: map[string]string{}}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			t.Fatalf("metrics line %q", line)
		}
		s.name, line = line[:i], line[i:]
		if strings.HasPrefix(line, "{") {
			line = line[1:]
			for !strings.HasPrefix(line, "}") {
				eq := strings.Index(line, `="`)
				if eq < 0 {
					t.Fatalf("metrics labels %q", line)
				}
				name := strings.TrimPrefix(line[:eq], ",")
				line = line[eq+2:]
				var v strings.Builder
				for j := 0; ; j++ {
					if j >= len(line) {
						t.Fatalf("unterminated label value in %q", line)
					}
					ch := line[j]
					if ch == '\\' && j+1 < len(line) {
						j++
						switch line[j] {
						case 'n':
							v.WriteByte('\n')
						default:
							v.WriteByte(line[j])
						}
						continue
					}
					if ch == '"' {
						line = strings.TrimPrefix(line[j+1:], ",")
						break
					}
					v.WriteByte(ch)
				}
				s.labels[name] = v.String()
			}
			line = line[1:]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			t.Fatalf("metrics line without a value: %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			t.Fatalf("metrics value %q: %v", fields[0], err)
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// promSum is the sum of the samples of name that have every label of
// labels.
func promSum(series []promSeries, name string, labels map[string]string) float64 {
	var sum float64
next:
	for _, s := range series {
		if s.name != name {
			continue
		}
		for k, v := range labels {
			if s.labels[k] != v {
				continue next
			}
		}
		sum += s.value
	}
	return sum
}

// TestTelemetryMetrics scrapes the admin listener's /metrics while a
// gateway works and checks that each step moves its own numbers: calls by
// method and code, backend calls by method, the catalog cache, sessions
// started and ended by reason, token exchanges, a rate-limit refusal and a
// circuit breaker opening. No label carries a user, session, request id or
// URL query.
func TestTelemetryMetrics(t *testing.T) {
	t.Parallel()
	const getProduct = "/acme.storefront.v1.ProductService/GetProduct"
	e := gt.NewDemoEnv(t, adminOn(false), gt.WithConfig(func(c *config.Config) {
		c.RateLimits.Methods = map[string]config.RateLimit{getProduct: {Rate: 0.001, Burst: 1}}
	}))
	calls := &tracker{}
	alice := e.Browser(t)
	aliceCookie := ""
	anon := e.Browser(t)
	// Server and client durations have the same labels; the metric
	// names tell them apart.
	server := func(method, code string) map[string]string {
		return map[string]string{"rpc_method": method, "rpc_response_status_code": code}
	}
	client := server
	type delta struct {
		metric string
		labels map[string]string
		min    float64 // the least it must grow by
		max    float64 // the most; 0 for no bound
	}
	cases := []struct {
		name   string
		do     func(t *testing.T)
		deltas []delta
	}{
		{
			name: "the same product page twice: one catalog call, one cache hit",
			do: func(t *testing.T) {
				calls.products(t, anon)
				calls.products(t, anon)
			},
			deltas: []delta{
				{"rpc_server_call_duration_seconds_count", server(listProductsRoute, "OK"), 2, 2},
				{"rpc_client_call_duration_seconds_count", client("acme.catalog.v1.CatalogService/ListProducts", "OK"), 1, 1},
				{"custodian_cache_lookups_total", map[string]string{"custodian_cache": "hit"}, 1, 1},
				{"custodian_token_client_credentials_duration_seconds_count", map[string]string{"custodian_outcome": "ok"}, 1, 1},
			},
		},
		{
			name: "sign in and open the dashboard",
			do: func(t *testing.T) {
				alice.Login(t, "alice", "")
				aliceCookie = alice.Cookie(gt.SessionCookie)
				if _, _, err := calls.dashboard(t, alice, gt.Connect, nil); err != nil {
					t.Fatal(err)
				}
			},
			deltas: []delta{
				{"custodian_sessions_started_total", nil, 1, 1},
				{"rpc_server_call_duration_seconds_count", server(dashboardMethod, "OK"), 1, 1},
				{"rpc_client_call_duration_seconds_count", client("acme.profiles.v1.ProfileService/GetProfile", "OK"), 1, 1},
				{"rpc_client_call_duration_seconds_count", client("acme.orders.v1.OrderService/ListOrders", "OK"), 1, 1},
				{"rpc_client_call_duration_seconds_count", client("acme.loyalty.v1.LoyaltyService/GetAccount", "OK"), 1, 1},
				{"custodian_token_exchange_duration_seconds_count", map[string]string{"custodian_outcome": "ok"}, 1, 1},
			},
		},
		{
			name: "an anonymous dashboard",
			do: func(t *testing.T) {
				if _, _, err := calls.dashboard(t, anon, gt.Connect, nil); connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Fatalf("got %v, want unauthenticated", err)
				}
			},
			deltas: []delta{{"rpc_server_call_duration_seconds_count", server(dashboardMethod, "UNAUTHENTICATED"), 1, 1}},
		},
		{
			name: "over a method's rate limit",
			do: func(t *testing.T) {
				products := storefrontv1connect.NewProductServiceClient(anon.Client(gt.Connect))
				if _, err := products.GetProduct(context.Background(), &storefrontv1.GetProductRequest{ProductId: "p-0001"}); err != nil {
					t.Fatal(err)
				}
				if _, err := products.GetProduct(context.Background(), &storefrontv1.GetProductRequest{ProductId: "p-0001"}); err == nil {
					t.Fatal("the second GetProduct was not refused")
				}
			},
			deltas: []delta{
				{"custodian_ratelimit_refusals_total", map[string]string{"custodian_limit": "method"}, 1, 1},
				{"custodian_http_refusals_total", map[string]string{"http_response_status_code": "429"}, 1, 1},
				{"rpc_server_call_duration_seconds_count", server(strings.TrimPrefix(getProduct, "/"), "OK"), 1, 1},
			},
		},
		{
			name: "a backend that keeps failing trips its breaker",
			do: func(t *testing.T) {
				e.World.Backends.Orders.SetFault(backends.Fault{Code: connect.CodeUnavailable})
				defer e.World.Backends.Orders.SetFault(backends.Fault{})
				for range 6 {
					if _, _, err := calls.dashboard(t, alice, gt.Connect, nil); err != nil {
						t.Fatal(err)
					}
				}
			},
			deltas: []delta{
				{"custodian_backend_breaker_changes_total", map[string]string{"custodian_backend": "orders", "custodian_state": "open"}, 1, 1},
				{"rpc_client_call_duration_seconds_count", client("acme.orders.v1.OrderService/ListOrders", "UNAVAILABLE"), 5, 6},
				{"rpc_server_call_duration_seconds_count", server(dashboardMethod, "OK"), 6, 6},
			},
		},
		{
			name: "sign out",
			do:   func(t *testing.T) { postLogout(t, e, alice) },
			deltas: []delta{
				{"custodian_sessions_ended_total", map[string]string{"custodian_reason": "signed_out"}, 1, 1},
			},
		},
	}
	// One gateway, its numbers moved step by step: in order.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := parseProm(t, scrapeAdmin(t, e))
			c.do(t)
			// A call's numbers are recorded just after its answer left.
			var after []promSeries
			var failures []string
			deadline := time.Now().Add(5 * time.Second)
			for {
				after = parseProm(t, scrapeAdmin(t, e))
				failures = failures[:0]
				for _, d := range c.deltas {
					got := promSum(after, d.metric, d.labels) - promSum(before, d.metric, d.labels)
					if got < d.min || (d.max > 0 && got > d.max) {
						failures = append(failures, fmt.Sprintf("%s%v grew by %v, want %v to %v", d.metric, d.labels, got, d.min, d.max))
					}
				}
				if len(failures) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, f := range failures {
				t.Error(f)
			}
		})
	}

	// Low cardinality: no label names a user, a session, a request or a
	// URL query.
	final := parseProm(t, scrapeAdmin(t, e))
	if aliceCookie == "" {
		t.Fatal("alice had no session cookie")
	}
	forbidden := append([]string{"alice", aliceCookie, "?", "&"}, calls.all()...)
	if len(final) < 50 || promSum(final, "go_goroutines", nil) == 0 || promSum(final, "process_cpu_seconds_total", nil) == 0 {
		t.Errorf("%d series; want the gateway's, go_* and process_*", len(final))
	}
	for _, s := range final {
		for k, v := range s.labels {
			if slices.Contains([]string{"user", "subject", "session", "session_id", "request_id", "url", "path", "query"}, k) {
				t.Errorf("%s has a label %s=%q", s.name, k, v)
			}
			for _, f := range forbidden {
				if strings.Contains(v, f) {
					t.Errorf("%s label %s=%q holds %q", s.name, k, v, f)
				}
			}
		}
	}
}

// TestTelemetryAdminListener: /metrics and pprof are served on the admin
// listener only, pprof only when turned on, and without telemetry.admin
// there is no admin listener at all.
func TestTelemetryAdminListener(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		opts        []gt.Option
		admin       bool
		pprofStatus int
	}{
		{name: "no admin listener"},
		{name: "admin listener", opts: []gt.Option{adminOn(false)}, admin: true, pprofStatus: http.StatusNotFound},
		{name: "admin listener with pprof", opts: []gt.Option{adminOn(true)}, admin: true, pprofStatus: http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := gt.NewDemoEnv(t, c.opts...)
			get := func(u string) (int, string) {
				t.Helper()
				res, err := e.Plain.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(body)
			}
			// Never on the public port.
			for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline"} {
				if status, _ := get(e.Public + path); status != http.StatusNotFound {
					t.Errorf("public %s: status %d, want 404", path, status)
				}
			}
			addr := e.Gateway.AdminAddr()
			if !c.admin {
				if addr != "" {
					t.Errorf("AdminAddr = %q without telemetry.admin", addr)
				}
				return
			}
			host, _, err := net.SplitHostPort(addr)
			if err != nil || host != "127.0.0.1" {
				t.Fatalf("AdminAddr = %q, want 127.0.0.1:PORT", addr)
			}
			status, body := get("http://" + addr + "/metrics")
			if status != http.StatusOK || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_cpu_seconds_total") {
				t.Errorf("admin /metrics: status %d, %d bytes", status, len(body))
			}
			if status, _ := get("http://" + addr + "/debug/pprof/"); status != c.pprofStatus {
				t.Errorf("admin /debug/pprof/: status %d, want %d", status, c.pprofStatus)
			}
			// The admin listener serves nothing of the public port.
			if status, _ := get("http://" + addr + "/healthz"); status != http.StatusNotFound {
				t.Errorf("admin /healthz: status %d, want 404", status)
			}
		})
	}
}

// otlpReceiver is an OpenTelemetry collector's trace receiver: OTLP over
// HTTP (POST /v1/traces, protobuf) and over gRPC.
type otlpReceiver struct {
	collectortracepb.UnimplementedTraceServiceServer

	mu       sync.Mutex
	requests []*collectortracepb.ExportTraceServiceRequest
}

func (r *otlpReceiver) add(req *collectortracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.mu.Unlock()
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	r.add(req)
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusNotFound)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	msg := &collectortracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(raw, msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.add(msg)
	out, _ := proto.Marshal(&collectortracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// exported is one received span with its resource's service name.
type exported struct {
	service string
	span    *tracepb.Span
}

func (r *otlpReceiver) spans() []exported {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exported
	for _, req := range r.requests {
		for _, rs := range req.GetResourceSpans() {
			service := otlpString(rs.GetResource().GetAttributes(), "service.name")
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out = append(out, exported{service, s})
				}
			}
		}
	}
	return out
}

func otlpString(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// startOTLP starts a receiver speaking protocol on 127.0.0.1 and returns
// it and its endpoint URL.
func startOTLP(t *testing.T, protocol string) (*otlpReceiver, string) {
	t.Helper()
	r := &otlpReceiver{}
	ln, port := gt.ListenLoopback(t)
	switch protocol {
	case config.OTLPGRPC:
		srv := grpc.NewServer()
		collectortracepb.RegisterTraceServiceServer(srv, r)
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(srv.Stop)
	default:
		srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return r, "http://127.0.0.1:" + port
}

// TestTelemetryOTLPExport configures a gateway to export its spans with
// OTLP to a receiver of the test, over HTTP and gRPC, makes calls, stops the
// gateway (which flushes what it buffered) and checks what arrived: the
// calls' spans, as service "custodian", in a trace of the gateway's own,
// not the one the browser's traceparent named. With sample_ratio 0 nothing
// is exported.
func TestTelemetryOTLPExport(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		protocol string
		path     string // after the collector's base URL
		ratio    float64
		want     bool
	}{
		// As docs/config.md and the config's comment have it: the
		// collector's URL, such as http://collector:4318.
		{"http/protobuf, the collector's URL", config.OTLPHTTPProtobuf, "", 1, true},
		{"http/protobuf, the URL of the traces endpoint", config.OTLPHTTPProtobuf, "/v1/traces", 1, true},
		{"grpc, the collector's URL", config.OTLPGRPC, "", 1, true},
		{"http/protobuf, sample_ratio 0", config.OTLPHTTPProtobuf, "/v1/traces", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			receiver, endpoint := startOTLP(t, c.protocol)
			bt := newBrowserTrace()
			var rid string
			// The gateway stops when this subtest ends.
			t.Run("serve", func(t *testing.T) {
				ratio := c.ratio
				e := gt.NewDemoEnv(t, gt.WithConfig(func(cfg *config.Config) {
					cfg.Telemetry.Traces = config.Traces{Exporter: config.ExporterOTLP, Protocol: c.protocol, Endpoint: endpoint + c.path, SampleRatio: &ratio}
				}))
				b := e.SignedIn(t, "alice")
				var err error
				calls := &tracker{}
				_, rid, err = calls.dashboard(t, b, gt.Connect, map[string]string{"Traceparent": bt.traceparent(), "Tracestate": bt.tracestate()})
				if err != nil {
					t.Fatalf("GetDashboard: %v", err)
				}
			})
			if t.Failed() {
				return
			}
			spans := receiver.spans()
			if !c.want {
				if len(spans) != 0 {
					t.Errorf("%d spans exported with sample_ratio 0", len(spans))
				}
				return
			}
			var srv *tracepb.Span
			for _, s := range spans {
				if s.span.GetKind() == tracepb.Span_SPAN_KIND_SERVER && otlpString(s.span.GetAttributes(), "custodian.request_id") == rid {
					srv = s.span
				}
				if s.service != "custodian" && os.Getenv("OTEL_SERVICE_NAME") == "" && os.Getenv("OTEL_RESOURCE_ATTRIBUTES") == "" {
					t.Errorf("span %s of service %q, want custodian", s.span.GetName(), s.service)
				}
			}
			if srv == nil {
				t.Fatalf("no server span of request %s among %d exported spans", rid, len(spans))
			}
			traceID := fmt.Sprintf("%x", srv.GetTraceId())
			if srv.GetName() != dashboardMethod || len(srv.GetParentSpanId()) != 0 || traceID == bt.traceID {
				t.Errorf("server span %q, parent %x, trace %s; want %s, a root of a trace not the browser's %s",
					srv.GetName(), srv.GetParentSpanId(), traceID, dashboardMethod, bt.traceID)
			}
			if links := srv.GetLinks(); len(links) != 1 || fmt.Sprintf("%x", links[0].GetTraceId()) != bt.traceID || links[0].GetTraceState() != "" {
				t.Errorf("server span links %v, want one to the browser's trace, without its tracestate", links)
			}
			clients := map[string]bool{}
			for _, s := range spans {
				if fmt.Sprintf("%x", s.span.GetTraceId()) == traceID && s.span.GetKind() == tracepb.Span_SPAN_KIND_CLIENT {
					clients[otlpString(s.span.GetAttributes(), "custodian.backend")] = true
				}
			}
			for _, b := range []string{"profiles", "orders", "loyalty", "catalog"} {
				if !clients[b] {
					t.Errorf("no exported client span of %s in the call's trace (got %v)", b, clients)
				}
			}
		})
	}
}

// slogJSON logs everything, down to debug, as JSON lines into w.
func slogJSON(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// metricAttr is one attribute of a measurement.
func metricAttr(key, value string) metric.AddOption {
	return metric.WithAttributes(attribute.String(key, value))
}
