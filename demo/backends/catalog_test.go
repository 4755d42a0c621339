package backends_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
)

func TestListProductsPaging(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	token := idp.token(t, "alice", set.Catalog.Audience())

	allIDs := make([]string, 24)
	for i := range allIDs {
		allIDs[i] = fmt.Sprintf("p-%04d", i+1)
	}
	cases := []struct {
		name      string
		pageSize  int32
		category  string
		wantCount int
		wantPages int
	}{
		{name: "default page size", pageSize: 0, wantCount: 24, wantPages: 2},
		{name: "one per page", pageSize: 1, wantCount: 24, wantPages: 24},
		{name: "uneven pages", pageSize: 7, wantCount: 24, wantPages: 4},
		{name: "exact fit", pageSize: 24, wantCount: 24, wantPages: 1},
		{name: "maximum page size", pageSize: 100, wantCount: 24, wantPages: 1},
		{name: "books", pageSize: 4, category: "books", wantCount: 6, wantPages: 2},
		{name: "games default", category: "games", wantCount: 6, wantPages: 1},
		{name: "kitchen one per page", pageSize: 1, category: "kitchen", wantCount: 6, wantPages: 6},
		{name: "garden", pageSize: 5, category: "garden", wantCount: 6, wantPages: 2},
		{name: "unknown category", category: "weapons", wantCount: 0, wantPages: 1},
	}
	for _, p := range protocols(t) {
		c := newClients(set, p)
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				limit := int(tc.pageSize)
				if limit == 0 {
					limit = 20
				}
				var ids []string
				pageToken, pages := "", 0
				for {
					res, err := c.catalog.ListProducts(bearer(t.Context(), token), &catalogv1.ListProductsRequest{
						PageSize:  tc.pageSize,
						PageToken: pageToken,
						Category:  tc.category,
					})
					wantCode(t, err, 0)
					pages++
					if pages > 30 {
						t.Fatal("paging does not end")
					}
					if n := len(res.GetProducts()); n > limit {
						t.Errorf("page %d has %d products, want at most %d", pages, n, limit)
					}
					if res.GetShardHost() == "" {
						t.Error("shard_host is empty")
					}
					for _, prod := range res.GetProducts() {
						if tc.category != "" && prod.GetCategory() != tc.category {
							t.Errorf("%s has category %q, want %q", prod.GetProductId(), prod.GetCategory(), tc.category)
						}
						ids = append(ids, prod.GetProductId())
					}
					pageToken = res.GetNextPageToken()
					if pageToken == "" {
						break
					}
				}
				if pages != tc.wantPages {
					t.Errorf("walked %d pages, want %d", pages, tc.wantPages)
				}
				if len(ids) != tc.wantCount {
					t.Errorf("got %d products, want %d", len(ids), tc.wantCount)
				}
				if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
					t.Errorf("products are not each listed once in id order: %v", ids)
				}
				if tc.category == "" && !slices.Equal(ids, allIDs) {
					t.Errorf("got %v, want %v", ids, allIDs)
				}
			})
		}
	}
}

func TestProductData(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	c := newClients(set, protocols(t)[1])
	// A client-credentials token has the client id as its subject.
	token := idp.token(t, "storefront-gateway", set.Catalog.Audience())

	res, err := c.catalog.ListProducts(bearer(t.Context(), token), &catalogv1.ListProductsRequest{PageSize: 100})
	wantCode(t, err, 0)
	products := res.GetProducts()
	if len(products) != 24 {
		t.Fatalf("got %d products, want 24", len(products))
	}
	categories := make(map[string]int)
	outOfStock := 0
	for _, p := range products {
		id := p.GetProductId()
		categories[p.GetCategory()]++
		if p.GetStockQuantity() == 0 {
			outOfStock++
		}
		switch {
		case p.GetName() == "" || p.GetDescription() == "":
			t.Errorf("%s lacks name or description", id)
		case p.GetPriceMinor() <= 0 || p.GetCurrencyCode() != "EUR":
			t.Errorf("%s price = %d %s", id, p.GetPriceMinor(), p.GetCurrencyCode())
		case p.GetImagePath() != "/images/"+id+".jpg":
			t.Errorf("%s image_path = %q", id, p.GetImagePath())
		case p.GetCostPriceMinor() <= 0 || p.GetCostPriceMinor() >= p.GetPriceMinor():
			t.Errorf("%s cost_price_minor = %d for price %d", id, p.GetCostPriceMinor(), p.GetPriceMinor())
		case !strings.HasPrefix(p.GetSupplierId(), "sup-"):
			t.Errorf("%s supplier_id = %q", id, p.GetSupplierId())
		case p.GetStorageHost() != "img-store-2.acme.internal":
			t.Errorf("%s storage_host = %q", id, p.GetStorageHost())
		case p.GetStaffNotes() == "" || p.GetMarginBps() <= 0:
			t.Errorf("%s lacks staff_notes or margin_bps", id)
		}
	}
	for _, cat := range []string{"kitchen", "garden", "books", "games"} {
		if categories[cat] == 0 {
			t.Errorf("no products in category %q", cat)
		}
	}
	if outOfStock == 0 || outOfStock > 6 {
		t.Errorf("%d products out of stock, want a few", outOfStock)
	}
	if s := set.Catalog.LastSubject(); s != "storefront-gateway" {
		t.Errorf("LastSubject() = %q, want storefront-gateway", s)
	}
}

