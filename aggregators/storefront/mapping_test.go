package storefront

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/custodian-bff/custodian/gen/go/acme/catalog/v1"
	loyaltyv1 "github.com/custodian-bff/custodian/gen/go/acme/loyalty/v1"
	ordersv1 "github.com/custodian-bff/custodian/gen/go/acme/orders/v1"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	storefrontv1 "github.com/custodian-bff/custodian/gen/go/acme/storefront/v1"
)

// Marker values of internal fields: strings start with "MARKER", numbers
// are 7770000 plus the field number. No public value contains either.
const (
	markerText   = "MARKER"
	markerNumber = 7770000
)

// markInternal sets every field numbered 20 or more of m, and of the
// messages it holds, to a marker value, and returns how many it set. It
// fails the test for a kind of field it cannot fill, so that a new internal
// field is never skipped silently.
func markInternal(t *testing.T, m protoreflect.Message) int {
	t.Helper()
	set := 0
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Number() < 20 {
			switch {
			case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
				list := m.Get(fd).List()
				for j := range list.Len() {
					set += markInternal(t, list.Get(j).Message())
				}
			case fd.Kind() == protoreflect.MessageKind && m.Has(fd) && !strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf."):
				set += markInternal(t, m.Get(fd).Message())
			}
			continue
		}
		if fd.IsList() || fd.IsMap() {
			t.Fatalf("cannot mark repeated field %s", fd.FullName())
		}
		n := markerNumber + int64(fd.Number())
		var v protoreflect.Value
		switch fd.Kind() {
		case protoreflect.StringKind:
			v = protoreflect.ValueOfString(fmt.Sprintf("%s-%s", markerText, fd.Name()))
		case protoreflect.BytesKind:
			v = protoreflect.ValueOfBytes([]byte(markerText))
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			v = protoreflect.ValueOfInt32(int32(n))
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			v = protoreflect.ValueOfInt64(n)
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			v = protoreflect.ValueOfUint32(uint32(n))
		case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			v = protoreflect.ValueOfUint64(uint64(n))
		default:
			t.Fatalf("cannot mark field %s of kind %v", fd.FullName(), fd.Kind())
		}
		m.Set(fd, v)
		set++
	}
	return set
}

// wantNoMarker fails if the public message's JSON shows a marker.
func wantNoMarker(t *testing.T, public proto.Message) {
	t.Helper()
	b, err := protojson.Marshal(public)
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	if strings.Contains(js, markerText) || strings.Contains(js, fmt.Sprint(markerNumber/1000)) {
		t.Errorf("an internal field reached the public message: %s", js)
	}
}

const imageBase = "https://images.acme.example"

func backendProduct(id string) *catalogv1.Product {
	return &catalogv1.Product{
		ProductId:     id,
		Name:          "Name of " + id,
		Description:   "A fine thing",
		Category:      "garden",
		PriceMinor:    1999,
		CurrencyCode:  "EUR",
		ImagePath:     "/images/" + id + ".jpg",
		StockQuantity: 3,
	}
}

func TestMappingDropsInternalFields(t *testing.T) {
	t.Parallel()
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name    string
		backend proto.Message
		marks   int // internal fields at least
		public  func(t *testing.T, backend proto.Message) proto.Message
		want    proto.Message
	}{
		{
			name: "profile",
			backend: &profilesv1.Profile{
				Subject: markerText + "-subject", DisplayName: "Alice Example", Email: "alice@example.com",
				AvatarUrl: "https://example.com/alice.png", Locale: "en-GB", MarketingOptIn: true,
			},
			marks:  5,
			public: func(_ *testing.T, m proto.Message) proto.Message { return publicProfile(m.(*profilesv1.Profile)) },
			want: &storefrontv1.Profile{
				DisplayName: "Alice Example", Email: "alice@example.com",
				AvatarUrl: "https://example.com/alice.png", Locale: "en-GB", MarketingOptIn: true,
			},
		},
		{
			name:    "loyalty",
			backend: &loyaltyv1.Account{Subject: markerText + "-subject", Points: 1234, Tier: loyaltyv1.Tier_TIER_SILVER, PointsToNextTier: 766},
			marks:   4,
			public:  func(_ *testing.T, m proto.Message) proto.Message { return publicLoyalty(m.(*loyaltyv1.Account)) },
			want:    &storefrontv1.Loyalty{Points: 1234, Tier: storefrontv1.LoyaltyTier_LOYALTY_TIER_SILVER, PointsToNextTier: 766},
		},
		{
			name: "order",
			backend: &ordersv1.Order{
				OrderId: "o-1", Subject: markerText + "-subject", CreateTime: timestamppb.New(created),
				Status: ordersv1.OrderStatus_ORDER_STATUS_SHIPPED, TotalMinor: 4997, CurrencyCode: "EUR",
				Lines: []*ordersv1.OrderLine{
					{ProductId: "p-1", Quantity: 2, UnitPriceMinor: 1999},
					{ProductId: "p-gone", Quantity: 1, UnitPriceMinor: 999},
				},
			},
			marks: 5 + 2,
			public: func(t *testing.T, m proto.Message) proto.Message {
				p := backendProduct("p-1")
				markInternal(t, p.ProtoReflect())
				return publicOrder(m.(*ordersv1.Order), map[string]*catalogv1.Product{"p-1": p}, imageBase)
			},
			want: &storefrontv1.Order{
				OrderId: "o-1", CreateTime: timestamppb.New(created), Status: storefrontv1.OrderStatus_ORDER_STATUS_SHIPPED,
				Total: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 4997},
				Lines: []*storefrontv1.OrderLine{
					{ProductId: "p-1", ProductName: "Name of p-1", ImageUrl: imageBase + "/images/p-1.jpg", Quantity: 2,
						UnitPrice: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 1999}},
					{ProductId: "p-gone", Quantity: 1, UnitPrice: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 999}},
				},
			},
		},
		{
			name:    "product",
			backend: backendProduct("p-1"),
			marks:   5,
			public: func(_ *testing.T, m proto.Message) proto.Message {
				return publicProduct(m.(*catalogv1.Product), imageBase)
			},
			want: &storefrontv1.Product{
				ProductId: "p-1", Name: "Name of p-1", Description: "A fine thing", Category: "garden",
				Price: &storefrontv1.Money{CurrencyCode: "EUR", AmountMinor: 1999}, ImageUrl: imageBase + "/images/p-1.jpg", InStock: true,
			},
		},
		{
			name:    "product out of stock",
			backend: &catalogv1.Product{ProductId: "p-2", Name: "Gone", PriceMinor: 5, CurrencyCode: "USD"},
			marks:   5,
			public: func(_ *testing.T, m proto.Message) proto.Message {
				return publicProduct(m.(*catalogv1.Product), imageBase)
			},
			want: &storefrontv1.Product{ProductId: "p-2", Name: "Gone", Price: &storefrontv1.Money{CurrencyCode: "USD", AmountMinor: 5}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if n := markInternal(t, c.backend.ProtoReflect()); n < c.marks {
				t.Fatalf("marked %d internal fields, want at least %d", n, c.marks)
			}
			got := c.public(t, c.backend)
			if !proto.Equal(got, c.want) {
				t.Errorf("public message\n%v\nwant\n%v", got, c.want)
			}
			wantNoMarker(t, got)
		})
	}
}

