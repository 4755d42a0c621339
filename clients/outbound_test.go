package clients_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/custodian-bff/custodian/clients"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
)

// recordingTokens is a clients.UserTokens that records every call.
type recordingTokens struct {
	renewErr  error // answer of both Renew methods when set
	rejectErr error // answer of Reject

	mu    sync.Mutex
	calls []string
}

func (r *recordingTokens) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *recordingTokens) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recordingTokens) AccessToken(context.Context) (string, error) {
	r.record("AccessToken")
	return "at-1", nil
}

func (r *recordingTokens) ExchangedToken(_ context.Context, audience string) (string, error) {
	r.record("ExchangedToken(" + audience + ")")
	return "ex-" + audience + "-1", nil
}

func (r *recordingTokens) RenewAccessToken(_ context.Context, rejected string) (string, error) {
	r.record("RenewAccessToken(" + rejected + ")")
	if r.renewErr != nil {
		return "", r.renewErr
	}
	return "at-2", nil
}

func (r *recordingTokens) RenewExchangedToken(_ context.Context, audience, rejected string) (string, error) {
	r.record("RenewExchangedToken(" + audience + "," + rejected + ")")
	if r.renewErr != nil {
		return "", r.renewErr
	}
	return "ex-" + audience + "-2", nil
}

func (r *recordingTokens) Reject(context.Context) error {
	r.record("Reject")
	return r.rejectErr
}

// scriptedBackend serves GetProduct (NO_SIDE_EFFECTS), CreateOrder
// (IDEMPOTENT) and UpdateProfile (no idempotency) and answers each call as
// answer says; it records the headers of every call.
type scriptedBackend struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
	ordersv1connect.UnimplementedOrderServiceHandler
	profilesv1connect.UnimplementedProfileServiceHandler

	// answer returns the error of the n-th call (from 1) that carries
	// header; nil: success.
	answer func(ctx context.Context, n int, header http.Header) error

	mu      sync.Mutex
	headers []http.Header
}

func (b *scriptedBackend) handle(ctx context.Context) error {
	header := requestHeader(ctx)
	b.mu.Lock()
	b.headers = append(b.headers, header.Clone())
	n := len(b.headers)
	b.mu.Unlock()
	if b.answer == nil {
		return nil
	}
	return b.answer(ctx, n, header)
}

// Headers returns the request headers of every call so far.
func (b *scriptedBackend) Headers() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.headers)
}

// Auths returns the Authorization header of every call so far.
func (b *scriptedBackend) Auths() []string {
	var auths []string
	for _, h := range b.Headers() {
		auths = append(auths, h.Get("Authorization"))
	}
	return auths
}

func (b *scriptedBackend) Calls() int { return len(b.Headers()) }

func (b *scriptedBackend) GetProduct(ctx context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	if err := b.handle(ctx); err != nil {
		return nil, err
	}
	return &catalogv1.GetProductResponse{Product: &catalogv1.Product{ProductId: req.GetProductId()}}, nil
}

func (b *scriptedBackend) CreateOrder(ctx context.Context, req *ordersv1.CreateOrderRequest) (*ordersv1.CreateOrderResponse, error) {
	if err := b.handle(ctx); err != nil {
		return nil, err
	}
	return &ordersv1.CreateOrderResponse{Order: &ordersv1.Order{OrderId: "o-" + req.GetIdempotencyKey()}}, nil
}

func (b *scriptedBackend) UpdateProfile(ctx context.Context, req *profilesv1.UpdateProfileRequest) (*profilesv1.UpdateProfileResponse, error) {
	if err := b.handle(ctx); err != nil {
		return nil, err
	}
	return &profilesv1.UpdateProfileResponse{Profile: &profilesv1.Profile{DisplayName: req.GetDisplayName()}}, nil
}

// startScripted serves b over HTTP/1.1 and h2c on an ephemeral loopback
// port and returns its URL.
func startScripted(t *testing.T, b *scriptedBackend) string {
	t.Helper()
	server := connect.NewServer()
	catalogv1connect.RegisterCatalogServiceHandler(server, b)
	ordersv1connect.RegisterOrderServiceHandler(server, b)
	profilesv1connect.RegisterProfileServiceHandler(server, b)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: protocols}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// refuse answers unauthenticated to calls whose bearer token is in tokens.