func TestCatalogErrors(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	token := idp.token(t, "alice", set.Catalog.Audience())
	ordersToken := idp.token(t, "alice", set.Orders.Audience())

	for _, p := range protocols(t) {
		c := newClients(set, p)
		booksPage, err := c.catalog.ListProducts(bearer(t.Context(), token), &catalogv1.ListProductsRequest{PageSize: 2, Category: "books"})
		wantCode(t, err, 0)
		ordersPage := listOrdersPage(t, c, ordersToken, 1, "")
		cases := []struct {
			name string
			req  *catalogv1.ListProductsRequest
		}{
			{"page size too large", &catalogv1.ListProductsRequest{PageSize: 101}},
			{"negative page size", &catalogv1.ListProductsRequest{PageSize: -1}},
			{"garbage page token", &catalogv1.ListProductsRequest{PageToken: "!!not-a-token!!"}},
			{"page token of another category", &catalogv1.ListProductsRequest{PageToken: booksPage.GetNextPageToken(), Category: "games"}},
			{"page token of the orders listing", &catalogv1.ListProductsRequest{PageToken: ordersPage.GetNextPageToken()}},
		}
		for _, tc := range cases {
			t.Run(p.name+"/ListProducts/"+tc.name, func(t *testing.T) {
				t.Parallel()
				_, err := c.catalog.ListProducts(bearer(t.Context(), token), tc.req)
				wantCode(t, err, connect.CodeInvalidArgument)
			})
		}
		getCases := []struct {
			name string
			id   string
			want connect.Code
		}{
			{"known", "p-0013", 0},
			{"unknown", "p-9999", connect.CodeNotFound},
			{"empty", "", connect.CodeInvalidArgument},
		}
		for _, tc := range getCases {
			t.Run(p.name+"/GetProduct/"+tc.name, func(t *testing.T) {
				t.Parallel()
				res, err := c.catalog.GetProduct(bearer(t.Context(), token), &catalogv1.GetProductRequest{ProductId: tc.id})
				wantCode(t, err, tc.want)
				if err == nil && (res.GetProduct().GetProductId() != tc.id || res.GetProduct().GetCostPriceMinor() == 0) {
					t.Errorf("got %v, want product %s with internal fields", res.GetProduct(), tc.id)
				}
			})
		}
	}
}

func TestBatchGetProducts(t *testing.T) {
	t.Parallel()
	idp := newTestIDP(t)
	set := startSet(t, idp)
	token := idp.token(t, "alice", set.Catalog.Audience())

	hundred := make([]string, 100)
	for i := range hundred {
		hundred[i] = fmt.Sprintf("p-%04d", i%30+1) // p-0025..p-0030 don't exist
	}
	cases := []struct {
		name        string
		ids         []string
		want        connect.Code
		wantIDs     []string
		wantMissing []string
		wantCount   int
	}{
		{
			name:        "request order and missing ids",
			ids:         []string{"p-0017", "nope", "p-0002", "p-0017", "p-9999"},
			wantIDs:     []string{"p-0017", "p-0002", "p-0017"},
			wantMissing: []string{"nope", "p-9999"},
			wantCount:   3,
		},
		{name: "none", ids: nil, wantCount: 0},
		{name: "all missing", ids: []string{"x", "y"}, wantMissing: []string{"x", "y"}, wantCount: 0},
		{name: "exactly 100", ids: hundred, wantCount: 82},
		{name: "101 ids", ids: append(slices.Clone(hundred), "p-0001"), want: connect.CodeInvalidArgument},
	}
	for _, p := range protocols(t) {
		c := newClients(set, p)
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				res, err := c.catalog.BatchGetProducts(bearer(t.Context(), token), &catalogv1.BatchGetProductsRequest{ProductIds: tc.ids})
				wantCode(t, err, tc.want)
				if err != nil {
					return
				}
				var got []string
				for _, prod := range res.GetProducts() {
					got = append(got, prod.GetProductId())
				}
				if len(got) != tc.wantCount {
					t.Errorf("got %d products, want %d", len(got), tc.wantCount)
				}
				if tc.wantIDs != nil && !slices.Equal(got, tc.wantIDs) {
					t.Errorf("products = %v, want %v", got, tc.wantIDs)
				}
				if tc.wantMissing != nil && !slices.Equal(res.GetMissingProductIds(), tc.wantMissing) {
					t.Errorf("missing = %v, want %v", res.GetMissingProductIds(), tc.wantMissing)
				}
				if want := len(tc.ids) - tc.wantCount; len(res.GetMissingProductIds()) != want {
					t.Errorf("%d missing ids, want %d", len(res.GetMissingProductIds()), want)
				}
			})
		}
	}
}
