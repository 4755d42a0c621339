package storefront_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// canaryCodes are the failures each backend answers with in turn.
var canaryCodes = []connect.Code{
	connect.CodeUnavailable,
	connect.CodeInternal,
	connect.CodeUnknown,
	connect.CodeDeadlineExceeded,
	connect.CodeResourceExhausted,
	connect.CodeNotFound,
	connect.CodeInvalidArgument,
	connect.CodeFailedPrecondition,
	connect.CodePermissionDenied,
	connect.CodeUnauthenticated,
}

// TestLeakCanaries fills every internal field of every backend answer and
// every backend error with canaries, calls every public RPC in success and
// in failure modes, and scans what the browser receives, raw (status,
// headers, body, trailers) and decoded, for any canary.
func TestLeakCanaries(t *testing.T) {
	t.Parallel()
	for _, p := range storefrontProtocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e, fakes := gt.NewFakeBackendEnv(t)
			seen := &gt.ResponseLog{}
			b := e.BrowserRecording(t, seen)
			b.Login(t, "alice", "")
			warmUp(t, b, fakes)
			s := &canaryScan{b: b, p: p, seen: seen}

			t.Run("success", func(t *testing.T) { s.round(t, nil, 0) })
			for _, f := range fakes.All() {
				for _, code := range canaryCodes {
					t.Run(f.Name+" "+code.String(), func(t *testing.T) { s.round(t, f, code) })
				}
			}
			if len(seen.All()) < 300 {
				t.Errorf("only %d responses were scanned", len(seen.All()))
			}
		})
	}
}

// canaryScan calls every public RPC and scans the answers.
type canaryScan struct {
	b       *gt.Browser
	p       gt.RPC
	seen    *gt.ResponseLog
	scanned int // responses of seen already scanned
	n       int // calls made, for fresh keys, ids and page sizes
}

// canaryCall is one public RPC; it returns the decoded answer.
type canaryCall struct {
	name string
	do   func(ctx context.Context) (proto.Message, error)
	// verify checks a success answer holds the fakes' public data, so that
	// there was something to scan.
	verify func(t *testing.T, m proto.Message)
}

func (s *canaryScan) calls() []canaryCall {
	account, products := s.b.Account(s.p), s.b.Products(s.p)
	s.n++
	n := s.n
	return []canaryCall{
		{"AccountService.GetDashboard", func(ctx context.Context) (proto.Message, error) {
			return msgOf(account.GetDashboard(ctx, &storefrontv1.GetDashboardRequest{}))
		}, func(t *testing.T, m proto.Message) {
			d := m.(*storefrontv1.GetDashboardResponse)
			if d.GetProfile().GetDisplayName() != "Fake Customer" || d.GetLoyalty().GetPoints() != 4321 || len(d.GetMissingSections()) != 0 {
				t.Errorf("dashboard %v", d)
			}
			wantFullOrders(t, d)
		}},
		{"AccountService.ListOrders", func(ctx context.Context) (proto.Message, error) {
			return msgOf(account.ListOrders(ctx, &storefrontv1.ListOrdersRequest{PageSize: 10}))
		}, func(t *testing.T, m proto.Message) {
			if l := m.(*storefrontv1.ListOrdersResponse); len(l.GetOrders()) != 2 || l.GetOrders()[0].GetLines()[0].GetProductName() == "" {
				t.Errorf("orders %v", l)
			}
		}},
		{"AccountService.GetOrder", func(ctx context.Context) (proto.Message, error) {
			return msgOf(account.GetOrder(ctx, &storefrontv1.GetOrderRequest{OrderId: "o-fake-1"}))
		}, func(t *testing.T, m proto.Message) {
			if o := m.(*storefrontv1.GetOrderResponse).GetOrder(); o.GetOrderId() != "o-fake-1" || len(o.GetLines()) != 2 {
				t.Errorf("order %v", o)
			}
		}},
		{"AccountService.PlaceOrder", func(ctx context.Context) (proto.Message, error) {
			// New products each time, so the catalog is asked, not its cache.
			return msgOf(account.PlaceOrder(ctx, &storefrontv1.PlaceOrderRequest{
				IdempotencyKey: fmt.Sprintf("canary-key-%d", n),
				Lines:          []*storefrontv1.PlaceOrderLine{{ProductId: fmt.Sprintf("p-place-%d", n), Quantity: 2}},
			}))
		}, func(t *testing.T, m proto.Message) {
			if o := m.(*storefrontv1.PlaceOrderResponse).GetOrder(); len(o.GetLines()) != 1 || o.GetLines()[0].GetProductName() == "" {
				t.Errorf("order %v", o)
			}
		}},
		{"AccountService.UpdateProfile", func(ctx context.Context) (proto.Message, error) {
			return msgOf(account.UpdateProfile(ctx, &storefrontv1.UpdateProfileRequest{DisplayName: "Alice Canary", Locale: "en-GB"}))
		}, func(t *testing.T, m proto.Message) {
			if p := m.(*storefrontv1.UpdateProfileResponse).GetProfile(); p.GetDisplayName() != "Alice Canary" || p.GetEmail() == "" {
				t.Errorf("profile %v", p)
			}
		}},
		{"ProductService.ListProducts", func(ctx context.Context) (proto.Message, error) {
			// A new page size each time, so the catalog is asked.
			return msgOf(products.ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: int32(1 + n%100)}))
		}, func(t *testing.T, m proto.Message) {
			if l := m.(*storefrontv1.ListProductsResponse); len(l.GetProducts()) != 3 || l.GetProducts()[0].GetName() == "" {
				t.Errorf("products %v", l)
			}
		}},
		{"ProductService.GetProduct", func(ctx context.Context) (proto.Message, error) {
			return msgOf(products.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: fmt.Sprintf("p-get-%d", n)}))
		}, func(t *testing.T, m proto.Message) {
			if p := m.(*storefrontv1.GetProductResponse).GetProduct(); p.GetName() == "" || p.GetPrice().GetAmountMinor() != 1000 {
				t.Errorf("product %v", p)
			}
		}},
		{"SessionService.GetSession", func(ctx context.Context) (proto.Message, error) {
			return msgOf(s.b.Sessions(s.p).GetSession(ctx, &custodianv1.GetSessionRequest{}))
		}, func(t *testing.T, m proto.Message) {
			if u := m.(*custodianv1.GetSessionResponse).GetUser(); u.GetSubject() != "alice" {
				t.Errorf("user %v", u)
			}
		}},
	}
}