func refuse(tokens ...string) func(context.Context, int, http.Header) error {
	return func(_ context.Context, _ int, h http.Header) error {
		if slices.Contains(tokens, strings.TrimPrefix(h.Get("Authorization"), "Bearer ")) {
			return connect.NewError(connect.CodeUnauthenticated, "token refused by backend")
		}
		return nil
	}
}

// method is one backend method, called through a Backend's client.
type method func(ctx context.Context, b *clients.Backend) error

var (
	getProduct method = func(ctx context.Context, b *clients.Backend) error {
		_, err := catalogv1connect.NewCatalogServiceClient(b.Client()).
			GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: "p-1"})
		return err
	}
	createOrder method = func(ctx context.Context, b *clients.Backend) error {
		_, err := ordersv1connect.NewOrderServiceClient(b.Client()).
			CreateOrder(ctx, &ordersv1.CreateOrderRequest{IdempotencyKey: "key-12345"})
		return err
	}
	updateProfile method = func(ctx context.Context, b *clients.Backend) error {
		_, err := profilesv1connect.NewProfileServiceClient(b.Client()).
			UpdateProfile(ctx, &profilesv1.UpdateProfileRequest{DisplayName: "Alice"})
		return err
	}
)

// clientIDP is a token endpoint that issues client-credentials tokens.
func clientIDP(t *testing.T) clients.ClientCredentials {
	t.Helper()
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"cc-1","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(idp.Close)
	return clients.ClientCredentials{
		TokenURL: func(context.Context) (string, error) { return idp.URL, nil },
		ClientID: "gw", ClientSecret: "s3cret",
	}
}

