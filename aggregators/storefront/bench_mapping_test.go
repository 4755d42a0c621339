package storefront

// Benchmarks of the mapping of backend messages into public ones
// (mapping.go) and of encoding the public answers with connect-go's
// codecs, on data like the demo world's seed (demo/backends/seed.go):
// products and orders with their internal fields, alice's profile and
// loyalty account. The order of GetOrder has five lines; the dashboard has
// alice's five most recent orders (1 to 3 lines each, 10 in all).
//
//	go test -run '^$' -bench 'Map|Encode' -benchmem ./aggregators/storefront/

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
)

const benchImageBase = "https://images.acme.example"

// benchProducts returns ten of the demo catalog's products, by id, with
// their internal fields.
func benchProducts() map[string]*catalogv1.Product {
	rows := []struct {
		id, name, description, category string
		price                           int64
		stock                           int32
		supplier, notes                 string
	}{
		{"p-0001", "Cast Iron Skillet 28 cm", "Pre-seasoned cast iron pan that goes from hob to oven; holds heat for a perfect sear.", "kitchen", 4990, 37, "sup-lodgeworks", "Best seller in Q4; reorder at 15."},
		{"p-0003", "Bamboo Cutting Board", "Large end-grain bamboo board with a juice groove; gentle on knife edges.", "kitchen", 2450, 58, "sup-greenleaf", "Check batch 2291 for warping complaints."},
		{"p-0006", "Linen Tea Towels (set of 3)", "Stonewashed European linen towels that get softer with every wash.", "kitchen", 1800, 90, "sup-flaxhouse", "Overstocked; candidate for bundle promo."},
		{"p-0008", "Heirloom Tomato Seed Collection", "Eight open-pollinated varieties, from Brandywine to Black Krim.", "garden", 1250, 120, "sup-seedvault", "Seeds expire 2027-12; rotate stock."},
		{"p-0010", "Cedar Raised Bed 120×60 cm", "Untreated western red cedar planter box; tool-free assembly.", "garden", 11900, 8, "sup-timbercraft", "Ships on a pallet; freight cost not in margin."},
		{"p-0013", "The Patient Gardener", "A year of seasonal advice for growing food in small spaces.", "books", 2200, 15, "sup-bookhub", "Signed copies in bin C-04; do not sell as unsigned."},
		{"p-0015", "A Short History of Board Games", "From Senet to modern Eurogames, richly illustrated.", "books", 1999, 0, "sup-bookhub", "Reprint due March; publisher delayed twice."},
		{"p-0017", "The Night Orchard", "A novel about three sisters, one orchard and a long, dry summer.", "books", 1495, 40, "sup-inkwell", "Book-club pick; expect spike in May."},
		{"p-0020", "Wooden Chess Set", "Weighted Staunton pieces and a folding walnut board.", "games", 5900, 5, "sup-timbercraft", "Fragile; double-box. Two damaged returns in October."},
		{"p-0022", "1000-Piece Jigsaw: Harbour at Dusk", "A moody harbour scene printed on thick recycled board.", "games", 1899, 33, "sup-puzzlemill", "Missing-piece claims: ship replacement from bin D-07."},
	}
	products := make(map[string]*catalogv1.Product, len(rows))
	for _, r := range rows {
		products[r.id] = &catalogv1.Product{
			ProductId: r.id, Name: r.name, Description: r.description, Category: r.category,
			PriceMinor: r.price, CurrencyCode: "EUR", ImagePath: "/images/" + r.id + ".jpg", StockQuantity: r.stock,
			CostPriceMinor: r.price * 55 / 100, SupplierId: r.supplier, StorageHost: "img-store-2.acme.internal",
			StaffNotes: r.notes, MarginBps: 4500,
		}
	}
	return products
}

