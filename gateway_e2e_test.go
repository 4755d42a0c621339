package custodian_test

// End-to-end tests of the assembled gateway: custodian.New on the demo
// world, the Acme store mounted with demo.MountStore, called over every
// protocol on a loopback listener.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/custodian-bff/custodian/demo/backends"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
	gt "github.com/custodian-bff/custodian/internal/gatewaytest"
)

// protocols are the ways an anonymous client calls the gateway: the
// browser's, plus Connect GET.
func protocols() []gt.RPC {
	return []gt.RPC{
		{Name: "connect json", Opts: []connecthttp.Option{connecthttp.WithProtoJSON()}},
		{Name: "connect binary"},
		{Name: "connect get", Opts: []connecthttp.Option{connecthttp.WithHTTPGet()}},
		{Name: "grpc", Opts: []connecthttp.Option{connecthttp.WithGRPC()}, H2C: true},
		{Name: "grpc-web", Opts: []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	}
}

// internalMarkers are strings that only occur in backend-internal fields and
// error texts of the demo backends.
var internalMarkers = []string{"acme.internal", "sup-", "acct-", "costPrice", "cost_price", "supplier", "staff", "margin", "shard"}

func TestProductService(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	for _, p := range protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			client := storefrontv1connect.NewProductServiceClient(e.Browser(t).Client(p))
			ctx := context.Background()

			firstCtx, info := connect.NewClientContext(ctx)
			first, err := client.ListProducts(firstCtx, &storefrontv1.ListProductsRequest{PageSize: 5})
			if err != nil {
				t.Fatalf("ListProducts: %v", err)
			}
			if n := len(first.GetProducts()); n != 5 {
				t.Fatalf("got %d products, want 5", n)
			}
			if first.GetNextPageToken() == "" {
				t.Fatal("no next page token on a partial page")
			}
			if id := info.ResponseHeader().Get("X-Request-Id"); id == "" {
				t.Error("response has no X-Request-Id")
			}
			want := first.GetProducts()[0]
			got, err := client.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: want.GetProductId()})
			if err != nil {
				t.Fatalf("GetProduct: %v", err)
			}
			if got.GetProduct().GetName() != want.GetName() || got.GetProduct().GetPrice().GetAmountMinor() != want.GetPrice().GetAmountMinor() {
				t.Errorf("GetProduct = %v, want %v", got.GetProduct(), want)
			}
			cases := []struct {
				name string
				call func() error
				code connect.Code
			}{
				{"unknown product", func() error {
					_, err := client.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: "p-9999"})
					return err
				}, connect.CodeNotFound},
				{"malformed product id", func() error {
					_, err := client.GetProduct(ctx, &storefrontv1.GetProductRequest{ProductId: "../../etc"})
					return err
				}, connect.CodeInvalidArgument},
				{"page size too large", func() error {
					_, err := client.ListProducts(ctx, &storefrontv1.ListProductsRequest{PageSize: 101})
					return err
				}, connect.CodeInvalidArgument},
				{"forged page token", func() error {
					_, err := client.ListProducts(ctx, &storefrontv1.ListProductsRequest{PageToken: "not-a-token"})
					return err
				}, connect.CodeInvalidArgument},
			}
			for _, c := range cases {
				err := c.call()
				if connect.CodeOf(err) != c.code {
					t.Errorf("%s: got %v, want code %v", c.name, err, c.code)
				}
			}
		})
	}
}