func TestRenewalOfRefusedTokens(t *testing.T) {
	t.Parallel()
	errRenew := connect.NewError(connect.CodeUnavailable, "the identity provider is unavailable")
	errReject := connect.NewError(connect.CodeUnauthenticated, "session ended: token rejected")
	user := clients.Spec{Token: clients.TokenUser}
	exchange := clients.Spec{Token: clients.TokenExchange, Audience: "acme-loyalty"}
	cases := []struct {
		name      string
		spec      clients.Spec
		method    method
		answer    func(context.Context, int, http.Header) error
		renewErr  error
		wantErr   error        // returned unconverted (errors.Is finds the very error); nil with wantCode 0: success
		wantCode  connect.Code // when wantErr is nil
		wantAuths []string     // bearer tokens the backend saw, in order
		wantCalls []string     // UserTokens calls, in order
	}{
		{
			name: "user token renewed and retried", spec: user, method: getProduct, answer: refuse("at-1"),
			wantAuths: []string{"at-1", "at-2"},
			wantCalls: []string{"AccessToken", "RenewAccessToken(at-1)"},
		},
		{
			name: "renewed user token refused too", spec: user, method: getProduct, answer: refuse("at-1", "at-2"),
			wantErr:   errReject,
			wantAuths: []string{"at-1", "at-2"},
			wantCalls: []string{"AccessToken", "RenewAccessToken(at-1)", "Reject"},
		},
		{
			name: "renewal fails", spec: user, method: getProduct, answer: refuse("at-1"), renewErr: errRenew,
			wantErr:   errRenew,
			wantAuths: []string{"at-1"},
			wantCalls: []string{"AccessToken", "RenewAccessToken(at-1)"},
		},
		{
			name: "exchanged token renewed and retried", spec: exchange, method: getProduct, answer: refuse("ex-acme-loyalty-1"),
			wantAuths: []string{"ex-acme-loyalty-1", "ex-acme-loyalty-2"},
			wantCalls: []string{"ExchangedToken(acme-loyalty)", "RenewExchangedToken(acme-loyalty,ex-acme-loyalty-1)"},
		},
		{
			name: "renewed exchanged token refused too", spec: exchange, method: getProduct, answer: refuse("ex-acme-loyalty-1", "ex-acme-loyalty-2"),
			wantErr:   errReject,
			wantAuths: []string{"ex-acme-loyalty-1", "ex-acme-loyalty-2"},
			wantCalls: []string{"ExchangedToken(acme-loyalty)", "RenewExchangedToken(acme-loyalty,ex-acme-loyalty-1)", "Reject"},
		},
		{
			name: "exchange renewal fails", spec: exchange, method: getProduct, answer: refuse("ex-acme-loyalty-1"), renewErr: errRenew,
			wantErr:   errRenew,
			wantAuths: []string{"ex-acme-loyalty-1"},
			wantCalls: []string{"ExchangedToken(acme-loyalty)", "RenewExchangedToken(acme-loyalty,ex-acme-loyalty-1)"},
		},
		{
			name: "idempotent method retried", spec: user, method: createOrder, answer: refuse("at-1"),
			wantAuths: []string{"at-1", "at-2"},
			wantCalls: []string{"AccessToken", "RenewAccessToken(at-1)"},
		},
		{
			name: "method with side effects not retried", spec: user, method: updateProfile, answer: refuse("at-1"),
			wantCode:  connect.CodeUnavailable,
			wantAuths: []string{"at-1"},
			wantCalls: []string{"AccessToken", "RenewAccessToken(at-1)"},
		},
		{
			name: "other refusals are not renewed", spec: user, method: getProduct,
			answer: func(context.Context, int, http.Header) error {
				return connect.NewError(connect.CodePermissionDenied, "not yours")
			},
			wantCode:  connect.CodePermissionDenied,
			wantAuths: []string{"at-1"},
			wantCalls: []string{"AccessToken"},
		},
		{
			name: "none policy never renews", spec: clients.Spec{Token: clients.TokenNone}, method: getProduct, answer: refuse(""),
			wantCode:  connect.CodeUnauthenticated,
			wantAuths: []string{""},
		},
		{
			name: "client policy never renews", spec: clients.Spec{Token: clients.TokenClient}, method: getProduct, answer: refuse("cc-1"),
			wantCode:  connect.CodeUnauthenticated,
			wantAuths: []string{"cc-1"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			backend := &scriptedBackend{answer: c.answer}
			c.spec.Name, c.spec.URL = "backend", startScripted(t, backend)
			ut := &recordingTokens{renewErr: c.renewErr, rejectErr: errReject}
			b, err := clients.New(c.spec, clients.WithClientCredentials(clientIDP(t)), userTokens(ut))
			if err != nil {
				t.Fatal(err)
			}
			err = c.method(t.Context(), b)
			switch {
			case c.wantErr != nil:
				// The very error, not a copy: errors.Is compares the pointer.
				if !errors.Is(err, c.wantErr) {
					t.Errorf("got %v, want %v", err, c.wantErr)
				}
			case c.wantCode != 0:
				if connect.CodeOf(err) != c.wantCode {
					t.Errorf("got %v, want code %v", err, c.wantCode)
				}
			case err != nil:
				t.Errorf("got %v, want success", err)
			}
			var wantAuths []string
			for _, tok := range c.wantAuths {
				if tok != "" {
					tok = "Bearer " + tok
				}
				wantAuths = append(wantAuths, tok)
			}
			if got := backend.Auths(); !slices.Equal(got, wantAuths) {
				t.Errorf("backend saw tokens %q, want %q", got, wantAuths)
			}
			if got := ut.Calls(); !slices.Equal(got, c.wantCalls) {
				t.Errorf("UserTokens calls %q, want %q", got, c.wantCalls)
			}
		})
	}
}

func TestTraceContextPropagation(t *testing.T) {
	t.Parallel()
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID := trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})
	cases := []struct {
		name string
		ctx  context.Context
		want string // traceparent; "" for none
	}{
		{"with a span", trace.ContextWithSpanContext(context.Background(), sc), "00-" + traceID.String() + "-" + spanID.String() + "-01"},
		{"with a remote span", trace.ContextWithRemoteSpanContext(context.Background(), sc), "00-" + traceID.String() + "-" + spanID.String() + "-01"},
		{"without a span", context.Background(), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			backend := &scriptedBackend{}
			b, err := clients.New(clients.Spec{Name: "catalog", URL: startScripted(t, backend), Token: clients.TokenNone})
			if err != nil {
				t.Fatal(err)
			}
			if err := getProduct(c.ctx, b); err != nil {
				t.Fatal(err)
			}
			h := backend.Headers()[0]
			if got := h.Get("Traceparent"); got != c.want {
				t.Errorf("traceparent %q, want %q", got, c.want)
			}
			if c.want == "" && len(h.Values("Traceparent")) != 0 {
				t.Errorf("traceparent sent without a span: %q", h.Values("Traceparent"))
			}
			if c.want != "" && !strings.Contains(h.Get("Traceparent"), traceID.String()) {
				t.Errorf("traceparent %q lacks the trace id %s", h.Get("Traceparent"), traceID)
			}
		})
	}
}
