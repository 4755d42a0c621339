package storefront

import (
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
)

// The functions in this file copy backend messages into public ones field
// by field. They are the only place public messages are filled from backend
// data, so an internal field can reach a browser only by being named here.

func publicProduct(p *catalogv1.Product, imageBase string) *storefrontv1.Product {
	if p == nil {
		return nil
	}
	return &storefrontv1.Product{
		ProductId:   p.GetProductId(),
		Name:        p.GetName(),
		Description: p.GetDescription(),
		Category:    p.GetCategory(),
		Price:       &storefrontv1.Money{CurrencyCode: p.GetCurrencyCode(), AmountMinor: p.GetPriceMinor()},
		ImageUrl:    imageURL(imageBase, p.GetImagePath()),
		InStock:     p.GetStockQuantity() > 0,
	}
}

// imageURL joins the public image origin and an image path; anything but a
// plain absolute path is dropped rather than passed to the browser.
func imageURL(base, path string) string {
	if len(path) < 2 || path[0] != '/' || path[1] == '/' || path[1] == '\\' {
		return ""
	}
	return base + path
}
