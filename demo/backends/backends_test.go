package backends_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"github.com/custodian-bff/custodian/demo/backends"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/orders/v1/ordersv1connect"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
)

func TestStart(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)

	want := []struct{ name, audience string }{
		{"profiles", "acme-profiles"},
		{"orders", "acme-orders"},
		{"catalog", "acme-catalog"},
		{"loyalty", "acme-loyalty"},
	}
	all := set.All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d backends, want %d", len(all), len(want))
	}
	if all[0] != set.Profiles || all[1] != set.Orders || all[2] != set.Catalog || all[3] != set.Loyalty {
		t.Errorf("All() is not profiles, orders, catalog, loyalty")
	}
	urls := make(map[string]bool)
	for i, b := range all {
		if b.Name() != want[i].name || b.Audience() != want[i].audience {
			t.Errorf("backend %d = %q/%q, want %q/%q", i, b.Name(), b.Audience(), want[i].name, want[i].audience)
		}
		if !strings.HasPrefix(b.URL(), "http://127.0.0.1:") {
			t.Errorf("%s URL = %q, want http://127.0.0.1:PORT", b.Name(), b.URL())
		}
		if urls[b.URL()] {
			t.Errorf("%s shares URL %q", b.Name(), b.URL())
		}
		urls[b.URL()] = true
		if s := b.LastSubject(); s != "" {
			t.Errorf("%s LastSubject() = %q before any call", b.Name(), s)
		}
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	cases := []struct {
		name, issuer, jwksURL string
		ctx                   context.Context
	}{
		{name: "empty issuer", jwksURL: "http://127.0.0.1:1/jwks", ctx: t.Context()},
		{name: "empty JWKS URL", issuer: "http://127.0.0.1:1", ctx: t.Context()},
		{name: "canceled context", issuer: "http://127.0.0.1:1", jwksURL: "http://127.0.0.1:1/jwks", ctx: canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set, err := backends.Start(tc.ctx, tc.issuer, tc.jwksURL)
			if err == nil {
				_ = set.Close(context.Background())
				t.Fatal("Start succeeded, want an error")
			}
		})
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set, err := backends.Start(t.Context(), idp.issuer, idp.jwksURL)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := newClients(set, protocols(t)[0])
	token := idp.token(t, "alice", set.Profiles.Audience())
	if _, err := c.profiles.GetProfile(bearer(t.Context(), token), &profilesv1.GetProfileRequest{}); err != nil {
		t.Fatalf("GetProfile before Close: %v", err)
	}
	if err := set.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := set.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = c.profiles.GetProfile(bearer(t.Context(), token), &profilesv1.GetProfileRequest{})
	wantCode(t, err, connect.CodeUnavailable)
}