// benchBackendOrder returns alice's n-th order (1-based) on the given
// products, with the backend's internal fields, as the demo seeds it.
func benchBackendOrder(n int, products map[string]*catalogv1.Product, productIDs ...string) *ordersv1.Order {
	o := &ordersv1.Order{
		OrderId:            fmt.Sprintf("o-%d", 1000+n),
		Subject:            "alice",
		CreateTime:         timestamppb.New(time.Date(2026, time.October, 1+n, 9, 0, 0, 0, time.UTC).Add(time.Duration(n*37) * time.Minute)),
		Status:             ordersv1.OrderStatus_ORDER_STATUS_DELIVERED,
		CurrencyCode:       "EUR",
		FraudScore:         int32(n * 137 % 1000),
		InternalStatusCode: "FUL-400-POD-OK",
		StaffNotes:         "Address verified manually by support (agent jdv).",
		PaymentReference:   fmt.Sprintf("psp_ch_%08x", uint32(n)*2654435761),
		WarehouseHost:      "wh-lyon-2.acme.internal",
	}
	for i, id := range productIDs {
		l := &ordersv1.OrderLine{
			ProductId: id, Quantity: int32(1 + (n+i)%3), UnitPriceMinor: products[id].GetPriceMinor(),
			WarehouseBin: fmt.Sprintf("%c-%02d-%02d", 'A'+(n+i)%6, 1+(n+i)*7%24, 1+(n+i)*3%10),
		}
		o.Lines = append(o.Lines, l)
		o.TotalMinor += l.GetUnitPriceMinor() * int64(l.GetQuantity())
	}
	return o
}

func benchProfile() *profilesv1.Profile {
	return &profilesv1.Profile{
		Subject: "alice", DisplayName: "Alice Martin", Email: "alice@example.com",
		AvatarUrl: "https://avatars.acme.example/alice.png", Locale: "en-GB", MarketingOptIn: true,
		InternalAccountId: "acct-7f3c21a9", RiskScore: 112,
		StaffNotes:    "VIP; prefers email. Escalate complaints to tier-2 (ticket #44812).",
		KycStatusCode: "KYC-VERIFIED-L2", StorageHost: "profiles-pg-2.acme.internal",
	}
}

func benchAccount() *loyaltyv1.Account {
	return &loyaltyv1.Account{
		Subject: "alice", Points: 12340, Tier: loyaltyv1.Tier_TIER_GOLD, InternalAccountId: "acct-7f3c21a9",
		FraudRiskScore: 112, TierOverrideReason: "Goodwill upgrade after lost parcel (case 2026-0913)",
		LedgerHost: "ledger-1.acme.internal",
	}
}

// benchData is the backend side of GetOrder and GetDashboard.
type benchData struct {
	products map[string]*catalogv1.Product
	order    *ordersv1.Order   // five lines
	recent   []*ordersv1.Order // the dashboard's five
	profile  *profilesv1.Profile
	account  *loyaltyv1.Account
}

func newBenchData() benchData {
	p := benchProducts()
	return benchData{
		products: p,
		order:    benchBackendOrder(1, p, "p-0006", "p-0013", "p-0020", "p-0003", "p-0010"),
		recent: []*ordersv1.Order{
			benchBackendOrder(15, p, "p-0001"),
			benchBackendOrder(14, p, "p-0022", "p-0008", "p-0015"),
			benchBackendOrder(12, p, "p-0013"),
			benchBackendOrder(11, p, "p-0017", "p-0001", "p-0010"),
			benchBackendOrder(10, p, "p-0003", "p-0020"),
		},
		profile: benchProfile(),
		account: benchAccount(),
	}
}

// mapDashboard maps the dashboard as GetDashboard does.
func (d benchData) mapDashboard() *storefrontv1.GetDashboardResponse {
	out := &storefrontv1.GetDashboardResponse{Profile: publicProfile(d.profile), Loyalty: publicLoyalty(d.account)}
	for _, o := range d.recent {
		out.RecentOrders = append(out.RecentOrders, publicOrder(o, d.products, benchImageBase))
	}
	return out
}

