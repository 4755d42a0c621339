package storefront

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/catalog/v1/catalogv1connect"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/storefront/v1/storefrontv1connect"
	custodianv1 "github.com/custodian-bff/custodian/gen/go/custodian/v1"
)

// backendSecret is in every error the fake catalog answers; it must never
// reach the storefront's caller.
const backendSecret = "db-internal-7.acme.corp said"

// fakeCatalog answers GetProduct by product id: "p-<code>" fails with that
// code, anything else is found.
type fakeCatalog struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
}

func (fakeCatalog) GetProduct(_ context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	switch req.GetProductId() {
	case "p-not-found":
		return nil, connect.NewError(connect.CodeNotFound, backendSecret)
	case "p-unavailable":
		return nil, connect.NewError(connect.CodeUnavailable, backendSecret)
	case "p-invalid":
		return nil, connect.NewError(connect.CodeInvalidArgument, backendSecret)
	}
	return &catalogv1.GetProductResponse{Product: &catalogv1.Product{
		ProductId: req.GetProductId(), Name: "Mug", ImagePath: "/mug.png", StockQuantity: 3,
	}}, nil
}

// serveHTTP serves server on a loopback listener and returns a client of it.
func serveHTTP(t *testing.T, server *connect.Server) *connect.Client {
	t.Helper()
	mux := http.NewServeMux()
	connecthttp.Mount(mux, server)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return connect.NewClient(connecthttp.NewTransport(srv.Client(), srv.URL))
}

// startProductService serves a ProductService in front of fakeCatalog, each
// over its own loopback listener, and returns a client of the storefront.
func startProductService(t *testing.T) storefrontv1connect.ProductServiceClient {
	t.Helper()
	backend := connect.NewServer()
	catalogv1connect.RegisterCatalogServiceHandler(backend, fakeCatalog{})
	catalog, err := NewCatalog(catalogv1connect.NewCatalogServiceClient(serveHTTP(t, backend)), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	storefront := connect.NewServer()
	storefrontv1connect.RegisterProductServiceHandler(storefront, NewProductService(catalog, WithImageBaseURL("https://img.example")))
	return storefrontv1connect.NewProductServiceClient(serveHTTP(t, storefront))
}

func TestProductServiceOverHTTP(t *testing.T) {
	t.Parallel()
	client := startProductService(t)

	res, err := client.GetProduct(t.Context(), &storefrontv1.GetProductRequest{ProductId: "mug"})
	if err != nil {
		t.Fatal(err)
	}
	if p := res.GetProduct(); p.GetName() != "Mug" || p.GetImageUrl() != "https://img.example/mug.png" || !p.GetInStock() {
		t.Errorf("product %v", p)
	}

	cases := []struct {
		id       string
		wantCode connect.Code
		wantMsg  string
	}{
		{"p-not-found", connect.CodeNotFound, "not found"},
		{"p-unavailable", connect.CodeUnavailable, "catalog is unavailable"},
		{"p-invalid", connect.CodeInternal, "internal error"},
	}
	for _, c := range cases {
		_, err := client.GetProduct(t.Context(), &storefrontv1.GetProductRequest{ProductId: c.id})
		connectErr, ok := errors.AsType[*connect.Error](err)
		if !ok || connectErr.Code() != c.wantCode || connectErr.Message() != c.wantMsg {
			t.Errorf("GetProduct(%s) = %v, want %v %q", c.id, err, c.wantCode, c.wantMsg)
			continue
		}
		if strings.Contains(err.Error(), "db-internal") || len(connectErr.Details()) != 0 {
			t.Errorf("GetProduct(%s): the backend's text or details reached the caller: %v", c.id, err)
		}
	}

	// A refused field comes back with its BadRequest detail.
	_, err = client.GetProduct(t.Context(), &storefrontv1.GetProductRequest{ProductId: "no spaces"})
	connectErr, ok := errors.AsType[*connect.Error](err)
	if !ok || connectErr.Code() != connect.CodeInvalidArgument || len(connectErr.Details()) != 1 {
		t.Fatalf("GetProduct(bad id) = %v, want invalid_argument with a detail", err)
	}
	v, derr := connectproto.UnmarshalErrorDetail(connectErr.Details()[0])
	br, ok := v.(*custodianv1.BadRequest)
	if derr != nil || !ok || len(br.GetFieldViolations()) != 1 || br.GetFieldViolations()[0].GetField() != "product_id" {
		t.Errorf("detail %v, %v; want a BadRequest naming product_id", v, derr)
	}
}
