package storefront

import (
	"context"
	"log/slog"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
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
	catalog   *Catalog
	logger    *slog.Logger
	imageBase string
}

var _ storefrontv1connect.ProductServiceHandler = (*ProductService)(nil)

// NewProductService returns a ProductService backed by catalog.
func NewProductService(catalog *Catalog, opts ...Option) *ProductService {
	o := newOptions(opts)
	return &ProductService{catalog: catalog, logger: o.logger, imageBase: o.imageBase}
}

// ListProducts returns a page of products, optionally of one category.
func (s *ProductService) ListProducts(ctx context.Context, req *storefrontv1.ListProductsRequest) (*storefrontv1.ListProductsResponse, error) {
	var invalid fanout.FieldErrors
	checkPaging(&invalid, req.GetPageSize(), maxProductPageSize, req.GetPageToken())
	if c := req.GetCategory(); len(c) > maxCategoryLength || (c != "" && !isID(c)) {
		invalid.Add("category", "must be a category name")
	}
	if err := invalid.Err(); err != nil {
		return nil, err
	}
	size := req.GetPageSize()
	if size == 0 {
		size = defaultProductPageSize
	}
	res, err := s.catalog.list(ctx, &catalogv1.ListProductsRequest{
		PageSize:  size,
		PageToken: req.GetPageToken(),
		Category:  req.GetCategory(),
	})
	if err != nil {
		if connect.CodeOf(err) == connect.CodeInvalidArgument {
			// Only the page token can still be refused: the rest was checked above.
			invalid.Add("page_token", "is not a token from a previous answer")
			return nil, invalid.Err()
		}
		return nil, fanout.BackendError(ctx, s.logger, "catalog", err)
	}
	out := &storefrontv1.ListProductsResponse{
		Products:      make([]*storefrontv1.Product, 0, len(res.GetProducts())),
		NextPageToken: res.GetNextPageToken(),
	}
	for _, p := range res.GetProducts() {
		out.Products = append(out.Products, publicProduct(p, s.imageBase))
	}
	return out, nil
}

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