// benchSink keeps what a benchmark maps, as a handler's answer escapes to
// connect-go, so that the compiler cannot place it on the stack.
var benchSink any

func BenchmarkMapping(b *testing.B) {
	d := newBenchData()

	order := publicOrder(d.order, d.products, benchImageBase)
	if len(order.GetLines()) != 5 || order.GetTotal().GetAmountMinor() != d.order.GetTotalMinor() || !order.GetCreateTime().AsTime().Equal(d.order.GetCreateTime().AsTime()) {
		b.Fatalf("publicOrder = %v", order)
	}
	for i, l := range order.GetLines() {
		p := d.products[d.order.GetLines()[i].GetProductId()]
		if l.GetProductName() != p.GetName() || l.GetImageUrl() != benchImageBase+p.GetImagePath() || l.GetUnitPrice().GetAmountMinor() != p.GetPriceMinor() {
			b.Fatalf("line %d = %v", i, l)
		}
	}
	p := d.products["p-0020"]
	if got := publicProduct(p, benchImageBase); got.GetName() != p.GetName() || !got.GetInStock() || got.GetImageUrl() != benchImageBase+"/images/p-0020.jpg" {
		b.Fatalf("publicProduct = %v", got)
	}
	if got := publicProfile(d.profile); got.GetDisplayName() != "Alice Martin" || got.GetLocale() != "en-GB" || !got.GetMarketingOptIn() {
		b.Fatalf("publicProfile = %v", got)
	}
	if got := d.mapDashboard(); len(got.GetRecentOrders()) != 5 || got.GetLoyalty().GetTier() != storefrontv1.LoyaltyTier_LOYALTY_TIER_GOLD {
		b.Fatalf("dashboard = %v", got)
	}

	b.Run("publicOrder/5-lines", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = publicOrder(d.order, d.products, benchImageBase)
		}
	})
	b.Run("publicProduct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = publicProduct(p, benchImageBase)
		}
	})
	b.Run("publicProfile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = publicProfile(d.profile)
		}
	})
	b.Run("dashboard/5-orders", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = d.mapDashboard()
		}
	})
	// GetOrder's other per-call helper: the product ids to look up.
	b.Run("productIDs/5-lines", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink = productIDs(d.order)
		}
	})
}

// BenchmarkEncode is writing the public answers with connect-go's codecs
// into a reused buffer, as the Connect handler writes an answer: JSON (what
// a browser's Connect GET with encoding=json gets) against binary.
func BenchmarkEncode(b *testing.B) {
	d := newBenchData()
	answers := []struct {
		name string
		msg  proto.Message
		new  func() proto.Message
	}{
		{"GetOrderResponse", &storefrontv1.GetOrderResponse{Order: publicOrder(d.order, d.products, benchImageBase)},
			func() proto.Message { return new(storefrontv1.GetOrderResponse) }},
		{"GetDashboardResponse", d.mapDashboard(),
			func() proto.Message { return new(storefrontv1.GetDashboardResponse) }},
	}
	codecs := []connect.Codec{connectproto.NewJSONCodec(), connectproto.NewBinaryCodec()}
	ctx := context.Background()
	for _, a := range answers {
		for _, codec := range codecs {
			var buf bytes.Buffer
			if err := codec.MarshalWrite(ctx, &buf, a.msg); err != nil {
				b.Fatal(err)
			}
			back := a.new()
			if err := codec.UnmarshalRead(ctx, bytes.NewReader(buf.Bytes()), back); err != nil || !proto.Equal(back, a.msg) {
				b.Fatalf("%s %s: decoded %v (%v), want %v", a.name, codec.Name(), back, err, a.msg)
			}
			b.Run(a.name+"/"+codec.Name(), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(buf.Len()))
				for b.Loop() {
					buf.Reset()
					if err := codec.MarshalWrite(ctx, &buf, a.msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
