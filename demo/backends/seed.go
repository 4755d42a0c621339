package backends

import (
	"fmt"
	"time"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The seed data is deterministic and built afresh by each function call, so
// every [Set] starts from the same state and Sets never share data.

// currency is the only currency the Acme store sells in.
const currency = "EUR"

// Ledger account ids; profiles and loyalty must agree on them.
const (
	aliceAccountID = "acct-7f3c21a9"
	bobAccountID   = "acct-2b91e0d4"
)

// seedProducts returns the catalog's 24 products in product id order.
func seedProducts() []*catalogv1.Product {
	type row struct {
		name, description, category string
		price                       int64 // minor units
		marginBPS                   int32
		stock                       int32
		supplier, notes             string
	}
	rows := []row{
		{"Cast Iron Skillet 28 cm", "Pre-seasoned cast iron pan that goes from hob to oven; holds heat for a perfect sear.", "kitchen", 4990, 4200, 37, "sup-lodgeworks", "Best seller in Q4; reorder at 15."},
		{"Chef's Knife 20 cm", "Forged high-carbon stainless blade with a full tang and riveted beech handle.", "kitchen", 8900, 5100, 12, "sup-solingen-ek", "Supplier raising prices 6% in January."},
		{"Bamboo Cutting Board", "Large end-grain bamboo board with a juice groove; gentle on knife edges.", "kitchen", 2450, 5800, 58, "sup-greenleaf", "Check batch 2291 for warping complaints."},
		{"Pour-Over Coffee Set", "Glass dripper, carafe and 100 paper filters for a clean, bright cup.", "kitchen", 3900, 4700, 0, "sup-nordbrew", "Out of stock until container from Gdansk clears customs."},
		{"Enamel Dutch Oven 5 L", "Enamelled cast iron casserole for braises, stews and no-knead bread.", "kitchen", 12900, 3900, 6, "sup-lodgeworks", "Do not discount below 99 EUR (MAP agreement)."},
		{"Linen Tea Towels (set of 3)", "Stonewashed European linen towels that get softer with every wash.", "kitchen", 1800, 6200, 90, "sup-flaxhouse", "Overstocked; candidate for bundle promo."},
		{"Stainless Steel Hand Trowel", "Rust-proof trowel with depth markings and an ash-wood handle.", "garden", 1590, 5500, 44, "sup-greenleaf", "Pairs with p-0012 in the spring campaign."},
		{"Heirloom Tomato Seed Collection", "Eight open-pollinated varieties, from Brandywine to Black Krim.", "garden", 1250, 7100, 120, "sup-seedvault", "Seeds expire 2027-12; rotate stock."},
		{"Expanding Garden Hose 30 m", "Lightweight hose that expands to 30 m and shrinks back for storage.", "garden", 3490, 4400, 0, "sup-aquaflex", "Recall review pending (connector leaks, case QA-118)."},
		{"Cedar Raised Bed 120×60 cm", "Untreated western red cedar planter box; tool-free assembly.", "garden", 11900, 3600, 8, "sup-timbercraft", "Ships on a pallet; freight cost not in margin."},
		{"Solar Path Lights (pack of 6)", "Warm-white LED stake lights that charge by day and glow for 8 hours.", "garden", 2990, 5300, 25, "sup-brightside", "High return rate (11%); monitor."},
		{"Bypass Pruning Shears", "Hardened steel blades and a spring lock for clean cuts up to 20 mm.", "garden", 2790, 5000, 31, "sup-solingen-ek", "Spare springs in bin G-11; send free on request."},
		{"The Patient Gardener", "A year of seasonal advice for growing food in small spaces.", "books", 2200, 3000, 15, "sup-bookhub", "Signed copies in bin C-04; do not sell as unsigned."},
		{"Salt, Fire & Time: A Cook's Handbook", "Technique-first recipes for braising, roasting and fermenting.", "books", 3450, 3200, 9, "sup-bookhub", "Author event in Utrecht 2026-11-14; hold 5 copies."},
		{"A Short History of Board Games", "From Senet to modern Eurogames, richly illustrated.", "books", 1999, 2800, 0, "sup-bookhub", "Reprint due March; publisher delayed twice."},
		{"Bread at Home", "Sourdough, rye and enriched doughs explained step by step.", "books", 2600, 3100, 21, "sup-bookhub", "Bundle with p-0001 at 10% off approved by merch."},
		{"The Night Orchard", "A novel about three sisters, one orchard and a long, dry summer.", "books", 1495, 2600, 40, "sup-inkwell", "Book-club pick; expect spike in May."},
		{"Field Guide to European Birds", "Over 700 species with range maps and song descriptions.", "books", 2899, 2900, 13, "sup-inkwell", "Second edition arriving; sell down first edition."},
		{"Settlers of the Northern Isles", "Trade, build and explore in this strategy game for 3–4 players.", "games", 4499, 3800, 17, "sup-meeple", "Exclusive edition; contract ends 2027-06."},
		{"Wooden Chess Set", "Weighted Staunton pieces and a folding walnut board.", "games", 5900, 4500, 5, "sup-timbercraft", "Fragile; double-box. Two damaged returns in October."},
		{"Cooperative Puzzle Quest", "Work together to escape the sunken library before the tide comes in.", "games", 3999, 4100, 0, "sup-meeple", "Discontinued by publisher; do not reorder."},
		{"1000-Piece Jigsaw: Harbour at Dusk", "A moody harbour scene printed on thick recycled board.", "games", 1899, 5600, 33, "sup-puzzlemill", "Missing-piece claims: ship replacement from bin D-07."},
		{"Pocket Card Game: Lanterns", "A quick set-collection card game that fits in a coat pocket.", "games", 1299, 6000, 60, "sup-meeple", "Impulse item; keep near checkout page."},
		{"Classic Mahjong Set", "144 melamine tiles with racks, dice and a travel case.", "games", 7450, 4300, 3, "sup-orientplay", "Tiles from batch 17 have a misprint; replace on request."},
	}
	products := make([]*catalogv1.Product, len(rows))
	for i, r := range rows {
		id := fmt.Sprintf("p-%04d", i+1)
		products[i] = &catalogv1.Product{
			ProductId:      id,
			Name:           r.name,
			Description:    r.description,
			Category:       r.category,
			PriceMinor:     r.price,
			CurrencyCode:   currency,
			ImagePath:      "/images/" + id + ".jpg",
			StockQuantity:  r.stock,
			CostPriceMinor: r.price * int64(10000-r.marginBPS) / 10000,
			SupplierId:     r.supplier,
			StorageHost:    "img-store-2.acme.internal",
			StaffNotes:     r.notes,
			MarginBps:      r.marginBPS,
		}
	}
	return products
}

// seedProfiles returns the customers' profiles by subject.
func seedProfiles() map[string]*profilesv1.Profile {
	return map[string]*profilesv1.Profile{
		"alice": {
			Subject:           "alice",
			DisplayName:       "Alice Martin",
			Email:             "alice@example.com",
			AvatarUrl:         "https://avatars.acme.example/alice.png",
			Locale:            "en-GB",
			MarketingOptIn:    true,
			InternalAccountId: aliceAccountID,
			RiskScore:         112,
			StaffNotes:        "VIP; prefers email. Escalate complaints to tier-2 (ticket #44812).",
			KycStatusCode:     "KYC-VERIFIED-L2",
			StorageHost:       "profiles-pg-2.acme.internal",
		},
		"bob": {
			Subject:           "bob",
			DisplayName:       "Bob Janssen",
			Email:             "bob@example.com",
			AvatarUrl:         "https://avatars.acme.example/bob.png",
			Locale:            "nl-NL",
			MarketingOptIn:    false,
			InternalAccountId: bobAccountID,
			RiskScore:         487,
			StaffNotes:        "Chargeback in 2025 resolved in his favour; watch for repeats.",
			KycStatusCode:     "KYC-PENDING-DOC",
			StorageHost:       "profiles-pg-1.acme.internal",
		},
	}
}

// seedAccounts returns the customers' loyalty accounts by subject.
func seedAccounts() map[string]*loyaltyv1.Account {
	accounts := map[string]*loyaltyv1.Account{
		"alice": {
			Subject:            "alice",
			Points:             12340,
			InternalAccountId:  aliceAccountID,
			FraudRiskScore:     112,
			TierOverrideReason: "Goodwill upgrade after lost parcel (case 2026-0913)",
			LedgerHost:         "ledger-1.acme.internal",
		},
		"bob": {
			Subject:            "bob",
			Points:             120,
			InternalAccountId:  bobAccountID,
			FraudRiskScore:     487,
			TierOverrideReason: "none",
			LedgerHost:         "ledger-2.acme.internal",
		},
	}
	for _, a := range accounts {
		a.Tier, a.PointsToNextTier = tierFor(a.Points)
	}
	return accounts
}

// tierFor returns the loyalty tier for a balance and the points still needed
// for the next tier (0 at the top tier).
func tierFor(points int64) (loyaltyv1.Tier, int64) {
	const silver, gold = 1000, 10000
	switch {
	case points >= gold:
		return loyaltyv1.Tier_TIER_GOLD, 0
	case points >= silver:
		return loyaltyv1.Tier_TIER_SILVER, gold - points
	default:
		return loyaltyv1.Tier_TIER_BRONZE, silver - points
	}
}

// seedOrders returns all customers' orders, oldest first: 12 for alice and 3
// for bob, whose lines use the given products' prices.
func seedOrders(products []*catalogv1.Product) []*ordersv1.Order {
	const count = 15
	epoch := time.Date(2026, time.October, 1, 9, 0, 0, 0, time.UTC)
	orders := make([]*ordersv1.Order, 0, count)
	for n := 1; n <= count; n++ {
		subject := "alice"
		if n%5 == 3 { // orders 3, 8 and 13
			subject = "bob"
		}
		var status ordersv1.OrderStatus
		switch {
		case n == 5 || n == 11:
			status = ordersv1.OrderStatus_ORDER_STATUS_CANCELLED
		case n <= 9:
			status = ordersv1.OrderStatus_ORDER_STATUS_DELIVERED
		case n <= 13:
			status = ordersv1.OrderStatus_ORDER_STATUS_SHIPPED
		default:
			status = ordersv1.OrderStatus_ORDER_STATUS_PLACED
		}
		lines := make([]*ordersv1.OrderLine, 1+n%3)
		for i := range lines {
			p := products[(n*5+i*7)%len(products)]
			lines[i] = &ordersv1.OrderLine{
				ProductId:      p.GetProductId(),
				Quantity:       int32(1 + (n+i)%3),
				UnitPriceMinor: p.GetPriceMinor(),
				WarehouseBin:   warehouseBin(n + i),
			}
		}
		orders = append(orders, &ordersv1.Order{
			OrderId:            orderID(n),
			Subject:            subject,
			CreateTime:         timestamppb.New(epoch.AddDate(0, 0, n).Add(time.Duration(n*37) * time.Minute)),
			Status:             status,
			Lines:              lines,
			TotalMinor:         orderTotal(lines),
			CurrencyCode:       currency,
			FraudScore:         int32(n * 137 % 1000),
			InternalStatusCode: internalStatusCode(status),
			StaffNotes:         orderNotes(n),
			PaymentReference:   paymentReference(n),
			WarehouseHost:      warehouseHost(n),
		})
	}
	return orders
}

// orderID returns the id of the n-th order ever placed (1-based).
func orderID(n int) string { return fmt.Sprintf("o-%d", 1000+n) }

func orderTotal(lines []*ordersv1.OrderLine) int64 {
	var total int64
	for _, l := range lines {
		total += l.GetUnitPriceMinor() * int64(l.GetQuantity())
	}
	return total
}

func internalStatusCode(status ordersv1.OrderStatus) string {
	switch status {
	case ordersv1.OrderStatus_ORDER_STATUS_PLACED:
		return "FUL-100-QUEUED"
	case ordersv1.OrderStatus_ORDER_STATUS_SHIPPED:
		return "FUL-300-HANDOVER-DHL"
	case ordersv1.OrderStatus_ORDER_STATUS_DELIVERED:
		return "FUL-400-POD-OK"
	case ordersv1.OrderStatus_ORDER_STATUS_CANCELLED:
		return "FUL-900-VOID-CUST"
	default:
		return "FUL-000-UNKNOWN"
	}
}

func orderNotes(n int) string {
	notes := []string{
		"Customer called about delivery window; promised AM slot.",
		"Address verified manually by support (agent jdv).",
		"Partial refund of 5 EUR issued for dented box.",
		"Fraud rule R17 tripped, cleared after 3-D Secure check.",
		"Gift wrap requested; note printed on packing slip.",
	}
	return notes[n%len(notes)]
}

func paymentReference(n int) string {
	return fmt.Sprintf("psp_ch_%08x", uint32(n)*2654435761)
}

func warehouseHost(n int) string {
	if n%2 == 0 {
		return "wh-rotterdam-1.acme.internal"
	}
	return "wh-lyon-2.acme.internal"
}

func warehouseBin(n int) string {
	return fmt.Sprintf("%c-%02d-%02d", 'A'+n%6, 1+n*7%24, 1+n*3%10)
}
