package storefront_test

// End-to-end tests of the aggregation: browser-facing storefront RPCs that
// fan out to the backends with the user's held tokens, through a whole
// gateway on loopback, on fakes the tests control and on the demo world's
// real backends.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/aggregators/storefront"
	"github.com/custodian-bff/custodian/demo"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
	"github.com/custodian-bff/custodian/server/config"
	"github.com/custodian-bff/custodian/server/session"
)

// connectBinary is the protocol of the tests that need only one.
var connectBinary = gt.RPC{Name: "connect binary"}

// storefrontProtocols are the protocols the aggregation tests call with.
func storefrontProtocols() []gt.RPC {
	var out []gt.RPC
	for _, p := range gt.RPCProtocols() {
		if p.Name != "grpc-web" {
			out = append(out, p)
		}
	}
	return out
}

// warmUp makes one dashboard call with the catalog failing, so that the
// session's exchanged token is kept and connections are open while the
// product cache stays cold, then forgets the fakes' records: on a loaded
// machine (-race, two CPUs) a cold token exchange can outlast the 1s
// optional timeout and make loyalty go missing.
func warmUp(t *testing.T, b *gt.Browser, fakes *gt.FakeSet) {
	t.Helper()
	fakes.Catalog.Fail(connect.CodeUnavailable)
	_, err := b.Account(connectBinary).GetDashboard(testContext(t, 20*time.Second), &storefrontv1.GetDashboardRequest{})
	fakes.Catalog.Heal()
	if err != nil {
		t.Fatalf("warm-up GetDashboard: %v", err)
	}
	fakes.Reset()
}

// arrivals counts the browser calls of one procedure that reached the
// gateway's handlers, and closes all once n have.
type arrivals struct {
	procedure string
	n         int64
	count     atomic.Int64
	all       chan struct{}
}

func newArrivals(procedure string, n int64) *arrivals {
	return &arrivals{procedure: procedure, n: n, all: make(chan struct{})}
}

// interceptor counts the arrivals; the gateway runs it inside its own.
func (a *arrivals) interceptor() connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			if spec.Procedure == a.procedure && a.count.Add(1) == a.n {
				close(a.all)
			}
			return next(ctx, spec, stream)
		}
	}
}

// hold is a hook that keeps a backend call until every expected browser call
// has arrived at the gateway.
func (a *arrivals) hold(ctx context.Context, _ gt.FakeRequest) error {
	select {
	case <-a.all:
		return nil
	case <-ctx.Done():
		return connect.NewError(connect.CodeDeadlineExceeded, ctx.Err().Error())
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestDashboardCallsBackendsInParallel makes profiles, loyalty and orders
// each wait until all three have been called: only a dashboard that calls
// them concurrently completes.
func TestDashboardCallsBackendsInParallel(t *testing.T) {
	t.Parallel()
	for _, p := range storefrontProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e, fakes := gt.NewFakeBackendEnv(t)
			b := e.SignedIn(t, "alice")
			warmUp(t, b, fakes)
			bar := gt.NewBarrier(3)
			wait := func(ctx context.Context, _ gt.FakeRequest) error { return bar.Wait(ctx) }
			fakes.Profiles.SetHook(gt.OnlyFor(gt.ProcGetProfile, wait))
			fakes.Loyalty.SetHook(gt.OnlyFor(gt.ProcGetAccount, wait))
			fakes.Orders.SetHook(gt.OnlyFor(gt.ProcListOrders, wait))
			// Sequential calls would wait for the first backend's timeout
			// (2s) and fail; the deadline keeps any hang bounded.
			res, err := b.Account(p).GetDashboard(testContext(t, 20*time.Second), &storefrontv1.GetDashboardRequest{})
			if err != nil {
				t.Fatalf("GetDashboard did not complete while profiles, loyalty and orders each waited for the other two (called one after another?): %v", err)
			}
			if got := bar.Arrived(); got != 3 {
				t.Errorf("%d of the 3 backends were called", got)
			}
			if m := res.GetMissingSections(); len(m) != 0 {
				t.Errorf("missing sections %v", m)
			}
			if res.GetProfile() == nil || res.GetLoyalty() == nil || len(res.GetRecentOrders()) != 2 {
				t.Errorf("incomplete dashboard %v", res)
			}
		})
	}
}

