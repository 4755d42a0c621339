package storefront

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
)

// versionedCatalog answers ListProducts with one product named after the
// category and how many lists it has answered.
type versionedCatalog struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
	lists atomic.Int64
}

func (c *versionedCatalog) ListProducts(_ context.Context, req *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	n := c.lists.Add(1)
	return &catalogv1.ListProductsResponse{Products: []*catalogv1.Product{{
		ProductId: "p-1", Name: fmt.Sprintf("%s v%d", req.GetCategory(), n), ImagePath: "/p.png",
	}}}, nil
}

// TestSharedProductPages checks that a public product page is built once
// per catalog cache entry, shared by callers, and rebuilt with new data
// once the catalog's entry ends.
func TestSharedProductPages(t *testing.T) {
	t.Parallel()
	const ttl = 200 * time.Millisecond
	backend := &versionedCatalog{}
	srv := connect.NewServer()
	catalogv1connect.RegisterCatalogServiceHandler(srv, backend)
	catalog, err := NewCatalog(catalogv1connect.NewCatalogServiceClient(serveHTTP(t, srv)), ttl, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := NewProductService(catalog)
	list := func(category string) *storefrontv1.ListProductsResponse {
		t.Helper()
		res, err := s.ListProducts(t.Context(), &storefrontv1.ListProductsRequest{Category: category})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := list("kitchen")
	if got := first.GetProducts()[0].GetName(); got != "kitchen v1" {
		t.Fatalf("first page has %q", got)
	}
	if again := list("kitchen"); again != first {
		t.Error("a second caller within the catalog's cache time got a page built anew, not the shared one")
	}
	if other := list("garden"); other == first || other.GetProducts()[0].GetName() != "garden v2" {
		t.Errorf("another category got %v", other)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	later := list("kitchen")
	if later == first || later.GetProducts()[0].GetName() != "kitchen v3" {
		t.Errorf("after the catalog's entry ended the page is %q, want kitchen v3 built anew", later.GetProducts()[0].GetName())
	}
	if got := first.GetProducts()[0].GetName(); got != "kitchen v1" {
		t.Errorf("the shared page was modified: %q", got)
	}
}
