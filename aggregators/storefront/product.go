package storefront

import (
	"context"
	"log/slog"

	"connectrpc.com/connect/v2"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	"github.com/custodian-bff/custodian/aggregators/pagetoken"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	"github.com/custodian-bff/custodian/server"
)

const (
	defaultProductPageSize = 20
	maxProductPageSize     = 100
	maxCategoryLength      = 64
)

// ProductService is the public catalog. It calls the catalog backend with
// the gateway's own token, so anonymous callers are served, from the shared
// cache where possible.
type ProductService struct {
	catalog    *Catalog
	logger     *slog.Logger
	imageBase  string
	pageTokens *pagetoken.Sealer
	// pages are the public answers built from the catalog's cached pages,
	// the same for every caller and shared (server.Share), so each is
	// built and encoded once per catalog cache entry.
	pages *lru.Cache[string, publicPage]
}

// publicPage is the public answer built from one catalog page.
type publicPage struct {
	from *catalogv1.ListProductsResponse
	res  *storefrontv1.ListProductsResponse
}

var _ storefrontv1connect.ProductServiceHandler = (*ProductService)(nil)

// NewProductService returns a ProductService backed by catalog.
func NewProductService(catalog *Catalog, opts ...Option) *ProductService {
	o := newOptions(opts)
	pages, _ := lru.New[string, publicPage](maxPublicPages) // errors only for a size < 1
	return &ProductService{catalog: catalog, logger: o.logger, imageBase: o.imageBase, pageTokens: o.pageTokens, pages: pages}
}

// productsPurpose is what a products page token is sealed for: the
// catalog's listing of one category. The catalog is public, so the token
// is not bound to a session; a token of one category is refused for
// another before the catalog is called.
func productsPurpose(category string) string {
	return catalogv1connect.CatalogServiceListProductsProcedure + "?category=" + category
}

// ListProducts returns a page of products, optionally of one category.
func (s *ProductService) ListProducts(ctx context.Context, req *storefrontv1.ListProductsRequest) (*storefrontv1.ListProductsResponse, error) {
	var invalid fanout.FieldErrors
	checkPageSize(&invalid, req.GetPageSize(), maxProductPageSize)
	category := req.GetCategory()
	if len(category) > maxCategoryLength || (category != "" && !isID(category)) {
		invalid.Add("category", "must be a category name")
	}
	pageToken, err := s.pageTokens.OpenPublic(productsPurpose(category), req.GetPageToken())
	if err != nil {
		invalid.Add("page_token", pageTokenRefused)
	}
	if err := invalid.Err(); err != nil {
		return nil, err
	}
	size := req.GetPageSize()
	if size == 0 {
		size = defaultProductPageSize
	}
	listReq := &catalogv1.ListProductsRequest{
		PageSize:  size,
		PageToken: pageToken,
		Category:  category,
	}
	key := listKey(listReq)
	res, err := s.catalog.list(ctx, key, listReq)
	if err != nil {
		if connect.CodeOf(err) == connect.CodeInvalidArgument {
			// Only the page token can still be refused: the rest was checked above.
			invalid.Add("page_token", pageTokenRefused)
			return nil, invalid.Err()
		}
		return nil, fanout.BackendError(ctx, s.logger, "catalog", err)
	}
	if page, ok := s.pages.Get(key); ok && page.from == res {
		return page.res, nil
	}
	next, err := s.pageTokens.SealPublic(productsPurpose(category), res.GetNextPageToken())
	if err != nil {
		return nil, fanout.BackendError(ctx, s.logger, "catalog", err)
	}
	out := &storefrontv1.ListProductsResponse{
		Products:      make([]*storefrontv1.Product, 0, len(res.GetProducts())),
		NextPageToken: next,
	}
	for _, p := range res.GetProducts() {
		out.Products = append(out.Products, publicProduct(p, s.imageBase))
	}
	// The catalog page is shared by every caller until its cache entry
	// ends, and so is this answer built from it.
	s.pages.Add(key, publicPage{from: res, res: server.Share(out)})
	return out, nil
}

// maxPublicPages bounds the public answers kept, as the catalog bounds its
// cached pages.
const maxPublicPages = 4096

// GetProduct returns one product.
func (s *ProductService) GetProduct(ctx context.Context, req *storefrontv1.GetProductRequest) (*storefrontv1.GetProductResponse, error) {
	if !isID(req.GetProductId()) {
		var invalid fanout.FieldErrors
		invalid.Add("product_id", "must be 1 to 64 letters, digits, '-' or '_'")
		return nil, invalid.Err()
	}
	p, err := s.catalog.get(ctx, req.GetProductId())
	if err != nil {
		return nil, fanout.BackendError(ctx, s.logger, "catalog", err)
	}
	return &storefrontv1.GetProductResponse{Product: publicProduct(p, s.imageBase)}, nil
}
