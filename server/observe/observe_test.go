package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	"github.com/custodian-bff/custodian/gen/go/custodian/v1/custodianv1connect"
	"github.com/custodian-bff/custodian/internal/requestid"
	"github.com/custodian-bff/custodian/internal/telemetry"
	"github.com/custodian-bff/custodian/internal/tracecontext"
	"github.com/custodian-bff/custodian/server/observe"
)

const getSession = "custodian.v1.SessionService/GetSession"

// sessions is a SessionService whose GetSession fills in the call's record
// as the gateway's layers do, checks the calls in flight, and answers with
// err.
type sessions struct {
	custodianv1connect.UnimplementedSessionServiceHandler
	session  string
	backends []telemetry.BackendCall
	err      error
	inFlight func() int64
	seen     chan int64
}

func (s *sessions) GetSession(ctx context.Context, _ *custodianv1.GetSessionRequest) (*custodianv1.GetSessionResponse, error) {
	call := telemetry.FromContext(ctx)
	if s.session != "" {
		call.SetSession(s.session)
	}
	for _, b := range s.backends {
		call.AddBackend(b)
	}
	s.seen <- s.inFlight()
	return &custodianv1.GetSessionResponse{}, s.err
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

// TestObserver serves a service behind the Observer's interceptors, with
// the gateway's tracing between them, on a loopback listener, and checks
// the access log line and the metrics of each call.
func TestObserver(t *testing.T) {
	t.Parallel()
	backends := []telemetry.BackendCall{
		{Backend: "orders", Method: "/acme.orders.v1.OrderService/ListOrders", Code: "ok", Duration: 1500 * time.Microsecond},
		{Backend: "profiles", Method: "/acme.profiles.v1.ProfileService/GetProfile", Code: "unavailable", Duration: 2 * time.Millisecond},
	}
	cases := []struct {
		name         string
		opts         []observe.Option
		level        slog.Level
		session      string
		backends     []telemetry.BackendCall
		err          error
		wantLine     bool
		wantCode     string // in the log
		wantStatus   string // in the metrics
		wantBackends string // "" for no field
	}{
		{
			name: "a call with backends", session: "active", backends: backends,
			wantLine: true, wantCode: "ok", wantStatus: "OK",
			wantBackends: "orders.ListOrders=ok/1.5ms profiles.GetProfile=unavailable/2ms",
		},
		{
			name: "a refused call", err: connect.NewError(connect.CodePermissionDenied, "cross-site request refused"),
			wantLine: true, wantCode: "permission_denied", wantStatus: "PERMISSION_DENIED",
		},
		{
			name: "a call without a session", session: "none", err: connect.NewError(connect.CodeUnauthenticated, "sign-in required"),
			wantLine: true, wantCode: "unauthenticated", wantStatus: "UNAUTHENTICATED",
		},
		{
			name: "access log off", opts: []observe.Option{observe.WithAccessLog(false)}, session: "active", backends: backends,
			wantStatus: "OK",
		},
		{
			name: "logger above info", level: slog.LevelWarn, session: "active", backends: backends,
			wantStatus: "OK",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reader := sdkmetric.NewManualReader()
			meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			logs := &lockedBuffer{}
			logger := slog.New(requestid.LogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: c.level})))
			obs, err := observe.New(append([]observe.Option{observe.WithLogger(logger), observe.WithMeterProvider(meters)}, c.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			svc := &sessions{
				session: c.session, backends: c.backends, err: c.err,
				inFlight: func() int64 { return activeCalls(t, reader) },
				seen:     make(chan int64, 1),
			}
			srv := connect.NewServer(obs.Metrics(), tracecontext.Server(tp, false), obs.AccessLog())
			custodianv1connect.RegisterSessionServiceHandler(srv, svc)
			mux := http.NewServeMux()
			connecthttp.Mount(mux, srv)
			ts := httptest.NewServer(requestid.Middleware(mux))
			t.Cleanup(ts.Close)

			client := custodianv1connect.NewSessionServiceClient(connect.NewClient(connecthttp.NewTransport(ts.Client(), ts.URL)))
			ctx, info := connect.NewClientContext(context.Background())
			_, err = client.GetSession(ctx, &custodianv1.GetSessionRequest{})
			if connect.CodeOf(err) != connect.CodeOf(c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("GetSession: %v, want %v", err, c.err)
			}
			if n := <-svc.seen; n != 1 {
				t.Errorf("%d calls in flight during the call, want 1", n)
			}
			// The line and the numbers are written just after the answer.
			deadline := time.Now().Add(5 * time.Second)
			for count(t, reader, c.wantStatus) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := count(t, reader, c.wantStatus); n != 1 {
				t.Errorf("rpc.server.call.duration: %d calls of %s with status %s, want 1", n, getSession, c.wantStatus)
			}
			if n := activeCalls(t, reader); n != 0 {
				t.Errorf("%d calls in flight after the call, want 0", n)
			}

			line := onlyLine(t, logs, c.wantLine)
			if line == nil {
				return
			}
			ended := spans.Ended()
			if len(ended) != 1 {
				t.Fatalf("%d spans, want the call's", len(ended))
			}
			want := map[string]any{
				"level": "INFO", "msg": "call", "method": getSession, "protocol": "connect", "code": c.wantCode,
				"session":    c.session,
				"trace_id":   ended[0].SpanContext().TraceID().String(),
				"request_id": info.ResponseHeader().Get(requestid.Header),
			}
			if c.wantBackends != "" {
				want["backends"] = c.wantBackends
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v", k, line[k], v)
				}
			}
			if d, ok := line["duration_ms"].(float64); !ok || d <= 0 {
				t.Errorf("duration_ms = %v", line["duration_ms"])
			}
			for k := range line {
				if _, known := want[k]; !known && k != "time" && k != "duration_ms" {
					t.Errorf("unexpected field %s = %v", k, line[k])
				}
			}
		})
	}
}