// TestPartialAnswers fails one backend at a time: optional sections go
// missing, the required profile fails the call.
func TestPartialAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		opts  []gt.Option
		setup func(*gt.FakeSet)
		// wantCode is the failure of the call, 0 for success with
		// wantMissing missing.
		wantCode    connect.Code
		wantMessage string
		wantMissing []storefrontv1.Section
		check       func(t *testing.T, res *storefrontv1.GetDashboardResponse)
	}{
		{
			name:        "loyalty unavailable",
			setup:       func(f *gt.FakeSet) { f.Loyalty.Fail(connect.CodeUnavailable) },
			wantMissing: []storefrontv1.Section{storefrontv1.Section_SECTION_LOYALTY},
			check: func(t *testing.T, res *storefrontv1.GetDashboardResponse) {
				if res.GetLoyalty() != nil {
					t.Errorf("loyalty %v present", res.GetLoyalty())
				}
				wantFullOrders(t, res)
			},
		},
		{
			// The loyalty backend's own timeout is far beyond the call's
			// deadline: only the optional timeout (1s) can end the wait.
			name: "loyalty slower than the optional timeout",
			opts: []gt.Option{gt.WithConfig(func(cfg *config.Config) {
				for i := range cfg.Backends {
					if cfg.Backends[i].Name == "loyalty" {
						cfg.Backends[i].Timeout = 5 * time.Minute
					}
				}
			})},
			setup:       func(f *gt.FakeSet) { f.Loyalty.SetHook(gt.BlockUntilDone) },
			wantMissing: []storefrontv1.Section{storefrontv1.Section_SECTION_LOYALTY},
			check: func(t *testing.T, res *storefrontv1.GetDashboardResponse) {
				if res.GetLoyalty() != nil {
					t.Errorf("loyalty %v present", res.GetLoyalty())
				}
				wantFullOrders(t, res)
			},
		},
		{
			name:        "catalog unavailable",
			setup:       func(f *gt.FakeSet) { f.Catalog.Fail(connect.CodeUnavailable) },
			wantMissing: []storefrontv1.Section{storefrontv1.Section_SECTION_PRODUCT_DETAILS},
			check: func(t *testing.T, res *storefrontv1.GetDashboardResponse) {
				if res.GetLoyalty().GetPoints() != 4321 {
					t.Errorf("loyalty %v", res.GetLoyalty())
				}
				orders := res.GetRecentOrders()
				if len(orders) != 2 {
					t.Fatalf("%d recent orders, want 2", len(orders))
				}
				for _, o := range orders {
					if len(o.GetLines()) != 2 {
						t.Errorf("order %s has %d lines, want 2", o.GetOrderId(), len(o.GetLines()))
					}
					for _, l := range o.GetLines() {
						if l.GetProductId() == "" || l.GetQuantity() == 0 || l.GetProductName() != "" || l.GetImageUrl() != "" {
							t.Errorf("order %s line %v: want product id and quantity without name or image", o.GetOrderId(), l)
						}
					}
				}
			},
		},
		{
			// Product details depend on the orders: both go missing.
			name:        "orders unavailable",
			setup:       func(f *gt.FakeSet) { f.Orders.Fail(connect.CodeUnavailable) },
			wantMissing: []storefrontv1.Section{storefrontv1.Section_SECTION_ORDERS, storefrontv1.Section_SECTION_PRODUCT_DETAILS},
			check: func(t *testing.T, res *storefrontv1.GetDashboardResponse) {
				if len(res.GetRecentOrders()) != 0 {
					t.Errorf("recent orders %v", res.GetRecentOrders())
				}
				if res.GetLoyalty().GetPoints() != 4321 {
					t.Errorf("loyalty %v", res.GetLoyalty())
				}
			},
		},
		{
			name:        "profiles unavailable",
			setup:       func(f *gt.FakeSet) { f.Profiles.Fail(connect.CodeUnavailable) },
			wantCode:    connect.CodeUnavailable,
			wantMessage: "profiles is unavailable",
		},
		{
			name:        "profiles failing internally",
			setup:       func(f *gt.FakeSet) { f.Profiles.Fail(connect.CodeInternal) },
			wantCode:    connect.CodeInternal,
			wantMessage: "internal error",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, fakes := gt.NewFakeBackendEnv(t, c.opts...)
			b := e.SignedIn(t, "alice")
			warmUp(t, b, fakes)
			c.setup(fakes)
			for _, p := range storefrontProtocols() {
				ctx, info := connect.NewClientContext(testContext(t, 15*time.Second))
				res, err := b.Account(p).GetDashboard(ctx, &storefrontv1.GetDashboardRequest{})
				if c.wantCode != 0 {
					ce := gt.ConnectError(err)
					if ce == nil || ce.Code() != c.wantCode {
						t.Fatalf("%s: got %v, want code %v", p.Name, err, c.wantCode)
					}
					if c.wantMessage != "" && ce.Message() != c.wantMessage {
						t.Errorf("%s: message %q, want %q", p.Name, ce.Message(), c.wantMessage)
					}
					if info.ResponseHeader().Get("X-Request-Id") == "" && info.ResponseTrailer().Get("X-Request-Id") == "" {
						t.Errorf("%s: error without X-Request-Id; headers %v, trailers %v", p.Name, info.ResponseHeader(), info.ResponseTrailer())
					}
					if leak := gt.FindCanary(gt.ErrorText(err, info)); leak != "" {
						t.Errorf("%s: error leaks %s", p.Name, leak)
					}
					if len(ce.Details()) != 0 {
						t.Errorf("%s: error carries %d details", p.Name, len(ce.Details()))
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: GetDashboard: %v", p.Name, err)
				}
				if got := res.GetMissingSections(); !slices.Equal(got, c.wantMissing) {
					t.Errorf("%s: missing sections %v, want %v", p.Name, got, c.wantMissing)
				}
				if res.GetProfile().GetDisplayName() != "Fake Customer" {
					t.Errorf("%s: profile %v", p.Name, res.GetProfile())
				}
				c.check(t, res)
			}
		})
	}
}