func TestMappingNil(t *testing.T) {
	t.Parallel()
	if publicProduct(nil, imageBase) != nil || publicProfile(nil) != nil || publicLoyalty(nil) != nil || publicOrder(nil, nil, imageBase) != nil {
		t.Error("a nil backend message mapped to a public one")
	}
}

func TestPublicTier(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   loyaltyv1.Tier
		want storefrontv1.LoyaltyTier
	}{
		{loyaltyv1.Tier_TIER_UNSPECIFIED, storefrontv1.LoyaltyTier_LOYALTY_TIER_UNSPECIFIED},
		{loyaltyv1.Tier_TIER_BRONZE, storefrontv1.LoyaltyTier_LOYALTY_TIER_BRONZE},
		{loyaltyv1.Tier_TIER_SILVER, storefrontv1.LoyaltyTier_LOYALTY_TIER_SILVER},
		{loyaltyv1.Tier_TIER_GOLD, storefrontv1.LoyaltyTier_LOYALTY_TIER_GOLD},
		{loyaltyv1.Tier(42), storefrontv1.LoyaltyTier_LOYALTY_TIER_UNSPECIFIED},
	}
	for _, c := range cases {
		t.Run(c.in.String(), func(t *testing.T) {
			t.Parallel()
			if got := publicLoyalty(&loyaltyv1.Account{Tier: c.in}).GetTier(); got != c.want {
				t.Errorf("tier %v mapped to %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestPublicStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   ordersv1.OrderStatus
		want storefrontv1.OrderStatus
	}{
		{ordersv1.OrderStatus_ORDER_STATUS_UNSPECIFIED, storefrontv1.OrderStatus_ORDER_STATUS_UNSPECIFIED},
		{ordersv1.OrderStatus_ORDER_STATUS_PLACED, storefrontv1.OrderStatus_ORDER_STATUS_PLACED},
		{ordersv1.OrderStatus_ORDER_STATUS_SHIPPED, storefrontv1.OrderStatus_ORDER_STATUS_SHIPPED},
		{ordersv1.OrderStatus_ORDER_STATUS_DELIVERED, storefrontv1.OrderStatus_ORDER_STATUS_DELIVERED},
		{ordersv1.OrderStatus_ORDER_STATUS_CANCELLED, storefrontv1.OrderStatus_ORDER_STATUS_CANCELLED},
		{ordersv1.OrderStatus(42), storefrontv1.OrderStatus_ORDER_STATUS_UNSPECIFIED},
	}
	for _, c := range cases {
		t.Run(c.in.String(), func(t *testing.T) {
			t.Parallel()
			if got := publicOrder(&ordersv1.Order{Status: c.in}, nil, imageBase).GetStatus(); got != c.want {
				t.Errorf("status %v mapped to %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestImageURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		path string
		want string
	}{
		{"absolute path", "/images/a.jpg", imageBase + "/images/a.jpg"},
		{"short path", "/a", imageBase + "/a"},
		{"empty", "", ""},
		{"root only", "/", ""},
		{"protocol-relative", "//host/x", ""},
		{"backslash host", "/\\host", ""},
		{"absolute URL", "http://x", ""},
		{"javascript URL", "javascript:alert(1)", ""},
		{"relative path", "images/a.jpg", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := imageURL(imageBase, c.path); got != c.want {
				t.Errorf("imageURL(%q) = %q, want %q", c.path, got, c.want)
			}
			// The product and order mappings use the same rule.
			if got := publicProduct(&catalogv1.Product{ImagePath: c.path}, imageBase).GetImageUrl(); got != c.want {
				t.Errorf("product image %q, want %q", got, c.want)
			}
			order := publicOrder(&ordersv1.Order{Lines: []*ordersv1.OrderLine{{ProductId: "p"}}},
				map[string]*catalogv1.Product{"p": {ImagePath: c.path}}, imageBase)
			if got := order.GetLines()[0].GetImageUrl(); got != c.want {
				t.Errorf("order line image %q, want %q", got, c.want)
			}
		})
	}
}
