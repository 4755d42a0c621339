package backends

import (
	"context"

	"connectrpc.com/connect/v2"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	"google.golang.org/protobuf/proto"
)

// Catalog limits, as documented in the storefront API.
const (
	defaultProductPageSize = 20
	maxProductPageSize     = 100
	maxBatchGetProducts    = 100
)

// catalogService is acme.catalog.v1.CatalogService. Its products never
// change, so it needs no lock. Any valid token for its audience may read it,
// including client-credentials tokens whose subject is a client id.
type catalogService struct {
	products []*catalogv1.Product // in product id order
	byID     map[string]*catalogv1.Product
}

var _ catalogv1connect.CatalogServiceHandler = (*catalogService)(nil)

func newCatalogService(products []*catalogv1.Product) *catalogService {
	byID := make(map[string]*catalogv1.Product, len(products))
	for _, p := range products {
		byID[p.GetProductId()] = p
	}
	return &catalogService{products: products, byID: byID}
}

func (s *catalogService) register(srv *connect.Server) {
	catalogv1connect.RegisterCatalogServiceHandler(srv, s)
}

func (s *catalogService) ListProducts(
	ctx context.Context,
	req *catalogv1.ListProductsRequest,
) (*catalogv1.ListProductsResponse, error) {
	size, err := pageSize(req.GetPageSize(), defaultProductPageSize, maxProductPageSize)
	if err != nil {
		return nil, err
	}
	category := req.GetCategory()
	token, _, err := decodePageToken(req.GetPageToken(), "products", category)
	if err != nil {
		return nil, err
	}
	var matching []*catalogv1.Product
	for _, p := range s.products {
		if category == "" || p.GetCategory() == category {
			matching = append(matching, p)
		}
	}
	start := min(token.offset, len(matching))
	end := min(start+size, len(matching))
	res := &catalogv1.ListProductsResponse{
		Products:  cloneAll(matching[start:end]),
		ShardHost: "catalog-shard-1.acme.internal",
	}
	if end < len(matching) {
		res.NextPageToken = pageToken{kind: "products", filter: category, offset: end}.encode()
	}
	return res, nil
}

func (s *catalogService) GetProduct(
	ctx context.Context,
	req *catalogv1.GetProductRequest,
) (*catalogv1.GetProductResponse, error) {
	id := req.GetProductId()
	if id == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, "product_id is required")
	}
	p, ok := s.byID[id]
	if !ok {
		return nil, connect.Errorf(connect.CodeNotFound, "product %q not found", id)
	}
	return &catalogv1.GetProductResponse{Product: proto.CloneOf(p)}, nil
}

func (s *catalogService) BatchGetProducts(
	ctx context.Context,
	req *catalogv1.BatchGetProductsRequest,
) (*catalogv1.BatchGetProductsResponse, error) {
	ids := req.GetProductIds()
	if len(ids) > maxBatchGetProducts {
		return nil, connect.Errorf(connect.CodeInvalidArgument, "at most %d product_ids per request", maxBatchGetProducts)
	}
	res := &catalogv1.BatchGetProductsResponse{}
	for _, id := range ids {
		if p, ok := s.byID[id]; ok {
			res.Products = append(res.Products, proto.CloneOf(p))
		} else {
			res.MissingProductIds = append(res.MissingProductIds, id)
		}
	}
	return res, nil
}

// cloneAll deep-copies messages, so an answer never aliases a backend's data.
func cloneAll[M proto.Message](msgs []M) []M {
	out := make([]M, len(msgs))
	for i, m := range msgs {
		out[i] = proto.CloneOf(m)
	}
	return out
}