// wantFullOrders asserts the fakes' two recent orders with product names.
func wantFullOrders(t *testing.T, res *storefrontv1.GetDashboardResponse) {
	t.Helper()
	var ids []string
	for _, o := range res.GetRecentOrders() {
		ids = append(ids, o.GetOrderId())
		for _, l := range o.GetLines() {
			if l.GetProductName() != "Product "+l.GetProductId() {
				t.Errorf("order %s line %v lacks its product name", o.GetOrderId(), l)
			}
		}
	}
	if !slices.Equal(ids, gt.FakeOrderIDs) {
		t.Errorf("recent orders %v, want %v", ids, gt.FakeOrderIDs)
	}
}

// TestBackendRefusesToken covers a backend's 401: one renewal and retry of
// an idempotent call, the end of the session when the renewed token is
// refused too, and no retry of a call that is not idempotent.
func TestBackendRefusesToken(t *testing.T) {
	t.Parallel()
	for _, p := range storefrontProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()

			t.Run("refused once", func(t *testing.T) {
				t.Parallel()
				e, fakes := gt.NewFakeBackendEnv(t)
				b := e.SignedIn(t, "alice")
				// The warm-up keeps the loyalty token, so no token exchange
				// races the refresh (see TestRefreshDuringTokenExchange).
				warmUp(t, b, fakes)
				fakes.Profiles.SetHook(gt.OnlyFor(gt.ProcGetProfile, gt.RefuseFirstToken()))
				before := e.World.IdP.GrantCount("refresh_token")
				res, err := b.Account(p).GetDashboard(testContext(t, 20*time.Second), &storefrontv1.GetDashboardRequest{})
				if err != nil {
					t.Fatalf("GetDashboard: %v; profiles saw tokens %q", err, fakes.Profiles.Tokens(gt.ProcGetProfile))
				}
				if res.GetProfile().GetDisplayName() != "Fake Customer" || len(res.GetMissingSections()) != 0 {
					t.Errorf("dashboard %v", res)
				}
				tokens := fakes.Profiles.Tokens(gt.ProcGetProfile)
				if len(tokens) != 2 || tokens[0] == "" || tokens[1] == "" || tokens[0] == tokens[1] {
					t.Errorf("profiles saw tokens %q, want 2 calls with 2 different tokens", tokens)
				}
				if got := e.World.IdP.GrantCount("refresh_token") - before; got != 1 {
					t.Errorf("%d refresh grants, want 1", got)
				}
				b.MustSession(t, "alice")
			})

			t.Run("always refused", func(t *testing.T) {
				t.Parallel()
				e, fakes := gt.NewFakeBackendEnv(t)
				b := e.SignedIn(t, "alice")
				fakes.Profiles.SetHook(gt.OnlyFor(gt.ProcGetProfile, func(context.Context, gt.FakeRequest) error {
					return gt.CanaryError(connect.CodeUnauthenticated)
				}))
				ctx, info := connect.NewClientContext(testContext(t, 20*time.Second))
				_, err := b.Account(p).GetDashboard(ctx, &storefrontv1.GetDashboardRequest{})
				gt.WantReason(t, "GetDashboard", err, session.ReasonTokenRejected)
				if leak := gt.FindCanary(gt.ErrorText(err, info)); leak != "" {
					t.Errorf("error leaks %s", leak)
				}
				if n := fakes.Profiles.Calls(gt.ProcGetProfile); n != 2 {
					t.Errorf("profiles saw %d calls, want 2 (one retry)", n)
				}
				b.WantNoSession(t, session.ReasonTokenRejected)
			})

			t.Run("not idempotent", func(t *testing.T) {
				t.Parallel()
				e, fakes := gt.NewFakeBackendEnv(t)
				b := e.SignedIn(t, "alice")
				fakes.Profiles.SetHook(gt.OnlyFor(gt.ProcUpdateProfile, gt.RefuseFirstToken()))
				before := e.World.IdP.GrantCount("refresh_token")
				req := &storefrontv1.UpdateProfileRequest{DisplayName: "Alice M.", Locale: "fr-FR"}
				_, err := b.Account(p).UpdateProfile(testContext(t, 20*time.Second), req)
				if code := connect.CodeOf(err); code != connect.CodeUnavailable {
					t.Fatalf("UpdateProfile: %v, want code unavailable", err)
				}
				if n := fakes.Profiles.Calls(gt.ProcUpdateProfile); n != 1 {
					t.Fatalf("profiles saw %d UpdateProfile calls, want 1 (no retry)", n)
				}
				if got := e.World.IdP.GrantCount("refresh_token") - before; got != 1 {
					t.Errorf("%d refresh grants, want 1", got)
				}
				res, err := b.Account(p).UpdateProfile(testContext(t, 20*time.Second), req)
				if err != nil {
					t.Fatalf("second UpdateProfile: %v", err)
				}
				if res.GetProfile().GetDisplayName() != "Alice M." || res.GetProfile().GetLocale() != "fr-FR" {
					t.Errorf("profile %v", res.GetProfile())
				}
				tokens := fakes.Profiles.Tokens(gt.ProcUpdateProfile)
				if len(tokens) != 2 || tokens[0] == tokens[1] {
					t.Errorf("UpdateProfile tokens %q, want the second call to carry a new token", tokens)
				}
			})
		})
	}
}