// msgOf returns a call's answer as a proto.Message, nil when it failed.
func msgOf[M proto.Message](res M, err error) (proto.Message, error) {
	if err != nil {
		return nil, err
	}
	return res, nil
}

// round calls every RPC with failing answering code (nil: no failure),
// then heals it.
func (s *canaryScan) round(t *testing.T, failing *gt.FakeBackend, code connect.Code) {
	if failing != nil {
		failing.Fail(code)
	}
	before := 0
	if failing != nil {
		before = failing.Calls("")
	}
	for _, c := range s.calls() {
		if code == connect.CodeUnauthenticated {
			// A refused token ends the session; sign in again so that each
			// RPC reaches the backends.
			s.ensureSession(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		ctx, info := connect.NewClientContext(ctx)
		m, err := c.do(ctx)
		cancel()
		s.scan(t, c.name, m, err, info)
		if failing == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			c.verify(t, m)
		}
	}
	if failing == nil {
		return
	}
	if failing.Calls("") == before {
		t.Errorf("%s was never called while failing", failing.Name)
	}
	failing.Heal()
	s.ensureSession(t)
	// Successes reset the circuit breakers' failure counts, so that the
	// next round's calls reach the fakes again.
	for _, c := range s.calls() {
		if c.name != "AccountService.GetDashboard" && c.name != "ProductService.GetProduct" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		ctx, info := connect.NewClientContext(ctx)
		m, err := c.do(ctx)
		cancel()
		s.scan(t, c.name+" (after)", m, err, info)
		if err != nil {
			t.Fatalf("%s after healing %s: %v", c.name, failing.Name, err)
		}
	}
}

// ensureSession signs alice in again if her session ended.
func (s *canaryScan) ensureSession(t *testing.T) {
	if _, err := s.b.GetSession(); err != nil {
		s.b.Login(t, "alice", "")
	}
	s.scanRaw(t, "sign-in")
}

// scan checks the decoded answer or error and every raw response since the
// last scan.
func (s *canaryScan) scan(t *testing.T, what string, m proto.Message, err error, info *connect.CallInfo) {
	t.Helper()
	if err != nil {
		if gt.ConnectError(err) == nil {
			t.Errorf("%s: not a Connect error: %v", what, err)
		}
		if text := gt.ErrorText(err, info); gt.FindCanary(text) != "" {
			t.Errorf("%s: error leaks %s: %s", what, gt.FindCanary(text), text)
		}
	}
	if m != nil {
		raw, merr := protojson.Marshal(m)
		if merr != nil {
			t.Fatal(merr)
		}
		if leak := gt.FindCanary(string(raw)); leak != "" {
			t.Errorf("%s: answer leaks %s", what, leak)
		}
	}
	if n := s.scanRaw(t, what); n == 0 {
		t.Errorf("%s: no response was recorded", what)
	}
}

// scanRaw scans the raw responses recorded since the last scan and returns
// how many there were.
func (s *canaryScan) scanRaw(t *testing.T, what string) int {
	t.Helper()
	all := s.seen.All()
	fresh := all[s.scanned:]
	s.scanned = len(all)
	for _, r := range fresh {
		if leak := gt.FindCanary(r.Text); leak != "" {
			t.Errorf("%s: %s: response leaks %s", what, r.What, leak)
		}
	}
	return len(fresh)
}