// TestCatalogFaultsAreSanitized makes the catalog fail with its internal
// error text and checks the browser sees a fixed message and code only.
func TestCatalogFaultsAreSanitized(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	client := storefrontv1connect.NewProductServiceClient(e.Browser(t).Client(protocols()[0])) // Connect JSON
	cases := []struct {
		fault backends.Fault
		code  connect.Code
	}{
		{backends.Fault{Code: connect.CodeUnavailable}, connect.CodeUnavailable},
		{backends.Fault{Code: connect.CodeInternal}, connect.CodeInternal},
		{backends.Fault{Code: connect.CodeDataLoss}, connect.CodeInternal},
		{backends.Fault{Code: connect.CodeUnauthenticated}, connect.CodeUnavailable},
		{backends.Fault{Code: connect.CodePermissionDenied}, connect.CodeInternal},
	}
	// Faults are set on a shared backend, so these cases run one after another.
	for _, c := range cases {
		e.World.Backends.Catalog.SetFault(c.fault)
		ctx, info := connect.NewClientContext(context.Background())
		_, err := client.ListProducts(ctx, &storefrontv1.ListProductsRequest{})
		connectErr, ok := errors.AsType[*connect.Error](err)
		if !ok || connectErr.Code() != c.code {
			t.Errorf("catalog fault %v: got %v, want code %v", c.fault.Code, err, c.code)
			continue
		}
		text := gt.ErrorText(err, info)
		for _, m := range internalMarkers {
			if strings.Contains(text, m) {
				t.Errorf("catalog fault %v: error %q leaks %q", c.fault.Code, text, m)
			}
		}
		if len(connectErr.Details()) != 0 {
			t.Errorf("catalog fault %v: error carries %d details", c.fault.Code, len(connectErr.Details()))
		}
	}
	e.World.Backends.Catalog.SetFault(backends.Fault{})
	if _, err := client.ListProducts(context.Background(), &storefrontv1.ListProductsRequest{}); err != nil {
		t.Fatalf("after clearing the fault: %v", err)
	}
}

// TestNoInternalFieldsInResponses scans raw response bodies for backend
// internals over the JSON protocol, where field names are visible too.
func TestNoInternalFieldsInResponses(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	for _, path := range []string{
		"/acme.storefront.v1.ProductService/ListProducts",
		"/acme.storefront.v1.ProductService/GetProduct",
	} {
		body := `{"pageSize":100}`
		if strings.HasSuffix(path, "GetProduct") {
			body = `{"productId":"p-0001"}`
		}
		req, err := http.NewRequest(http.MethodPost, e.Public+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := e.Plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || len(raw) < 100 {
			t.Fatalf("%s: status %d, body %q", path, res.StatusCode, raw)
		}
		for _, m := range internalMarkers {
			if strings.Contains(string(raw), m) || strings.Contains(fmt.Sprint(res.Header), m) {
				t.Errorf("%s: response contains %q", path, m)
			}
		}
	}
}

func TestAnonymousSession(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	for _, p := range protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			_, err := gt.SignedOut(e.Browser(t).Sessions(p).GetSession(context.Background(), &custodianv1.GetSessionRequest{}))
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("GetSession: got %v, want a signed-out answer", err)
			}
			se := gt.SessionErrorOf(err)
			if se != nil && se.GetLoginUrl() != e.Public+"/auth/login" {
				t.Errorf("login url %q", se.GetLoginUrl())
			}
			if reason := se.GetReason(); reason != custodianv1.SessionEndReason_SESSION_END_REASON_NO_SESSION {
				t.Errorf("reason %v, want NO_SESSION", reason)
			}
		})
	}
}

func TestAccountServiceNeedsASession(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	client := e.Browser(t).Account(gt.Connect)
	_, err := client.GetDashboard(context.Background(), &storefrontv1.GetDashboardRequest{})
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("GetDashboard: got %v, want unauthenticated", err)
	}
	if e.World.Backends.Profiles.Calls("") != 0 {
		t.Fatal("an anonymous call reached the profiles backend")
	}
}

// TestStorefrontBodyLimit: the storefront takes at most 16 KiB per request,
// well under the server-wide 1 MiB, and refuses more before any backend call.
func TestStorefrontBodyLimit(t *testing.T) {
	t.Parallel()
	e := gt.NewDemoEnv(t)
	client := e.Browser(t).Products(gt.Connect)
	_, err := client.ListProducts(context.Background(), &storefrontv1.ListProductsRequest{Category: strings.Repeat("k", 20<<10)})
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "request is too large") {
		t.Fatalf("20 KiB request: got %v, want invalid_argument: request is too large", err)
	}
	if n := e.World.Backends.Catalog.Calls(""); n != 0 {
		t.Fatalf("catalog called %d times", n)
	}
	// Just under the limit is read, then refused by validation instead.
	_, err = client.ListProducts(context.Background(), &storefrontv1.ListProductsRequest{Category: strings.Repeat("k", 15<<10)})
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("15 KiB request: got %v, want invalid_argument", err)
	}
}