// TestCoalescingAndCache checks that concurrent reads of the public catalog
// share one backend call, and that per-user answers never mix.
func TestCoalescingAndCache(t *testing.T) {
	t.Parallel()
	const n = 100

	t.Run("GetProduct", func(t *testing.T) {
		t.Parallel()
		arrived := newArrivals(storefrontv1connect.ProductServiceGetProductProcedure, n)
		e, fakes := gt.NewFakeBackendEnv(t, gt.WithInterceptors(arrived.interceptor()))
		fakes.Catalog.SetHook(gt.OnlyFor(gt.ProcGetProduct, arrived.hold))
		client := e.Browser(t).Products(connectBinary)
		ctx := testContext(t, 30*time.Second)
		errs := make(chan error, n)
		for range n {
			go func() {
				res, err := client.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: "p-42"})
				if err == nil && res.GetProduct().GetName() != "Product p-42" {
					err = fmt.Errorf("product %v", res.GetProduct())
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if got := fakes.Catalog.Calls(gt.ProcGetProduct); got != 1 {
			t.Errorf("catalog saw %d GetProduct calls for %d concurrent reads, want 1", got, n)
		}
	})

	t.Run("dashboards", func(t *testing.T) {
		t.Parallel()
		arrived := newArrivals(storefrontv1connect.AccountServiceGetDashboardProcedure, n)
		// The held batch waits for the last of n dashboards to arrive,
		// which on a loaded machine under the race detector takes
		// seconds: no part may give up before then.
		e, fakes := gt.NewFakeBackendEnv(t, gt.WithInterceptors(arrived.interceptor()),
			gt.WithStoreOptions(storefront.WithOptionalTimeout(25*time.Second)),
			gt.WithConfig(func(cfg *config.Config) {
				for i := range cfg.Backends {
					cfg.Backends[i].Timeout = 25 * time.Second
				}
			}))
		b := e.SignedIn(t, "alice")
		warmUp(t, b, fakes)
		arrived.count.Store(0)
		fakes.Catalog.SetHook(gt.OnlyFor(gt.ProcBatchGetProducts, arrived.hold))
		client := b.Account(connectBinary)
		ctx := testContext(t, 30*time.Second)
		var complete atomic.Int64
		errs := make(chan error, n)
		for range n {
			go func() {
				res, err := client.GetDashboard(ctx, &storefrontv1.GetDashboardRequest{})
				if err == nil && len(res.GetMissingSections()) == 0 {
					complete.Add(1)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if got := complete.Load(); got != n {
			t.Errorf("%d of %d dashboards complete, want all", got, n)
		}
		if got := fakes.Catalog.Calls(gt.ProcBatchGetProducts); got != 1 {
			t.Errorf("catalog saw %d BatchGetProducts calls for %d concurrent dashboards, want 1", got, n)
		}
	})

	t.Run("isolation", func(t *testing.T) {
		t.Parallel()
		e := gt.NewDemoEnv(t)
		type user struct {
			name, email string
			points      int64
			b           *gt.Browser
			orders      []string
			complete    atomic.Int64 // concurrent dashboards with orders and loyalty
		}
		users := []*user{{name: "alice", email: "alice@example.com", points: 12340}, {name: "bob", email: "bob@example.com", points: 120}}
		for _, u := range users {
			u.b = e.SignedIn(t, u.name)
			// The first call warms the exchanged token up.
			_, _ = u.b.Account(connectBinary).GetDashboard(context.Background(), &storefrontv1.GetDashboardRequest{RecentOrderCount: 20})
			res, err := u.b.Account(connectBinary).GetDashboard(context.Background(), &storefrontv1.GetDashboardRequest{RecentOrderCount: 20})
			if err != nil {
				t.Fatalf("%s: GetDashboard: %v", u.name, err)
			}
			if got := e.World.Backends.Profiles.LastSubject(); got != u.name {
				t.Errorf("%s: profiles served subject %q", u.name, got)
			}
			if got := e.World.Backends.Orders.LastSubject(); got != u.name {
				t.Errorf("%s: orders served subject %q", u.name, got)
			}
			for _, o := range res.GetRecentOrders() {
				u.orders = append(u.orders, o.GetOrderId())
			}
			if res.GetProfile().GetEmail() != u.email || len(u.orders) == 0 {
				t.Fatalf("%s: dashboard %v", u.name, res)
			}
		}
		for _, id := range users[0].orders {
			if slices.Contains(users[1].orders, id) {
				t.Fatalf("alice and bob both see order %s", id)
			}
		}
		var wg sync.WaitGroup
		for range 50 {
			for _, u := range users {
				wg.Go(func() {
					d, err := u.b.Account(connectBinary).GetDashboard(context.Background(), &storefrontv1.GetDashboardRequest{RecentOrderCount: 20})
					if err != nil {
						t.Errorf("%s: GetDashboard: %v", u.name, err)
						return
					}
					// Under load an optional section may go missing (1s
					// timeout); what is there must be the user's own.
					var ids []string
					for _, o := range d.GetRecentOrders() {
						ids = append(ids, o.GetOrderId())
					}
					missing := d.GetMissingSections()
					ordersOK := slices.Equal(ids, u.orders) || (len(ids) == 0 && slices.Contains(missing, storefrontv1.Section_SECTION_ORDERS))
					loyaltyOK := d.GetLoyalty().GetPoints() == u.points || (d.GetLoyalty() == nil && slices.Contains(missing, storefrontv1.Section_SECTION_LOYALTY))
					if d.GetProfile().GetEmail() != u.email || !ordersOK || !loyaltyOK {
						t.Errorf("%s: got profile %q, orders %v, loyalty %v, missing %v; want %q, %v, %d points", u.name,
							d.GetProfile().GetEmail(), ids, d.GetLoyalty(), missing, u.email, u.orders, u.points)
					}
					if len(ids) > 0 && d.GetLoyalty() != nil {
						u.complete.Add(1)
					}
				})
			}
		}
		wg.Wait()
		for _, u := range users {
			if u.complete.Load() == 0 {
				t.Errorf("%s: no concurrent dashboard had both orders and loyalty to compare", u.name)
			}
		}
	})
}

// TestTokenPoliciesOnDemoBackends calls the real demo backends, which verify
// each token's audience: a complete dashboard proves each got a token of its
// own.
func TestTokenPoliciesOnDemoBackends(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	b := e.SignedIn(t, "alice")
	// Warm up the exchanged token and product cache: on a loaded machine a
	// first answer may miss an optional section (1s timeout).
	if _, err := b.Account(connectBinary).GetDashboard(context.Background(), &storefrontv1.GetDashboardRequest{}); err != nil {
		t.Fatalf("GetDashboard: %v", err)
	}
	for _, p := range storefrontProtocols() {
		d, err := b.Account(p).GetDashboard(context.Background(), &storefrontv1.GetDashboardRequest{})
		if err != nil {
			t.Fatalf("%s: GetDashboard: %v", p.Name, err)
		}
		if len(d.GetMissingSections()) != 0 {
			t.Errorf("%s: missing sections %v", p.Name, d.GetMissingSections())
		}
		if d.GetProfile().GetDisplayName() != "Alice Martin" {
			t.Errorf("%s: profile %v", p.Name, d.GetProfile())
		}
		if d.GetLoyalty().GetPoints() != 12340 || d.GetLoyalty().GetTier() != storefrontv1.LoyaltyTier_LOYALTY_TIER_GOLD {
			t.Errorf("%s: loyalty %v", p.Name, d.GetLoyalty())
		}
		if len(d.GetRecentOrders()) != 5 {
			t.Errorf("%s: %d recent orders, want 5", p.Name, len(d.GetRecentOrders()))
		}
		for _, o := range d.GetRecentOrders() {
			for _, l := range o.GetLines() {
				if l.GetProductName() == "" || !strings.HasPrefix(l.GetImageUrl(), "https://") {
					t.Errorf("%s: order %s line %v lacks product details", p.Name, o.GetOrderId(), l)
				}
			}
		}
	}
	bs := e.World.Backends
	for _, c := range []struct {
		name, got, want string
	}{
		{"profiles (user token)", bs.Profiles.LastSubject(), "alice"},
		{"orders (user token)", bs.Orders.LastSubject(), "alice"},
		{"loyalty (exchanged token)", bs.Loyalty.LastSubject(), "alice"},
		{"catalog (client token)", bs.Catalog.LastSubject(), demo.ClientID},
	} {
		if c.got != c.want {
			t.Errorf("%s: last subject %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestOutboundHeaders checks what the backends receive: their own token, the
// request id and trace of the browser's call, a timeout, and nothing the
// browser sent.
func TestOutboundHeaders(t *testing.T) {
	t.Parallel()
	for _, p := range storefrontProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e, fakes := gt.NewFakeBackendEnv(t)
			b := e.SignedIn(t, "alice")
			warmUp(t, b, fakes)
			traceID, spanID := randomHex(16), randomHex(8)
			ctx, info := connect.NewClientContext(context.Background())
			info.RequestHeader().Set("Authorization", "Bearer browser-supplied")
			info.RequestHeader().Set("Origin", e.Public)
			info.RequestHeader().Set("X-Forwarded-For", "203.0.113.7")
			info.RequestHeader().Set("Traceparent", "00-"+traceID+"-"+spanID+"-01")
			info.RequestHeader().Set("X-Secret-Header", "browser-secret-value")
			res, err := b.Account(p).GetDashboard(ctx, &storefrontv1.GetDashboardRequest{})
			if err != nil {
				t.Fatalf("GetDashboard: %v", err)
			}
			if len(res.GetMissingSections()) != 0 {
				t.Fatalf("missing sections %v", res.GetMissingSections())
			}
			requestID := info.ResponseHeader().Get("X-Request-Id")
			if requestID == "" {
				t.Fatal("no X-Request-Id on the browser's response")
			}
			cookie := b.Cookie(gt.SessionCookie)
			var gatewayTrace string
			for _, f := range fakes.All() {
				reqs := f.Requests()
				if len(reqs) == 0 {
					t.Errorf("%s was not called", f.Name)
				}
				for _, r := range reqs {
					h := r.Header
					what := f.Name + " " + r.Procedure
					if auth := h.Get("Authorization"); !strings.HasPrefix(auth, "Bearer ") || r.Token == "" || strings.Contains(auth, "browser-supplied") {
						t.Errorf("%s: Authorization %q", what, auth)
					}
					if got := h.Get("X-Request-Id"); got != requestID {
						t.Errorf("%s: X-Request-Id %q, want the browser's %q", what, got, requestID)
					}
					// The gateway starts its own trace (server.trust_trace_context
					// is off): one trace for the whole call, not the browser's.
					parts := strings.Split(h.Get("Traceparent"), "-")
					if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || parts[1] == traceID || len(parts[2]) != 16 || parts[2] == spanID {
						t.Errorf("%s: traceparent %q, want a trace of the gateway's own, not %s", what, h.Get("Traceparent"), traceID)
					} else if gatewayTrace == "" {
						gatewayTrace = parts[1]
					} else if parts[1] != gatewayTrace {
						t.Errorf("%s: trace %s, want the call's one trace %s", what, parts[1], gatewayTrace)
					}
					if h.Get("Connect-Timeout-Ms") == "" && h.Get("Grpc-Timeout") == "" {
						t.Errorf("%s: no timeout header in %v", what, h)
					}
					for _, name := range []string{"Cookie", "Origin", "X-Forwarded-For", "X-Secret-Header"} {
						if v := h.Values(name); len(v) != 0 {
							t.Errorf("%s: browser header %s: %q reached the backend", what, name, v)
						}
					}
					for name, values := range h {
						for _, v := range values {
							if strings.Contains(v, "browser-secret-value") || strings.Contains(v, "203.0.113.7") || (cookie != "" && strings.Contains(v, cookie)) {
								t.Errorf("%s: header %s: %q carries what the browser sent", what, name, v)
							}
						}
					}
				}
			}
		})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestValidation sends invalid requests to every RPC: each is refused with
// a BadRequest naming the field, before any backend is called.
func TestValidation(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	b := e.SignedIn(t, "alice")
	lines := func(n int) []*storefrontv1.PlaceOrderLine {
		out := make([]*storefrontv1.PlaceOrderLine, n)
		for i := range out {
			out[i] = &storefrontv1.PlaceOrderLine{ProductId: fmt.Sprintf("p-%04d", i+1), Quantity: 1}
		}
		return out
	}
	line := func(id string, q int32) *storefrontv1.PlaceOrderLine {
		return &storefrontv1.PlaceOrderLine{ProductId: id, Quantity: q}
	}
	const key = "key-0123456789"
	long := strings.Repeat("x", 513)
	type call func(ctx context.Context, b *gt.Browser, p gt.RPC) error
	dashboard := func(n int32) call {
		return func(ctx context.Context, b *gt.Browser, p gt.RPC) error {
			_, err := b.Account(p).GetDashboard(ctx, &storefrontv1.GetDashboardRequest{RecentOrderCount: n})
			return err
		}
	}
	listOrders := func(m *storefrontv1.ListOrdersRequest) call {
		return func(ctx context.Context, b *gt.Browser, p gt.RPC) error {
			_, err := b.Account(p).ListOrders(ctx, m)
			return err
		}
	}
	getOrder := func(id string) call {
		return func(ctx context.Context, b *gt.Browser, p gt.RPC) error {
			_, err := b.Account(p).GetOrder(ctx, &storefrontv1.GetOrderRequest{OrderId: id})
			return err
		}
	}
	placeOrder := func(key string, lines ...*storefrontv1.PlaceOrderLine) call {
		return func(ctx context.Context, b *gt.Browser, p gt.RPC) error {
			_, err := b.Account(p).PlaceOrder(ctx, &storefrontv1.PlaceOrderRequest{IdempotencyKey: key, Lines: lines})
			return err
		}
	}
	updateProfile := func(name, locale string) call {
		return func(ctx context.Context, b *gt.Browser, p gt.RPC) error {
			_, err := b.Account(p).UpdateProfile(ctx, &storefrontv1.UpdateProfileRequest{DisplayName: name, Locale: locale})
			return err
		}
	}
	listProducts := func(m *storefrontv1.ListProductsRequest) call {
		return func(ctx context.Context, b *gt.Browser, p gt.RPC) error {
			_, err := b.Products(p).ListProducts(ctx, m)
			return err
		}
	}
	getProduct := func(id string) call {
		return func(ctx context.Context, b *gt.Browser, p gt.RPC) error {
			_, err := b.Products(p).GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: id})
			return err
		}
	}
	cases := []struct {
		name  string
		call  call
		field string
	}{
		{"dashboard: negative order count", dashboard(-1), "recent_order_count"},
		{"dashboard: 21 orders", dashboard(21), "recent_order_count"},
		{"ListOrders: negative page size", listOrders(&storefrontv1.ListOrdersRequest{PageSize: -1}), "page_size"},
		{"ListOrders: page size 51", listOrders(&storefrontv1.ListOrdersRequest{PageSize: 51}), "page_size"},
		{"ListOrders: overlong page token", listOrders(&storefrontv1.ListOrdersRequest{PageToken: long}), "page_token"},
		{"ListOrders: forged page token", listOrders(&storefrontv1.ListOrdersRequest{PageToken: "Zm9yZ2VkLXRva2Vu"}), "page_token"},
		{"ListOrders: the backend's own page token", listOrders(&storefrontv1.ListOrdersRequest{PageToken: "b3JkZXJzAGFsaWNlADc"}), "page_token"},
		{"GetOrder: empty id", getOrder(""), "order_id"},
		{"GetOrder: path in id", getOrder("../o-1001"), "order_id"},
		{"GetOrder: 65-character id", getOrder(strings.Repeat("o", 65)), "order_id"},
		{"PlaceOrder: short idempotency key", placeOrder("short", line("p-0001", 1)), "idempotency_key"},
		{"PlaceOrder: idempotency key with a space", placeOrder("key with space", line("p-0001", 1)), "idempotency_key"},
		{"PlaceOrder: no lines", placeOrder(key), "lines"},
		{"PlaceOrder: 21 lines", placeOrder(key, lines(21)...), "lines"},
		{"PlaceOrder: duplicate product", placeOrder(key, line("p-0001", 1), line("p-0001", 2)), "lines[1].product_id"},
		{"PlaceOrder: quantity 0", placeOrder(key, line("p-0001", 0)), "lines[0].quantity"},
		{"PlaceOrder: quantity 100", placeOrder(key, line("p-0001", 1), line("p-0002", 100)), "lines[1].quantity"},
		{"PlaceOrder: bad product id", placeOrder(key, line("p-0001", 1), line("p 2;", 1)), "lines[1].product_id"},
		{"UpdateProfile: empty name", updateProfile("", ""), "display_name"},
		{"UpdateProfile: blank name", updateProfile("   ", ""), "display_name"},
		{"UpdateProfile: 65-character name", updateProfile(strings.Repeat("é", 65), ""), "display_name"},
		{"UpdateProfile: control character", updateProfile("Alice\u0007", ""), "display_name"},
		{"UpdateProfile: line separator", updateProfile("Alice\u2028Martin", ""), "display_name"},
		{"UpdateProfile: bad locale", updateProfile("Alice", "english!"), "locale"},
		{"UpdateProfile: one-letter locale", updateProfile("Alice", "e"), "locale"},
		{"ListProducts: page size 101", listProducts(&storefrontv1.ListProductsRequest{PageSize: 101}), "page_size"},
		{"ListProducts: bad category", listProducts(&storefrontv1.ListProductsRequest{Category: "../x"}), "category"},
		{"ListProducts: overlong page token", listProducts(&storefrontv1.ListProductsRequest{PageToken: long}), "page_token"},
		{"ListProducts: the backend's own page token", listProducts(&storefrontv1.ListProductsRequest{PageToken: "cHJvZHVjdHMAADIw"}), "page_token"},
		{"GetProduct: empty id", getProduct(""), "product_id"},
		{"GetProduct: path in id", getProduct("../../etc/passwd"), "product_id"},
	}
	backendCalls := func() int64 {
		var n int64
		for _, be := range e.World.Backends.All() {
			n += be.Calls("")
		}
		return n
	}
	// The cases count the shared backends' calls, so they run one by one.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range storefrontProtocols() {
				before := backendCalls()
				err := c.call(context.Background(), b, p)
				if code := connect.CodeOf(err); code != connect.CodeInvalidArgument {
					t.Errorf("%s: %v, want invalid_argument", p.Name, err)
				}
				if fields := gt.BadRequestFields(err); !slices.Contains(fields, c.field) {
					t.Errorf("%s: BadRequest fields %q, want %q", p.Name, fields, c.field)
				}
				if got := backendCalls() - before; got != 0 {
					t.Errorf("%s: %d backend calls, want none", p.Name, got)
				}
			}
		})
	}
}

// TestCircuitBreaker opens the orders backend's circuit after five failures
// and keeps callers that gave up from counting as failures.
func TestCircuitBreaker(t *testing.T) {
	t.Parallel()

	t.Run("opens after five failures", func(t *testing.T) {
		t.Parallel()
		e, fakes := gt.NewFakeBackendEnv(t)
		b := e.SignedIn(t, "alice")
		fakes.Orders.Fail(connect.CodeUnavailable)
		for i := 1; i <= 6; i++ {
			ctx, info := connect.NewClientContext(context.Background())
			_, err := b.Account(connectBinary).ListOrders(ctx, &storefrontv1.ListOrdersRequest{})
			if code := connect.CodeOf(err); code != connect.CodeUnavailable {
				t.Fatalf("call %d: %v, want unavailable", i, err)
			}
			if leak := gt.FindCanary(gt.ErrorText(err, info)); leak != "" {
				t.Errorf("call %d: error leaks %s", i, leak)
			}
			if got, want := fakes.Orders.Calls(gt.ProcListOrders), min(i, 5); got != want {
				t.Fatalf("after call %d the orders backend saw %d calls, want %d", i, got, want)
			}
		}
	})

	t.Run("callers that give up are no failures", func(t *testing.T) {
		t.Parallel()
		e, fakes := gt.NewFakeBackendEnv(t)
		b := e.SignedIn(t, "alice")
		entered := make(chan struct{}, 1)
		var blocking atomic.Bool
		blocking.Store(true)
		fakes.Orders.SetHook(gt.OnlyFor(gt.ProcListOrders, func(ctx context.Context, r gt.FakeRequest) error {
			if !blocking.Load() {
				return nil
			}
			entered <- struct{}{}
			return gt.BlockUntilDone(ctx, r)
		}))
		const gaveUp = 10
		for i := 1; i <= gaveUp; i++ {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := b.Account(connectBinary).ListOrders(ctx, &storefrontv1.ListOrdersRequest{})
				done <- err
			}()
			select {
			case <-entered:
			case err := <-done:
				cancel()
				t.Fatalf("call %d ended before reaching the orders backend (circuit open after callers gave up?): %v", i, err)
			case <-testContext(t, 20*time.Second).Done():
				cancel()
				t.Fatalf("call %d did not reach the orders backend", i)
			}
			cancel()
			if err := <-done; connect.CodeOf(err) != connect.CodeCanceled {
				t.Fatalf("call %d: %v, want canceled", i, err)
			}
		}
		blocking.Store(false)
		res, err := b.Account(connectBinary).ListOrders(context.Background(), &storefrontv1.ListOrdersRequest{})
		if err != nil {
			t.Fatalf("ListOrders after %d callers gave up: %v", gaveUp, err)
		}
		if len(res.GetOrders()) != 2 {
			t.Errorf("orders %v", res.GetOrders())
		}
		if got := fakes.Orders.Calls(gt.ProcListOrders); got != gaveUp+1 {
			t.Errorf("orders backend saw %d calls, want %d", got, gaveUp+1)
		}
	})
}