func TestCallsAndLastSubject(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	c := newClients(set, protocols(t)[1])
	alice := idp.token(t, "alice", set.Orders.Audience())
	bob := idp.token(t, "bob", set.Orders.Audience())
	list := ordersv1connect.OrderServiceListOrdersProcedure
	get := ordersv1connect.OrderServiceGetOrderProcedure

	// Rejected calls never reach a handler.
	_, err := c.orders.ListOrders(bearer(t.Context(), idp.token(t, "alice", "acme-elsewhere")), &ordersv1.ListOrdersRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	if n := set.Orders.Calls(""); n != 0 {
		t.Fatalf("Calls(\"\") after a rejected call = %d, want 0", n)
	}
	if s := set.Orders.LastSubject(); s != "" {
		t.Fatalf("LastSubject() after a rejected call = %q, want \"\"", s)
	}

	for range 2 {
		_, err := c.orders.ListOrders(bearer(t.Context(), alice), &ordersv1.ListOrdersRequest{})
		wantCode(t, err, 0)
	}
	_, err = c.orders.GetOrder(bearer(t.Context(), alice), &ordersv1.GetOrderRequest{OrderId: "o-9999"})
	wantCode(t, err, connect.CodeNotFound)
	if s := set.Orders.LastSubject(); s != "alice" {
		t.Errorf("LastSubject() = %q, want alice", s)
	}
	_, err = c.orders.GetOrder(bearer(t.Context(), bob), &ordersv1.GetOrderRequest{OrderId: "o-1003"})
	wantCode(t, err, 0)
	if s := set.Orders.LastSubject(); s != "bob" {
		t.Errorf("LastSubject() = %q, want bob", s)
	}
	// An unknown method of a known service is unimplemented and, as no
	// handler exists for it, never counted.
	p := protocols(t)[1]
	raw := connect.NewClient(connecthttp.NewTransport(p.client, set.Orders.URL(), p.opts...))
	err = raw.CallUnary(bearer(t.Context(), alice), connect.Spec{
		StreamType: connect.StreamTypeUnary,
		Procedure:  "/acme.orders.v1.OrderService/NoSuchMethod",
	}, &ordersv1.ListOrdersRequest{}, &ordersv1.ListOrdersResponse{})
	wantCode(t, err, connect.CodeUnimplemented)

	cases := []struct {
		procedure string
		want      int64
	}{
		{list, 2},
		{get, 2},
		{ordersv1connect.OrderServiceCreateOrderProcedure, 0},
		{"/acme.orders.v1.OrderService/NoSuchMethod", 0},
		{"", 4},
	}
	for _, tc := range cases {
		if n := set.Orders.Calls(tc.procedure); n != tc.want {
			t.Errorf("Calls(%q) = %d, want %d", tc.procedure, n, tc.want)
		}
	}
	for _, b := range []*backends.Backend{set.Profiles, set.Catalog, set.Loyalty} {
		if n := b.Calls(""); n != 0 {
			t.Errorf("%s Calls(\"\") = %d, want 0", b.Name(), n)
		}
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(req)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	transport := &countingTransport{}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	set := startSet(t, idp, backends.WithHTTPClient(&http.Client{Transport: transport}), backends.WithLogger(logger))
	c := newClients(set, protocols(t)[0])

	token := idp.token(t, "alice", set.Profiles.Audience())
	_, err := c.profiles.GetProfile(bearer(t.Context(), token), &profilesv1.GetProfileRequest{})
	wantCode(t, err, 0)
	if transport.n.Load() == 0 || idp.fetches.Load() == 0 {
		t.Errorf("JWKS fetched %d times through the WithHTTPClient client (%d served), want at least once",
			transport.n.Load(), idp.fetches.Load())
	}

	_, err = c.profiles.GetProfile(bearer(t.Context(), "garbage"), &profilesv1.GetProfileRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	if got := logs.String(); !strings.Contains(got, "rejected bearer token") || !strings.Contains(got, "backend=profiles") {
		t.Errorf("WithLogger: log lacks the rejected token:\n%s", got)
	}
}

func TestSetsAreIndependent(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	first, second := startSet(t, idp), startSet(t, idp)
	p := protocols(t)[0]
	c1, c2 := newClients(first, p), newClients(second, p)
	profiles := idp.token(t, "alice", "acme-profiles")
	orders := idp.token(t, "alice", "acme-orders")

	_, err := c1.profiles.UpdateProfile(bearer(t.Context(), profiles), &profilesv1.UpdateProfileRequest{DisplayName: "Changed"})
	wantCode(t, err, 0)
	_, err = c1.orders.CreateOrder(bearer(t.Context(), orders), &ordersv1.CreateOrderRequest{
		IdempotencyKey: "independent-1",
		Lines:          []*ordersv1.CreateOrderLine{{ProductId: "p-0001", Quantity: 1}},
	})
	wantCode(t, err, 0)

	got, err := c2.profiles.GetProfile(bearer(t.Context(), profiles), &profilesv1.GetProfileRequest{})
	wantCode(t, err, 0)
	if name := got.GetProfile().GetDisplayName(); name != "Alice Martin" {
		t.Errorf("second Set's display name = %q, want the seeded one", name)
	}
	if n := len(listAllOrders(t, c2, orders, 50)); n != 12 {
		t.Errorf("second Set has %d orders for alice, want 12", n)
	}
	if n := len(listAllOrders(t, c1, orders, 50)); n != 13 {
		t.Errorf("first Set has %d orders for alice, want 13", n)
	}
}