// collect returns the metrics of reader.
func collect(t *testing.T, reader sdkmetric.Reader) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		out = append(out, sm.Metrics...)
	}
	return out
}

// count returns how many calls of GetSession rpc.server.call.duration
// recorded with status.
func count(t *testing.T, reader sdkmetric.Reader, status string) uint64 {
	t.Helper()
	var n uint64
	for _, m := range collect(t, reader) {
		h, ok := m.Data.(metricdata.Histogram[float64])
		if m.Name != "rpc.server.call.duration" || !ok {
			continue
		}
		for _, dp := range h.DataPoints {
			method, _ := dp.Attributes.Value(attribute.Key("rpc.method"))
			code, _ := dp.Attributes.Value(attribute.Key("rpc.response.status_code"))
			if method.AsString() == getSession && code.AsString() == status {
				n += dp.Count
			}
		}
	}
	return n
}

// activeCalls returns custodian.server.active_calls.
func activeCalls(t *testing.T, reader sdkmetric.Reader) int64 {
	t.Helper()
	var n int64
	for _, m := range collect(t, reader) {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "custodian.server.active_calls" {
			for _, dp := range sum.DataPoints {
				n += dp.Value
			}
		}
	}
	return n
}

// TestMiddleware serves a method behind the Observer's interceptors, a
// middleware that refuses, a login route and the probes, all behind its
// Middleware, and checks that each request gets exactly one access-log
// line, the method's "call" or the Middleware's "request", that neither the
// path nor the query reaches the log, and which statuses count as refusals.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	const secret = "c0de-and-5tate"
	cases := []struct {
		name       string
		opts       []observe.Option
		method     string
		path       string
		header     map[string]string
		body       string
		fail       bool // the method fails
		wantStatus int
		wantMsg    string // "" for no line
		wantRoute  string
		wantMethod string // http_method; default method
		refused    bool   // counted in custodian.http.refusals
	}{
		{name: "a method's call", method: http.MethodPost, path: "/" + getSession, body: "{}",
			header: map[string]string{"Content-Type": "application/json"}, wantStatus: http.StatusOK, wantMsg: "call"},
		{name: "a method's error", method: http.MethodPost, path: "/" + getSession, body: "{}", fail: true,
			header: map[string]string{"Content-Type": "application/json"}, wantStatus: http.StatusUnauthorized, wantMsg: "call"},
		{name: "refused by a middleware", method: http.MethodPost, path: "/" + getSession, body: "{}",
			header:     map[string]string{"Content-Type": "application/json", "X-Refuse": "1"},
			wantStatus: http.StatusTooManyRequests, wantMsg: "request", wantRoute: "/" + getSession, refused: true},
		{name: "refused by Connect before the method", method: http.MethodPost, path: "/" + getSession, body: "{}",
			header:     map[string]string{"Content-Type": "text/plain"},
			wantStatus: http.StatusUnsupportedMediaType, wantMsg: "request", wantRoute: "/" + getSession, refused: true},
		{name: "a login route with a code and state", method: http.MethodGet, path: "/auth/callback?code=" + secret + "&state=" + secret,
			wantStatus: http.StatusFound, wantMsg: "request", wantRoute: "GET /auth/callback"},
		{name: "a route with a parameter", method: http.MethodGet, path: "/orders/" + secret,
			wantStatus: http.StatusOK, wantMsg: "request", wantRoute: "GET /orders/{id}"},
		{name: "an unknown path", method: http.MethodGet, path: "/" + secret, wantStatus: http.StatusNotFound, wantMsg: "request", wantRoute: "", refused: true},
		{name: "a method HTTP does not have", method: "BREW", path: "/" + secret, wantStatus: http.StatusNotFound, wantMsg: "request",
			wantMethod: "_OTHER", wantRoute: "", refused: true},
		{name: "the liveness probe", method: http.MethodGet, path: "/healthz", wantStatus: http.StatusOK},
		{name: "access log off", opts: []observe.Option{observe.WithAccessLog(false)}, method: http.MethodGet, path: "/nope",
			wantStatus: http.StatusNotFound, refused: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reader := sdkmetric.NewManualReader()
			meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			logs := &lockedBuffer{}
			logger := slog.New(requestid.LogHandler(slog.NewJSONHandler(logs, nil)))
			mux := http.NewServeMux()
			route := func(r *http.Request) string {
				_, pattern := mux.Handler(r)
				return pattern
			}
			obs, err := observe.New(append([]observe.Option{observe.WithLogger(logger), observe.WithMeterProvider(meters), observe.WithRoutes(route)}, c.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			srv := connect.NewServer(obs.Metrics(), obs.AccessLog())
			svc := &sessions{inFlight: func() int64 { return 1 }, seen: make(chan int64, 1)}
			if c.fail {
				svc.err = connect.NewError(connect.CodeUnauthenticated, "sign-in required")
			}
			custodianv1connect.RegisterSessionServiceHandler(srv, svc)
			connecthttp.Mount(mux, srv)
			mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
			mux.HandleFunc("GET /orders/{id}", func(http.ResponseWriter, *http.Request) {})
			mux.HandleFunc("GET /auth/callback", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/", http.StatusFound)
			})
			refuse := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("X-Refuse") != "" {
						http.Error(w, "slow down", http.StatusTooManyRequests)
						return
					}
					next.ServeHTTP(w, r)
				})
			}
			ts := httptest.NewServer(requestid.Middleware(obs.Middleware(refuse(mux))))
			t.Cleanup(ts.Close)

			req, err := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			client := *ts.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.wantStatus)
			}
			// The handler returns after the answer is written.
			want := 0
			if c.refused {
				want = 1
			}
			deadline := time.Now().Add(5 * time.Second)
			for refusals(t, reader, c.wantStatus) != want && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := refusals(t, reader, c.wantStatus); n != want {
				t.Errorf("custodian.http.refusals{%d} = %d, want %d", c.wantStatus, n, want)
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("the query reached the log: %s", logs.String())
			}
			line := onlyLine(t, logs, c.wantMsg != "")
			if line == nil {
				return
			}
			if line["msg"] != c.wantMsg || line["request_id"] != resp.Header.Get(requestid.Header) || line["level"] != "INFO" {
				t.Errorf("line %v, want msg %q and request_id %q", line, c.wantMsg, resp.Header.Get(requestid.Header))
			}
			if c.wantMsg != "request" {
				return
			}
			method := c.method
			if c.wantMethod != "" {
				method = c.wantMethod
			}
			wantFields := map[string]any{"http_method": method, "route": c.wantRoute, "status": float64(c.wantStatus)}
			for k, v := range wantFields {
				if line[k] != v {
					t.Errorf("%s = %v, want %v", k, line[k], v)
				}
			}
			for k := range line {
				if _, known := wantFields[k]; !known && k != "time" && k != "level" && k != "msg" && k != "request_id" && k != "duration_ms" {
					t.Errorf("unexpected field %s = %v", k, line[k])
				}
			}
		})
	}
}

// onlyLine returns the one line of logs when want, else nil, failing the
// test unless logs has exactly that one line, or none.
func onlyLine(t *testing.T, logs *lockedBuffer, want bool) map[string]any {
	t.Helper()
	lines := logLines(t, logs)
	if !want {
		if len(lines) != 0 {
			t.Errorf("log lines %v, want none", lines)
		}
		return nil
	}
	if len(lines) != 1 {
		t.Fatalf("log lines %v, want one", lines)
	}
	return lines[0]
}

// logLines parses the JSON lines of logs.
func logLines(t *testing.T, logs *lockedBuffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, raw := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if raw == "" {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatalf("log line %q: %v", raw, err)
		}
		lines = append(lines, line)
	}
	return lines
}

// refusals returns custodian.http.refusals for status.
func refusals(t *testing.T, reader sdkmetric.Reader, status int) int {
	t.Helper()
	n := 0
	for _, m := range collect(t, reader) {
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok || m.Name != "custodian.http.refusals" {
			continue
		}
		for _, dp := range sum.DataPoints {
			if v, _ := dp.Attributes.Value(attribute.Key("http.response.status_code")); v.AsInt64() == int64(status) {
				n += int(dp.Value)
			}
		}
	}
	return n
}