// TestPlaceOrderIsIdempotent places orders on the demo backends: a repeated
// idempotency key returns the first order, a new key places a new one.
func TestPlaceOrderIsIdempotent(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	b := e.SignedIn(t, "alice")
	var seen []string
	for _, p := range storefrontProtocols() {
		place := func(key string) *storefrontv1.Order {
			t.Helper()
			res, err := b.Account(p).PlaceOrder(context.Background(), &storefrontv1.PlaceOrderRequest{
				IdempotencyKey: key,
				Lines:          []*storefrontv1.PlaceOrderLine{{ProductId: "p-0001", Quantity: 1}, {ProductId: "p-0013", Quantity: 2}},
			})
			if err != nil {
				t.Fatalf("%s: PlaceOrder: %v", p.Name, err)
			}
			return res.GetOrder()
		}
		key := "key-" + randomHex(8)
		first := place(key)
		again := place(key)
		if first.GetOrderId() == "" || again.GetOrderId() != first.GetOrderId() {
			t.Errorf("%s: same key placed %q then %q, want one order", p.Name, first.GetOrderId(), again.GetOrderId())
		}
		if len(first.GetLines()) != 2 || first.GetLines()[0].GetProductName() != "Cast Iron Skillet 28 cm" || first.GetTotal().GetAmountMinor() != 4990+2*2200 {
			t.Errorf("%s: order %v", p.Name, first)
		}
		other := place("key-" + randomHex(8))
		if other.GetOrderId() == first.GetOrderId() {
			t.Errorf("%s: a new key returned the first order %q", p.Name, first.GetOrderId())
		}
		for _, id := range []string{first.GetOrderId(), other.GetOrderId()} {
			if slices.Contains(seen, id) {
				t.Errorf("%s: order id %q returned before", p.Name, id)
			}
			seen = append(seen, id)
		}
	}
}

