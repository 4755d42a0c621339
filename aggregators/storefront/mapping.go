package storefront

import (
	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
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

func publicProfile(p *profilesv1.Profile) *storefrontv1.Profile {
	if p == nil {
		return nil
	}
	return &storefrontv1.Profile{
		DisplayName:    p.GetDisplayName(),
		Email:          p.GetEmail(),
		AvatarUrl:      p.GetAvatarUrl(),
		Locale:         p.GetLocale(),
		MarketingOptIn: p.GetMarketingOptIn(),
	}
}

func publicLoyalty(a *loyaltyv1.Account) *storefrontv1.Loyalty {
	if a == nil {
		return nil
	}
	return &storefrontv1.Loyalty{
		Points:           a.GetPoints(),
		Tier:             publicTier(a.GetTier()),
		PointsToNextTier: a.GetPointsToNextTier(),
	}
}

func publicTier(t loyaltyv1.Tier) storefrontv1.LoyaltyTier {
	switch t {
	case loyaltyv1.Tier_TIER_BRONZE:
		return storefrontv1.LoyaltyTier_LOYALTY_TIER_BRONZE
	case loyaltyv1.Tier_TIER_SILVER:
		return storefrontv1.LoyaltyTier_LOYALTY_TIER_SILVER
	case loyaltyv1.Tier_TIER_GOLD:
		return storefrontv1.LoyaltyTier_LOYALTY_TIER_GOLD
	default:
		return storefrontv1.LoyaltyTier_LOYALTY_TIER_UNSPECIFIED
	}
}

func publicStatus(s ordersv1.OrderStatus) storefrontv1.OrderStatus {
	switch s {
	case ordersv1.OrderStatus_ORDER_STATUS_PLACED:
		return storefrontv1.OrderStatus_ORDER_STATUS_PLACED
	case ordersv1.OrderStatus_ORDER_STATUS_SHIPPED:
		return storefrontv1.OrderStatus_ORDER_STATUS_SHIPPED
	case ordersv1.OrderStatus_ORDER_STATUS_DELIVERED:
		return storefrontv1.OrderStatus_ORDER_STATUS_DELIVERED
	case ordersv1.OrderStatus_ORDER_STATUS_CANCELLED:
		return storefrontv1.OrderStatus_ORDER_STATUS_CANCELLED
	default:
		return storefrontv1.OrderStatus_ORDER_STATUS_UNSPECIFIED
	}
}

// publicOrder maps an order; products (may be nil) fills in the names and
// images of its lines.
func publicOrder(o *ordersv1.Order, products map[string]*catalogv1.Product, imageBase string) *storefrontv1.Order {
	if o == nil {
		return nil
	}
	out := &storefrontv1.Order{
		OrderId: o.GetOrderId(),
		Status:  publicStatus(o.GetStatus()),
		Total:   &storefrontv1.Money{CurrencyCode: o.GetCurrencyCode(), AmountMinor: o.GetTotalMinor()},
		Lines:   make([]*storefrontv1.OrderLine, 0, len(o.GetLines())),
	}
	if t := o.GetCreateTime(); t != nil {
		out.CreateTime = timestamppb.New(t.AsTime())
	}
	for _, l := range o.GetLines() {
		line := &storefrontv1.OrderLine{
			ProductId: l.GetProductId(),
			Quantity:  l.GetQuantity(),
			UnitPrice: &storefrontv1.Money{CurrencyCode: o.GetCurrencyCode(), AmountMinor: l.GetUnitPriceMinor()},
		}
		if p := products[l.GetProductId()]; p != nil {
			line.ProductName = p.GetName()
			line.ImageUrl = imageURL(imageBase, p.GetImagePath())
		}
		out.Lines = append(out.Lines, line)
	}
	return out
}

// productIDs lists the distinct product ids of orders' lines.
func productIDs(orders ...*ordersv1.Order) []string {
	seen := make(map[string]bool)
	var ids []string
	for _, o := range orders {
		for _, l := range o.GetLines() {
			if id := l.GetProductId(); !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return ids
}
