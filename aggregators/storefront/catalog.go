package storefront

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/custodian-bff/custodian/aggregators/fanout"
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
)

// Catalog answers product reads for every storefront service. The catalog
// is public and called with the gateway's own token, so its answers are the
// same for every caller: they are cached for a short time and identical
// reads in flight are coalesced into one backend call. Cached messages are
// shared and never modified.
type Catalog struct {
	client   catalogv1connect.CatalogServiceClient
	products *fanout.Cache[string, *catalogv1.Product]
	lists    *fanout.Cache[string, *catalogv1.ListProductsResponse]
	batches  *fanout.Coalescer[string, *catalogv1.BatchGetProductsResponse]
	listCo   *fanout.Coalescer[string, *catalogv1.ListProductsResponse]
	getCo    *fanout.Coalescer[string, *catalogv1.Product]
}

// NewCatalog returns a Catalog on client that keeps answers for ttl (30s
// when zero) and at most size products and size pages (4096 when zero). Of
// opts it reads only WithMeterProvider.
func NewCatalog(client catalogv1connect.CatalogServiceClient, ttl time.Duration, size int, opts ...Option) (*Catalog, error) {
	o := newOptions(opts)
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	if size <= 0 {
		size = 4096
	}
	products, err := fanout.NewCache[string, *catalogv1.Product](size, ttl, nil, fanout.WithCacheMetrics("catalog_products", o.meters))
	if err != nil {
		return nil, fmt.Errorf("storefront: %w", err)
	}
	lists, err := fanout.NewCache[string, *catalogv1.ListProductsResponse](size, ttl, nil, fanout.WithCacheMetrics("catalog_pages", o.meters))
	if err != nil {
		return nil, fmt.Errorf("storefront: %w", err)
	}
	return &Catalog{
		client:   client,
		products: products,
		lists:    lists,
		batches:  fanout.NewCoalescer[string, *catalogv1.BatchGetProductsResponse](0),
		listCo:   fanout.NewCoalescer[string, *catalogv1.ListProductsResponse](0),
		getCo:    fanout.NewCoalescer[string, *catalogv1.Product](0),
	}, nil
}

// listKey is the cache key of a page of products.
func listKey(req *catalogv1.ListProductsRequest) string {
	return strconv.Itoa(int(req.GetPageSize())) + "\x00" + req.GetPageToken() + "\x00" + req.GetCategory()
}

// list returns one page of products; key is listKey(req).
func (c *Catalog) list(ctx context.Context, key string, req *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	return fanout.Fetch(ctx, c.lists, c.listCo, key, func(ctx context.Context) (*catalogv1.ListProductsResponse, error) {
		res, err := c.client.ListProducts(ctx, req)
		if err != nil {
			return nil, err
		}
		return res, nil
	})
}

// get returns one product.
func (c *Catalog) get(ctx context.Context, id string) (*catalogv1.Product, error) {
	return fanout.Fetch(ctx, c.products, c.getCo, id, func(ctx context.Context) (*catalogv1.Product, error) {
		res, err := c.client.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: id})
		if err != nil {
			return nil, err
		}
		if res.GetProduct() == nil {
			return nil, connect.NewError(connect.CodeNotFound, "no product")
		}
		return res.GetProduct(), nil
	})
}

// lookup returns the products with the given ids that exist: cached ones
// from the cache, the rest with one batched backend call.
func (c *Catalog) lookup(ctx context.Context, ids []string) (map[string]*catalogv1.Product, error) {
	found, missing := c.products.LookupAll(ctx, ids)
	if len(missing) == 0 {
		return found, nil
	}
	slices.Sort(missing)
	for chunk := range slices.Chunk(missing, maxBatch) {
		res, _, err := c.batches.Do(ctx, strings.Join(chunk, "\x00"), func(ctx context.Context) (*catalogv1.BatchGetProductsResponse, error) {
			// A batch for these ids may have finished between the cache
			// check above and this call: then the cache has them all.
			if cached, ok := c.cached(chunk); ok {
				return cached, nil
			}
			res, err := c.client.BatchGetProducts(ctx, &catalogv1.BatchGetProductsRequest{ProductIds: chunk})
			if err != nil {
				return nil, err
			}
			for _, p := range res.GetProducts() {
				c.products.Add(p.GetProductId(), p)
			}
			return res, nil
		})
		if err != nil {
			return nil, err
		}
		for _, p := range res.GetProducts() {
			found[p.GetProductId()] = p
		}
	}
	return found, nil
}

// cached returns the products with ids when the cache holds every one.
func (c *Catalog) cached(ids []string) (*catalogv1.BatchGetProductsResponse, bool) {
	res := &catalogv1.BatchGetProductsResponse{Products: make([]*catalogv1.Product, 0, len(ids))}
	for _, id := range ids {
		p, ok := c.products.Get(id)
		if !ok {
			return nil, false
		}
		res.Products = append(res.Products, p)
	}
	return res, true
}

// maxBatch is the most ids the catalog takes in one batch call.
const maxBatch = 100