// TestRefreshDuringTokenExchange: a backend's 401 makes the gateway refresh
// the session's access token while the loyalty call's exchange of that same
// access token is on its way to the provider. The demo provider, like
// fosite and most providers, revokes the old access token on refresh, so it
// refuses the exchange (invalid_grant). The session is still good and must
// survive: the gateway renews the subject token and exchanges again.
func TestRefreshDuringTokenExchange(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	refreshed := make(chan struct{})
	var refreshOnce, exchangeOnce sync.Once
	gate := func(grant string, serve func()) {
		switch grant {
		case "refresh_token":
			serve()
			refreshOnce.Do(func() { close(refreshed) })
			return
		case "urn:ietf:params:oauth:grant-type:token-exchange":
			// Hold the first exchange until the refresh is done.
			exchangeOnce.Do(func() {
				select {
				case <-refreshed:
				case <-ctx.Done():
				}
			})
		}
		serve()
	}
	e, fakes := gt.NewFakeBackendEnv(t, gt.WithTokenGate(gate))
	b := e.SignedIn(t, "alice")
	fakes.Profiles.SetHook(gt.OnlyFor(gt.ProcGetProfile, gt.RefuseFirstToken()))
	res, err := b.Account(connectBinary).GetDashboard(ctx, &storefrontv1.GetDashboardRequest{})
	if err != nil {
		t.Fatalf("GetDashboard: %v (reason %v)", err, gt.ReasonOf(err))
	}
	if res.GetProfile() == nil || len(res.GetRecentOrders()) != 2 {
		t.Errorf("dashboard %v", res)
	}
	b.MustSession(t, "alice")
}
